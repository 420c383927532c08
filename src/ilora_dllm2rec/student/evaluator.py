"""One evaluator for every model: students and the LLM teacher each pass a ``score_fn(batch) -> [B, N]``.

The evaluator batches a :class:`SampleSet` itself (numpy -> tensors once, then slices), so
evaluation does not depend on a DataLoader and sees exactly the samples, in order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext

import numpy as np
import torch

from ilora_dllm2rec.core.errors import DataError
from ilora_dllm2rec.core.metrics import ranking_metrics
from ilora_dllm2rec.data.types import SampleSet
from ilora_dllm2rec.student.base import SequentialRecommender

ScoreFn = Callable[[dict[str, torch.Tensor]], torch.Tensor]


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64))


def iterate_batches(
    samples: SampleSet, batch_size: int, device: torch.device | str = "cpu"
) -> Iterator[dict[str, torch.Tensor]]:
    """Yield batch dicts (``seq``, ``len_seq``, ``target``, ``user`` [, ``candidates``]) in sample order."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    arrays = {"seq": samples.seq, "len_seq": samples.len_seq, "target": samples.target, "user": samples.user}
    if samples.candidates is not None:
        arrays["candidates"] = samples.candidates
    full = {key: _tensor(value) for key, value in arrays.items()}
    for start in range(0, len(samples), batch_size):
        yield {key: value[start : start + batch_size].to(device, non_blocking=True) for key, value in full.items()}


def _progress(enabled: bool, description: str, total: int):
    if not enabled:
        return nullcontext(None)
    from rich.progress import Progress  # imported lazily: only needed for interactive runs

    progress = Progress(transient=True)
    progress.add_task(description, total=total)
    return progress


def _batch_metrics(
    score_fn: ScoreFn,
    samples: SampleSet,
    *,
    batch_size: int,
    ks: Sequence[int],
    exclude_history: bool,
    candidate_protocol: bool,
    device: torch.device | str,
    progress: bool,
    description: str,
) -> Iterator[dict[str, torch.Tensor]]:
    """Per-sample metric tensors of one batch after another, in sample order (under inference mode)."""
    if len(samples) == 0:
        raise DataError(f"{description}: no samples to evaluate; check the dataset split")
    num_batches = -(-len(samples) // batch_size)
    with torch.inference_mode(), _progress(progress, description, num_batches) as bar:
        for batch in iterate_batches(samples, batch_size, device):
            scores = score_fn(batch)
            if scores.dim() != 2 or scores.shape[0] != batch["target"].shape[0]:
                raise ValueError(f"{description}: score_fn must return [B, N], got {tuple(scores.shape)}")
            yield ranking_metrics(
                scores.float(),
                batch["target"],
                ks,
                candidates=batch.get("candidates") if candidate_protocol else None,
                history=batch["seq"] if exclude_history else None,
                pad_id=scores.shape[1],  # padding id = N (data/types.py)
            )
            if bar is not None:
                bar.advance(bar.task_ids[0])


def evaluate(score_fn: ScoreFn, samples: SampleSet, **options) -> dict[str, float]:
    """Mean ranking metrics of ``score_fn`` over ``samples`` (keys as :func:`ranking_metrics`); options as
    :func:`evaluate_per_sample`.

    ``score_fn`` gets a batch dict on ``device`` and returns [B, N] scores over the N items
    (padding excluded); it runs under ``torch.inference_mode()``. ``cand_hr@1`` is reported
    when ``candidate_protocol`` is on and the samples carry candidates.
    """
    return {key: float(values.mean()) for key, values in evaluate_per_sample(score_fn, samples, **options).items()}


def evaluate_per_sample(
    score_fn: ScoreFn,
    samples: SampleSet,
    *,
    batch_size: int,
    ks: Sequence[int] = (1, 5, 10, 20),
    exclude_history: bool = False,
    candidate_protocol: bool = True,
    device: torch.device | str = "cpu",
    progress: bool = False,
    description: str = "eval",
) -> dict[str, np.ndarray]:
    """One float64 value per sample and metric, in sample order (:func:`evaluate` takes the means; paired
    comparisons of two models on the same users use the values, core/significance.py)."""
    parts: dict[str, list[np.ndarray]] = {}
    for values in _batch_metrics(
        score_fn, samples, batch_size=batch_size, ks=ks, exclude_history=exclude_history,
        candidate_protocol=candidate_protocol, device=device, progress=progress, description=description,
    ):  # fmt: skip
        for key, value in values.items():
            parts.setdefault(key, []).append(value.detach().double().cpu().numpy())
    return {key: np.concatenate(chunks) for key, chunks in parts.items()}


def evaluate_model(
    model: SequentialRecommender,
    samples: SampleSet,
    *,
    batch_size: int,
    ks: Sequence[int] = (1, 5, 10, 20),
    exclude_history: bool = False,
    candidate_protocol: bool = True,
    device: torch.device | str | None = None,
    progress: bool = False,
    description: str = "eval",
) -> dict[str, float]:
    """:func:`evaluate` with ``score_fn = model(seq, len_seq)``, in eval mode (the train/eval mode is restored)."""
    if device is None:
        device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        return evaluate(
            lambda batch: model(batch["seq"], batch["len_seq"]),
            samples,
            batch_size=batch_size,
            ks=ks,
            exclude_history=exclude_history,
            candidate_protocol=candidate_protocol,
            device=device,
            progress=progress,
            description=description,
        )
    finally:
        model.train(was_training)
