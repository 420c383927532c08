"""Split cache and CSV export.

Cache key (``SplitData.fingerprint``): sha256 over the resolved dataset config (JSON, sorted keys,
minus keys that cannot change the arrays: ``data_dir``, ``write_split_csv``,
``prompt_template``), the CONTENT of every source file (name, size, sha256: a re-downloaded, re-extracted or
copied data set with the same bytes keeps its key, and the checkpoints trained on it stay usable; an edited
file changes it; hashing ml-1m's 24 MB takes ~0.05 s) and :data:`CACHE_VERSION` (bumped when preprocessing
changes).
A cache entry is ``{cache_dir}/{name}_{fingerprint}/`` holding ``splits.npz`` and ``meta.json``; it is
written into a temporary folder first and then renamed, so a folder that exists is complete.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np

from ilora_dllm2rec.core.atomic import atomic_dir, atomic_path
from ilora_dllm2rec.core.errors import ArtifactError
from ilora_dllm2rec.data.types import SampleSet, SplitData

CACHE_VERSION = 1
NON_DATA_KEYS = ("data_dir", "write_split_csv", "prompt_template")
SPLIT_NAMES = ("train", "val", "test")
FIELDS = ("seq", "len_seq", "target", "user", "candidates")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(config: dict, files: list[Path]) -> str:
    cfg = {k: v for k, v in config.items() if k not in NON_DATA_KEYS}
    ident = [[f.name, f.stat().st_size, _file_sha256(f)] for f in files]
    payload = json.dumps({"config": cfg, "files": ident, "version": CACHE_VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def cache_folder(cache_dir: str | Path, name: str, fp: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return Path(cache_dir) / f"{safe}_{fp}"


def save_split(split: SplitData, folder: Path) -> None:
    def fill(tmp: Path) -> None:
        arrays = {}
        for part in SPLIT_NAMES:
            s: SampleSet = getattr(split, part)
            for f in FIELDS:
                a = getattr(s, f)
                if a is not None:  # ids fit in int32: halves the cache size
                    arrays[f"{part}_{f}"] = a.astype(np.int32) if f in ("seq", "candidates") else a
        np.savez(tmp / "splits.npz", **arrays)
        meta = {
            "name": split.name,
            "num_items": split.num_items,
            "max_seq_len": split.max_seq_len,
            "fingerprint": split.fingerprint,
            "item_titles": split.item_titles,
            "raw_item_ids": split.raw_item_ids,
            "summary": split.summary(),
            "cache_version": CACHE_VERSION,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, ensure_ascii=False))

    atomic_dir(folder, fill, lambda f: (f / "meta.json").is_file())  # meta.json is written last


def load_split(folder: Path) -> SplitData:
    try:
        meta = json.loads((folder / "meta.json").read_text())
        with np.load(folder / "splits.npz") as z:
            parts = {
                part: SampleSet(**{f: z[f"{part}_{f}"].astype(np.int64) for f in FIELDS if f"{part}_{f}" in z.files})
                for part in SPLIT_NAMES
            }
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ArtifactError(f"cached splits in {folder} are unreadable ({reason}); delete that folder") from exc
    return SplitData(
        meta["name"],
        meta["num_items"],
        meta["max_seq_len"],
        meta["item_titles"],
        parts["train"],
        parts["val"],
        parts["test"],
        meta["fingerprint"],
        meta["raw_item_ids"],
    )


def _write_samples(path: Path, s: SampleSet, tokens: np.ndarray, chunk: int = 100_000) -> None:
    """Sequence-format CSV, written in chunks (bounded memory; seq is quoted because it holds commas)."""
    tails = np.column_stack([s.len_seq, s.target, s.user])
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("seq,len_seq,next,user\n")
        for start in range(0, len(s), chunk):
            rows = tokens[s.seq[start : start + chunk]].tolist()
            tail = tails[start : start + chunk].tolist()
            fh.write("".join(f'"[{", ".join(r)}]",{a},{b},{c}\n' for r, (a, b, c) in zip(rows, tail)))


def write_split_csv(split: SplitData, out_dir: str | Path) -> list[Path]:
    """Write train.csv/val.csv/test.csv (seq as "[1, 2, ...]", len_seq, next, user) plus data_statis.csv and
    id2name.txt, so the folder is itself a sequence-format data set (dataset.format=sequence with
    train_file=train.csv, val_file=val.csv, test_file=test.csv)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokens = np.array([str(i) for i in range(split.num_items + 1)], dtype=object)  # id -> text, once
    written = []
    for part in SPLIT_NAMES:
        path, samples = out / f"{part}.csv", getattr(split, part)
        with atomic_path(path) as tmp:
            _write_samples(tmp, samples, tokens)
        written.append(path)
    statis = out / "data_statis.csv"
    with atomic_path(statis) as tmp:
        tmp.write_text(f"seq_size,item_num\n{split.max_seq_len},{split.num_items}\n")
    names = out / "id2name.txt"
    text = "".join(f"{i}::{' '.join(t.split())}\n" for i, t in enumerate(split.item_titles))
    with atomic_path(names) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return written + [statis, names]
