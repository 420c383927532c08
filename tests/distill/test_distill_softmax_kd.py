"""Distillation losses for softmax students vs. direct formulas (docs/ALGORITHMS.md, softmax students)."""

from __future__ import annotations

import math

import pytest
import torch

from ilora_dllm2rec.core.errors import ArtifactError, ConfigError
from ilora_dllm2rec.distill.kd_losses import distill_spec, ranking_distillation_weights
from ilora_dllm2rec.distill.softmax_kd import (
    check_log_prob_distances,
    listwise_kd_loss,
    resolve_rd_form,
    softmax_ranking_distillation_loss,
)


def _case(seed: int = 0, batch: int = 4, items: int = 9, top: int = 4):
    """Student logits, and a teacher's top-N with distances -log p of a full-catalogue softmax."""
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(batch, items, generator=g) * 2
    teacher_logits = torch.randn(batch, items, generator=g) * 2
    teacher_log_p = torch.log_softmax(teacher_logits, dim=1)
    top_log_p, cand = torch.topk(teacher_log_p, top, dim=1)
    return scores, cand, -top_log_p, teacher_log_p


def loop_softmax_rd(scores, cand, dist, tau):
    w = ranking_distillation_weights(cand, dist, scores)
    total = 0.0
    for b in range(scores.shape[0]):
        z = sum(math.exp(float(s) / tau) for s in scores[b])
        for k in range(cand.shape[1]):
            total -= float(w[b, k]) * math.log(math.exp(float(scores[b, cand[b, k]]) / tau) / z)
    return tau**2 * total / scores.shape[0]


def loop_bucket_kl(scores, cand, teacher_log_p, tau):
    """KL of the two full-catalogue distributions merged into (top-N items, the rest), each tempered."""
    total = 0.0
    for b in range(scores.shape[0]):
        ps = torch.softmax(scores[b].double(), dim=0)
        pt = teacher_log_p[b].double().exp()
        ids = cand[b].tolist()
        t = [float(pt[i]) for i in ids] + [1.0 - sum(float(pt[i]) for i in ids)]
        s = [float(ps[i]) for i in ids] + [1.0 - sum(float(ps[i]) for i in ids)]
        tq = [x ** (1 / tau) for x in t]
        sq = [x ** (1 / tau) for x in s]
        q = [x / sum(tq) for x in tq]
        r = [x / sum(sq) for x in sq]
        total += sum(qi * math.log(qi / ri) for qi, ri in zip(q, r, strict=True))
    return tau**2 * total / scores.shape[0]


def loop_topn_kl(scores, cand, dist, tau):
    total = 0.0
    for b in range(scores.shape[0]):
        t = [math.exp(-float(d) / tau) for d in dist[b]]
        s = [math.exp(float(scores[b, i]) / tau) for i in cand[b]]
        q = [x / sum(t) for x in t]
        r = [x / sum(s) for x in s]
        total += sum(qi * math.log(qi / ri) for qi, ri in zip(q, r, strict=True))
    return tau**2 * total / scores.shape[0]


@pytest.mark.parametrize("tau", [1.0, 2.0, 0.5])
def test_softmax_rd_matches_the_direct_formula(tau):
    scores, cand, dist, _ = _case()
    got = softmax_ranking_distillation_loss(scores, cand, dist, temperature=tau)
    assert float(got) == pytest.approx(loop_softmax_rd(scores, cand, dist, tau), rel=1e-5)


@pytest.mark.parametrize("tau", [1.0, 2.0, 0.5])
def test_listwise_bucket_matches_the_merged_full_kl(tau):
    scores, cand, dist, teacher_log_p = _case(seed=1)
    got = listwise_kd_loss(scores, cand, dist, temperature=tau, normaliser="bucket")
    assert float(got) == pytest.approx(loop_bucket_kl(scores, cand, teacher_log_p, tau), rel=1e-4)


@pytest.mark.parametrize("tau", [1.0, 3.0])
def test_listwise_topn_matches_the_renormalised_kl(tau):
    scores, cand, dist, _ = _case(seed=2)
    got = listwise_kd_loss(scores, cand, dist, temperature=tau, normaliser="topn")
    assert float(got) == pytest.approx(loop_topn_kl(scores, cand, dist, tau), rel=1e-4)


