"""DLLM2Rec distillation losses (ALGORITHMS.md sections 4 and 5), vectorised over ``B x K``.

Importance-aware ranking distillation: for sample ``u`` the teacher's top-K list ``c_1..c_K``
(best first) with distances ``d_1..d_K`` (smaller = more confident) is turned into per-candidate
weights ``w_k`` and the loss

    L_RD = mean_u sum_k w_k * ( -log sigma(s_{c_k}) - sum_n log(1 - sigma(s_neg_n))
                                          [+ alpha * l_dro(target = c_k)] ).

Choices (documented deviations / freedoms of the spec):
- Negatives: ONE set of ``n_neg`` negatives per sample (the sample's negatives of the base loss,
  ALGORITHMS section 3), shared by all K candidates, as the reference code does. With ``n_neg > 1``
  their terms are summed, like the base ``bce`` loss. A negative may coincide with a teacher
  candidate (as in the reference); :func:`kd_negatives` can exclude the candidates instead.
- Confidence weight is ``softmax(-d)`` (the reference adds 1e-8 to ``exp(-d)``; negligible).
- All weights carry no gradient (position: constant; confidence: teacher data; consistency: the
  student's top-K under ``no_grad``), so only the BCE/DRO terms train the student.
- ``mask`` (bool [B]): rows with False (not selected by the policy, or without teacher outputs)
  are dropped BEFORE any computation (their candidate ids may be placeholders). ``mean_over="batch"``
  (default, ``distill.rd_mean``): they count as zeros in the mean over the whole batch, so a sample's KD
  weight does not depend on how many others the policy selected (docs/ALGORITHMS.md section 4: ``mean_u``
  over training samples, rows left out counting as zeros). ``"selected"`` averages over the selected rows
  only: at a 5% budget each selected row then weighs ~20x
  more. With none selected the loss is a zero that is still attached to the graph.
- ``reference_compat=True`` reproduces the public code's negative term ``log sigma(1 - s_neg)``.
- Logs are computed stably (``softplus``), so values agree with the reference formula where the
  latter is finite.

Collaborative embedding distillation happens in the student's input embedding
(:meth:`SequentialRecommender.set_llm_item_embeddings`); :func:`attach_teacher_item_embeddings`
validates and attaches the teacher's ``E_llm``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from ilora_dllm2rec.core.errors import ArtifactError, ConfigError
from ilora_dllm2rec.core.schema import check
from ilora_dllm2rec.core.schema_stages import Distill
from ilora_dllm2rec.student.base import SequentialRecommender
from ilora_dllm2rec.student.losses import dro_term, sample_negatives

CONSISTENCY_EPS = 1e-8  # added to the 0/1 consistency weight, as in the paper's code


def position_weights(k: int, lam_position: float = 1.0, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """[K] ``w^p_k = exp(-k/lam_p) / sum_j exp(-j/lam_p)`` for ranks ``k = 1..K``."""
    if lam_position <= 0:
        raise ConfigError(f"distill.lam_position must be > 0, got {lam_position}")
    ranks = torch.arange(1, k + 1, device=device, dtype=dtype)
    return torch.softmax(-ranks / lam_position, dim=0)


def confidence_weights(cand_dist: torch.Tensor) -> torch.Tensor:
    """[B, K] ``w^c_k = softmax_k(-d_k)`` (the teacher's distances; smaller = more confident)."""
    return torch.softmax(-cand_dist.float(), dim=1)


@torch.no_grad()
def consistency_weights(cand_ids: torch.Tensor, student_scores: torch.Tensor) -> torch.Tensor:
    """[B, K] 1 where ``c_k`` is in the student's current top-K, else 0, plus 1e-8. No gradient."""
    k = min(cand_ids.shape[1], student_scores.shape[1])
    student_top = torch.topk(student_scores.detach(), k, dim=1).indices  # [B, K]
    common = (cand_ids.unsqueeze(2) == student_top.unsqueeze(1)).any(dim=2)  # [B, K]
    return common.float() + CONSISTENCY_EPS


def ranking_distillation_weights(
    cand_ids: torch.Tensor,
    cand_dist: torch.Tensor,
    student_scores: torch.Tensor,
    gamma_position: float = 0.3,
    gamma_confidence: float = 0.5,
    gamma_consistency: float = 0.1,
    lam_position: float = 1.0,
) -> torch.Tensor:
    """[B, K] ``w = normalize_k(g_p w^p + g_c w^c + g_o w^o)``; rows sum to 1, no gradient."""
    _check_gammas(gamma_position, gamma_confidence, gamma_consistency)
    _check_candidates(cand_ids, cand_dist, student_scores)
    with torch.no_grad():
        wp = position_weights(cand_ids.shape[1], lam_position, device=cand_ids.device).unsqueeze(0)
        wc = confidence_weights(cand_dist.detach())
        wo = consistency_weights(cand_ids, student_scores)
        w = gamma_position * wp + gamma_confidence * wc + gamma_consistency * wo
        return w / w.sum(dim=1, keepdim=True)


def ranking_distillation_loss(
    student_scores: torch.Tensor,
    cand_ids: torch.Tensor,
    cand_dist: torch.Tensor,
    negatives: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    gamma_position: float = 0.3,
    gamma_confidence: float = 0.5,
    gamma_consistency: float = 0.1,
    lam_position: float = 1.0,
    alpha: float = 0.5,
    use_dros: bool = True,
    propensity: torch.Tensor | None = None,
    beta: float = 1.0,
    reference_compat: bool = False,
    mean_over: str = "batch",
) -> torch.Tensor:
    """Scalar ``L_RD`` (see module docstring).

    student_scores [B, N] logits; cand_ids [B, K] teacher top-K (best first); cand_dist [B, K]
    distances; negatives [B, n] sampled negative ids; mask [B] bool or None (= all rows);
    propensity [N] (required when ``use_dros``).
    """
    _check_candidates(cand_ids, cand_dist, student_scores)
    if negatives.dim() != 2 or negatives.shape[0] != student_scores.shape[0]:
        raise ValueError(f"negatives must be [B={student_scores.shape[0]}, n], got {tuple(negatives.shape)}")
    if use_dros and propensity is None:
        raise ConfigError("distill.use_dros=true needs item propensities (pass propensity=item_propensity(counts))")
    if mean_over not in ("batch", "selected"):
        raise ConfigError(f"distill.rd_mean must be one of ['batch', 'selected'], got {mean_over!r}")
    batch_rows = student_scores.shape[0]
    if mask is not None:
        if mask.shape != (student_scores.shape[0],):
            raise ValueError(f"mask must be bool [B={student_scores.shape[0]}], got {tuple(mask.shape)}")
        mask = mask.to(device=student_scores.device, dtype=torch.bool)
        # drop unselected rows first: their candidates may be placeholders, and it saves work
        student_scores, cand_ids, cand_dist, negatives = (
            t[mask] for t in (student_scores, cand_ids, cand_dist, negatives)
        )
    scores = student_scores.float()
    if scores.shape[0] == 0:
        return scores.sum()  # zero, still attached to the graph

    weights = ranking_distillation_weights(
        cand_ids, cand_dist, scores, gamma_position, gamma_confidence, gamma_consistency, lam_position
    )
    pos = F.softplus(-scores.gather(1, cand_ids))  # -log sigma(s_{c_k}), [B, K]
    neg_scores = scores.gather(1, negatives)  # [B, n]
    if reference_compat:
        neg = F.softplus(neg_scores - 1.0).sum(dim=1)  # -log sigma(1 - s_neg) (reference code)
    else:
        neg = F.softplus(neg_scores).sum(dim=1)  # -log(1 - sigma(s_neg))
    per_candidate = pos + neg.unsqueeze(1)  # negatives shared across k
    if use_dros:
        prop = propensity.to(device=scores.device, dtype=scores.dtype)
        per_candidate = per_candidate + alpha * dro_term(scores, cand_ids, prop, beta)  # [B, K]
    per_row = (weights * per_candidate).sum(dim=1)
    return per_row.sum() / batch_rows if mean_over == "batch" else per_row.mean()


def kd_negatives(
    seq: torch.Tensor,
    target: torch.Tensor,
    cand_ids: torch.Tensor,
    num_items: int,
    n_neg: int,
    *,
    exclude_candidates: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """[B, n_neg] negatives for ``L_RD``; optionally also excluding the teacher's candidates.

    ``exclude_candidates=False`` is the spec/reference behaviour (the sample's ordinary negatives).
    """
    if exclude_candidates:
        seq = torch.cat([seq, cand_ids.to(seq.dtype)], dim=1)  # treated like history: never sampled
    return sample_negatives(seq, target, num_items, n_neg, generator=generator)


def resolve_use_dros(value: bool | str, student_loss: str) -> bool:
    """``distill.use_dros``: true / false, or ``auto`` = on only for a student trained with ``dros``.

    Why auto: DLLM2Rec's students train with BCE + DROS, and its KD term repeats the DRO term per teacher
    candidate. Under a ``ce`` student the DRO term (a log-sum-exp of ``p_j s_j^2``) dominates: on ml-100k its
    gradient on the scores is 3.4x the CE gradient and it shrinks the student's logits (docs/BENCHMARKS.md).
    """
    return student_loss == "dros" if value == "auto" else bool(value)


def distill_spec(distill_cfg: Mapping[str, Any]) -> Distill:
    """The checked ``distill`` section (other keys are ignored, missing ones take the schema's default)."""
    return check(Distill, distill_cfg, "distill")


def ranking_loss_kwargs(distill_cfg: Mapping[str, Any], student_loss: str = "dros") -> dict[str, Any]:
    """Keyword arguments of :func:`ranking_distillation_loss` from a ``distill`` config node
    (``student_loss``: the student's base loss, which ``use_dros: auto`` follows)."""
    spec = distill_spec(distill_cfg)
    return {
        "gamma_position": float(spec.gamma_position),
        "gamma_confidence": float(spec.gamma_confidence),
        "gamma_consistency": float(spec.gamma_consistency),
        "lam_position": float(spec.lam_position),
        "alpha": float(spec.alpha),
        "use_dros": resolve_use_dros(spec.use_dros, student_loss),
        "beta": float(spec.beta),
        "reference_compat": spec.reference_compat,
        "mean_over": spec.rd_mean,
    }


def standardize_item_embeddings(embeddings: torch.Tensor) -> torch.Tensor:
    """Z-score ``E_llm`` per dimension over items (mean 0, standard deviation 1).

    Why: mean-pooled LLM hidden states share one large direction (SmolLM2 titles on ml-100k: mean vector
    norm 40 of an average row norm 42) plus a few "massive activation" dimensions, so the randomly
    initialised projection mostly adds the same large vector to every item; z-scoring keeps only what
    distinguishes items, at the scale of the student's own embeddings. Constant dimensions become 0.
    """
    x = embeddings.float()
    centered = x - x.mean(dim=0, keepdim=True)
    std = centered.std(dim=0, keepdim=True) if x.shape[0] > 1 else torch.ones_like(centered[:1])
    return centered / std.clamp_min(1e-6)


def attach_teacher_item_embeddings(
    model: SequentialRecommender, embeddings: torch.Tensor, ed_weight: float, standardize: bool = False
) -> None:
    """Validate ``E_llm`` ([N, D], D read from the tensor) and attach it to the student's input
    (z-scored per dimension first when ``standardize``: :func:`standardize_item_embeddings`).

    Call before building the optimizer: it creates the learned ``Linear(D -> d)``.
    """
    where = "teacher all_embeddings.pt"
    if not isinstance(embeddings, torch.Tensor) or embeddings.dim() != 2:
        shape = tuple(embeddings.shape) if isinstance(embeddings, torch.Tensor) else type(embeddings).__name__
        raise ArtifactError(f"{where}: expected a 2-D tensor [num_items, D], got {shape}; re-export the teacher")
    if embeddings.shape[0] != model.num_items:
        raise ArtifactError(
            f"{where} has {embeddings.shape[0]} rows but the student has num_items={model.num_items}; "
            "export the teacher on the same data set"
        )
    if embeddings.shape[1] < 1:
        raise ArtifactError(f"{where} has hidden size D=0; re-export the teacher")
    if not torch.isfinite(embeddings).all():
        raise ArtifactError(f"{where} contains NaN/inf values; re-export the teacher")
    if not ed_weight >= 0:
        raise ConfigError(f"distill.ed_weight must be >= 0, got {ed_weight}")
    if standardize:
        embeddings = standardize_item_embeddings(embeddings)
    model.set_llm_item_embeddings(embeddings, ed_weight)  # follows the model's device


def _check_gammas(gp: float, gc: float, go: float) -> None:
    if min(gp, gc, go) < 0 or gp + gc + go <= 0:
        raise ConfigError(
            "distill.gamma_position/gamma_confidence/gamma_consistency must be >= 0 with a positive sum, "
            f"got {gp}, {gc}, {go}"
        )


def _check_candidates(cand_ids: torch.Tensor, cand_dist: torch.Tensor, scores: torch.Tensor) -> None:
    if cand_ids.dim() != 2 or cand_ids.shape != cand_dist.shape or cand_ids.shape[0] != scores.shape[0]:
        raise ValueError(
            f"cand_ids {tuple(cand_ids.shape)} and cand_dist {tuple(cand_dist.shape)} must both be [B, K] "
            f"with B = student_scores rows ({scores.shape[0]})"
        )
