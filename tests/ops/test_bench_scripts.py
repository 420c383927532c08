"""Every benchmark script under bench/ imports and parses its arguments (`--help`), so a renamed platform
function breaks CI rather than the next person who reruns a documented benchmark command; docs/BENCHMARKS.md
names every one of them, and there are at most ten."""

from __future__ import annotations

import os
import subprocess
import sys

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
