"""Every benchmark script under bench/ imports and parses its arguments (`--help`), so a renamed platform
function breaks CI rather than the next person who reruns a documented benchmark command."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .ops_helpers import ROOT

SCRIPTS = sorted(p for p in (ROOT / "bench").glob("*.py") if 'if __name__ == "__main__"' in p.read_text())


def test_bench_scripts_found() -> None:
    names = {p.name for p in SCRIPTS}
    assert {"bench_students.py", "bench_distill.py", "bench_teacher_llm.py", "teacher_student_overlap.py"} <= names


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


def test_crossfit_folds_cover_every_user_once_and_keep_fold_users_out() -> None:
    import numpy as np

    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from teacher_crossfit_probe import fold_of_users
    finally:
        sys.path.remove(str(ROOT / "bench"))
    users = np.repeat(np.arange(23), 4)  # rows of 23 users
    fold = fold_of_users(users, 5, seed=3)
    assert sorted(np.bincount(fold[np.arange(23)], minlength=5)) == [4, 4, 5, 5, 5]  # near-equal folds
    assert np.array_equal(fold, fold_of_users(users, 5, seed=3))  # seeded
    assert not np.array_equal(fold, fold_of_users(users, 5, seed=4))
    for k in range(5):  # a fold's SASRec trains on the other folds' rows: none of fold k's users
        kept = users[fold[users] != k]
        assert set(kept).isdisjoint(set(np.flatnonzero(fold[:23] == k)))
        assert len(set(kept)) + int((fold[:23] == k).sum()) == 23
