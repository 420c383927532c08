"""Student losses against direct (loop-based, plain Python math) formulas."""

from __future__ import annotations

import math

import pytest
import torch

from ilora_dllm2rec.core.errors import ConfigError, DataError
from ilora_dllm2rec.student.losses import (
    StudentLoss,
    bce_loss,
    ce_loss,
    dro_term,
    item_propensity,
    sample_negatives,
)


def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def _logsumexp(values: list[float]) -> float:
    m = max(values)
    return m + math.log(math.fsum(math.exp(v - m) for v in values))


def _dro_reference(scores: list[float], t: int, prop: list[float], beta: float) -> float:
    """log(sum_j e^{a_j} - e^{a_t} + e^{b_t}) written as a log-sum-exp over j != t plus b_t (same value)."""
    a = [p * s * s / beta for p, s in zip(prop, scores)]
    terms = [a[j] for j in range(len(a)) if j != t] + [prop[t] * (scores[t] - 1) ** 2 / beta]
    return _logsumexp(terms)


@pytest.fixture
def scores() -> torch.Tensor:
    return torch.tensor([[0.2, -1.0, 0.5, 1.5, 0.0], [2.0, 0.3, -0.7, 0.1, 0.9], [0.0, 0.0, 0.4, -2.0, 1.0]])


def test_ce_matches_softmax_formula(scores: torch.Tensor) -> None:
    target = [3, 0, 2]
    rows = scores.tolist()
    expected = sum(_logsumexp(r) - r[t] for r, t in zip(rows, target)) / 3
    assert float(ce_loss(scores, torch.tensor(target))) == pytest.approx(expected, rel=1e-6)


def test_bce_matches_formula(scores: torch.Tensor) -> None:
    target, negatives = [3, 0, 2], [[1, 4], [2, 3], [0, 3]]
    rows = scores.tolist()
    expected = 0.0
    for r, t, negs in zip(rows, target, negatives):
        expected += -_log_sigmoid(r[t]) - sum(math.log(1 - 1 / (1 + math.exp(-r[n]))) for n in negs)
    expected /= 3
    got = bce_loss(scores, torch.tensor(target), torch.tensor(negatives))
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_item_propensity_formula() -> None:
    counts = [3, 0, 1, 5]
    total = sum(c + 1 for c in counts)  # 13
    expected = [((c + 1) / total) ** 0.05 for c in counts]
    assert item_propensity(torch.tensor(counts)).tolist() == pytest.approx(expected, rel=1e-6)


def test_dro_term_single_target_matches_direct_formula(scores: torch.Tensor) -> None:
    prop = item_propensity(torch.tensor([3, 0, 1, 5, 2])).tolist()
    target, beta = [3, 0, 2], 0.7
    got = dro_term(scores, torch.tensor(target), torch.tensor(prop), beta)
    assert got.shape == (3,)
    for row, (r, t) in enumerate(zip(scores.tolist(), target)):
        # the literal formula, fine for small scores
        a = [p * s * s / beta for p, s in zip(prop, r)]
        literal = math.log(sum(math.exp(x) for x in a) - math.exp(a[t]) + math.exp(prop[t] * (r[t] - 1) ** 2 / beta))
        assert float(got[row]) == pytest.approx(literal, rel=1e-5)


def test_dro_term_many_targets_per_row(scores: torch.Tensor) -> None:
    prop = item_propensity(torch.tensor([3, 0, 1, 5, 2])).tolist()
    targets = [[3, 0, 1], [0, 4, 0], [2, 2, 4]]
    got = dro_term(scores, torch.tensor(targets), torch.tensor(prop), 1.0)
    assert got.shape == (3, 3)
    for b, (r, ts) in enumerate(zip(scores.tolist(), targets)):
        for k, t in enumerate(ts):
            assert float(got[b, k]) == pytest.approx(_dro_reference(r, t, prop, 1.0), rel=1e-5)


