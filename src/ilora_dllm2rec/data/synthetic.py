"""Deterministic MovieLens-like synthetic interactions (the embedded default and the test fixture).

Model (all draws from ``numpy.random.default_rng(dataset.synthetic.seed)``):
- items are spread evenly over genres; each gets a title made of genre words and a year,
  e.g. "Midnight Harbor Heist (1987)" for crime; popularity is Zipf(``popularity_skew``) within a genre;
- every genre arranges its items in a cycle ("series": item -> its sequel); this is the
  learnable sequential signal: with probability ``markov`` a user's next item is the sequel of the
  previous one, otherwise a popularity-weighted pick from the user's current genre;
- users have 1-3 favourite genres (popular genres more often) and start in one of them; each step the
  current genre drifts to a neighbouring genre with probability ``drift`` (mostly "upwards", so
  drift is temporal, not noise) and jumps back to a favourite with probability ``drift / 2``;
- no item repeats within a user; timestamps strictly increase; lengths lie in [min_len, max_len],
  skewed to short histories; ratings 1..5 are higher inside favourite genres.
File order is user by user (as ml-1m's ratings.dat). Titles are keyed by raw item id 1..num_items.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ilora_dllm2rec.core.schema import check
from ilora_dllm2rec.core.schema_data import SyntheticDataset
from ilora_dllm2rec.data.options import DatasetOptions
from ilora_dllm2rec.data.raw import RawData

GENRES = {  # genre -> words that mark it in titles, and the decade its films cluster around
    "crime": (["Heist", "Alibi", "Syndicate", "Getaway", "Verdict", "Racket"], 1975),
    "sci-fi": (["Orbit", "Android", "Nebula", "Protocol", "Signal", "Colony"], 1995),
    "romance": (["Kiss", "Promise", "Letters", "Wedding", "Heartbeat", "Affair"], 1990),
    "horror": (["Haunting", "Curse", "Shadows", "Ritual", "Scream", "Crypt"], 1985),
    "comedy": (["Mixup", "Vacation", "Roommates", "Prank", "Blunder", "Party"], 1992),
    "western": (["Outlaw", "Saddle", "Frontier", "Sheriff", "Canyon", "Rustler"], 1960),
    "war": (["Battalion", "Front", "Siege", "Convoy", "Trenches", "Armistice"], 1965),
    "animation": (["Critters", "Toybox", "Dragonling", "Puppets", "Kingdom", "Fairytale"], 2000),
    "documentary": (["Chronicle", "Inquiry", "Portrait", "Expedition", "Archive", "Report"], 2005),
    "musical": (["Melody", "Serenade", "Rhapsody", "Chorus", "Overture", "Waltz"], 1958),
    "thriller": (["Conspiracy", "Witness", "Ransom", "Pursuit", "Deadline", "Cipher"], 1993),
    "fantasy": (["Sorcerer", "Amulet", "Quest", "Wizardry", "Labyrinth", "Unicorn"], 1998),
}
ADJECTIVES = [
    "Midnight",
    "Silent",
    "Golden",
    "Broken",
    "Crimson",
    "Lonely",
    "Last",
    "Hidden",
    "Wild",
    "Electric",
    "Northern",
    "Burning",
    "Velvet",
    "Frozen",
    "Distant",
    "Secret",
]
PLACES = [
    "Harbor",
    "Avenue",
    "Valley",
    "Station",
    "Island",
    "Hotel",
    "Bridge",
    "Garden",
    "Desert",
    "Tower",
    "River",
    "Market",
    "Canyon",
    "Palace",
    "Circus",
    "Harbour",
]


def _params(opts: DatasetOptions) -> dict:
    """The generator's settings: ``dataset.synthetic`` as checked by the schema (core/schema_groups.py)."""
    spec = opts.spec if opts.spec is not None else check(SyntheticDataset, opts.raw, "dataset")
    return dataclasses.asdict(spec.synthetic)  # type: ignore[attr-defined]


