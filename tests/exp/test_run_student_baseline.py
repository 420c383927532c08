"""End-to-end: run-student-baseline on tiny synthetic data, result folder, errors, overrides."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from .helpers import run_entry, tiny_overrides


def test_baseline_end_to_end_result_folder(tmp_path):
    proc = run_entry("run_student_baseline", tiny_overrides(tmp_path, "20000101_000000"), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "result" / "result_20000101_000000"
    for rel in (
        ".hydra/config.yaml",
        "logs/train_student_baseline.log",
        "models/baseline/best.ckpt",
        "models/baseline/last.ckpt",
        "models/baseline/manifest.json",
        "metrics/eval_baseline.json",
        "metrics/time.json",
        "git_info.txt",
        "manifest.json",
    ):
        assert (run / rel).is_file(), rel
    assert any((run / "tb" / "baseline").iterdir())
    metrics = json.loads((run / "metrics" / "eval_baseline.json").read_text())
    assert {"val", "test", "best_epoch", "data_fingerprint", "config_fingerprint"} <= set(metrics)
    for split in ("val", "test"):
        for key in ("hr@10", "ndcg@10", "recall@10", "mrr", "cand_hr@1", "ndcg@20", "hr@1"):
            assert 0.0 <= metrics[split][key] <= 1.0
    assert json.loads((run / "metrics" / "time.json").read_text())["student_baseline_train_time"] > 0
    assert "baseline" in json.loads((run / "manifest.json").read_text())["completed_stages"]


def test_override_applies_and_reaches_the_model(tmp_path):
    overrides = tiny_overrides(tmp_path) + [
        "student.hidden_size=24",
        "student.emb_size=24",
        "student=sasrec",
        "train.batch_size=32",
        "student.num_epochs=1",
        "general.num_threads=1",
    ]
    proc = run_entry("run_student_baseline", overrides, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "result" / "result_run"
    assert "torch threads: 1 (general.num_threads)" in (run / "run_student_baseline.log").read_text()
    cfg = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
    assert cfg["student"]["hidden_size"] == 24 and cfg["train"]["batch_size"] == 32
    state = torch.load(run / "models" / "baseline" / "best.ckpt", map_location="cpu", weights_only=False)
    assert state["state_dict"]["model.item_embedding.weight"].shape[1] == 24


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["student.not_a_key=1"], "not_a_key"),
        (["dataset=no_such_dataset"], "no_such_dataset"),
        (["student=no_such_model"], "no_such_model"),
    ],
)
def test_unknown_keys_and_options_fail_loudly(tmp_path, extra, needle):
    """One `error:` line naming the key or option, exit 2, before Hydra creates a run folder."""
    proc = run_entry("run_student_baseline", tiny_overrides(tmp_path) + extra, tmp_path, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith("error: ") and needle in lines[0]
    assert not (tmp_path / "result").exists()


def test_user_error_is_one_line_and_exit_2(tmp_path):
    """An entry point must not exit 0 while swallowing an exception. Here: exit 2, one clear line."""
    overrides = [o for o in tiny_overrides(tmp_path) if not o.startswith("dataset.synthetic")]
    overrides += ["dataset=ml-100k", f"dataset.data_dir={tmp_path / 'missing'}"]
    proc = run_entry("run_student_baseline", overrides, tmp_path, timeout=120)
    assert proc.returncode == 2
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "cmd/movielens.sh" in error_lines[0]
    assert not (tmp_path / "result" / "result_run" / "models" / "baseline" / "manifest.json").exists()


def test_max_seq_len_below_one_is_an_error(tmp_path):
    proc = run_entry("run_student_baseline", tiny_overrides(tmp_path) + ["dataset.max_seq_len=0"], tmp_path)
    assert proc.returncode == 2
    assert "max_seq_len" in proc.stderr


def test_unexpected_exception_exits_nonzero(tmp_path):
    """A non-user error (here: a NaN-producing learning rate is a TrainingError; use a strategy name only
    Lightning's Trainer checks instead; an impossible precision is refused by the schema now) must still exit
    non-zero with the error shown."""
    proc = run_entry("run_student_baseline", tiny_overrides(tmp_path) + ["train.strategy=not-a-strategy"], tmp_path)
    assert proc.returncode != 0
    assert "not-a-strategy" in proc.stderr


def test_switch_given_as_yes_is_refused(tmp_path):
    """`distill.use_dros=no` is the STRING "no" for OmegaConf, and bool("no") is True: refused, key named."""
    proc = run_entry("run_student_baseline", tiny_overrides(tmp_path) + ["distill.use_dros=no"], tmp_path)
    assert proc.returncode == 2
    assert "distill.use_dros='no'" in proc.stderr and "true, false or auto" in proc.stderr


def test_number_given_as_text_is_refused_before_any_work(tmp_path):
    """`train.lr=fast` would reach float() inside the stage: refused at start, key and default named."""
    proc = run_entry("run_student_baseline", tiny_overrides(tmp_path) + ["train.lr=fast"], tmp_path)
    assert proc.returncode == 2
    assert "train.lr='fast' must be a number" in proc.stderr
    assert not list((tmp_path / "result").rglob("best.ckpt"))


def test_out_of_range_value_is_refused_before_any_work(tmp_path):
    """`teacher.batch_size=0` in a pipeline used to surface as a data loader's ValueError (no key named) after
    the baseline had trained; now the run stops at start, key named, nothing trained."""
    proc = run_entry("run_pipeline", tiny_overrides(tmp_path) + ["teacher.batch_size=0"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == "error: teacher.batch_size must be an integer >= 1, got 0"
    assert not list((tmp_path / "result").rglob("*.ckpt"))


def test_bad_cpu_bf16_variable_is_refused_before_a_run_folder_exists(tmp_path, monkeypatch):
    """ILORA_CPU_BF16=yes used to be ignored (the run went on with the CPU flags' precision); now it stops."""
    monkeypatch.setenv("ILORA_CPU_BF16", "yes")
    proc = run_entry("run_student_baseline", tiny_overrides(tmp_path), tmp_path, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: environment variable ILORA_CPU_BF16='yes': use 1 (keep bf16 on this CPU), 0 (fp32) "
        "or leave it unset (decided from the CPU flags)"
    )
    assert not (tmp_path / "result").exists()


def test_missing_llm_folder_stops_the_pipeline_before_the_baseline(tmp_path):
    proc = run_entry("run_pipeline", tiny_overrides(tmp_path) + [f"teacher.llm_path={tmp_path / 'no_model'}"], tmp_path)
    assert proc.returncode == 2
    assert "does not exist: give a model folder" in proc.stderr.strip().splitlines()[-1]
    assert not list((tmp_path / "result").rglob("*.ckpt"))