def test_dro_term_is_stable_for_large_scores() -> None:
    # row 0: the target dominates (a_t = 10000); exact value = log((N-1) e^0 + e^9801) = 9801
    # row 1: a non-target dominates; targets [B, K] mix the argmax (4) and others
    scores = torch.tensor([[100.0, 0.0, 0.0, 0.0, 0.0], [3.0, -50.0, 20.0, 0.5, 80.0]], requires_grad=True)
    ones = torch.ones(5)
    naive = torch.log(torch.exp(scores[0] ** 2).sum() - torch.exp(scores[0, 0] ** 2) + torch.exp(torch.tensor(99.0**2)))
    assert not torch.isfinite(naive)  # the literal formula overflows here
    got = dro_term(scores, torch.tensor([[0, 1], [4, 2]]), ones, 1.0)
    assert torch.isfinite(got).all()
    values = got.detach()
    assert float(values[0, 0]) == pytest.approx(9801.0, rel=1e-6)
    rows = scores.detach().tolist()
    for b, k, t in [(0, 1, 1), (1, 0, 4), (1, 1, 2)]:
        assert float(values[b, k]) == pytest.approx(_dro_reference(rows[b], t, [1.0] * 5, 1.0), rel=1e-6)
    got.sum().backward()
    assert torch.isfinite(scores.grad).all()


def test_negatives_avoid_history_and_target() -> None:
    n, pad = 12, 12
    seq = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7, 8, pad], [5, pad, pad, pad, pad, pad, pad, pad, pad, pad]])
    target = torch.tensor([9, 6])
    gen = torch.Generator().manual_seed(0)
    neg = sample_negatives(seq, target, n, 200, generator=gen)
    assert neg.shape == (2, 200)
    assert set(neg[0].tolist()) <= {10, 11}  # only two allowed items
    assert not set(neg[1].tolist()) & {5, 6}
    assert neg.min() >= 0 and neg.max() < n
    again = sample_negatives(seq, target, n, 200, generator=torch.Generator().manual_seed(0))
    assert torch.equal(neg, again)


def test_negatives_exact_fallback_and_impossible_case() -> None:
    # only item 7 of 40 is allowed: rejection alone would almost never find it in time
    n = 40
    seq = torch.tensor([[i for i in range(n) if i != 7][:-1]])
    target = torch.tensor([[i for i in range(n) if i != 7][-1]])
    neg = sample_negatives(seq, target.view(1), n, 5, generator=torch.Generator().manual_seed(1))
    assert neg.tolist() == [[7] * 5]
    with pytest.raises(DataError):
        sample_negatives(torch.arange(3).view(1, 3), torch.tensor([3]), 4, 1)


def test_student_loss_combinations(scores: torch.Tensor) -> None:
    batch = {"seq": torch.tensor([[0, 5, 5], [1, 2, 5], [3, 5, 5]]), "target": torch.tensor([3, 0, 2])}
    counts = torch.tensor([3, 0, 1, 5, 2])
    negatives = torch.tensor([[1], [4], [0]])
    ce = StudentLoss("ce", 5, n_neg=1, dros_alpha=0.1, dros_beta=1.0)
    loss, parts = ce(scores, batch)
    assert float(loss) == pytest.approx(float(ce_loss(scores, batch["target"]))) and set(parts) == {"ce"}
    bce = StudentLoss("bce", 5, n_neg=1, dros_alpha=0.1, dros_beta=1.0)
    loss, parts = bce(scores, batch, negatives=negatives)
    assert float(loss) == pytest.approx(float(bce_loss(scores, batch["target"], negatives)))
    dros = StudentLoss.from_config(
        {"name": "sasrec", "loss": "dros", "n_neg": 1, "dros_alpha": 0.5, "dros_beta": 2.0}, 5, counts
    )
    loss, parts = dros(scores, batch, negatives=negatives)
    dro = dro_term(scores, batch["target"], item_propensity(counts), 2.0).mean()
    assert float(loss) == pytest.approx(float(bce_loss(scores, batch["target"], negatives) + 0.5 * dro))
    assert set(parts) == {"bce", "dro"}
    sampled, _ = bce(scores, batch, generator=torch.Generator().manual_seed(0))  # samples its own negatives
    assert torch.isfinite(sampled)


def test_student_loss_config_errors() -> None:
    with pytest.raises(ConfigError, match="student.loss"):
        StudentLoss.from_config({"name": "sasrec", "loss": "focal"}, 5)
    with pytest.raises(ConfigError, match="n_neg"):
        StudentLoss.from_config({"name": "sasrec", "loss": "bce", "n_neg": 0}, 5)
    with pytest.raises(ValueError):
        StudentLoss("dros", 5, n_neg=1, dros_alpha=0.1, dros_beta=1.0)  # no propensity
