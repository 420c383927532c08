"""run-eval-all over many runs: ``eval.collect=all`` (every complete run on the same data under
paths.result_root) and ``eval.runs=[...]`` (an explicit list), one table and the paired comparison against a
chosen reference; no run folder when there is nothing to evaluate; the chart (values, gains, user counts)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from omegaconf import DictConfig, open_dict

from ilora_dllm2rec.core.errors import ArtifactError, ConfigError
from ilora_dllm2rec.core.run_logging import RunDir
from ilora_dllm2rec.core.significance import paired_comparison
from ilora_dllm2rec.data import prepare_data
from ilora_dllm2rec.exp import stages
from tests.conftest import TINY_OVERRIDES, compose_config

from .helpers import run_entry

ID_TEACHER = ["teacher=sasrec", "teacher.num_epochs=1", "teacher.model.hidden_size=16", "teacher.model.emb_size=16"]
OTHER_DATA = ["dataset.synthetic.num_items=38"]


def _paths(root: Path) -> list[str]:
    return [f"paths.data_dir={root / 'data'}", f"paths.result_root={root / 'result'}"]


def _cfg(root: Path, config_name: str = "config", extra: tuple[str, ...] = ()) -> DictConfig:
    cfg = compose_config(config_name, [*TINY_OVERRIDES, "student.num_epochs=1", *extra])
    with open_dict(cfg):
        cfg.paths.data_dir = str(root / "data")
        cfg.paths.result_root = str(root / "result")
        cfg.paths.cache_dir = str(root / "data" / "processed")
    return cfg


def _run(root: Path, n: int) -> RunDir:
    return RunDir(root / "result" / f"result_20000101_00000{n}")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Earlier runs on disk: three baselines (sasrec, gru4rec, caser), a run with an ID teacher and a distilled
    sasrec, a baseline on other data and an incomplete one (no manifest)."""
    root = tmp_path_factory.mktemp("eval_all")
    for n, name in enumerate(("sasrec", "gru4rec", "caser"), start=1):
        cfg = _cfg(root, extra=(f"student={name}",))
        stages.baseline(cfg, _run(root, n), prepare_data(cfg.dataset, cfg.paths.cache_dir))
    tcfg = _cfg(root, "run_teacher", tuple(ID_TEACHER))
    data = prepare_data(tcfg.dataset, tcfg.paths.cache_dir)
    stages.teacher(tcfg, _run(root, 4), data)
    stages.export(tcfg, _run(root, 4), data)
    stages.distill(_cfg(root, "run_distill", ("distill.num_epochs=1",)), _run(root, 4), data)
    other = _cfg(root, extra=tuple(OTHER_DATA))
    stages.baseline(other, _run(root, 5), prepare_data(other.dataset, other.paths.cache_dir))
    incomplete = _run(root, 6).models("baseline")
    shutil.copy(_run(root, 1).root / "models" / "baseline" / "best.ckpt", incomplete / "best.ckpt")
    return root


def _label(stage: str, model: str, n: int) -> str:
    return f"{stage} {model} [result_20000101_00000{n}]"


ALL = {
    _label("baseline", "sasrec", 1),
    _label("baseline", "gru4rec", 2),
    _label("baseline", "caser", 3),
    _label("teacher", "sasrec", 4),
    _label("distill", "sasrec", 4),
}


def test_collect_all_puts_every_complete_run_on_the_same_data_side_by_side(workspace):
    out = workspace / "evals" / "all"
    overrides = [*TINY_OVERRIDES, *_paths(workspace), f"hydra.run.dir={out}"]
    proc = run_entry(
        "run_eval_all", [*overrides, "eval.collect=all", "eval.significance.reference=baseline gru4rec"], workspace
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "all_evaluation_results.json").read_text())
    models = results["models"]
    assert set(models) == ALL  # not the other data's run, not the incomplete one
    assert models[_label("baseline", "caser", 3)]["stage"] == "baseline"
    assert models[_label("baseline", "caser", 3)]["run"] == "result_20000101_000003"
    for n, name in enumerate(("sasrec", "gru4rec", "caser"), start=1):  # the same numbers as each run's own
        own = json.loads(
            (workspace / "result" / f"result_20000101_00000{n}" / "metrics" / "eval_baseline.json").read_text()
        )
        assert models[_label("baseline", name, n)]["test"]["ndcg@10"] == pytest.approx(own["test"]["ndcg@10"], abs=1e-6)
    sig = results["significance"]
    reference = _label("baseline", "gru4rec", 2)
    assert sig["reference"] == reference and set(sig["models"]) == ALL - {reference}
    for comparison in sig["models"].values():
        assert comparison["ndcg@10"]["reference_mean"] == pytest.approx(models[reference]["test"]["ndcg@10"])
        assert comparison["ndcg@10"]["num_users"] == 60
    table = (out / "metrics" / "eval_all.md").read_text()
    assert all(f"| {label} |" in table for label in ALL) and f"Against `{reference}`" in table
    assert (out / "metrics" / "eval_all.png").stat().st_size > 0
    assert not (workspace / "result" / "result_20000101_000006" / "models" / "baseline" / "manifest.json").exists()


def test_explicit_runs_and_default_reference(workspace):
    out = workspace / "evals" / "runs"
    runs = f"eval.runs=[{workspace / 'result' / 'result_20000101_000002'},{workspace / 'result' / 'result_20000101_000004' / 'models' / 'distill'}]"  # noqa: E501
    proc = run_entry("run_eval_all", [*TINY_OVERRIDES, *_paths(workspace), f"hydra.run.dir={out}", runs], workspace)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "all_evaluation_results.json").read_text())
    assert set(results["models"]) == {_label("baseline", "gru4rec", 2), _label("distill", "sasrec", 4)}
    assert results["significance"]["reference"] == _label("baseline", "gru4rec", 2)  # "baseline": the only one


