"""The second training phase: the ranking head refitted on cached LLM states (teacher/head_refit.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from teacher_helpers import NUM_ITEMS

from ilora_dllm2rec.core.errors import ConfigError
from ilora_dllm2rec.data.types import SampleSet
from ilora_dllm2rec.teacher.head_refit import cache_states, check_refit_config, refit_head

REFIT = {"samples": 64, "epochs": 4, "patience": 4, "lr": 5e-2, "weight_decay": 0.0, "batch_size": 16}


def samples(n: int, seed: int) -> SampleSet:
    """Histories of 1-6 items (prompts of different lengths, so the length grouping reorders rows)."""
    rng = np.random.default_rng(seed)
    seq = np.full((n, 6), NUM_ITEMS, dtype=np.int64)
    len_seq = rng.integers(1, 7, size=n)
    for row, length in enumerate(len_seq):
        seq[row, :length] = rng.integers(0, NUM_ITEMS, size=length)
    target = (seq[:, 0] + 1) % NUM_ITEMS  # learnable from the history: the refit has something to find
    return SampleSet(seq=seq, len_seq=len_seq, target=target, user=np.arange(n), candidates=None)


def test_cached_states_are_the_forward_pass_states_in_row_order(make_model):
    model = make_model().eval()
    rows = samples(10, 0)
    states = cache_states(model, rows, batch_size=4)
    with torch.no_grad():
        out = model(torch.from_numpy(rows.seq), torch.from_numpy(rows.len_seq))
    assert torch.allclose(states["h"], out["h_u"], atol=1e-4)
    assert torch.allclose(states["z"], out["z_u"], atol=1e-6)
    # scores rebuilt from the cached states are the model's scores
    seq, len_seq = torch.from_numpy(rows.seq), torch.from_numpy(rows.len_seq)
    _, from_cache = model.head_scores(states["h"], states["z"], seq, len_seq)
    assert torch.allclose(from_cache, out["scores"], atol=1e-4)


def test_refit_trains_the_head_only_and_never_lowers_validation(make_model):
    model = make_model()
    before = {k: v.detach().clone() for k, v in model.named_parameters() if not k.startswith("head.")}
    head_before = model.head.weight.detach().clone()
    result = refit_head(
        model, samples(64, 1), samples(24, 2), OmegaConf.create(REFIT),
        seed=0, ks=[1, 5, 10], exclude_history=False, llm_batch_size=8,
    )  # fmt: skip
    after = dict(model.named_parameters())
    assert all(torch.equal(before[k], after[k]) for k in before)  # adapters, projector, gate, LLM, student
    assert result.num_samples == 64 and len(result.val_ndcg_at_10) == 5
    best = max(result.val_ndcg_at_10)
    assert result.val_ndcg_at_10[result.best_epoch] == best and best >= result.val_ndcg_at_10[0]
    if result.best_epoch == 0:
        assert torch.equal(model.head.weight, head_before)
    else:
        assert not torch.equal(model.head.weight, head_before)


def test_refit_stops_after_patience_epochs_without_improvement(make_model):
    model = make_model()
    cfg = OmegaConf.create({**REFIT, "epochs": 30, "patience": 1, "lr": 1e-9})  # nothing moves: no improvement
    result = refit_head(
        model, samples(32, 1), samples(16, 2), cfg, seed=0, ks=[10], exclude_history=False, llm_batch_size=8
    )
    assert result.best_epoch == 0 and len(result.val_ndcg_at_10) == 2


@pytest.mark.parametrize(
    ("key", "value"), [("samples", -1), ("epochs", 0), ("patience", 0), ("batch_size", 0), ("lr", 0.0)]
)
def test_bad_refit_values_are_config_errors(key, value):
    with pytest.raises(ConfigError, match=f"teacher.head_refit.{key}"):
        check_refit_config(OmegaConf.create({**REFIT, key: value}))


def test_refit_needs_the_item_embedding_head(make_model):
    model = make_model(use_item_embeddings_head=False)
    with pytest.raises(ConfigError, match="use_item_embeddings_head"):
        refit_head(model, samples(8, 1), samples(8, 2), OmegaConf.create(REFIT), seed=0, ks=[10],
                   exclude_history=False, llm_batch_size=8)  # fmt: skip
