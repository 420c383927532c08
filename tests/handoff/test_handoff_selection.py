"""Selection policies: budgets, determinism, hand-made rankings, config, student statistics."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from ilora_dllm2rec.core.errors import ConfigError
from ilora_dllm2rec.data.types import SampleSet
from ilora_dllm2rec.handoff.selection import (
    STRATEGIES,
    SelectionContext,
    SelectionPolicyAll,
    build_selection_policy,
    normalized_rank,
    student_entropy_and_topk,
    topk_overlap,
)
from ilora_dllm2rec.student.base import SequentialRecommender

CONF = Path(__file__).resolve().parents[2] / "conf"
NT, K = 100, 5


def _context(seed: int = 0, teacher: bool = True) -> SelectionContext:
    rng = np.random.default_rng(seed)
    return SelectionContext(
        num_train=NT,
        student_entropy=rng.random(NT),
        student_topk=np.stack([rng.permutation(30)[:K] for _ in range(NT)]),
        teacher_topk=np.stack([rng.permutation(30)[:K] for _ in range(NT)]) if teacher else None,
    )


def policy(strategy: str, ratio: float = 0.3, seed: int = 7):
    return build_selection_policy({"strategy": strategy, "budget_ratio": ratio, "seed": seed, "topk": K})


@pytest.mark.parametrize("strategy", ["random", "uncertainty", "disagreement", "meta"])
@pytest.mark.parametrize("ratio, expected", [(0.3, 30), (0.7, 70), (1.0, 100), (0.001, 1)])
def test_budget_respected(strategy, ratio, expected):
    mask = policy(strategy, ratio).select(_context())
    assert mask.dtype == bool and mask.shape == (NT,) and mask.sum() == expected


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_deterministic_by_seed(strategy):
    a = policy(strategy).select(_context())
    b = policy(strategy).select(_context())
    assert np.array_equal(a, b)


def test_random_differs_across_seeds():
    a = policy("random", seed=1).select(_context())
    b = policy("random", seed=2).select(_context())
    assert not np.array_equal(a, b)


def test_all_selects_everything_or_eligible():
    assert policy("all", 1.0).select(_context()).all()
    eligible = np.arange(NT) % 3 == 0
    ctx = _context()
    ctx.eligible = eligible
    assert np.array_equal(SelectionPolicyAll().select(ctx), eligible)


@pytest.mark.parametrize("strategy", ["random", "uncertainty", "disagreement", "meta"])
def test_eligible_rows_only_and_budget_over_eligible(strategy):
    ctx = _context()
    ctx.eligible = np.arange(NT) < 40
    mask = policy(strategy, 0.5).select(ctx)
    assert mask.sum() == 20 and not mask[40:].any()


def test_uncertainty_picks_highest_entropy():
    ctx = SelectionContext(num_train=5, student_entropy=np.array([0.1, 2.0, 0.5, 3.0, 1.0]))
    assert policy("uncertainty", 0.4).select(ctx).tolist() == [False, True, False, True, False]


def test_disagreement_picks_lowest_overlap_and_falls_back(caplog):
    teacher = np.array([[1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 2, 3]])
    student = np.array([[1, 2, 3], [7, 8, 9], [3, 9, 8], [2, 1, 9]])  # overlaps 3, 0, 1, 2
    assert topk_overlap(teacher, student, 3).tolist() == [3, 0, 1, 2]
    entropy = np.array([9.0, 0.0, 0.0, 8.0])
    pol = build_selection_policy({"strategy": "disagreement", "budget_ratio": 0.5, "seed": 0, "topk": 3})
    ctx = SelectionContext(num_train=4, student_entropy=entropy, student_topk=student, teacher_topk=teacher)
    assert pol.select(ctx).tolist() == [False, True, True, False]
    ctx.teacher_topk = None  # before export: fall back to uncertainty
    with caplog.at_level(logging.INFO):
        assert pol.select(ctx).tolist() == [True, False, False, True]
    assert "falling back to uncertainty" in caplog.text


def test_meta_rank_average():
    # entropy ranks (high = 1): [0, 1/3, 2/3, 1]; disagreement ranks (low overlap = 1) from overlaps [0, 3, 2, 1]
    teacher = np.array([[1, 2, 3]] * 4)
    student = np.array([[7, 8, 9], [1, 2, 3], [1, 2, 9], [1, 8, 9]])
    ctx = SelectionContext(
        num_train=4, student_entropy=np.array([0.1, 0.2, 0.3, 0.4]), student_topk=student, teacher_topk=teacher
    )
    pol = build_selection_policy({"strategy": "meta", "budget_ratio": 0.5, "seed": 0, "topk": 3})
    # combined: row0 (0+1)/2=.5, row1 (1/3+0)/2, row2 (2/3+1/3)/2=.5, row3 (1+2/3)/2 -> rows 3 and one of 0/2
    mask = pol.select(ctx)
    assert mask[3] and not mask[1] and mask.sum() == 2


def test_normalized_rank_ties():
    assert normalized_rank(np.array([5.0, 1.0, 5.0, 3.0])).tolist() == pytest.approx([2.5 / 3, 0, 2.5 / 3, 1 / 3])


def test_student_provider_called_once_and_missing_student_is_config_error():
    calls = []

    def provider():
        calls.append(1)
        return np.arange(NT, dtype=float), np.zeros((NT, K), dtype=np.int64)

    ctx = SelectionContext(num_train=NT, student_provider=provider)
    mask = policy("meta").select(ctx)
    assert mask[-30:].all() and len(calls) == 1  # no teacher lists: uncertainty = highest entropy
    policy("uncertainty").select(ctx)
    assert len(calls) == 1
    with pytest.raises(ConfigError, match="baseline_checkpoint_path"):
        policy("uncertainty").select(SelectionContext(num_train=NT))


def test_build_errors():
    with pytest.raises(ConfigError, match="valid: all, random, uncertainty, disagreement, meta"):
        build_selection_policy({"strategy": "magic"})
    for ratio in (0.0, -0.1, 1.5):
        with pytest.raises(ConfigError, match="budget_ratio"):
            build_selection_policy({"strategy": "random", "budget_ratio": ratio})


@pytest.mark.parametrize("path", sorted((CONF / "active").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_active_config_builds(path):
    cfg = OmegaConf.create({"general": {"seed": 3}, "active": OmegaConf.load(path)})
    pol = build_selection_policy(cfg.active)
    assert pol.name == cfg.active.strategy and pol.seed == 3
    assert pol.select(_context()).sum() == round(cfg.active.budget_ratio * NT)


class _Bag(SequentialRecommender):
    def encode(self, seq, seq_len):
        return self.embed_items(seq).sum(1)


def test_student_entropy_and_topk_matches_direct_computation():
    torch.manual_seed(0)
    model = _Bag(num_items=9, hidden_size=4, max_seq_len=3)
    seq = np.array([[0, 1, 9], [2, 9, 9], [3, 4, 5], [8, 9, 9], [6, 7, 9]])
    samples = SampleSet(seq=seq, len_seq=(seq != 9).sum(1), target=np.zeros(5, np.int64), user=np.arange(5))
    model.train()
    ent, top = student_entropy_and_topk(model, samples, batch_size=2, k=3, device="cpu")
    assert model.training  # mode restored
    with torch.no_grad():
        logits = model(torch.as_tensor(seq), torch.as_tensor(samples.len_seq))
    p = torch.softmax(logits, 1)
    assert np.allclose(ent, (-(p * p.log()).sum(1)).numpy(), atol=1e-6)
    assert np.array_equal(top, torch.topk(logits, 3, 1).indices.numpy())
    assert ent.shape == (5,) and top.shape == (5, 3)
