"""``teacher.backend`` -> how that teacher trains and loads: the one list of teacher backends.

The stages (teacher/stages.py) and eval-all (report/eval_all.py) dispatch through :func:`teacher_backend`, so a
new backend is one entry here. The iLoRA functions import their module when called: eval-all of ID models
only must not import transformers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig
from torch import nn

from ..core.errors import ConfigError
from ..core.run_logging import RunDir
from ..data import SplitData
from .ensemble_teacher import load_ensemble_teacher, run_ensemble_teacher_stage
from .id_teacher import load_id_teacher, run_id_teacher_stage


@dataclass(frozen=True)
class TeacherBackend:
    """A teacher implementation: its stage, its loader (a TeacherRecommender module, in eval mode) and whether
    it is an LLM teacher (a local LLM to check before anything trains; its own frozen baseline, found or
    trained by its stage; evaluated on ``teacher.max_eval_samples`` users on the inference device)."""

    train: Callable[[DictConfig, RunDir, SplitData, list[str] | None], dict]
    load: Callable[[Path, SplitData, DictConfig], nn.Module]
    uses_llm: bool


def _train_ilora(cfg: DictConfig, run: RunDir, data: SplitData, overrides: list[str] | None) -> dict:
    from .train import run_teacher_stage

    return run_teacher_stage(cfg, run, data, overrides)


def _load_ilora(path: Path, data: SplitData, cfg: DictConfig) -> nn.Module:
    from .train import load_teacher_checkpoint

    return load_teacher_checkpoint(path, data, cfg)[0]


BACKENDS: dict[str, TeacherBackend] = {
    "ilora": TeacherBackend(_train_ilora, _load_ilora, uses_llm=True),
    "sasrec": TeacherBackend(
        lambda cfg, run, data, overrides: run_id_teacher_stage(cfg, run, data),
        lambda path, data, cfg: load_id_teacher(path),
        uses_llm=False,
    ),
    "ensemble": TeacherBackend(
        lambda cfg, run, data, overrides: run_ensemble_teacher_stage(cfg, run, data),
        lambda path, data, cfg: load_ensemble_teacher(path),
        uses_llm=False,
    ),
}


def teacher_backend(name: str) -> TeacherBackend:
    """The backend called ``name`` (``teacher.backend``, or a teacher manifest's ``backend``)."""
    if name not in BACKENDS:
        raise ConfigError(f"teacher.backend={name!r} is unknown; valid: {', '.join(BACKENDS)}")
    return BACKENDS[name]
