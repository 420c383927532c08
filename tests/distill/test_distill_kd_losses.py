"""DLLM2Rec ranking distillation vs. direct loop formulas (ALGORITHMS.md section 4)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from ilora_dllm2rec.core.errors import ArtifactError, ConfigError
from ilora_dllm2rec.distill.kd_losses import (
    attach_teacher_item_embeddings,
    confidence_weights,
    consistency_weights,
    distill_spec,
    kd_negatives,
    position_weights,
    ranking_distillation_loss,
    ranking_distillation_weights,
    ranking_loss_kwargs,
    standardize_item_embeddings,
)
from ilora_dllm2rec.student.base import SequentialRecommender
from ilora_dllm2rec.student.losses import item_propensity

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"

GAMMAS = (0.3, 0.5, 0.1)


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def loop_weights(cand, dist, scores, gp=0.3, gc=0.5, go=0.1, lam=1.0):
    """Per-sample, per-candidate weights with plain Python loops."""
    B, K = len(cand), len(cand[0])
    out = []
    for b in range(B):
        top = sorted(range(len(scores[b])), key=lambda j: -scores[b][j])[:K]
        zp = sum(math.exp(-j / lam) for j in range(1, K + 1))
        zc = sum(math.exp(-d) for d in dist[b])
        raw = []
        for k in range(K):
            wp = math.exp(-(k + 1) / lam) / zp
            wc = math.exp(-dist[b][k]) / zc
            wo = (1.0 if cand[b][k] in top else 0.0) + 1e-8
            raw.append(gp * wp + gc * wc + go * wo)
        out.append([r / sum(raw) for r in raw])
    return out


def loop_dro(s, t, prop, beta):
    inner = sum(math.exp(prop[j] * s[j] ** 2 / beta) for j in range(len(s)))
    inner += -math.exp(prop[t] * s[t] ** 2 / beta) + math.exp(prop[t] * (s[t] - 1) ** 2 / beta)
    return math.log(inner)


def loop_loss(
    scores, cand, dist, neg, mask=None, alpha=0.5, use_dros=False, prop=None, beta=1.0, compat=False, over="batch"
):
    w = loop_weights(cand, dist, scores)
    total, n = 0.0, 0
    for b in range(len(cand)):
        if mask is not None and not mask[b]:
            continue
        n += 1
        for k in range(len(cand[b])):
            term = -math.log(_sig(scores[b][cand[b][k]]))
            for j in neg[b]:
                s = scores[b][j]
                term += -math.log(_sig(1 - s)) if compat else -math.log(1 - _sig(s))
            if use_dros:
                term += alpha * loop_dro(scores[b], cand[b][k], prop, beta)
            total += w[b][k] * term
    return total / (len(cand) if over == "batch" else n)  # batch: unselected rows count as zeros


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    B, N, K = 4, 12, 3
    scores = torch.randn(B, N, generator=g)
    cand = torch.stack([torch.randperm(N, generator=g)[:K] for _ in range(B)])
    cand[0] = torch.topk(scores[0], K).indices.flip(0)  # row 0 fully consistent with the student
    dist = torch.rand(B, K, generator=g) * 3
    neg = torch.randint(0, N, (B, 1), generator=g)
    return scores, cand, dist, neg


def test_position_weights_hand_computed():
    z = math.exp(-1) + math.exp(-2) + math.exp(-3)
    expected = torch.tensor([math.exp(-1) / z, math.exp(-2) / z, math.exp(-3) / z])
    assert torch.allclose(position_weights(3, 1.0), expected)
    z2 = math.exp(-0.5) + math.exp(-1.0)
    assert torch.allclose(position_weights(2, 2.0), torch.tensor([math.exp(-0.5) / z2, math.exp(-1.0) / z2]))


def test_confidence_weights_are_softmax_of_minus_distance():
    d = torch.tensor([[0.0, math.log(2.0), math.log(4.0)]])  # p = 1, 1/2, 1/4
    assert torch.allclose(confidence_weights(d), torch.tensor([[4 / 7, 2 / 7, 1 / 7]]))


def test_consistency_weights_membership_in_student_topk():
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.3, 0.0]])  # student top-2: items 0, 2
    w = consistency_weights(torch.tensor([[2, 1]]), scores)
    assert torch.allclose(w, torch.tensor([[1 + 1e-8, 1e-8]]))


def test_weights_match_loop_and_sum_to_one(batch):
    scores, cand, dist, _ = batch
    w = ranking_distillation_weights(cand, dist, scores, *GAMMAS)
    expected = torch.tensor(loop_weights(cand.tolist(), dist.tolist(), scores.tolist()))
    assert torch.allclose(w, expected, atol=1e-6)
    assert torch.allclose(w.sum(dim=1), torch.ones(w.shape[0]))


def test_no_gradient_through_weights(batch):
    scores, cand, dist, neg = batch
    scores = scores.clone().requires_grad_(True)
    w = ranking_distillation_weights(cand, dist, scores, *GAMMAS)
    assert not w.requires_grad
    # the loss gradient equals that of sum_k w_k * term with w as constants
    loss = ranking_distillation_loss(scores, cand, dist, neg, use_dros=False)
    (grad,) = torch.autograd.grad(loss, scores)
    pos = torch.nn.functional.softplus(-scores.gather(1, cand))
    negt = torch.nn.functional.softplus(scores.gather(1, neg)).sum(1, keepdim=True)
    (ref_grad,) = torch.autograd.grad(((w * (pos + negt)).sum(1)).mean(), scores)
    assert torch.allclose(grad, ref_grad, atol=1e-6)


@pytest.mark.parametrize("compat", [False, True])
def test_loss_without_dros_matches_loop(batch, compat):
    scores, cand, dist, neg = batch
    got = ranking_distillation_loss(scores, cand, dist, neg, use_dros=False, reference_compat=compat)
    want = loop_loss(scores.tolist(), cand.tolist(), dist.tolist(), neg.tolist(), compat=compat)
    assert got.item() == pytest.approx(want, rel=1e-5)


def test_reference_compat_changes_only_negative_term(batch):
    scores, cand, dist, neg = batch
    a = ranking_distillation_loss(scores, cand, dist, neg, use_dros=False, reference_compat=False)
    b = ranking_distillation_loss(scores, cand, dist, neg, use_dros=False, reference_compat=True)
    s = scores.gather(1, neg).squeeze(1)
    diff = (-torch.log(torch.sigmoid(1 - s)) + torch.log(1 - torch.sigmoid(s))).mean()  # weights sum to 1
    assert (b - a).item() == pytest.approx(diff.item(), rel=1e-5)


def test_several_negatives_are_summed(batch):
    scores, cand, dist, _ = batch
    neg = torch.tensor([[1, 2], [3, 4], [5, 6], [7, 8]])
    got = ranking_distillation_loss(scores, cand, dist, neg, use_dros=False)
    want = loop_loss(scores.tolist(), cand.tolist(), dist.tolist(), neg.tolist())
    assert got.item() == pytest.approx(want, rel=1e-5)


def test_loss_with_dros_matches_loop(batch):
    scores, cand, dist, neg = batch
    prop = torch.rand(scores.shape[1], generator=torch.Generator().manual_seed(1)) * 0.5 + 0.5
    got = ranking_distillation_loss(scores, cand, dist, neg, alpha=0.5, use_dros=True, propensity=prop, beta=1.5)
    want = loop_loss(
        scores.tolist(), cand.tolist(), dist.tolist(), neg.tolist(), alpha=0.5, use_dros=True,
        prop=prop.tolist(), beta=1.5,
    )  # fmt: skip
    assert got.item() == pytest.approx(want, rel=1e-5)


def test_dros_requires_propensity(batch):
    scores, cand, dist, neg = batch
    with pytest.raises(ConfigError, match="propensit"):
        ranking_distillation_loss(scores, cand, dist, neg, use_dros=True, propensity=None)


def test_mask_excludes_samples_even_with_placeholder_candidates(batch):
    scores, cand, dist, neg = batch
    mask = torch.tensor([True, False, True, False])
    cand = cand.clone()
    cand[1] = -5  # invalid placeholder: must never be gathered
    dist = dist.clone()
    dist[3] = float("nan")
    got = ranking_distillation_loss(scores, cand, dist, neg, mask, use_dros=False)  # default: mean over the batch
    want = loop_loss(scores.tolist(), cand.tolist(), dist.tolist(), neg.tolist(), mask=mask.tolist())
    assert got.item() == pytest.approx(want, rel=1e-5)
    sub = ranking_distillation_loss(scores[mask], cand[mask], dist[mask], neg[mask], use_dros=False)
    assert got.item() == pytest.approx(sub.item() * 2 / 4, rel=1e-6)  # 2 of 4 rows selected
    selected = ranking_distillation_loss(scores, cand, dist, neg, mask, use_dros=False, mean_over="selected")
    want_sel = loop_loss(scores.tolist(), cand.tolist(), dist.tolist(), neg.tolist(), mask.tolist(), over="selected")
    assert selected.item() == pytest.approx(want_sel, rel=1e-5) and selected.item() == pytest.approx(sub.item())


def test_rd_mean_is_validated(batch):
    scores, cand, dist, neg = batch
    with pytest.raises(ConfigError, match=r"distill\.rd_mean"):
        ranking_distillation_loss(scores, cand, dist, neg, use_dros=False, mean_over="rows")
    cfg = {"gamma_position": 0.3, "gamma_confidence": 0.5, "gamma_consistency": 0.1, "alpha": 0.5}
    with pytest.raises(ConfigError, match=r"distill\.rd_mean"):
        ranking_loss_kwargs({**cfg, "use_dros": True, "beta": 1.0, "rd_mean": "all"})


def test_empty_mask_gives_zero_with_grad(batch):
    scores, cand, dist, neg = batch
    scores = scores.clone().requires_grad_(True)
    loss = ranking_distillation_loss(scores, cand, dist, neg, torch.zeros(4, dtype=torch.bool), use_dros=False)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.count_nonzero(scores.grad) == 0


def test_gammas_validated(batch):
    scores, cand, dist, _ = batch
    with pytest.raises(ConfigError, match="gamma"):
        ranking_distillation_weights(cand, dist, scores, 0.0, 0.0, 0.0)
    with pytest.raises(ConfigError, match="gamma"):
        ranking_distillation_weights(cand, dist, scores, -0.1, 0.5, 0.1)


def test_ranking_loss_kwargs_from_config():
    cfg = {"gamma_position": 0.3, "gamma_confidence": 0.5, "gamma_consistency": 0.1, "alpha": 0.5}
    cfg |= {"use_dros": True, "beta": 1.0}
    kw = ranking_loss_kwargs(cfg)
    assert kw["lam_position"] == 1.0 and kw["reference_compat"] is False and kw["alpha"] == 0.5


@pytest.mark.parametrize(
    ("value", "student_loss", "expected"),
    [("auto", "ce", False), ("auto", "bce", False), ("auto", "dros", True), (True, "ce", True), (False, "dros", False)],
)
def test_use_dros_auto_follows_the_student_loss(value, student_loss, expected):
    cfg = {"gamma_position": 0.3, "gamma_confidence": 0.5, "gamma_consistency": 0.1, "alpha": 0.5, "beta": 1.0}
    assert ranking_loss_kwargs(cfg | {"use_dros": value}, student_loss=student_loss)["use_dros"] is expected


def test_use_dros_rejects_other_values():
    with pytest.raises(ConfigError, match="distill.use_dros='maybe' must be true, false or auto"):
        distill_spec({"use_dros": "maybe"})


class _Tiny(SequentialRecommender):
    def encode(self, seq, seq_len):
        return self.embed_items(seq).sum(1)


def test_attach_teacher_item_embeddings_reads_D_from_tensor():
    model = _Tiny(num_items=5, hidden_size=4, max_seq_len=3)
    attach_teacher_item_embeddings(model, torch.randn(5, 7), ed_weight=0.3)
    assert model.llm_projection.in_features == 7 and model.ed_weight == 0.3
    out = model(torch.tensor([[0, 1, 5]]), torch.tensor([2]))
    assert out.shape == (1, 5)


def test_standardize_item_embeddings_is_a_per_dimension_z_score():
    emb = torch.randn(50, 6) * torch.tensor([1.0, 5, 0.1, 1, 1, 1]) + 40.0
    emb[:, 5] = 3.0  # a constant dimension carries no item information
    got = standardize_item_embeddings(emb)
    want = (emb[:, :5] - emb[:, :5].mean(0)) / emb[:, :5].std(0)
    assert torch.allclose(got[:, :5], want, atol=1e-5)
    assert torch.equal(got[:, 5], torch.zeros(50))


def test_attach_standardizes_only_when_asked():
    emb = torch.randn(5, 7) + 10.0
    plain, z = _Tiny(5, 4, 3), _Tiny(5, 4, 3)
    attach_teacher_item_embeddings(plain, emb, ed_weight=0.3)
    attach_teacher_item_embeddings(z, emb, ed_weight=0.3, standardize=True)
    assert torch.equal(plain.llm_item_embeddings, emb)
    assert torch.allclose(z.llm_item_embeddings, standardize_item_embeddings(emb))
    assert z.llm_item_embeddings.mean(0).abs().max() < 1e-5


@pytest.mark.parametrize(
    "emb, match",
    [(torch.randn(6, 7), "6 rows"), (torch.randn(5), "2-D"), (torch.full((5, 3), float("nan")), "NaN")],
)
def test_attach_teacher_item_embeddings_rejects(emb, match):
    with pytest.raises(ArtifactError, match=match):
        attach_teacher_item_embeddings(_Tiny(5, 4, 3), emb, ed_weight=0.3)


def test_dros_with_item_propensity_and_large_scores_is_finite(batch):
    scores, cand, dist, neg = batch
    prop = item_propensity(torch.tensor([3, 0, 1, 5, 2, 2, 0, 1, 4, 0, 1, 1]))
    got = ranking_distillation_loss(scores, cand, dist, neg, use_dros=True, propensity=prop, alpha=0.5)
    want = loop_loss(scores.tolist(), cand.tolist(), dist.tolist(), neg.tolist(), use_dros=True, prop=prop.tolist())
    assert got.item() == pytest.approx(want, rel=1e-5)
    big = (scores * 40).requires_grad_(True)  # exp(p s^2) would overflow a naive implementation
    loss = ranking_distillation_loss(big, cand, dist, neg, use_dros=True, propensity=prop)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(big.grad).all()


def test_kd_negatives_can_exclude_candidates():
    g = torch.Generator().manual_seed(0)
    n_items = 8
    seq = torch.tensor([[0, 1, 8], [2, 8, 8]])
    target = torch.tensor([3, 4])
    cand = torch.tensor([[4, 5, 6], [0, 1, 5]])
    neg = kd_negatives(seq, target, cand, n_items, 50, exclude_candidates=True, generator=g)
    assert neg.shape == (2, 50)
    assert set(neg[0].tolist()) <= {2, 7} and set(neg[1].tolist()) <= {3, 6, 7}
    plain = kd_negatives(seq, target, cand, n_items, 200, generator=g)  # spec default: only history/target excluded
    assert 5 in plain[0].tolist()


def test_distill_module_resolves_use_dros_from_its_student_loss():
    from omegaconf import OmegaConf

    from ilora_dllm2rec.distill.lit_module import DistillLitModule

    distill = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "distill" / "dllm2rec.yaml"), resolve=False)
    student = {"name": "sasrec", "emb_size": 8, "hidden_size": 8, "max_seq_len": 5, "num_blocks": 1, "num_heads": 1}
    for loss, expected in (("ce", False), ("dros", True)):
        module = DistillLitModule(student | {"loss": loss}, 12, lr=1e-3, distill_cfg=distill)
        assert module.kd_kwargs["use_dros"] is expected
