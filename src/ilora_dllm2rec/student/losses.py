"""Student losses (ALGORITHMS.md section 3): ce, bce with sampled negatives, dros = bce + alpha * DRO term.

Everything is vectorised over the batch (and over K targets per row for :func:`dro_term`,
which the distillation stage calls with the teacher's [B, K] candidates).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ilora_dllm2rec.core.errors import DataError

_REJECTION_ROUNDS = 16  # after this many redraws, the few stubborn rows are sampled exactly


def sample_negatives(
    seq: torch.Tensor,
    target: torch.Tensor,
    num_items: int,
    n_neg: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """[B, n_neg] items drawn uniformly (with replacement) from items in neither the history nor the target.

    Vectorised rejection sampling: draw all, redraw only the rejected entries. Rows still
    rejected after a few rounds (users who saw almost every item) are sampled exactly from
    their allowed set; a row with no allowed item raises :class:`DataError`.
    Padding ids (>= num_items) in ``seq`` are ignored automatically (they never match a draw).
    """
    b = target.shape[0]
    forbidden = torch.cat([seq, target.view(-1, 1)], dim=1)  # [B, L+1]

    def draw(shape: tuple[int, ...]) -> torch.Tensor:
        return torch.randint(0, num_items, shape, generator=generator, device=target.device)

    def rejected(neg: torch.Tensor) -> torch.Tensor:  # [B, n_neg]: drawn item is in the history or the target
        return (forbidden.unsqueeze(-1) == neg.unsqueeze(1)).any(dim=1)

    neg = draw((b, n_neg))
    bad = rejected(neg)
    for _ in range(_REJECTION_ROUNDS):
        if not bool(bad.any()):
            return neg
        neg = torch.where(bad, draw((b, n_neg)), neg)  # only rejected entries take the new draw
        bad = bad & rejected(neg)
    if not bool(bad.any()):
        return neg
    rows = bad.any(dim=1).nonzero().squeeze(1)
    allowed = torch.ones(rows.numel(), num_items + 1, dtype=torch.bool, device=target.device)
    allowed.scatter_(1, forbidden[rows].clamp(0, num_items), False)
    allowed = allowed[:, :num_items]
    if not bool(allowed.any(dim=1).all()):
        raise DataError(
            "cannot sample a negative: a user's history and target cover every item; "
            "use student.loss=ce or a data set with more items"
        )
    exact = torch.multinomial(allowed.float(), n_neg, replacement=True, generator=generator)
    neg[rows] = torch.where(bad[rows], exact, neg[rows])
    return neg


def ce_loss(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy over all N items, averaged over the batch."""
    return F.cross_entropy(scores.float(), target)