def test_explicit_run_on_other_data_is_one_clear_error(workspace):
    out = workspace / "evals" / "other"
    other = workspace / "result" / "result_20000101_000005"
    proc = run_entry(
        "run_eval_all", [*TINY_OVERRIDES, *_paths(workspace), f"hydra.run.dir={out}", f"eval.runs=[{other}]"], workspace
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "eval.runs" in errors[0] and str(other) in errors[0] and "data" in errors[0]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("collect", ["newest", "all"])
def test_nothing_to_evaluate_makes_no_run_folder(tmp_path, collect):
    result = tmp_path / "result"
    other = result / "result_19990101_000000"  # a complete run, on other data (named by its Hydra config)
    (other / "models" / "baseline").mkdir(parents=True)
    (other / "models" / "baseline" / "manifest.json").write_text(json.dumps({"data_fingerprint": "x", "num_items": 3}))
    (other / ".hydra").mkdir()
    (other / ".hydra" / "config.yaml").write_text("dataset:\n  name: ml-100k\n")
    proc = run_entry("run_eval_all", [*TINY_OVERRIDES, *_paths(tmp_path), f"eval.collect={collect}"], tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "nothing to evaluate" in errors[0] and "dataset=ml-100k" in errors[0], errors
    assert sorted(p.name for p in result.iterdir()) == [other.name]  # no new, empty result_* folder


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        (["eval.collect=every"], "eval.collect"),
        (["eval.collect=all", "eval.runs=[result/x]"], "eval.runs"),
        (["eval.collect=all", "eval.baseline_checkpoint=result/x/models/baseline"], "eval.baseline_checkpoint"),
        (["eval.collect=all", "eval.significance.reference=bert4rec"], "eval.significance.reference"),
        (["eval.runs=[nowhere/result_x]"], "eval.runs"),
    ],
)
def test_collect_settings_are_checked(workspace, tmp_path, extra, key):
    cfg = _cfg(workspace, "run_eval_all", tuple(extra))
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    with pytest.raises((ConfigError, ArtifactError), match=key.replace(".", r"\.")) as info:
        stages.eval_all(cfg, RunDir(tmp_path / "r"), data)
    assert "\n" not in str(info.value)


def test_eval_all_receives_the_checked_sections(tmp_path):
    from ilora_dllm2rec.core.schema_groups import Eval, Train

    cfg = _cfg(tmp_path, "run_eval_all", ("eval.collect=all", "train.eval_batch_size=7", "general.seed=3"))
    stage = stages.eval_stage(cfg)
    assert isinstance(stage.eval, Eval) and stage.eval.collect == "all" and stage.eval.runs == []
    assert isinstance(stage.train, Train) and stage.train.name == "student" and stage.train.eval_batch_size == 7
    assert stage.paths.result_root == str(tmp_path / "result") and stage.seed == 3
    with pytest.raises(ConfigError, match=r"eval\.runs and eval\.collect=all"):  # checked when the bundle is built
        stages.eval_stage(_cfg(tmp_path, "run_eval_all", ("eval.collect=all", "eval.runs=[result/x]")))


def test_chart_shows_values_gains_with_intervals_and_user_counts(tmp_path):
    from ilora_dllm2rec.report.plots import eval_all_figure

    rng = np.random.default_rng(0)
    base = rng.random(60) * 0.2
    rows = {
        "baseline": {"ndcg@10": float(base.mean()), "hr@10": 0.30, "num_samples": 60},
        "teacher": {"ndcg@10": float(base[:20].mean()) * 1.03, "hr@10": 0.31, "num_samples": 20},
        "distill": {"ndcg@10": float(base.mean()) * 1.04, "hr@10": 0.305, "num_samples": 60},
    }
    gains = {
        "teacher": {"ndcg@10": paired_comparison(base[:20], base[:20] * 1.03, resamples=200)},
        "distill": {"ndcg@10": paired_comparison(base, base * 1.04, resamples=200)},
    }
    fig = eval_all_figure(rows, title="tiny (test)", gains=gains, reference="baseline")
    values_ax, gains_ax = fig.axes
    texts = {t.get_text() for t in values_ax.texts}
    assert "0.3050" in texts and "0.3100" in texts  # a value label on every bar
    legend = [t.get_text() for t in values_ax.get_legend().get_texts()]
    assert legend == ["baseline (60 users)", "teacher (20 users)", "distill (60 users)"]  # the counts differ
    assert "vs baseline" in gains_ax.get_title() and "%" in gains_ax.get_ylabel()
    assert {"+4.0%", "+3.0%"} <= {t.get_text().split()[0] for t in gains_ax.texts}
    assert gains_ax.containers and any(c.__class__.__name__ == "ErrorbarContainer" for c in gains_ax.containers)
    same = {k: {**v, "num_samples": 60} for k, v in rows.items()}
    legend = [t.get_text() for t in eval_all_figure(same).axes[0].get_legend().get_texts()]
    assert legend == list(rows)  # one count for every bar: in the title, not the legend


def test_bare_run_with_no_runs_at_all_leaves_nothing_behind(tmp_path):
    proc = run_entry("run_eval_all", [*TINY_OVERRIDES, *_paths(tmp_path)], tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "error: nothing to evaluate" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "result").exists()  # neither a result_* folder nor the result root Hydra made for it
