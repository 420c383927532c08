"""Which users an LLM teacher is trained and evaluated on, and its evaluation with the shared evaluator.

Kept free of transformers imports: report/eval_all.py reads ``teacher_eval_samples`` for ID-only evaluations too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..data import SampleSet, SplitData
from ..student.evaluator import evaluate

if TYPE_CHECKING:
    from .ilora_model import ILoRAModel
    from .interfaces import TeacherStage


def subset(samples: SampleSet, max_samples: int | None, ratio: float | None, seed: int) -> SampleSet:
    """A seeded random subset (order kept) of at most ``max_samples`` rows / ``ratio`` of the rows."""
    n = len(samples)
    keep = n
    if ratio is not None:
        keep = min(keep, max(1, int(round(float(ratio) * n))))
    if max_samples is not None and int(max_samples) > 0:
        keep = min(keep, int(max_samples))
    if keep >= n:
        return samples
    index = np.sort(np.random.default_rng(seed).choice(n, size=keep, replace=False))
    return samples.subset(index)


def teacher_score_fn(model: ILoRAModel) -> Callable[[dict], torch.Tensor]:
    def score(batch: dict) -> torch.Tensor:
        return model.score(batch["seq"], batch["len_seq"])

    return score


def teacher_eval_samples(max_samples: int | None, seed: int, data: SplitData, split: str) -> SampleSet:
    """The users an LLM teacher is evaluated on: a subset under ``teacher.max_eval_samples`` seeded by
    ``general.seed`` (every comparison with the teacher, in this stage and in eval-all, uses exactly these)."""
    return subset(getattr(data, split), max_samples, None, seed)


def evaluate_teacher(
    model: ILoRAModel,
    data: SplitData,
    stage: TeacherStage,
    score_fn: Callable[[dict], torch.Tensor] | None = None,
    device: torch.device | str = "cpu",
) -> dict:
    """Val and test with the shared evaluator (same protocol as the students), on the teacher's users
    (``teacher.max_eval_samples``); ``score_fn`` scores another model on exactly those users. ``model`` must
    already be on ``device`` (the batches are moved there)."""
    model.eval()
    out = {}
    for split in ("val", "test"):
        samples = teacher_eval_samples(getattr(stage.teacher, "max_eval_samples", None), stage.seed, data, split)
        out[split] = evaluate(
            score_fn or teacher_score_fn(model),
            samples,
            batch_size=int(stage.teacher.eval_batch_size),
            ks=list(stage.metrics.ks),
            exclude_history=bool(stage.metrics.exclude_history),
            progress=bool(stage.logging.progress_bar),
            description=f"teacher {split}",
            device=device,
        )
        out[split]["num_samples"] = len(samples)
    return out
