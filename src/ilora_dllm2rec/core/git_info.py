"""Record the code version of a run (git_info.txt in the run folder)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .distributed import is_rank_zero


def _git(*args: str, cwd: Path) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc.__class__.__name__})"
    return out.stdout.strip() if out.returncode == 0 else "unavailable (not a git checkout)"


def git_info(repo_dir: str | Path | None = None) -> dict[str, str]:
    cwd = Path(repo_dir) if repo_dir else Path(__file__).resolve().parent
    status = _git("status", "--porcelain", cwd=cwd)
    return {
        "commit": _git("rev-parse", "HEAD", cwd=cwd),
        "branch": _git("rev-parse", "--abbrev-ref", "HEAD", cwd=cwd),
        "dirty": "unknown" if status.startswith("unavailable") else str(bool(status)),
    }


def save_git_info(run_dir: str | Path) -> Path:
    path = Path(run_dir) / "git_info.txt"
    if not is_rank_zero():  # DDP: rank 0 writes
        return path
    info = git_info()
    path.write_text("".join(f"{k}: {v}\n" for k, v in info.items()))
    return path
