"""Helpers for the data-layer tests: tiny config dicts and file writers (imported as ``data_helpers``)."""

from __future__ import annotations

from pathlib import Path


def make_cfg(fmt: str, data_dir: Path | None, **overrides) -> dict:
    cfg = {
        "name": f"t-{fmt}",
        "format": fmt,
        "data_dir": None if data_dir is None else str(data_dir),
        "max_seq_len": 50,
        "min_rating": None,
        "min_user_inter": 0,
        "min_item_inter": 0,
        "k_core": False,
        "limit_data_rows": None,
        "limit_users": None,
        "id_order": "sorted",
        "split": {"method": "leave_one_out"},
        "num_candidates": 20,
        "candidate_seed": 0,
        "write_split_csv": False,
    }
    cfg.update(overrides)
    return cfg


def write_csv(tmp: Path, header: str, rows: list[str], name: str = "interactions.csv") -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / name).write_text(header + "\n" + "".join(r + "\n" for r in rows))
    return tmp


def csv_cfg(data_dir: Path, **overrides) -> dict:
    base = {
        "file": "interactions.csv",
        "sep": ",",
        "columns": {"user": "user", "item": "item", "timestamp": "ts", "rating": None, "title": None},
    }
    base.update(overrides)
    return make_cfg("csv", data_dir, **base)


SYN_SMALL = {
    "num_users": 120,
    "num_items": 150,
    "num_genres": 6,
    "min_len": 8,
    "max_len": 30,
    "drift": 0.15,
    "popularity_skew": 1.1,
    "markov": 0.5,
    "seed": 3,
}


def synthetic_cfg(**overrides) -> dict:
    cfg = make_cfg("synthetic", None, max_seq_len=30, synthetic=dict(SYN_SMALL))
    cfg.update(overrides)
    return cfg
