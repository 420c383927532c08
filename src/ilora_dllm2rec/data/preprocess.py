"""Raw interactions -> leave-one-out splits (ALGORITHMS.md section 1).

Order of operations:
1. ``limit_data_rows``: first rows of the raw file (loaders already stop reading there);
2. ``min_rating`` (keep rating >= min_rating), then ``min_item_inter``, then ``min_user_inter``;
   with ``k_core`` the item/user filters repeat until nothing changes;
3. users with fewer than 3 interactions are dropped (leave-one-out needs n >= 3);
4. users are numbered in order of first appearance in the FILTERED table (file order);
   ``limit_users`` keeps the first ones;
5. each user's interactions are sorted by timestamp with a stable sort (ties keep file order);
6. item ids are remapped to ``0..N-1`` following ``id_order``: ``sorted`` (default) numbers the
   raw ids in ascending order (numeric for integer ids, lexicographic for strings), so the
   mapping does not depend on row order; ``first_appearance`` numbers them by first appearance
   in the filtered file. The padding id is ``N``;
7. leave-one-out over ``x_0..x_{n-1}``: test = (x_0..x_{n-2}, x_{n-1}), val = (x_0..x_{n-3}, x_{n-2}),
   train = (x_0..x_{t-1}, x_t) for t in 1..n-3; histories keep the last L items, RIGHT-padded with N;
8. val then test candidates: target + negatives the user never interacted with, drawn with
   ``numpy.random.default_rng(candidate_seed)``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ilora_dllm2rec.core.errors import ConfigError, DataError
from ilora_dllm2rec.data.candidates import sample_negatives, with_targets
from ilora_dllm2rec.data.options import DatasetOptions
from ilora_dllm2rec.data.raw import RawData
from ilora_dllm2rec.data.types import SampleSet, SplitData


def filter_interactions(df: pd.DataFrame, opts: DatasetOptions) -> pd.DataFrame:
    """Apply limit_data_rows, min_rating, min_item_inter, min_user_inter (k_core: repeat); keeps file order."""
    if opts.limit_data_rows is not None:
        df = df.iloc[: opts.limit_data_rows]
    if opts.min_rating is not None:
        if "rating" not in df.columns:
            raise ConfigError(f"dataset.min_rating={opts.min_rating} but {opts.name} has no ratings; set it to null")
        df = df[df["rating"].to_numpy() >= opts.min_rating]
    users = pd.factorize(df["user"])[0]
    items = pd.factorize(df["item"])[0]
    keep = np.ones(len(df), dtype=bool)
    while True:
        before = int(keep.sum())
        for codes, minimum in ((items, opts.min_item_inter), (users, opts.min_user_inter)):
            if minimum > 1:
                counts = np.bincount(codes[keep], minlength=codes.max(initial=-1) + 1)
                keep &= counts[codes] >= minimum
        if not opts.k_core or int(keep.sum()) == before:
            break
    counts = np.bincount(users[keep], minlength=users.max(initial=-1) + 1)
    keep &= counts[users] >= 3  # leave-one-out needs a train/val/test position
    out = df[keep]
    if out.empty:
        raise DataError(
            f"dataset {opts.name}: no user with >= 3 interactions left after filtering (limit_data_rows="
            f"{opts.limit_data_rows}, min_rating={opts.min_rating}, min_item_inter={opts.min_item_inter}, "
            f"min_user_inter={opts.min_user_inter}, k_core={opts.k_core}); relax these dataset.* keys or check the data"
        )
    return out


def _windows(items: np.ndarray, pos: np.ndarray, hist_len: np.ndarray, L: int, pad: int) -> np.ndarray:
    """Row m = items[pos[m]-hist_len[m] : pos[m]] right-padded with ``pad`` to length L."""
    ext = np.concatenate([items, np.full(L, pad, dtype=np.int64)])  # windows near the end stay in bounds
    view = np.lib.stride_tricks.sliding_window_view(ext, L)
    out = view[pos - hist_len]  # one row copy per sample
    short = np.flatnonzero(hist_len < L)  # only these rows hold padding
    if short.size:
        ar = np.arange(L)
        out[short] = np.where(ar < hist_len[short, None], out[short], pad)
    return out


def build_splits(raw: RawData, opts: DatasetOptions, logger: logging.Logger | None = None) -> SplitData:
    """Filter, remap, sort and split; returns SplitData with an empty fingerprint (set by prepare_data)."""
    log = logger or logging.getLogger(__name__)
    n_raw = len(raw.interactions)
    df = filter_interactions(raw.interactions, opts)
    user_codes, user_raw = pd.factorize(df["user"])  # first appearance in the filtered table
    if opts.limit_users is not None:
        keep = user_codes < opts.limit_users
        df, user_codes, user_raw = df[keep], user_codes[keep], user_raw[: opts.limit_users]
    if opts.id_order == "sorted":
        item_raw = np.sort(pd.unique(df["item"].to_numpy()))  # hash-unique then sort the few uniques: fast
        item_codes = np.searchsorted(item_raw, df["item"].to_numpy())
    else:
        item_codes, item_raw = pd.factorize(df["item"])
        item_raw = np.asarray(item_raw)
    num_items = int(item_raw.size)
    ts = df["timestamp"].to_numpy()
    order = np.argsort(ts, kind="stable")  # two stable passes = sort by (user, timestamp), ties in file order
    order = order[np.argsort(user_codes[order], kind="stable")]
    users = user_codes[order].astype(np.int64)
    items = np.asarray(item_codes)[order].astype(np.int64)

    counts = np.bincount(users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    t = np.arange(users.size) - starts[users]
    n = counts[users]
    L, pad = opts.max_seq_len, num_items

    def make(mask: np.ndarray) -> SampleSet:
        pos = np.flatnonzero(mask)
        h = np.minimum(t[pos], L)
        return SampleSet(_windows(items, pos, h, L, pad), h.astype(np.int64), items[pos].copy(), users[pos].copy())

    train, val, test = make((t >= 1) & (t <= n - 3)), make(t == n - 2), make(t == n - 1)
    rng = np.random.default_rng(opts.candidate_seed)
    user_ids = user_raw.tolist()  # plain Python ids for messages
    for part in (val, test):
        neg = sample_negatives(
            users,
            items,
            counts.size,
            num_items,
            opts.num_candidates - 1,
            rng,
            describe=lambda r: f"user {user_ids[r]!r} of {opts.name}",
        )
        part.candidates = with_targets(part.target, neg[part.user])
    raw_ids = item_raw.tolist()
    titles = [str(raw.titles.get(r, f"item {r}")) for r in raw_ids]
    log.info(
        "%s: %d raw interactions -> %d kept, %d users, %d items; %d train / %d val / %d test samples",
        opts.name,
        n_raw,
        users.size,
        counts.size,
        num_items,
        len(train),
        len(val),
        len(test),
    )
    return SplitData(opts.name, num_items, L, titles, train, val, test, "", [str(r) for r in raw_ids])
