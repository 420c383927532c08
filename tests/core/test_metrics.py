"""Ranking metrics against hand-computed values (ALGORITHMS.md section 8)."""

from __future__ import annotations

import math

import pytest
import torch

from ilora_dllm2rec.core.errors import TrainingError
from ilora_dllm2rec.core.metrics import ranking_metrics, target_rank


def _one(scores: list[float], target: int, ks=(1, 2, 5), **kwargs) -> dict[str, float]:
    out = ranking_metrics(torch.tensor([scores]), torch.tensor([target]), ks, **kwargs)
    return {k: float(v[0]) for k, v in out.items()}


def test_no_ties_hand_computed() -> None:
    # scores [0.3, 0.1, 0.9, 0.5], target 3 (0.5): only item 2 is higher -> rank 2
    m = _one([0.3, 0.1, 0.9, 0.5], 3)
    assert m["hr@1"] == 0.0 and m["ndcg@1"] == 0.0
    assert m["hr@2"] == 1.0 and m["recall@2"] == 1.0
    assert m["ndcg@2"] == pytest.approx(1 / math.log2(3))  # 0.6309
    assert m["ndcg@5"] == pytest.approx(0.6309297535714575)
    assert m["mrr"] == pytest.approx(0.5)


def test_ties_count_half() -> None:
    # scores [0.1, 0.5, 0.5, 0.2], target 1: 0 higher, 1 other tie -> rank 1 + 0.5 = 1.5
    m = _one([0.1, 0.5, 0.5, 0.2], 1)
    assert m["hr@1"] == 0.0 and m["ndcg@1"] == 0.0  # rank 1.5 > 1
    assert m["hr@2"] == 1.0
    assert m["ndcg@5"] == pytest.approx(1 / math.log2(2.5))  # 0.7565
    assert m["mrr"] == pytest.approx(1 / 1.5)


def test_all_equal_scores_give_middle_rank() -> None:
    # 4 equal scores: rank = 1 + 3/2 = 2.5 = (N + 1) / 2, whichever the target
    ranks = target_rank(torch.zeros(4, 4), torch.tensor([0, 1, 2, 3]))
    assert ranks.tolist() == [2.5, 2.5, 2.5, 2.5]


def test_exclude_history_removes_history_but_never_the_target() -> None:
    scores = [0.9, 0.8, 0.1, 0.5]  # N = 4, pad id 4
    assert _one(scores, 3)["mrr"] == pytest.approx(1 / 3)  # items 0 and 1 are higher
    # history {0, 1} (+ padding): both removed -> rank 1
    m = _one(scores, 3, history=torch.tensor([[0, 1, 4, 4]]), pad_id=4)
    assert m["hr@1"] == 1.0 and m["ndcg@1"] == 1.0 and m["mrr"] == 1.0
    # target 3 itself in the history: it is kept, item 0 removed -> only item 1 higher -> rank 2
    m = _one(scores, 3, history=torch.tensor([[3, 0, 4, 4]]), pad_id=4)
    assert m["mrr"] == pytest.approx(0.5)
    # pad_id defaults to N
    assert _one(scores, 3, history=torch.tensor([[0, 1, 4, 4]]))["mrr"] == 1.0


def test_candidate_protocol_with_ties() -> None:
    scores = torch.tensor(
        [
            [0.9, 0.1, 0.2, 0.3, 0.0, 0.0],  # target 0 strictly beats candidates 1, 2, 3 -> 1
            [0.5, 0.6, 0.2, 0.3, 0.0, 0.0],  # candidate 1 beats target 0 -> 0
            [0.5, 0.5, 0.5, 0.3, 0.0, 0.0],  # two negatives tie, none higher -> 1 / (1 + 2) = 1/3
            [0.5, 0.5, 0.9, 0.3, 0.0, 0.0],  # a tie AND a higher one -> 0
        ]
    )
    candidates = torch.tensor([[0, 1, 2, 3]] * 4)
    out = ranking_metrics(scores, torch.zeros(4, dtype=torch.long), [1], candidates=candidates)
    assert out["cand_hr@1"].tolist() == pytest.approx([1.0, 0.0, 1 / 3, 0.0])
    assert "cand_hr@1" not in ranking_metrics(scores, torch.zeros(4, dtype=torch.long), [1])


def test_batch_rows_are_independent_and_keys_exact() -> None:
    scores = torch.tensor([[0.1, 0.5, 0.5, 0.2], [0.3, 0.1, 0.9, 0.5]])
    out = ranking_metrics(scores, torch.tensor([1, 3]), [10])
    assert set(out) == {"hr@10", "ndcg@10", "recall@10", "mrr"}
    assert out["mrr"].tolist() == pytest.approx([1 / 1.5, 0.5])


def test_nan_scores_raise_and_bad_target_raises() -> None:
    with pytest.raises(TrainingError):
        ranking_metrics(torch.tensor([[float("nan"), 0.0]]), torch.tensor([0]), [1])
    with pytest.raises(ValueError):
        ranking_metrics(torch.zeros(1, 3), torch.tensor([3]), [1])


def test_per_sample_values_do_not_depend_on_batching() -> None:
    """The evaluator's per-user values equal ranking_metrics on all rows at once, whatever the batch size;
    evaluate() is their mean."""
    import numpy as np

    from ilora_dllm2rec.data.types import SampleSet
    from ilora_dllm2rec.student.evaluator import evaluate, evaluate_per_sample

    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(7, 5, generator=gen)
    rows = SampleSet(
        seq=np.full((7, 3), 5), len_seq=np.ones(7, dtype=np.int64), target=np.arange(7) % 5, user=np.arange(7)
    )
    direct = ranking_metrics(scores, torch.as_tensor(rows.target), [1, 3])

    def score(batch):
        return scores[batch["user"]]

    for batch_size in (1, 3, 7):
        values = evaluate_per_sample(score, rows, batch_size=batch_size, ks=[1, 3])
        assert values.keys() == direct.keys()
        for key in direct:
            assert np.allclose(values[key], direct[key].numpy()), key
    means = evaluate(score, rows, batch_size=2, ks=[1, 3])
    assert means == pytest.approx({k: float(v.double().mean()) for k, v in direct.items()})
