"""Every benchmark script under bench/ imports and parses its arguments (`--help`), so a renamed platform
function breaks CI rather than the next person who reruns a documented benchmark command; docs/BENCHMARKS.md
names every one of them, and there are at most ten."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .ops_helpers import ROOT

SCRIPTS = sorted(p for p in (ROOT / "bench").glob("*.py") if 'if __name__ == "__main__"' in p.read_text())
HELPERS = sorted(p for p in (ROOT / "bench").glob("*.py") if p not in SCRIPTS)


def test_bench_scripts_found() -> None:
    names = {p.name for p in SCRIPTS}
    assert {"bench_students.py", "bench_distill.py", "bench_teacher_llm.py", "paired_seeds.py"} <= names
    assert len(SCRIPTS) <= 10


def test_benchmarks_page_names_every_script_and_helpers_are_imported() -> None:
    page = (ROOT / "docs" / "BENCHMARKS.md").read_text()
    for script in SCRIPTS:
        assert f"bench/{script.name}" in page, f"docs/BENCHMARKS.md does not name bench/{script.name}"
    sources = "\n".join(p.read_text() for p in SCRIPTS + HELPERS)
    for helper in HELPERS:  # a helper module no benchmark imports is dead code
        assert f"import {helper.stem}" in sources or f"from {helper.stem} import" in sources, helper.name


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_bench_script_help(script) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, str(script), "--help"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage:" in proc.stdout


def test_bench_distill_names_a_missing_embeddings_file(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    missing = tmp_path / "all_embeddings.pt"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_distill.py"), "--throughput-embeddings", str(missing)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert f"--throughput-embeddings: {missing} is not a file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_paired_seeds_names_a_bad_pair(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    script = str(ROOT / "bench" / "paired_seeds.py")
    run = lambda *a: subprocess.run([sys.executable, script, *a], cwd=ROOT, env=env, capture_output=True, text=True)  # noqa: E731
    proc = run("--pair", "only-one-path")
    assert proc.returncode == 2 and "write BASELINE:OTHER" in proc.stderr
    missing = tmp_path / "models" / "baseline"
    proc = run("--pair", f"{missing}:{missing}")
    assert proc.returncode != 0 and f"error: --pair: {missing} is not a checkpoint file" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture()
def paired_seeds(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import paired_seeds

    yield paired_seeds
    sys.modules.pop("paired_seeds", None)  # also when an assertion failed


def _test_batch(data) -> dict:
    import torch

    return {"seq": torch.from_numpy(data.test.seq).long(), "len_seq": torch.from_numpy(data.test.len_seq).long()}


def test_paired_seeds_scores_an_ensemble_teacher_like_its_members(tiny_cfg, tmp_path, paired_seeds) -> None:
    """A run's `models/teacher` of teacher=ensemble resolves to its ensemble.json through its manifest, scored as
    the mean log-probability of its members (here one baseline twice: its own log-softmax)."""
    import json

    import torch

    from ilora_dllm2rec.core.run_logging import RunDir
    from ilora_dllm2rec.data import prepare_data
    from ilora_dllm2rec.exp import stages

    cfg = tiny_cfg()
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    result = stages.baseline(cfg, RunDir(tmp_path / "result" / "result_19990101_000000"), data)
    teacher = tmp_path / "models" / "teacher"
    teacher.mkdir(parents=True)
    member = Path(result["best_checkpoint"])
    (teacher / "ensemble.json").write_text(json.dumps({"members": [str(member)] * 2, "combine": "log_softmax"}))
    manifest = {"stage": "teacher", "backend": "ensemble", "best_checkpoint": "ensemble.json"}
    (teacher / "manifest.json").write_text(json.dumps(manifest))

    assert paired_seeds.resolve(teacher) == ("teacher", teacher / "ensemble.json", manifest)
    assert paired_seeds.resolve(teacher / "ensemble.json")[0] == "teacher"
    assert paired_seeds.resolve(member.parent)[:2] == ("baseline", member)  # the run's models/baseline folder
    stage = stages.eval_stage(cfg)
    batch = _test_batch(data)
    with torch.no_grad():
        student = paired_seeds.scorer(paired_seeds.resolve(member), data, stage)[0](batch)
        got = paired_seeds.scorer(paired_seeds.resolve(teacher), data, stage)[0](batch)
    assert torch.allclose(got, torch.log_softmax(student, 1), atol=1e-5)
    ks = list(cfg.metrics.ks)
    per_teacher = paired_seeds.per_user(paired_seeds.resolve(teacher), data, stage, "test", ks)
    per_student = paired_seeds.per_user(paired_seeds.resolve(member), data, stage, "test", ks)
    assert len(per_teacher["ndcg@10"]) == len(data.test)
    assert np.array_equal(per_teacher["ndcg@10"], per_student["ndcg@10"])  # same ranking, same per-user values


def test_paired_seeds_scores_an_id_teacher_through_its_backend(tiny_cfg, tmp_path, paired_seeds) -> None:
    """A `teacher=sasrec` run's models/teacher is loaded by its backend (the manifest's `backend`), and scores
    like the SASRec it holds."""
    import torch

    from ilora_dllm2rec.core.run_logging import RunDir
    from ilora_dllm2rec.data import prepare_data
    from ilora_dllm2rec.exp import stages
    from ilora_dllm2rec.teacher.backends import teacher_backend

    cfg = tiny_cfg("run_teacher", ["teacher=sasrec", "teacher.num_epochs=1"])
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    run = RunDir(tmp_path / "result" / "result_19990101_000000")
    stages.teacher(cfg, run, data)
    folder = run.root / "models" / "teacher"
    side = paired_seeds.resolve(folder)
    name, ckpt, manifest = side
    assert name == "teacher" and manifest["backend"] == "sasrec"
    stage = stages.eval_stage(cfg)
    batch = _test_batch(data)
    direct = teacher_backend("sasrec").load(ckpt, data, str(cfg.paths.model_cache_dir), None)
    with torch.no_grad():
        got = paired_seeds.scorer(side, data, stage)[0](batch)
        assert torch.equal(got, direct.score(batch["seq"], batch["len_seq"]))


def test_paired_seeds_test_without_newest_is_the_test_target_from_the_validation_input(tiny_cfg, paired_seeds) -> None:
    from ilora_dllm2rec.data import prepare_data

    cfg = tiny_cfg()
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    got = paired_seeds.split_samples(data, "test-without-newest")
    assert np.array_equal(got.seq, data.val.seq) and np.array_equal(got.len_seq, data.val.len_seq)
    assert np.array_equal(got.target, data.test.target) and np.array_equal(got.candidates, data.test.candidates)
    # the validation input is the test input without its newest item, which is the validation target
    newest = data.test.seq[np.arange(len(data.test)), data.test.len_seq - 1]
    assert (data.test.len_seq > 0).all() and np.array_equal(newest, data.val.target)
    assert paired_seeds.split_samples(data, "test") is data.test