def bce_loss(scores: torch.Tensor, target: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
    """mean_b [ -log sigma(s_pos) - sum_neg log(1 - sigma(s_neg)) ]; log(1 - sigma(x)) = logsigmoid(-x)."""
    scores = scores.float()
    pos = scores.gather(1, target.view(-1, 1)).squeeze(1)
    neg = scores.gather(1, negatives)
    return (-F.logsigmoid(pos) - F.logsigmoid(-neg).sum(dim=1)).mean()


def item_propensity(target_counts: torch.Tensor) -> torch.Tensor:
    """DROS propensity p_j = ((count_j + 1) / sum_k (count_k + 1)) ** 0.05."""
    smoothed = target_counts.double() + 1.0
    return (smoothed / smoothed.sum()).pow(0.05).float()


def dro_term(scores: torch.Tensor, target: torch.Tensor, propensity: torch.Tensor, beta: float) -> torch.Tensor:
    """l_dro = log( sum_j e^{a_j} - e^{a_t} + e^{b_t} ), a_j = p_j s_j^2 / beta, b_t = p_t (s_t - 1)^2 / beta.

    ``target`` is [B] (returns [B]) or [B, K] (returns [B, K], one term per target, no loop).
    Stable for large scores: ``log(sum_j e^{a_j} - e^{a_t})`` is the log-sum-exp over j != t,
    computed without cancellation. If t is not the row's argmax, e^{a_t} is at most half of
    the total, so ``lse + log1p(-e^{a_t - lse})`` is well conditioned; if t IS the argmax we
    use a precomputed log-sum-exp of the row with its argmax removed.
    """
    squeeze = target.dim() == 1
    tgt = target.view(target.shape[0], -1)  # [B, K]
    s = scores.float()
    a = propensity.view(1, -1) * s.square() / beta  # [B, N]
    lse = torch.logsumexp(a, dim=1, keepdim=True)  # [B, 1]
    top = a.argmax(dim=1, keepdim=True)  # [B, 1]
    lse_without_top = torch.logsumexp(a.scatter(1, top, float("-inf")), dim=1, keepdim=True)
    a_t = a.gather(1, tgt)  # [B, K]
    is_top = tgt == top
    # the unused branch of where() must stay finite, or its NaN gradient leaks through
    gap = torch.where(is_top, torch.full_like(a_t, -1.0), a_t - lse).clamp(max=-0.6931471805599453)
    rest = torch.where(is_top, lse_without_top.expand_as(a_t), lse + torch.log1p(-torch.exp(gap)))
    b_t = propensity[tgt] * (s.gather(1, tgt) - 1.0).square() / beta
    out = torch.logaddexp(rest, b_t)
    return out.squeeze(1) if squeeze else out


class StudentLoss(nn.Module):
    """The configured base loss of a student: ``ce``, ``bce`` or ``dros`` (= bce + alpha * mean l_dro).

    ``__call__(scores, batch, generator=None, negatives=None) -> (loss, parts)``; ``parts`` holds
    detached scalar components for logging (``ce`` | ``bce`` [+ ``dro``]). Pass ``negatives``
    ([B, n_neg], from :func:`sample_negatives`) to reuse the ones the distillation loss uses.
    """

    def __init__(
        self,
        loss: str,
        num_items: int,
        *,
        n_neg: int,
        dros_alpha: float,
        dros_beta: float,
        propensity: torch.Tensor | None = None,
    ) -> None:
        # loss, n_neg and dros_beta are checked by the config schema (core/schema_groups.py, StudentModel)
        super().__init__()
        if loss == "dros" and (propensity is None or propensity.shape != (num_items,)):
            raise ValueError(f"loss 'dros' needs a propensity vector of shape [{num_items}]")
        self.loss, self.num_items, self.n_neg = loss, num_items, int(n_neg)
        self.dros_alpha, self.dros_beta = float(dros_alpha), float(dros_beta)
        # not persistent: it is derived from the training data, not a learned state
        self.register_buffer("propensity", None if propensity is None else propensity.float(), persistent=False)

    @classmethod
    def from_config(
        cls, student_cfg: Mapping[str, Any], num_items: int, target_counts: torch.Tensor | None = None
    ) -> StudentLoss:
        """Build from the ``student`` group; ``target_counts`` ([N] training-target counts) is needed for dros."""
        from .factory import student_spec

        spec = student_spec(student_cfg)
        prop = item_propensity(torch.as_tensor(target_counts)) if target_counts is not None else None
        return cls(
            spec.loss,
            num_items,
            n_neg=spec.n_neg,
            dros_alpha=spec.dros_alpha,
            dros_beta=spec.dros_beta,
            propensity=prop,
        )

    def forward(
        self,
        scores: torch.Tensor,
        batch: Mapping[str, torch.Tensor],
        generator: torch.Generator | None = None,
        negatives: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        target = batch["target"]
        if self.loss == "ce":
            loss = ce_loss(scores, target)
            return loss, {"ce": loss.detach()}
        if negatives is None:
            negatives = sample_negatives(batch["seq"], target, self.num_items, self.n_neg, generator)
        bce = bce_loss(scores, target, negatives)
        parts = {"bce": bce.detach()}
        if self.loss == "bce":
            return bce, parts
        dro = dro_term(scores, target, self.propensity, self.dros_beta).mean()
        parts["dro"] = dro.detach()
        return bce + self.dros_alpha * dro, parts
