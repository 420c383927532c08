"""Run entry points as a user would: a subprocess, its exit code and its stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_entry(module: str, overrides: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", f"ilora_dllm2rec.exp.{module}", *overrides],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def tiny_overrides(tmp_path: Path, run_name: str = "run") -> list[str]:
    from tests.conftest import TINY_OVERRIDES

    return TINY_OVERRIDES + [
        f"paths.data_dir={tmp_path / 'data'}",
        f"paths.result_root={tmp_path / 'result'}",
        f"hydra.run.dir={tmp_path / 'result' / ('result_' + run_name)}",
    ]
