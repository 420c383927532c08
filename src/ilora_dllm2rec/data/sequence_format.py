"""Sequence-format data sets as DLLM2Rec and LLaRA ship them; each row is one sample, used as is.

Files in ``dataset.data_dir`` (names overridable with ``dataset.train_file``/``val_file``/``test_file``):
``train_data.csv``, ``val_data.csv``, ``test_data.csv`` with columns ``seq`` (a bracketed list of exactly
``max_seq_len`` ids, right-padded with the padding id), ``len_seq`` and ``next``; an optional ``user`` column
is kept (the files :func:`write_split_csv` writes have one). Optional ``data_statis`` (``dataset.data_statis``,
default: the first of data_statis.csv / data_statis / data_statis.txt) holds ``seq_size`` and ``item_num``
as CSV (``seq_size,item_num`` header) or whitespace columns; pickled ``data_statis.df`` is never unpickled.
Optional ``id2name.txt`` (``dataset.id2name_file``) holds ``id::title`` lines.

Item count rule: ``item_num`` from data_statis when present. Otherwise it is the padding value, i.e.
the id found in the padded positions (``seq[j]`` for ``j >= len_seq``), which must be the same
everywhere; if no row is padded at all, ``item_num = 1 + max id`` over all sequences and targets.
Candidates for val/test: target + negatives outside the row's (history + target), fixed seed.
Line numbers in errors count the header as line 1 and assume no blank lines.

Empty histories: this project writes them as ``len_seq = 0`` (all padding). LLaRA's and DROS's public
files write them as all padding with ``len_seq = 1`` (their code reads position ``len_seq - 1``). Such a row
(``len_seq == 1`` and every id the padding id) is read as ``len_seq = 0``; one INFO line per file gives the
count. Decision: these rows are KEPT, in every split. Every student encodes ``len_seq = 0`` by design (GRU4Rec
and SASRec read a zeroed placeholder at position 0, Caser zeroes the padding rows): a finite state that is the
same for every such row, i.e. a learned "no history yet" state, which is exactly what LLaRA/DROS train on
these rows. The teacher gets a prompt without history. Keeping them reproduces those papers' training and
test sets, and treats them like the ``len_seq = 0`` rows this format already accepted. Normalising to 0
matters: left at 1, the padding id would enter prompts and history features as if it were an item.
Any other disagreement between ``len_seq`` and the padding (a padding id among the first ``len_seq`` ids, or
a real id after them) is an error naming ``len_seq``, the file and the line.
Titles (id2name.txt): UTF-8 with or without a BOM, else Latin-1 (detected, logged).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ilora_dllm2rec.core.errors import ConfigError, DataError
from ilora_dllm2rec.data.candidates import sample_negatives, with_targets
from ilora_dllm2rec.data.options import DatasetOptions
from ilora_dllm2rec.data.raw import bad_line, iter_lines, read_titles, require_files
from ilora_dllm2rec.data.types import SampleSet, SplitData

SPLITS = (("train", "train_data.csv"), ("val", "val_data.csv"), ("test", "test_data.csv"))
STATIS_NAMES = ("data_statis.csv", "data_statis", "data_statis.txt")


def _optional(opts: DatasetOptions) -> tuple[Path | None, Path | None]:
    assert opts.data_dir is not None
    statis = opts.path("data_statis")
    if statis is None:
        statis = next((opts.data_dir / n for n in STATIS_NAMES if (opts.data_dir / n).is_file()), None)
    elif not statis.is_file():
        raise DataError(f"dataset.data_statis: {statis} not found; fix the path or set it to null")
    names = opts.path("id2name_file", "id2name.txt")
    return statis, names if names is not None and names.is_file() else None


def sequence_files(opts: DatasetOptions) -> list[Path]:
    assert opts.data_dir is not None
    files = [opts.path(f"{split}_file", default) for split, default in SPLITS]
    what = ", ".join(f.name for f in files) + " (optional data_statis, id2name.txt)"
    require_files(opts.data_dir, files, what, "put the sequence-format CSVs there or set dataset.data_dir")
    return files + [p for p in _optional(opts) if p is not None]


def read_statis(path: Path) -> tuple[int, int]:
    """(seq_size, item_num) from a CSV or whitespace data_statis file."""
    lines = [line for _, line in iter_lines(path, "utf-8-sig", None)]  # numbers only: just drop a BOM
    if len(lines) >= 2:
        head = lines[0].replace(",", " ").split()
        vals = lines[1].replace(",", " ").split()
        if len(vals) == len(head) + 1:  # pandas-printed frame: leading index column
            vals = vals[1:]
        if "seq_size" in head and "item_num" in head and len(vals) == len(head):
            try:
                return int(vals[head.index("seq_size")]), int(vals[head.index("item_num")])
            except ValueError:
                pass
    raise DataError(f"{path}: expected a header 'seq_size,item_num' and one row of integers; fix the file")


def _read_split(path: Path, L: int, limit: int | None) -> pd.DataFrame:
    df = pd.read_csv(path, dtype=str, keep_default_na=False, nrows=limit, engine="c")
    missing = [c for c in ("seq", "len_seq", "next") if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing} (header {list(df.columns)}); need seq, len_seq, next")
    return df


def _ints(path: Path, s: pd.Series, col: str) -> np.ndarray:
    num = pd.to_numeric(s, errors="coerce")
    bad = num.isna() | (num != np.floor(num)) | (num < 0)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise bad_line(path, i + 2, f"{col} {s.iloc[i]!r} is not a non-negative integer")
    return num.to_numpy().astype(np.int64)


def _parse(path: Path, df: pd.DataFrame, L: int) -> dict[str, np.ndarray]:
    s = df["seq"].str.strip()
    framed = s.str.startswith("[") & s.str.endswith("]")
    if not framed.all():
        raise bad_line(path, int(np.flatnonzero(~framed.to_numpy())[0]) + 2, "seq is not a bracketed list")
    inner = s.str[1:-1].str.replace(",", " ", regex=False)
    lens = inner.str.split().str.len().to_numpy()
    if (lens != L).any():
        i = int(np.flatnonzero(lens != L)[0])
        raise DataError(
            f"{path}: line {i + 2}: seq has {lens[i]} ids but dataset.max_seq_len={L}; "
            f"set dataset.max_seq_len to the files' sequence length"
        )
    try:
        seq = np.array(" ".join(inner).split()).astype(np.int64).reshape(-1, L)
    except ValueError:
        for i, row in enumerate(inner):
            if not all(tok.lstrip("-").isdigit() for tok in row.split()):
                raise bad_line(path, i + 2, "seq holds a non-integer id", df["seq"].iloc[i]) from None
        raise
    out = {"seq": seq, "len_seq": _ints(path, df["len_seq"], "len_seq"), "next": _ints(path, df["next"], "next")}
    over = np.flatnonzero(out["len_seq"] > L)
    if over.size:
        raise bad_line(path, int(over[0]) + 2, f"len_seq {out['len_seq'][over[0]]} exceeds max_seq_len {L}")
    if (seq < 0).any():
        raise bad_line(path, int(np.flatnonzero((seq < 0).any(1))[0]) + 2, "seq holds a negative id")
    out["user"] = np.full(len(df), -1, np.int64)
    if "user" in df.columns:  # written by write_split_csv; -1 = unknown
        user = pd.to_numeric(df["user"], errors="coerce")
        bad = (user.isna() | (user != np.floor(user)) | (user < -1)).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise bad_line(path, i + 2, f"user {df['user'].iloc[i]!r} is not an integer >= -1")
        out["user"] = user.to_numpy().astype(np.int64)
    return out


def _infer_item_num(parts: list[dict[str, np.ndarray]], L: int, data_dir: Path) -> int:
    ar = np.arange(L)
    pads = np.unique(np.concatenate([p["seq"][ar >= p["len_seq"][:, None]] for p in parts]))
    if pads.size > 1:
        raise DataError(
            f"{data_dir}: padded positions (after len_seq) hold different ids {pads[:5].tolist()}, so item_num "
            f"cannot be inferred; add a data_statis.csv file (seq_size,item_num) there"
        )
    if pads.size == 1:
        return int(pads[0])
    return 1 + int(max(max(p["seq"].max(initial=-1), p["next"].max(initial=-1)) for p in parts))


def _empty_histories(path: Path, p: dict[str, np.ndarray], item_num: int, log: logging.Logger) -> None:
    """LLaRA/DROS write an empty history as all padding with len_seq 1: set len_seq to 0 (module docstring)."""
    empty = (p["len_seq"] == 1) & (p["seq"] == item_num).all(1)
    count = int(empty.sum())
    if count:
        p["len_seq"][empty] = 0
        log.info(
            "%s: %d rows with an empty history (all padding with len_seq 1, the LLaRA/DROS convention) "
            "read as len_seq 0 and kept",
            path,
            count,
        )


def _check_ids(path: Path, p: dict[str, np.ndarray], item_num: int, source: str) -> None:
    seq, len_seq = p["seq"], p["len_seq"]
    real = np.arange(seq.shape[1]) < len_seq[:, None]
    # ids above the padding id (or a target >= it) are out of range; the padding id itself inside the first
    # len_seq positions is a len_seq mismatch, checked below with its own message
    over = (real & (seq > item_num)).any(1) | (p["next"] >= item_num)
    if over.any():
        i = int(np.flatnonzero(over)[0])
        row_ids = np.append(seq[i][real[i]], p["next"][i])
        raise DataError(
            f"{path}: line {i + 2}: item id {int(row_ids.max())} >= item_num {item_num} ({source}); "
            f"fix the ids or data_statis' item_num"
        )
    pad_inside = (real & (seq == item_num)).any(1)  # LLaRA's empty rows are already len_seq 0 here
    if pad_inside.any():
        i = int(np.flatnonzero(pad_inside)[0])
        j = int(np.flatnonzero(seq[i] == item_num)[0])
        k = int((seq[i] != item_num).sum())
        raise bad_line(
            path,
            i + 2,
            f"len_seq {len_seq[i]} but seq holds {k} non-padding ids (position {j + 1} holds the padding id "
            f"{item_num}); len_seq must count the real ids before the padding (0, or 1 LLaRA-style for an "
            f"all-padding row)",
        )
    wrong_pad = (~real & (seq != item_num)).any(1)
    if wrong_pad.any():
        i = int(np.flatnonzero(wrong_pad)[0])
        j = int(np.flatnonzero(~real[i] & (seq[i] != item_num))[0])
        raise bad_line(
            path,
            i + 2,
            f"len_seq {len_seq[i]} but seq holds id {seq[i][j]} at position {j + 1}; seq must be right-padded "
            f"with the padding id item_num={item_num} ({source}) after the first len_seq ids",
        )


def load_sequence(opts: DatasetOptions, logger: logging.Logger | None = None) -> SplitData:
    """Read the three split files and build a SplitData (fingerprint left empty)."""
    log = logger or logging.getLogger(__name__)
    files = sequence_files(opts)[:3]
    statis, names = _optional(opts)
    L = opts.max_seq_len
    parts = [_parse(f, _read_split(f, L, opts.limit_data_rows), L) for f in files]
    for f, p in zip(files, parts):
        if p["next"].size == 0:
            raise DataError(f"{f}: no samples (dataset.limit_data_rows={opts.limit_data_rows}); check the file")
    if statis is not None:
        seq_size, item_num = read_statis(statis)
        if seq_size != L:
            raise ConfigError(f"dataset.max_seq_len={L} but {statis} says seq_size={seq_size}; make them equal")
        source = f"from {statis.name}"
    else:
        item_num, source = _infer_item_num(parts, L, files[0].parent), "inferred from the padding id"
    for f, p in zip(files, parts):
        _empty_histories(f, p, item_num, log)
        _check_ids(f, p, item_num, source)
    rng = np.random.default_rng(opts.candidate_seed)
    sets = []
    for split, path, p in zip(("train", "val", "test"), files, parts):
        s = SampleSet(p["seq"], p["len_seq"], p["next"], p["user"])
        if split != "train":
            rows, cols = np.nonzero(np.arange(L) < s.len_seq[:, None])
            excl_rows = np.concatenate([rows, np.arange(len(s))])
            excl_items = np.concatenate([s.seq[rows, cols], s.target])
            neg = sample_negatives(
                excl_rows,
                excl_items,
                len(s),
                item_num,
                opts.num_candidates - 1,
                rng,
                describe=lambda r, f=path: f"{f}: line {r + 2}: the row",
            )
            s.candidates = with_targets(s.target, neg)
        sets.append(s)
    titles = read_titles(names, "::", maxsplit=1) if names is not None else {}
    item_titles = [titles.get(i, f"item {i}") for i in range(item_num)]
    return SplitData(opts.name, item_num, L, item_titles, *sets, "", [str(i) for i in range(item_num)])
