"""build_dataloader: whole-batch slicing, exact coverage, seeded order, DDP sharding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from data_helpers import synthetic_cfg

from ilora_dllm2rec.data import build_dataloader, prepare_data
from ilora_dllm2rec.data.dataloader import BatchIndexSampler


def _split():
    return prepare_data(synthetic_cfg(), None)


def _batches(loader):
    return [{k: v.clone() for k, v in b.items()} for b in loader]


def test_batches_cover_every_index_once_and_match_rows():
    train = _split().train
    loader = build_dataloader(train, batch_size=64, shuffle=True, seed=3)
    batches = _batches(loader)
    assert len(batches) == len(loader) == -(-len(train) // 64)
    index = torch.cat([b["index"] for b in batches])
    assert sorted(index.tolist()) == list(range(len(train)))
    b = batches[0]
    assert set(b) == {"seq", "len_seq", "target", "user", "index"}
    assert b["seq"].dtype == torch.long and b["seq"].shape == (64, train.seq.shape[1])
    i = b["index"].numpy()
    np.testing.assert_array_equal(b["seq"].numpy(), train.seq[i])
    np.testing.assert_array_equal(b["target"].numpy(), train.target[i])
    np.testing.assert_array_equal(b["len_seq"].numpy(), train.len_seq[i])
    np.testing.assert_array_equal(b["user"].numpy(), train.user[i])


def test_same_seed_same_batches_new_order_per_epoch():
    train = _split().train
    a = build_dataloader(train, 32, shuffle=True, seed=5)
    b = build_dataloader(train, 32, shuffle=True, seed=5)
    ea, eb = _batches(a), _batches(b)
    assert all(torch.equal(x["index"], y["index"]) for x, y in zip(ea, eb))
    second = _batches(a)  # next epoch: a different permutation
    assert not torch.equal(torch.cat([x["index"] for x in ea]), torch.cat([x["index"] for x in second]))
    a.sampler.set_epoch(0)  # Lightning's set_epoch reproduces an epoch exactly
    assert torch.equal(torch.cat([x["index"] for x in _batches(a)]), torch.cat([x["index"] for x in ea]))
    other = _batches(build_dataloader(train, 32, shuffle=True, seed=6))
    assert not torch.equal(torch.cat([x["index"] for x in ea]), torch.cat([x["index"] for x in other]))


def test_eval_loader_in_order_with_candidates_and_drop_last():
    val = _split().val
    batches = _batches(build_dataloader(val, 50, shuffle=False, seed=0))
    assert torch.equal(torch.cat([b["index"] for b in batches]), torch.arange(len(val)))
    assert batches[0]["candidates"].shape == (50, 20)
    np.testing.assert_array_equal(batches[-1]["candidates"].numpy(), val.candidates[batches[-1]["index"].numpy()])
    dropped = build_dataloader(val, 50, shuffle=True, seed=0, drop_last=True)
    assert len(dropped) == len(val) // 50 and all(len(b["index"]) == 50 for b in _batches(dropped))


def test_sharding_under_ddp_covers_everything(monkeypatch):
    seen = []
    for rank in (0, 1):
        monkeypatch.setattr(BatchIndexSampler, "_world", staticmethod(lambda r=rank: (r, 2)))
        sampler = BatchIndexSampler(101, 10, shuffle=True, seed=1)
        parts = list(sampler)
        assert len(parts) == len(sampler) == 6  # ceil(101 / 2) = 51 rows per rank
        seen.append(torch.cat(parts))
    assert len(seen[0]) == len(seen[1]) == 51
    assert set(torch.cat(seen).tolist()) == set(range(101))


def _padding(batches: list[torch.Tensor], lengths: np.ndarray) -> int:
    """Padded slots when each batch is padded to its longest row."""
    return sum(int(lengths[b].max()) * len(b) - int(lengths[b].sum()) for b in (x.numpy() for x in batches))


def test_length_grouping_keeps_a_seeded_permutation_with_little_padding():
    lengths = np.random.default_rng(0).integers(60, 160, size=1003)
    grouped = list(BatchIndexSampler(1003, 16, shuffle=True, seed=3, lengths=lengths))
    assert sorted(torch.cat(grouped).tolist()) == list(range(1003))  # every row once
    assert len(grouped[-1]) == 1003 % 16 and all(len(b) == 16 for b in grouped[:-1])  # short batch last
    again = list(BatchIndexSampler(1003, 16, shuffle=True, seed=3, lengths=lengths))
    assert all(torch.equal(a, b) for a, b in zip(grouped, again))  # deterministic by seed
    sampler = BatchIndexSampler(1003, 16, shuffle=True, seed=3, lengths=lengths)
    sampler.set_epoch(1)
    assert not torch.equal(torch.cat(list(sampler)), torch.cat(grouped))  # a new order per epoch
    plain = list(BatchIndexSampler(1003, 16, shuffle=True, seed=3))
    assert _padding(grouped, lengths) < 0.1 * _padding(plain, lengths)
    # batches are not simply sorted: the epoch's batch order is shuffled
    means = [float(lengths[b.numpy()].mean()) for b in grouped]
    assert means != sorted(means) and means != sorted(means, reverse=True)


def test_length_grouping_under_ddp_and_bad_lengths(monkeypatch):
    lengths = np.random.default_rng(1).integers(1, 100, size=101)
    seen = []
    for rank in (0, 1):
        monkeypatch.setattr(BatchIndexSampler, "_world", staticmethod(lambda r=rank: (r, 2)))
        parts = list(BatchIndexSampler(101, 10, shuffle=True, seed=1, lengths=lengths))
        assert len(parts) == 6
        seen.append(torch.cat(parts))
    assert set(torch.cat(seen).tolist()) == set(range(101))
    with pytest.raises(ValueError, match="lengths has 50 entries for 101 rows"):
        BatchIndexSampler(101, 10, shuffle=True, seed=1, lengths=lengths[:50])
