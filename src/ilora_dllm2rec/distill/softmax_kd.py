"""Distillation losses for students trained with a softmax over the catalogue (``student.loss=ce``).

DLLM2Rec's ranking distillation (``kd_losses.py``) is a per-candidate sigmoid objective made for BCE-trained
students: it raises ``sigma(s_c)`` of each teacher candidate independently, which a softmax-trained student
does not optimise (only score differences matter to its softmax). These two losses act on the quantity the
CE student optimises, its full-catalogue softmax (docs/ALGORITHMS.md "Distillation for softmax students"):

- :func:`softmax_ranking_distillation_loss`: DLLM2Rec's importance weights ``w_k`` (position, confidence,
  consistency; rows sum to 1) used as a target distribution over the teacher's top-K under the student's
  tempered softmax, ``L = tau^2 * mean_u -sum_k w_k log softmax(s_u / tau)_{c_k}``.
- :func:`listwise_kd_loss`: Hinton-style soft targets, ``L = tau^2 * mean_u KL(q_u || r_u)`` between the
  teacher's and the student's tempered distributions over the teacher's exported top-N, either with the rest
  of the catalogue as one extra bucket (``normaliser="bucket"``: at ``tau = 1`` this is the exact KL of the
  two full-catalogue distributions merged into N + 1 outcomes) or renormalised within the top-N
  (``normaliser="topn"``: defined for any distance, e.g. the embedding distances of public DLLM2Rec files).

Why the bucket needs teacher log-probabilities: the export's ``confidence_train.txt`` holds ``d = -log p``
with ``p`` the teacher's full-catalogue softmax (teacher/export.py), so ``p_k = exp(-d_k)`` and the tail's
mass is ``1 - sum_k p_k``: no extra file is needed. :func:`check_log_prob_distances` refuses distances that
cannot be log-probabilities (their ``exp(-d)`` sums above 1).

The tau^2 factor keeps the gradient's scale independent of tau (Hinton et al. 2015). Teacher quantities and
the weights carry no gradient; rows with ``mask`` False are dropped before any computation and count as
zeros in the batch mean (``mean_over="batch"``), as in :func:`kd_losses.ranking_distillation_loss`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from ilora_dllm2rec.core.errors import ArtifactError, ConfigError

from .kd_losses import distill_spec, ranking_distillation_weights

NORMALISERS = ("bucket", "topn")
_TAIL_FLOOR = 1e-6  # smallest tail mass: a teacher whose top-N holds (almost) all its mass
_PROB_SUM_SLACK = 1e-3  # float32 text round trip of -log p


def resolve_rd_form(value: str, student_loss: str) -> str:
    """``distill.rd_form``: ``auto`` = ``softmax`` for a ``ce`` student, ``bce`` for ``bce``/``dros`` students."""
    if value == "auto":
        return "softmax" if student_loss == "ce" else "bce"
    return str(value)


def softmax_ranking_distillation_loss(
    student_scores: torch.Tensor,
    cand_ids: torch.Tensor,
    cand_dist: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    temperature: float = 1.0,
    gamma_position: float = 0.3,
    gamma_confidence: float = 0.5,
    gamma_consistency: float = 0.1,
    lam_position: float = 1.0,
    mean_over: str = "batch",
) -> torch.Tensor:
    """Scalar ``tau^2 * mean_u -sum_k w_k log softmax(s_u / tau)_{c_k}`` (module docstring).

    student_scores [B, N] logits; cand_ids [B, K] teacher top-K (best first); cand_dist [B, K] distances;
    mask [B] bool or None (= every row).
    """
    _check_temperature(temperature, "distill.rd_temperature")
    scores, cand_ids, cand_dist, batch_rows = _select_rows(student_scores, cand_ids, cand_dist, mask, mean_over)
    if scores.shape[0] == 0:
        return scores.sum()
    weights = ranking_distillation_weights(
        cand_ids, cand_dist, scores, gamma_position, gamma_confidence, gamma_consistency, lam_position
    )
    log_p = _log_softmax_at(scores, cand_ids, temperature)  # [B, K]
    per_row = -(weights * log_p).sum(dim=1) * temperature**2
    return _mean(per_row, batch_rows, mean_over)


def listwise_kd_loss(
    student_scores: torch.Tensor,
    cand_ids: torch.Tensor,
    cand_dist: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    temperature: float = 1.0,
    normaliser: str = "bucket",
    mean_over: str = "batch",
) -> torch.Tensor:
    """Scalar ``tau^2 * mean_u KL(q_u || r_u)`` over the teacher's top-N (+ the tail bucket); see the module
    docstring. ``cand_dist`` must be ``-log p_teacher`` for ``normaliser="bucket"``."""
    _check_temperature(temperature, "distill.listwise_temperature")
    if normaliser not in NORMALISERS:
        raise ConfigError(f"distill.listwise_normaliser must be one of {list(NORMALISERS)}, got {normaliser!r}")
    scores, cand_ids, cand_dist, batch_rows = _select_rows(student_scores, cand_ids, cand_dist, mask, mean_over)
    if scores.shape[0] == 0:
        return scores.sum()
    teacher_logits = -cand_dist.float().detach()  # [B, N'] log p_teacher (up to a constant for "topn")
    student_logits = scores.gather(1, cand_ids)  # [B, N']
    if normaliser == "bucket":
        teacher_logits = _with_tail(teacher_logits)
        student_logits = _with_tail(_log_softmax_at(scores, cand_ids, 1.0))  # full-catalogue log-softmax
    q_log = torch.log_softmax(teacher_logits / temperature, dim=1)
    r_log = torch.log_softmax(student_logits / temperature, dim=1)
    per_row = (q_log.exp() * (q_log - r_log)).sum(dim=1) * temperature**2
    return _mean(per_row, batch_rows, mean_over)


def check_log_prob_distances(cand_dist: torch.Tensor, where: str) -> None:
    """Refuse distances whose ``exp(-d)`` sums above 1 in some row: they are not ``-log p`` of a softmax
    (e.g. the embedding distances of public DLLM2Rec files), so the tail bucket is undefined."""
    if cand_dist.numel() == 0:
        return
    sums = torch.exp(-cand_dist.double()).sum(dim=1)
    worst = int(torch.argmax(sums))
    if float(sums[worst]) > 1.0 + _PROB_SUM_SLACK:
        raise ArtifactError(
            f"{where}: row {worst}'s exp(-distance) sums to {float(sums[worst]):.3f} > 1, so the distances are not "
            "-log p of a softmax; set distill.listwise_normaliser=topn for such teacher files"
        )


def softmax_kd_kwargs(distill_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :func:`listwise_kd_loss` from a ``distill`` config node."""
    spec = distill_spec(distill_cfg)
    return {
        "temperature": float(spec.listwise_temperature),
        "normaliser": spec.listwise_normaliser,
        "mean_over": spec.rd_mean,
    }


