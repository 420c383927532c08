"""Embedding-imitation losses against their formulas, decay schedules at fixed points, the combined loss."""

from __future__ import annotations

import math

import pytest
import torch

from ilora_dllm2rec.core.errors import ConfigError
from ilora_dllm2rec.teacher.imitation import LambdaSchedule, imitation_loss, teacher_loss

Q = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
Z = torch.tensor([[0.0, 0.0], [0.0, 0.5]])


def test_mse_l1_huber_hand_computed() -> None:
    # diffs: (1, 0), (0, 1.5) -> squared 1, 0, 0, 2.25 -> mean 0.8125
    assert imitation_loss(Q, Z, "mse").item() == pytest.approx(0.8125)
    assert imitation_loss(Q, Z, "l1").item() == pytest.approx((1 + 1.5) / 4)
    # smooth L1 (beta 1): |d| < 1 -> 0.5 d^2, else |d| - 0.5: 0.5, 0, 0, 1.0 -> mean 0.375
    assert imitation_loss(Q, Z, "huber").item() == pytest.approx(0.375)


def test_cosine_hand_computed() -> None:
    q = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    z = torch.tensor([[0.0, 3.0], [2.0, 2.0]])  # cos = 0 and 1 -> 1 - cos = 1 and 0
    assert imitation_loss(q, z, "cosine").item() == pytest.approx(0.5)


def test_contrastive_matches_infonce_formula() -> None:
    torch.manual_seed(0)
    q, z, tau = torch.randn(4, 3), torch.randn(4, 3), 0.1
    qn, zn = q / q.norm(dim=1, keepdim=True), z / z.norm(dim=1, keepdim=True)
    logits = qn @ zn.T / tau
    expected = -(logits.diag() - logits.exp().sum(1).log()).mean()
    assert imitation_loss(q, z, "contrastive", temperature=tau).item() == pytest.approx(expected.item(), rel=1e-5)
    # perfectly aligned, well separated pairs -> near zero
    eye = torch.eye(3)
    assert imitation_loss(eye, eye, "contrastive", temperature=0.01).item() < 1e-6


def test_imitation_target_gets_no_gradient() -> None:
    q, z = Q.clone().requires_grad_(True), Z.clone().requires_grad_(True)
    imitation_loss(q, z, "mse").backward()
    assert q.grad is not None and z.grad is None


def test_unknown_names_error() -> None:
    with pytest.raises(ValueError, match="imitation loss 'kl'"):
        imitation_loss(Q, Z, "kl")
    with pytest.raises(ValueError, match="decay type 'step'"):
        LambdaSchedule(1.0, 0.0, "step", 10)
    with pytest.raises(ConfigError, match="distill_decay_steps"):
        LambdaSchedule(1.0, 0.0, "linear", None, None)


@pytest.mark.parametrize(
    ("kind", "start", "half", "end"),
    [
        ("none", 1.0, 1.0, 1.0),
        ("linear", 1.0, 0.6, 0.2),
        ("cosine", 1.0, 0.6, 0.2),  # half cosine: midpoint is the mean
        ("exponential", 1.0, 0.2 + 0.8 * math.exp(-2.5), 0.2 + 0.8 * math.exp(-5.0)),
    ],
)
def test_decay_schedules(kind: str, start: float, half: float, end: float) -> None:
    lam = LambdaSchedule(1.0, 0.2, kind, decay_steps=100)
    assert lam(0) == pytest.approx(start)
    assert lam(50) == pytest.approx(half)
    assert lam(100) == pytest.approx(end)
    assert lam(1000) == pytest.approx(end)  # constant after the decay


def test_cosine_quarter_and_default_to_total_steps() -> None:
    lam = LambdaSchedule(1.0, 0.0, "cosine", decay_steps=None, total_steps=40)
    assert lam(10) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert LambdaSchedule(1.0, 0.0, "linear", None, total_steps=40)(30) == pytest.approx(0.25)


def test_teacher_loss_composition() -> None:
    scores = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    target = torch.tensor([0, 2])
    ce = torch.nn.functional.cross_entropy(scores, target)
    sched = LambdaSchedule(0.5, 0.0, "linear", decay_steps=10)
    out = teacher_loss(scores, target, Q, Z, step=4, schedule=sched, loss_type="mse")
    assert out["ce"].item() == pytest.approx(ce.item())
    assert out["lam"].item() == pytest.approx(0.3)
    assert out["loss"].item() == pytest.approx(ce.item() + 0.3 * 0.8125)
    # head off (q_u None): CE only
    plain = teacher_loss(scores, target, None, Z, step=4, schedule=sched)
    assert plain["loss"].item() == pytest.approx(ce.item()) and plain["imitation"].item() == 0.0
