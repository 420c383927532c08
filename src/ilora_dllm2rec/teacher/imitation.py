"""The teacher's loss: CE over all items + a decaying embedding-imitation term (ALGORITHMS.md section 6).

With the item-embedding head on, ``q_u = P(h_u)`` scores items against the frozen student's embedding table;
``dist(q_u, z_u)`` pulls ``q_u`` toward the student's own user state ``z_u`` (whose dot products with that
table are the student's scores), a warm start that fades out with ``lam(t)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..core.errors import ConfigError

# teacher.distill_loss_type, teacher.distill_decay_type and the temperature are checked by the config schema
# (core/schema_teacher.py, IloraTeacher); the errors below are for direct callers
DECAY_TYPES = ("none", "linear", "cosine", "exponential")


def imitation_loss(q_u: torch.Tensor, z_u: torch.Tensor, kind: str = "mse", temperature: float = 0.1) -> torch.Tensor:
    """dist(q_u, z_u) averaged over the batch; ``z_u`` is a target (no gradient).

    mse / l1 / huber (smooth L1, beta 1): mean over batch and dimensions (torch's default reduction);
    cosine: mean of ``1 - cos(q_u, z_u)``; contrastive: InfoNCE over the batch on L2-normalised vectors,
    logits ``cos(q_u, z_v) / temperature``, positive ``v = u``.
    """
    z_u = z_u.detach().to(q_u.dtype)
    if kind == "mse":
        return F.mse_loss(q_u, z_u)
    if kind == "l1":
        return F.l1_loss(q_u, z_u)
    if kind == "huber":
        return F.smooth_l1_loss(q_u, z_u, beta=1.0)
    if kind == "cosine":
        return (1.0 - F.cosine_similarity(q_u, z_u, dim=-1)).mean()
    if kind == "contrastive":
        if temperature <= 0:
            raise ValueError(f"contrastive temperature {temperature} must be > 0")
        logits = F.normalize(q_u, dim=-1) @ F.normalize(z_u, dim=-1).T / temperature
        return F.cross_entropy(logits, torch.arange(q_u.shape[0], device=q_u.device))
    raise ValueError(f"unknown imitation loss {kind!r}")


class LambdaSchedule:
    """``lam(t)``: from ``lam0`` (distill_lambda) to ``lam_min`` over ``decay_steps`` steps, then constant.

    ``decay_steps`` None -> ``total_steps`` (all training steps). Shapes, with ``s = min(t, T) / T``:
    none: lam0; linear: lam0 + (min - lam0) s; cosine (half cosine): min + (lam0 - min)(1 + cos(pi s)) / 2;
    exponential: min + (lam0 - min) exp(-5 s) (continuous, so it ends at min + 0.7% of the range and stays).
    """

    def __init__(
        self,
        lam0: float,
        lam_min: float = 0.0,
        decay_type: str = "linear",
        decay_steps: int | None = None,
        total_steps: int | None = None,
    ) -> None:
        if decay_type not in DECAY_TYPES:
            raise ValueError(f"unknown decay type {decay_type!r}: one of {DECAY_TYPES}")
        steps = decay_steps if decay_steps is not None else total_steps
        if decay_type != "none" and (steps is None or steps <= 0):
            raise ConfigError(
                f"teacher.distill_decay_steps={decay_steps} (total steps {total_steps}): need a positive number of "
                "decay steps; set teacher.distill_decay_steps or pass the total training steps"
            )
        self.lam0, self.lam_min, self.decay_type, self.steps = float(lam0), float(lam_min), decay_type, steps

    def __call__(self, step: int) -> float:
        if self.decay_type == "none":
            return self.lam0
        s = min(max(int(step), 0), self.steps) / self.steps
        span = self.lam0 - self.lam_min
        if self.decay_type == "linear":
            return self.lam0 - span * s
        if self.decay_type == "cosine":
            return self.lam_min + span * 0.5 * (1.0 + math.cos(math.pi * s))
        return self.lam_min + span * math.exp(-5.0 * s)


def teacher_loss(
    scores: torch.Tensor,
    target: torch.Tensor,
    q_u: torch.Tensor | None,
    z_u: torch.Tensor | None,
    step: int,
    *,
    schedule: LambdaSchedule,
    loss_type: str = "mse",
    temperature: float = 0.1,
) -> dict[str, torch.Tensor]:
    """CE(scores, target) + lam(step) * dist(q_u, z_u) (the second term only with the item-embedding head).

    Returns dict(loss, ce, imitation, lam): tensors, ready to log.
    """
    ce = F.cross_entropy(scores.float(), target)
    if q_u is None or z_u is None:
        zero = ce.new_zeros(())
        return {"loss": ce, "ce": ce, "imitation": zero, "lam": zero}
    lam = schedule(step)
    dist = imitation_loss(q_u.float(), z_u.float(), loss_type, temperature)
    return {"loss": ce + lam * dist, "ce": ce, "imitation": dist.detach(), "lam": ce.new_tensor(lam)}
