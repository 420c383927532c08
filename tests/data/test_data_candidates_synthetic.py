"""Candidate lists and the synthetic generator (determinism, structure, sequential signal)."""

from __future__ import annotations

import re
import time

import numpy as np
from data_helpers import synthetic_cfg

from ilora_dllm2rec.data import prepare_data
from ilora_dllm2rec.data.candidates import sample_negatives
from ilora_dllm2rec.data.options import dataset_options
from ilora_dllm2rec.data.synthetic import generate_synthetic


def _full_sequences(split):
    """user -> every item (test history + target; max_seq_len >= max_len keeps whole sequences)."""
    t = split.test
    return {int(u): set(t.seq[r, : t.len_seq[r]].tolist()) | {int(t.target[r])} for r, u in enumerate(t.user)}


def test_candidates_target_first_distinct_never_seen_and_seeded():
    split = prepare_data(synthetic_cfg(), None)
    seen = _full_sequences(split)
    for part in (split.val, split.test):
        c = part.candidates
        assert c.shape == (len(part), 20) and c.dtype == np.int64
        np.testing.assert_array_equal(c[:, 0], part.target)
        assert all(len(set(row)) == 20 for row in c.tolist())
        for row, u in zip(c[:, 1:].tolist(), part.user.tolist()):
            assert not set(row) & seen[u]
        assert c.min() >= 0 and c.max() < split.num_items
    again = prepare_data(synthetic_cfg(), None)
    np.testing.assert_array_equal(again.test.candidates, split.test.candidates)
    other = prepare_data(synthetic_cfg(candidate_seed=1), None)
    assert not np.array_equal(other.test.candidates, split.test.candidates)
    np.testing.assert_array_equal(other.test.target, split.test.target)


def test_negatives_are_uniform_and_dense_rows_use_exact_sampling():
    rng = np.random.default_rng(0)
    rows = np.repeat(np.arange(2000), 10)
    items = np.tile(np.arange(10), 2000)  # every row excludes items 0..9 of 30
    neg = sample_negatives(rows, items, 2000, 30, 5, rng)
    assert neg.min() >= 10 and all(len(set(r)) == 5 for r in neg.tolist())
    counts = np.bincount(neg.ravel(), minlength=30)[10:]
    assert np.all(np.abs(counts / counts.mean() - 1) < 0.15)  # ~500 each
    dense = sample_negatives(np.zeros(5, np.int64), np.arange(5), 1, 25, 19, rng)  # 20 allowed, 19 needed
    assert set(dense[0].tolist()) <= set(range(5, 25)) and len(set(dense[0].tolist())) == 19


def test_synthetic_deterministic_by_seed_and_movielens_like():
    t0 = time.perf_counter()
    a = generate_synthetic(dataset_options(synthetic_cfg()))
    assert time.perf_counter() - t0 < 1.0
    b = generate_synthetic(dataset_options(synthetic_cfg()))
    assert a.interactions.equals(b.interactions) and a.titles == b.titles
    c = generate_synthetic(dataset_options(synthetic_cfg(synthetic={"seed": 4})))
    assert not a.interactions.equals(c.interactions)
    df = a.interactions
    lengths = df.groupby("user").size()
    assert lengths.min() >= 8 and lengths.max() <= 30 and df["user"].nunique() == 120
    assert (df.groupby("user")["timestamp"].diff().dropna() > 0).all()  # strictly increasing per user
    assert not df.duplicated(["user", "item"]).any()
    assert set(df["rating"].unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert all(re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+ [A-Z][a-z]+ \(\d{4}\)", t) for t in a.titles.values())
    assert len(set(a.titles.values())) == len(a.titles) == 150


def test_default_synthetic_config_generates_fast():
    cfg = synthetic_cfg(max_seq_len=50)
    cfg.pop("synthetic")  # generator defaults = conf/dataset/synthetic.yaml
    t0 = time.perf_counter()
    split = prepare_data(cfg, None)
    assert time.perf_counter() - t0 < 2.0
    assert split.num_items == 400 and len(split.test) == 600


def _hit_rate(scores: np.ndarray, part, k: int = 10) -> float:
    scores = scores.astype(np.float64).copy()
    rows, cols = np.nonzero(np.arange(part.seq.shape[1]) < part.len_seq[:, None])
    scores[rows, part.seq[rows, cols]] = -np.inf  # never recommend a seen item
    target = scores[np.arange(len(part)), part.target]
    return float(((scores > target[:, None]).sum(1) < k).mean())


def test_synthetic_has_sequential_structure():
    split = prepare_data(synthetic_cfg(), None)
    n = split.num_items
    last = split.train.seq[np.arange(len(split.train)), split.train.len_seq - 1]
    trans = np.zeros((n + 1, n))
    np.add.at(trans, (last, split.train.target), 1)  # first-order Markov counts from train
    pop = split.train_target_counts().astype(np.float64)
    val = split.val
    markov = trans[val.seq[np.arange(len(val)), val.len_seq - 1]] + 1e-3 * pop / pop.max()
    hr_markov = _hit_rate(markov, val)
    hr_pop = _hit_rate(np.tile(pop, (len(val), 1)), val)
    assert hr_markov > 2 * hr_pop and hr_markov > 0.3, (hr_markov, hr_pop)
