"""Run folders, per-stage log files, TensorBoard locations and ``time_block`` timings.

Layout (the result folder of README.md)::

    result/result_{YYYYMMDD_HHMMSS}/
      .hydra/  logs/train_{stage}.log  tb/{stage}/  models/{stage}/  metrics/eval_*.json
      metrics/time.json  git_info.txt  manifest.json
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .artifacts import read_json, update_json
from .distributed import is_rank_zero

# stage name -> log file stem (the names users' tools read: train_teacher.log, train_student_baseline.log, ...)
LOG_NAMES = {
    "baseline": "train_student_baseline",
    "teacher": "train_teacher",
    "export": "train_teacher",
    "distill": "train_distill",
    "eval": "eval_all",
    "pipeline": "pipeline",
    "preprocess": "preprocess",
}


@dataclass
class RunDir:
    """Paths inside one result folder."""

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        for sub in ("logs", "tb", "models", "metrics"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def models(self, stage: str) -> Path:
        path = self.root / "models" / stage
        path.mkdir(parents=True, exist_ok=True)
        return path

    def tb(self, stage: str) -> Path:
        return self.root / "tb" / stage

    def metrics(self, name: str) -> Path:
        return self.root / "metrics" / name

    @property
    def time_json(self) -> Path:
        return self.root / "metrics" / "time.json"

    @property
    def teacher_outputs(self) -> Path:
        return self.root / "teacher_outputs"

    def log_file(self, stage: str) -> Path:
        return self.root / "logs" / f"{LOG_NAMES.get(stage, stage)}.log"

    def timings(self) -> dict:
        return read_json(self.time_json, "time.json") if self.time_json.is_file() else {}


_RUN_DIR_FIX = "set hydra.run.dir (or paths.result_root) to a folder you can write"
# what a run writes into an existing folder (resume=true): Hydra's config and job log, then our own sub-folders
_RUN_DIR_FOLDERS = (".hydra", "logs", "metrics", "models", "tb")


def run_dir_problem(run_dir: str | Path) -> str | None:
    """Why ``run_dir`` cannot be created or written (None when it can), as one line naming the folder.

    Checked before Hydra runs: Hydra itself reports a path under a regular file with a traceback, and an
    existing read-only folder (``resume=true``) with ``Unable to configure handler 'file'``. ``os.access``
    answers "no" on a read-only mount even to root (EROFS); root's writes to a chmod-ed folder do succeed.
    """
    run_dir = Path(os.path.abspath(run_dir))
    if not run_dir.exists():
        ancestor = run_dir.parent
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            return f"cannot create the result folder {run_dir}: {ancestor} is a file, not a folder; {_RUN_DIR_FIX}"
        if not os.access(ancestor, os.W_OK | os.X_OK):
            return f"cannot create the result folder {run_dir}: {ancestor} is read-only; {_RUN_DIR_FIX}"
        return None
    if not run_dir.is_dir():
        return f"the result folder {run_dir} is a file, not a folder; {_RUN_DIR_FIX}"
    fix = "make it writable, or set hydra.run.dir to another folder"
    for folder in (run_dir, *(run_dir / name for name in _RUN_DIR_FOLDERS)):
        if folder.exists() and not folder.is_dir():
            return f"cannot write the result folder {run_dir}: {folder} is a file, not a folder; {fix}"
        if folder.exists() and not os.access(folder, os.W_OK | os.X_OK):
            return f"cannot write the result folder {run_dir}: {folder} is read-only; {fix}"
    for file in (*run_dir.glob("*.log"), *run_dir.glob(".hydra/*.yaml")):  # rewritten or appended to
        if file.is_file() and not os.access(file, os.W_OK):
            return f"cannot write the result folder {run_dir}: {file} is read-only; {fix}"
    return None


def log_to_files(logger: logging.Logger, level: int, message: str) -> None:
    """Record ``message`` in the log FILES ``logger`` reaches, not on the console: an entry point prints its
    ``error:`` line on stderr itself, and the console handler (stdout) showed it a second time on a terminal."""
    record = logger.makeRecord(logger.name, level, "(entry point)", 0, message, (), None)
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if isinstance(handler, logging.FileHandler) and record.levelno >= handler.level:
                handler.handle(record)
        current = current.parent if current.propagate else None


@contextmanager
def stage_log_file(run: RunDir, stage: str) -> Iterator[logging.Logger]:
    """Attach ``logs/train_{stage}.log`` to the root logger for the duration of a stage (rank 0 only)."""
    if not is_rank_zero():  # DDP: the other ranks log to their own Hydra job log only
        yield logging.getLogger(f"ilora_dllm2rec.{stage}")
        return
    handler = logging.FileHandler(run.log_file(stage), encoding="utf-8")
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    try:
        yield logging.getLogger(f"ilora_dllm2rec.{stage}")
    finally:
        root.removeHandler(handler)
        handler.close()


@contextmanager
def time_block(run: RunDir, key: str) -> Iterator[None]:
    """Measure wall time of the block and store it as ``key`` (seconds) in ``metrics/time.json``.

    Only a block that completes is recorded, so a failed stage never leaves a misleading time.
    """
    start = time.perf_counter()
    yield
    update_json(run.time_json, {key: round(time.perf_counter() - start, 3)})