def test_listwise_is_zero_when_the_student_is_the_teacher():
    _, cand, dist, teacher_log_p = _case(seed=3)
    for normaliser in ("bucket", "topn"):
        got = listwise_kd_loss(teacher_log_p + 5.0, cand, dist, temperature=2.0, normaliser=normaliser)
        assert abs(float(got)) < 1e-5


def test_bucket_at_tau_one_over_every_item_is_the_full_kl():
    scores, _, _, teacher_log_p = _case(seed=4, items=6)
    top_log_p, cand = torch.topk(teacher_log_p, 6, dim=1)  # top-N = the whole catalogue: tail ~ 0
    got = listwise_kd_loss(scores, cand, -top_log_p, normaliser="bucket")
    full = torch.nn.functional.kl_div(torch.log_softmax(scores, 1), teacher_log_p, log_target=True, reduction="sum")
    assert float(got) == pytest.approx(float(full) / scores.shape[0], abs=1e-4)


def test_gradient_reaches_the_student_only_and_stays_finite():
    scores, cand, dist, _ = _case(seed=5)
    scores.requires_grad_(True)
    dist = dist.clone().requires_grad_(True)
    total = softmax_ranking_distillation_loss(scores, cand, dist, temperature=2.0) + listwise_kd_loss(
        scores, cand, dist, temperature=2.0
    )
    total.backward()
    assert scores.grad is not None and torch.isfinite(scores.grad).all() and scores.grad.abs().sum() > 0
    assert dist.grad is None


def test_a_top_n_holding_all_the_mass_gives_finite_values_and_gradients():
    scores = torch.tensor([[4.0, 0.0, -2.0]], requires_grad=True)
    cand = torch.tensor([[0, 1, 2]])
    dist = torch.tensor([[1e-9, 30.0, 40.0]])  # p ~ (1, 0, 0): the tail is 0
    loss = listwise_kd_loss(scores, cand, dist, temperature=1.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(scores.grad).all()


def test_mask_drops_rows_and_batch_mean_counts_them_as_zero():
    scores, cand, dist, _ = _case(seed=6)
    mask = torch.tensor([True, False, True, False])
    for fn in (softmax_ranking_distillation_loss, listwise_kd_loss):
        full_rows = fn(scores[mask], cand[mask], dist[mask], mean_over="selected")
        assert float(fn(scores, cand, dist, mask, mean_over="selected")) == pytest.approx(float(full_rows))
        assert float(fn(scores, cand, dist, mask, mean_over="batch")) == pytest.approx(float(full_rows) / 2)
        none = fn(scores, cand, dist, torch.zeros(4, dtype=torch.bool))
        assert float(none) == 0.0


@pytest.mark.parametrize(
    ("value", "loss", "expected"),
    [
        ("auto", "ce", "softmax"),
        ("auto", "bce", "bce"),
        ("auto", "dros", "bce"),
        ("bce", "ce", "bce"),
        ("softmax", "dros", "softmax"),
    ],
)
def test_rd_form_auto_follows_the_student_loss(value, loss, expected):
    assert resolve_rd_form(value, loss) == expected


def test_bad_settings_are_config_errors():
    scores, cand, dist, _ = _case()
    with pytest.raises(ConfigError, match="distill.rd_form must be one of auto | bce | softmax"):
        distill_spec({"rd_form": "listwise"})
    with pytest.raises(ConfigError, match="distill.rd_temperature"):
        softmax_ranking_distillation_loss(scores, cand, dist, temperature=0.0)
    with pytest.raises(ConfigError, match="distill.listwise_normaliser"):
        listwise_kd_loss(scores, cand, dist, normaliser="full")


def test_distances_that_are_not_log_probabilities_are_refused():
    check_log_prob_distances(torch.tensor([[0.1, 3.0]]), "x")  # 0.905 + 0.05 <= 1
    with pytest.raises(ArtifactError, match="listwise_normaliser=topn"):
        check_log_prob_distances(torch.tensor([[0.1, 0.2]]), "teacher/confidence_train.txt")
