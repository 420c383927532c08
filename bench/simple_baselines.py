"""Sanity-check baselines for the student benchmark: popularity and Markov chains over item transitions.

All counts come from the TRAINING samples only (history -> target); scores are evaluated with the
platform's own evaluator (full ranking, half-ties rule, candidate protocol), like every model.

- popularity: score_j = how often item j is a training target.
- first-order Markov: score_j = count(last history item -> j) + popularity / total (tie-break only).
- "third-order" Markov: score_j = sum over the LAST THREE history items h of count(h -> j), with the
  same popularity tie-break (first-order transition counts from each of the three most recent items).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ilora_dllm2rec.data import SampleSet, SplitData
from ilora_dllm2rec.student.evaluator import evaluate


def item_before_target(samples: SampleSet, distance: int, pad_id: int) -> np.ndarray:
    """[M] the history item ``distance`` positions before the target (1 = last), ``pad_id`` if none."""
    width = samples.seq.shape[1]
    col = samples.len_seq - distance
    picked = np.take_along_axis(samples.seq, np.clip(col, 0, width - 1)[:, None], axis=1)[:, 0]
    return np.where(col >= 0, picked, pad_id)


def transition_counts(data: SplitData) -> torch.Tensor:
    """[N + 1, N] first-order counts (row N = padding, all zero) from the training samples."""
    n = data.num_items
    src = item_before_target(data.train, 1, n)
    flat = np.bincount(src * n + data.train.target, minlength=(n + 1) * n).reshape(n + 1, n)
    flat[n] = 0
    return torch.from_numpy(flat.astype(np.float32))


def popularity(data: SplitData) -> torch.Tensor:
    return torch.from_numpy(data.train_target_counts().astype(np.float32))


def score_fns(data: SplitData) -> dict:
    """name -> score_fn(batch) -> [B, N] for the evaluator."""
    pop = popularity(data)
    trans = transition_counts(data)
    tie = pop / pop.sum()  # < 1: only orders items with equal transition counts
    n = data.num_items

    def last_items(batch: dict, distance: int) -> torch.Tensor:
        col = batch["len_seq"] - distance
        picked = batch["seq"].gather(1, col.clamp(min=0).view(-1, 1)).squeeze(1)
        return torch.where(col >= 0, picked, torch.full_like(picked, n))

    def markov(order: int):
        def fn(batch: dict) -> torch.Tensor:
            scores = tie.expand(batch["seq"].shape[0], n).clone()
            for distance in range(1, order + 1):  # order <= 3: a loop over history positions, not items
                scores += trans[last_items(batch, distance)]
            return scores

        return fn

    return {
        "popularity": lambda batch: pop.expand(batch["seq"].shape[0], n),
        "markov1": markov(1),
        "markov3": markov(3),
    }


def evaluate_simple(data: SplitData, name: str, eval_batch_size: int = 1024) -> dict:
    """Test metrics of one simple baseline, with fit + evaluation time."""
    start = time.perf_counter()
    fn = score_fns(data)[name]
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    test = evaluate(fn, data.test, batch_size=eval_batch_size)
    eval_s = time.perf_counter() - start
    return {"test": test, "fit_s": fit_s, "eval_s": eval_s, "eval_users_per_s": len(data.test) / eval_s}
