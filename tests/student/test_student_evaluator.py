"""The shared evaluator: batching, score_fn contract, history exclusion, candidates, model mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ilora_dllm2rec.core.errors import DataError
from ilora_dllm2rec.data.types import SampleSet
from ilora_dllm2rec.student.evaluator import evaluate, evaluate_model, iterate_batches
from ilora_dllm2rec.student.factory import build_student

N = 6  # items 0..5, pad 6


def _samples(with_candidates: bool = True) -> SampleSet:
    seq = np.array([[0, 1, 6], [2, 6, 6], [3, 4, 5], [1, 6, 6], [6, 6, 6]])
    target = np.array([5, 4, 0, 2, 3])
    cand = np.array([[t, *[(t + i) % N for i in range(1, 4)]] for t in target]) if with_candidates else None
    return SampleSet(seq=seq, len_seq=np.array([2, 1, 3, 1, 0]), target=target, user=np.arange(5), candidates=cand)


def _item_order_scores(batch: dict) -> torch.Tensor:
    """Item i scores -i for every user: item 0 always ranks first."""
    return -torch.arange(N, dtype=torch.float).expand(batch["seq"].shape[0], N)


def test_batches_cover_all_samples_in_order() -> None:
    batches = list(iterate_batches(_samples(), batch_size=2))
    assert [b["target"].tolist() for b in batches] == [[5, 4], [0, 2], [3]]
    assert batches[0]["candidates"].shape == (2, 4) and batches[0]["seq"].dtype == torch.long


def test_oracle_and_hand_computed_ranks() -> None:
    oracle = evaluate(
        lambda b: torch.nn.functional.one_hot(b["target"], N).float(), _samples(), batch_size=2, ks=[1, 10]
    )
    assert oracle["hr@1"] == 1.0 and oracle["ndcg@10"] == 1.0 and oracle["mrr"] == 1.0 and oracle["cand_hr@1"] == 1.0
    # fixed order: rank = target + 1 -> targets [5, 4, 0, 2, 3] give ranks [6, 5, 1, 3, 4]
    out = evaluate(_item_order_scores, _samples(), batch_size=3, ks=[1, 5])
    assert out["hr@1"] == pytest.approx(1 / 5)
    assert out["hr@5"] == pytest.approx(4 / 5)
    assert out["mrr"] == pytest.approx((1 / 6 + 1 / 5 + 1 + 1 / 3 + 1 / 4) / 5)


def test_exclude_history_changes_ranks() -> None:
    # sample 0: history {0, 1}, target 5 -> rank 6 - 2 = 4; sample 1: {2} -> 5 - 1 = 4;
    # sample 2: {3, 4, 5}, target 0 -> 1; sample 3: {1} -> 3 - 1 = 2; sample 4: empty -> 4
    out = evaluate(_item_order_scores, _samples(), batch_size=2, ks=[1], exclude_history=True)
    assert out["mrr"] == pytest.approx((1 / 4 + 1 / 4 + 1 + 1 / 2 + 1 / 4) / 5)


def test_candidates_optional() -> None:
    assert "cand_hr@1" not in evaluate(_item_order_scores, _samples(False), batch_size=4, ks=[1])
    assert "cand_hr@1" not in evaluate(_item_order_scores, _samples(), batch_size=4, ks=[1], candidate_protocol=False)


def test_errors() -> None:
    with pytest.raises(DataError):
        evaluate(_item_order_scores, _samples().subset(np.array([], dtype=np.int64)), batch_size=2, ks=[1])
    with pytest.raises(ValueError):
        evaluate(lambda b: torch.zeros(N), _samples(), batch_size=2, ks=[1])


def test_evaluate_model_restores_mode_and_uses_inference_mode() -> None:
    model = build_student({"name": "sasrec", "max_seq_len": 3, "emb_size": 8, "hidden_size": 8}, N)
    model.train()
    out = evaluate_model(model, _samples(), batch_size=2, ks=[1, 5], progress=True, description="test")
    assert model.training
    assert set(out) == {"hr@1", "ndcg@1", "recall@1", "hr@5", "ndcg@5", "recall@5", "mrr", "cand_hr@1"}
    assert all(0.0 <= v <= 1.0 for v in out.values())
    # deterministic in eval mode (dropout off)
    assert evaluate_model(model, _samples(), batch_size=5, ks=[1, 5]) == pytest.approx(out)