def _titles(rng: np.random.Generator, genre_of: np.ndarray) -> dict[int, str]:
    names = list(GENRES)
    titles: dict[int, str] = {}
    for g in range(int(genre_of.max()) + 1):
        words, decade = GENRES[names[g % len(names)]]
        members = np.flatnonzero(genre_of == g)
        combos = rng.choice(len(ADJECTIVES) * len(PLACES) * len(words), size=members.size, replace=False)
        years = np.clip(decade + rng.normal(0, 12, members.size).round().astype(int), 1930, 2023)
        for item, c, year in zip(members.tolist(), combos.tolist(), years.tolist()):
            a, rest = divmod(c, len(PLACES) * len(words))
            pl, w = divmod(rest, len(words))
            suffix = "" if g < len(names) else f" {g // len(names) + 1}"  # more genres than vocabularies
            titles[item + 1] = f"{ADJECTIVES[a]} {PLACES[pl]} {words[w]}{suffix} ({year})"
    return titles


def generate_synthetic(opts: DatasetOptions) -> RawData:
    p = _params(opts)
    rng = np.random.default_rng(int(p["seed"]))
    n_items, n_genres = p["num_items"], min(p["num_genres"], p["num_items"])
    genre_of = rng.permutation(np.arange(n_items) % n_genres)
    members = [np.flatnonzero(genre_of == g) for g in range(n_genres)]
    cdfs, sequel = [], np.empty(n_items, dtype=np.int64)
    for g, m in enumerate(list(members)):
        members[g] = rng.permutation(m)  # order = popularity rank inside the genre
        w = 1.0 / np.arange(1, m.size + 1) ** float(p["popularity_skew"])
        cdfs.append(np.cumsum(w) / w.sum())
        cycle = rng.permutation(m)
        sequel[cycle] = np.roll(cycle, -1)
    genre_w = 1.0 / np.sqrt(np.arange(1, n_genres + 1))
    genre_w /= genre_w.sum()
    span = p["max_len"] - p["min_len"]
    lengths = np.minimum(p["min_len"] + rng.exponential(span / 3 + 1e-9, p["num_users"]).astype(int), p["max_len"])
    drift, markov = float(p["drift"]), float(p["markov"])
    users, items, stamps, ratings = [], [], [], []
    for u in range(p["num_users"]):
        n = int(lengths[u])
        favs = rng.choice(n_genres, size=min(int(rng.integers(1, 4)), n_genres), replace=False, p=genre_w).tolist()
        g, prev, seen = favs[0], -1, set()
        draws = rng.random((n, 4)).tolist()
        for r_drift, r_dir, r_markov, r_pick in draws:
            if r_drift < drift:
                g = (g + (1 if r_dir < 0.75 else -1)) % n_genres
            elif r_drift < 1.5 * drift:
                g = favs[int(r_dir * len(favs))]
            item = int(sequel[prev]) if prev >= 0 and r_markov < markov else -1
            if item < 0 or item in seen:
                item = _pick(members[g], cdfs[g], r_pick, seen, rng)
            if item < 0:  # the genre is exhausted for this user: any unseen item
                item = int(rng.choice(np.setdiff1d(np.arange(n_items), list(seen))))
            g = int(genre_of[item])
            seen.add(item)
            prev = item
            items.append(item)
        users.extend([u + 1] * n)
        start = 946_684_800 + int(rng.integers(0, 3 * 365 * 86400))
        stamps.extend((start + np.cumsum(rng.integers(60, 3 * 86400, n))).tolist())
        fav_items = np.isin(genre_of[np.asarray(items[-n:])], favs)
        ratings.extend(np.clip(np.rint(3.2 + 1.2 * fav_items + rng.normal(0, 0.9, n)), 1, 5).tolist())
    df = pd.DataFrame(
        {
            "user": np.asarray(users, np.int64),
            "item": np.asarray(items, np.int64) + 1,
            "timestamp": np.asarray(stamps, np.int64),
            "rating": np.asarray(ratings, np.float64),
        }
    )
    return RawData(df, _titles(rng, genre_of))


def _pick(members: np.ndarray, cdf: np.ndarray, r: float, seen: set, rng: np.random.Generator) -> int:
    """Popularity-weighted unseen item of a genre (-1 when the user has seen them all)."""
    for _ in range(8):
        item = int(members[min(int(np.searchsorted(cdf, r)), members.size - 1)])
        if item not in seen:
            return item
        r = float(rng.random())
    rest = [int(i) for i in members if int(i) not in seen]
    return rest[0] if rest else -1
