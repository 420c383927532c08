"""Ranking metrics for one target per sample (ALGORITHMS.md section 8).

Full ranking over all N items (padding excluded):
- rank = 1 + #items with a strictly higher score + 0.5 * #OTHER items with an equal score.
  Tie rule: this is the EXPECTED rank when ties are broken uniformly at random, so a model
  that scores everything equally gets rank (N+1)/2, not 1. HR/NDCG/MRR are then functions
  of that (possibly half-integer) rank: hr@K = 1[rank <= K] (also reported as recall@K,
  identical for one target), ndcg@K = 1/log2(rank+1) if rank <= K else 0, mrr = 1/rank.
  Example: scores [0.1, 0.5, 0.5, 0.2], target 1 -> rank 1.5, hr@1 = 0, ndcg@5 = 1/log2(2.5).
- exclude_history: the user's history items get score -inf (the target itself never does).
- candidate protocol (LLaRA/iLoRA tables): among the 20 candidates (column 0 = target),
  cand_hr@1 = 0 if any negative scores strictly higher than the target, else 1/(1 + #negatives
  tied with it) (the probability of ranking first under random tie-breaking).

Why hand-written instead of torchmetrics: its retrieval metrics take flattened
(preds, target, indexes) triples and group by query index, i.e. B*N-long tensors plus a
sort per query; with exactly one relevant item per query the rank is a single comparison
count per row, which is far faster for full-catalogue ranking (and makes the tie rule explicit).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ilora_dllm2rec.core.errors import TrainingError


def target_rank(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """[B, N] scores, [B] target -> [B] float rank (1 = best) under the half-ties rule."""
    t = scores.gather(1, target.view(-1, 1))
    higher = (scores > t).sum(dim=1)
    equal = (scores == t).sum(dim=1) - 1  # the target ties with itself
    return 1.0 + higher.double() + 0.5 * equal.double()


def exclude_items(scores: torch.Tensor, target: torch.Tensor, history: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Copy of ``scores`` with the history items (ignoring ``pad_id``) set to -inf, except each row's target."""
    n = scores.shape[1]
    hist = history.long().masked_fill(history == pad_id, n)  # route padding to a dropped column
    mask = torch.zeros(scores.shape[0], n + 1, dtype=torch.bool, device=scores.device)
    mask.scatter_(1, hist.clamp(0, n), True)
    mask = mask[:, :n]
    mask.scatter_(1, target.view(-1, 1), False)
    return scores.masked_fill(mask, float("-inf"))


def candidate_hit_at_1(scores: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """[B, N] scores, [B, C] candidates (col 0 = target) -> [B] hit@1 over the candidates, ties shared."""
    cand = scores.gather(1, candidates)
    t, negs = cand[:, :1], cand[:, 1:]
    beaten = (negs > t).any(dim=1)
    ties = (negs == t).sum(dim=1).double()
    return torch.where(beaten, torch.zeros_like(ties), 1.0 / (1.0 + ties))


def ranking_metrics(
    scores: torch.Tensor,
    target: torch.Tensor,
    ks: Sequence[int],
    candidates: torch.Tensor | None = None,
    history: torch.Tensor | None = None,
    pad_id: int | None = None,
) -> dict[str, torch.Tensor]:
    """Per-sample metrics: ``hr@K``, ``ndcg@K``, ``recall@K`` for each K, ``mrr`` and (with candidates) ``cand_hr@1``.

    ``history`` given -> its items are excluded from the full ranking (``pad_id`` defaults to N).
    Values are float64 tensors of shape [B]. NaN scores raise :class:`TrainingError` (a NaN
    target score would otherwise rank first).
    """
    if scores.dim() != 2 or target.shape != scores.shape[:1]:
        raise ValueError(f"scores must be [B, N] and target [B], got {tuple(scores.shape)} and {tuple(target.shape)}")
    n = scores.shape[1]
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= n):
        raise ValueError(f"target ids must be in [0, {n}), got range [{int(target.min())}, {int(target.max())}]")
    if bool(torch.isnan(scores).any()):
        raise TrainingError("model scores contain NaN (training diverged?); check the checkpoint / lower the lr")
    target = target.long()
    out: dict[str, torch.Tensor] = {}
    ranked = scores if history is None else exclude_items(scores, target, history, n if pad_id is None else pad_id)
    rank = target_rank(ranked, target)
    ndcg_all = 1.0 / torch.log2(rank + 1.0)
    for k in ks:
        if int(k) < 1:
            raise ValueError(f"metric cut-offs must be >= 1, got {k}")
        hit = (rank <= k).double()
        out[f"hr@{k}"] = hit
        out[f"ndcg@{k}"] = ndcg_all * hit
        out[f"recall@{k}"] = hit
    out["mrr"] = 1.0 / rank
    if candidates is not None:
        out["cand_hr@1"] = candidate_hit_at_1(scores, candidates.long())
    return out