# -- helpers --------------------------------------------------------------------------------------
def _log_softmax_at(scores: torch.Tensor, ids: torch.Tensor, temperature: float) -> torch.Tensor:
    """``log_softmax(scores / tau).gather(1, ids)`` without materialising the [B, N] log-softmax (or the
    scaled copy at tau = 1): the same values, a third of the full-width work of this small step."""
    if temperature != 1.0:
        scores = scores / temperature
    return scores.gather(1, ids) - torch.logsumexp(scores, dim=1, keepdim=True)


def _with_tail(log_probs: torch.Tensor) -> torch.Tensor:
    """[B, N'+1]: the N' log-probabilities plus ``log(1 - sum_k exp(log_probs_k))``, the rest of the catalogue
    (floored at 1e-6: a top-N that holds all the mass leaves a tail of ~0, whose log would be -inf)."""
    covered = torch.logsumexp(log_probs, dim=1, keepdim=True).clamp(max=0.0)
    tail = torch.log((-torch.expm1(covered)).clamp(min=_TAIL_FLOOR))  # log(1 - exp(covered)); clamp first: no 0/0 grad
    return torch.cat([log_probs, tail], dim=1)


def _select_rows(scores, cand_ids, cand_dist, mask, mean_over):
    if mean_over not in ("batch", "selected"):
        raise ConfigError(f"distill.rd_mean must be one of ['batch', 'selected'], got {mean_over!r}")
    if cand_ids.dim() != 2 or cand_ids.shape != cand_dist.shape or cand_ids.shape[0] != scores.shape[0]:
        raise ValueError(
            f"cand_ids {tuple(cand_ids.shape)} and cand_dist {tuple(cand_dist.shape)} must both be [B, K] "
            f"with B = student_scores rows ({scores.shape[0]})"
        )
    batch_rows = scores.shape[0]
    if mask is not None:
        if mask.shape != (batch_rows,):
            raise ValueError(f"mask must be bool [B={batch_rows}], got {tuple(mask.shape)}")
        mask = mask.to(device=scores.device, dtype=torch.bool)
        if not bool(mask.all()):  # every row selected (active=all): no [B, N] copy of the scores
            scores, cand_ids, cand_dist = scores[mask], cand_ids[mask], cand_dist[mask]
    return scores.float(), cand_ids, cand_dist, batch_rows


def _mean(per_row: torch.Tensor, batch_rows: int, mean_over: str) -> torch.Tensor:
    return per_row.sum() / batch_rows if mean_over == "batch" else per_row.mean()


def _check_temperature(value: float, key: str) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ConfigError(f"{key} must be a number > 0, got {value!r}")
