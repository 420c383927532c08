"""Amazon review dumps (McAuley et al.): reviews + metadata, one record per line.

Reviews (``dataset.reviews_file``): ``reviewerID``, ``asin``, ``unixReviewTime`` and optionally
``overall`` (the rating). Metadata (``dataset.meta_file``, may be null): ``asin``, ``title``.
The 2014 dumps write metadata as Python dict literals (single quotes), the 2018 ones as JSON:
each line is tried as JSON first, then with :func:`ast.literal_eval` (never ``eval``).
Metadata lines of items absent from the reviews are skipped before parsing (cheap asin regex).
Duplicate (user, item) reviews are kept as separate interactions; exact (user, item, time) repeats are
counted in the log. The metadata's encoding is detected (:func:`~ilora_dllm2rec.data.raw.detect_encoding`:
UTF-8 with or without a BOM, else Latin-1) so titles reach the prompts intact.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ilora_dllm2rec.core.errors import DataError
from ilora_dllm2rec.data.options import DatasetOptions
from ilora_dllm2rec.data.raw import RawData, bad_line, detect_encoding, iter_lines, log_duplicates, require_files

_ASIN = re.compile(r"""["']asin["']\s*:\s*["']([^"']+)["']""")


def amazon_files(opts: DatasetOptions) -> list[Path]:
    reviews = opts.path("reviews_file")
    meta = opts.path("meta_file")
    if reviews is None or opts.data_dir is None:
        raise DataError("dataset.reviews_file must name the Amazon reviews JSON-lines file")
    files = [reviews] + ([meta] if meta is not None else [])
    names = " and ".join(f.name for f in files)
    fix = "download the Amazon review dump (reviews + metadata JSON lines) and set dataset.data_dir / reviews_file"
    require_files(opts.data_dir, files, names, fix)
    return files


def _record(path: Path, lineno: int, line: str) -> dict:
    try:
        rec = json.loads(line)
    except json.JSONDecodeError:
        try:
            rec = ast.literal_eval(line)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise bad_line(path, lineno, "neither JSON nor a Python dict literal", line) from None
    if not isinstance(rec, dict):
        raise bad_line(path, lineno, "expected one JSON object per line", line)
    return rec


def load_amazon(opts: DatasetOptions) -> RawData:
    files = amazon_files(opts)
    reviews = files[0]
    users: list = []
    items: list = []
    stamps: list = []
    ratings: list = []
    # ids and times are ASCII: only a BOM could hurt, and utf-8-sig drops it without a detection pass
    for lineno, line in iter_lines(reviews, "utf-8-sig", opts.limit_data_rows):
        rec = _record(reviews, lineno, line)
        try:
            users.append(str(rec["reviewerID"]))
            items.append(str(rec["asin"]))
            stamps.append(int(rec["unixReviewTime"]))
        except (KeyError, TypeError, ValueError):
            raise bad_line(reviews, lineno, "needs reviewerID, asin and an integer unixReviewTime", line) from None
        ratings.append(rec.get("overall", np.nan))
    df = pd.DataFrame(
        {
            "user": pd.Series(users, dtype=object),
            "item": pd.Series(items, dtype=object),
            "timestamp": np.asarray(stamps, dtype=np.int64),
        }
    )
    rating = pd.to_numeric(pd.Series(ratings, dtype=object), errors="coerce").astype(np.float64)
    if len(df) and rating.notna().all():
        df["rating"] = rating.to_numpy()
    log_duplicates(df, reviews)
    titles = _titles(files[1], set(items)) if len(files) > 1 else {}
    return RawData(df, titles)


def _titles(meta: Path, wanted: set) -> dict:
    titles: dict = {}
    for lineno, line in iter_lines(meta, detect_encoding(meta), None):
        m = _ASIN.search(line)
        if m is not None and m.group(1) not in wanted:
            continue  # skip parsing metadata of items nobody reviewed (the dumps are large)
        rec = _record(meta, lineno, line)
        if "asin" not in rec:
            raise bad_line(meta, lineno, "metadata record has no asin", line)
        title = rec.get("title")
        if isinstance(title, str) and title.strip():
            titles[str(rec["asin"])] = " ".join(title.split())
    return titles
