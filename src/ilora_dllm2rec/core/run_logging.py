"""Run folders, per-stage log files, TensorBoard locations and ``time_block`` timings.

Layout (ARCHITECTURE.md, seed 004 section 7.3)::

    result/result_{YYYYMMDD_HHMMSS}/
      .hydra/  logs/train_{stage}.log  tb/{stage}/  models/{stage}/  metrics/eval_*.json
      metrics/time.json  git_info.txt  manifest.json
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .artifacts import read_json, update_json
from .distributed import is_rank_zero

# stage name -> log file stem (seed 004 names: train_teacher.log, train_student_baseline.log, train_distill.log)
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
