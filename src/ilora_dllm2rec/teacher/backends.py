"""``teacher.backend`` -> how that teacher trains and loads: the one list of teacher backends.

The stages (teacher/stages.py) and eval-all (report/eval_all.py) dispatch through :func:`teacher_backend`, so a
new backend is one entry here. The iLoRA functions import their module when called: eval-all of ID models
only must not import transformers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..core.errors import ConfigError
from ..core.run_logging import RunDir
from ..data import SplitData
from .ensemble_teacher import load_ensemble_teacher, run_ensemble_teacher_stage
from .id_teacher import load_id_teacher, run_id_teacher_stage
from .interfaces import TeacherStage


@dataclass(frozen=True)
class TeacherBackend:
    """A teacher implementation: its stage, its loader (a TeacherRecommender module, in eval mode) and whether
    it is an LLM teacher (a local LLM to check before anything trains; its own frozen baseline, found or
    trained by its stage; evaluated on ``teacher.max_eval_samples`` users on the inference device).

    ``train(stage, run, data, train_baseline)``: ``train_baseline()`` trains the LLM teacher's frozen baseline when
    none is found. ``load(path, data, model_cache_dir, pad_to_multiple_of)``: the last two are the LLM's
    (``paths.model_cache_dir``, this run's ``teacher.pad_to_multiple_of`` or None)."""

    train: Callable[[TeacherStage, RunDir, SplitData, Callable[[], dict]], dict]
    load: Callable[[Path, SplitData, str, int | None], nn.Module]
    uses_llm: bool


def _train_ilora(stage: TeacherStage, run: RunDir, data: SplitData, train_baseline: Callable[[], dict]) -> dict:
    from .train import run_teacher_stage

    return run_teacher_stage(stage, run, data, train_baseline)


def _load_ilora(path: Path, data: SplitData, model_cache_dir: str, pad_to_multiple_of: int | None) -> nn.Module:
    from .train import load_teacher_checkpoint

    return load_teacher_checkpoint(path, data, model_cache_dir, pad_to_multiple_of)[0]


BACKENDS: dict[str, TeacherBackend] = {
    "ilora": TeacherBackend(_train_ilora, _load_ilora, uses_llm=True),
    "sasrec": TeacherBackend(
        lambda stage, run, data, train_baseline: run_id_teacher_stage(stage, run, data),
        lambda path, data, model_cache_dir, pad: load_id_teacher(path),
        uses_llm=False,
    ),
    "ensemble": TeacherBackend(
        lambda stage, run, data, train_baseline: run_ensemble_teacher_stage(stage, run, data),
        lambda path, data, model_cache_dir, pad: load_ensemble_teacher(path),
        uses_llm=False,
    ),
}


def teacher_backend(name: str) -> TeacherBackend:
    """The backend called ``name`` (``teacher.backend``, or a teacher manifest's ``backend``)."""
    if name not in BACKENDS:
        raise ConfigError(f"teacher.backend={name!r} is unknown; valid: {', '.join(BACKENDS)}")
    return BACKENDS[name]
