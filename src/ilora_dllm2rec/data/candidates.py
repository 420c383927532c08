"""Candidate lists for val/test: column 0 is the target, then ``k`` negatives.

Negatives are drawn uniformly WITHOUT replacement from the items a row's group (a user,
or one sequence-format row) never interacted with. Vectorised rejection sampling: draw a
block of uniform ids per row, drop excluded ids and repeats (first occurrence wins, which is
exactly sequential sampling without replacement), keep the first ``k`` survivors; rows that
come up short redraw with a bigger block, and very dense rows fall back to an exact
``rng.choice`` over their allowed items. Deterministic for a given numpy Generator.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ilora_dllm2rec.core.errors import DataError

_MAX_BLOCK = 4_000_000  # draws per chunk: bounds memory whatever the number of rows


def sample_negatives(
    excl_rows: np.ndarray,
    excl_items: np.ndarray,
    num_rows: int,
    num_items: int,
    k: int,
    rng: np.random.Generator,
    describe: Callable[[int], str] = lambda r: f"row {r}",
) -> np.ndarray:
    """[num_rows, k] negatives; row r avoids every ``excl_items[excl_rows == r]``."""
    n = np.int64(num_items)
    excl = np.sort(excl_rows.astype(np.int64) * n + excl_items.astype(np.int64))
    excl = excl[np.concatenate([[True], excl[1:] != excl[:-1]])]  # sorted unique (faster than np.unique)
    avail = n - np.bincount(excl // n, minlength=num_rows)
    short = np.flatnonzero(avail < k)
    if short.size:
        r = int(short[0])
        raise DataError(
            f"{describe(r)} interacted with {n - avail[r]} of {n} items, leaving fewer than {k} negatives for "
            f"its candidate list; lower dataset.num_candidates or filter such users (dataset.min_item_inter/k_core)"
        )
    out = np.empty((num_rows, k), dtype=np.int64)
    pending = np.arange(num_rows, dtype=np.int64)
    block = 2 * k + 16
    while pending.size:
        if block > 8 * n:  # very dense rows: exact sampling over the allowed items
            for r in pending.tolist():
                banned = excl[(excl >= r * n) & (excl < (r + 1) * n)] - r * n
                out[r] = rng.choice(np.setdiff1d(np.arange(n), banned), size=k, replace=False)
            break
        still: list[np.ndarray] = []
        step = max(1, _MAX_BLOCK // block)
        for start in range(0, pending.size, step):
            rows = pending[start : start + step]
            draws = rng.integers(0, n, size=(rows.size, block), dtype=np.int64)
            keys = (rows[:, None] * n + draws).ravel()
            pos = np.minimum(np.searchsorted(excl, keys), max(excl.size - 1, 0))
            valid = excl[pos] != keys if excl.size else np.ones(keys.size, dtype=bool)
            order = np.argsort(keys, kind="stable")  # repeats within a row: keep the first draw
            sk = keys[order]
            valid[order[1:][sk[1:] == sk[:-1]]] = False
            valid = valid.reshape(rows.size, block)
            rank = np.cumsum(valid, axis=1)
            done = rank[:, -1] >= k
            take = valid & (rank <= k) & done[:, None]
            out[rows[done]] = draws[take].reshape(-1, k)
            still.append(rows[~done])
        pending = np.concatenate(still)
        block *= 4
    return out


def with_targets(target: np.ndarray, negatives: np.ndarray) -> np.ndarray:
    return np.concatenate([target.astype(np.int64)[:, None], negatives], axis=1)
