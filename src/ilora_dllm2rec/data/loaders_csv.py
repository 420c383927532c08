"""Generic interactions CSV: one row per interaction, with a header.

Keys: ``dataset.file``, ``dataset.sep`` and ``dataset.columns.{user,item,timestamp,rating,title}``
(rating/title may be null). Item ids that are all integers are kept as integers (so
``id_order: sorted`` sorts them numerically), otherwise as strings. Timestamps may be numbers or
dates pandas can parse. Line numbers in errors assume one physical line per row (no multi-line quoted fields).
The file's encoding is detected (:func:`~ilora_dllm2rec.data.raw.detect_encoding`: UTF-8 with or without a
BOM, else Latin-1) so titles reach the prompts intact. Duplicate (user, item, timestamp) rows are kept and
counted in the log.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from ilora_dllm2rec.core.errors import ConfigError, DataError
from ilora_dllm2rec.data.options import DatasetOptions
from ilora_dllm2rec.data.raw import RawData, bad_line, detect_encoding, iter_lines, log_duplicates, require_files

REQUIRED = ("user", "item", "timestamp")


def _columns(opts: DatasetOptions) -> dict[str, str | None]:
    cols = dict(opts.raw.get("columns") or {})
    for key in REQUIRED:
        if not cols.get(key):
            raise ConfigError(f"dataset.columns.{key} must name the CSV column holding the {key}")
    return {k: cols.get(k) for k in (*REQUIRED, "rating", "title")}


def csv_files(opts: DatasetOptions) -> list[Path]:
    path = opts.path("file")
    if path is None or opts.data_dir is None:
        raise ConfigError("dataset.file must name the interactions CSV (relative to dataset.data_dir)")
    cols = _columns(opts)
    wanted = ", ".join(c for c in cols.values() if c)
    sep = opts.raw.get("sep", ",")
    fix = f"expected a {sep!r}-separated CSV with a header containing {wanted}; set dataset.data_dir / dataset.file"
    require_files(path.parent, [path], path.name, fix)
    return [path]


def _first_bad_row(path: Path, ok: pd.Series, what: str, values: pd.Series) -> DataError:
    row = int(np.flatnonzero(~ok.to_numpy())[0])
    return bad_line(path, int(values.index[row]) + 2, f"{what} {values.iloc[row]!r} is not valid")


def _ids(s: pd.Series) -> pd.Series:
    num = pd.to_numeric(s, errors="coerce")
    if num.notna().all() and (num == np.floor(num)).all():
        return num.astype(np.int64)
    return s.astype(object)


def _timestamps(path: Path, s: pd.Series) -> pd.Series:
    num = pd.to_numeric(s, errors="coerce")
    if num.notna().all():
        return num.astype(np.int64) if (num == np.floor(num)).all() else num.astype(np.float64)
    dt = pd.to_datetime(s, errors="coerce", format="mixed")
    if dt.notna().all():
        return pd.Series(dt.to_numpy().astype("datetime64[ns]").astype(np.int64), index=s.index)
    raise _first_bad_row(path, num.notna() | dt.notna(), "timestamp", s)


def load_csv(opts: DatasetOptions) -> RawData:
    (path,) = csv_files(opts)
    cols = _columns(opts)
    sep = str(opts.raw.get("sep", ","))
    encoding = detect_encoding(path)
    try:
        df = pd.read_csv(
            path,
            sep=sep,
            dtype=str,
            keep_default_na=False,
            nrows=opts.limit_data_rows,
            engine="c" if len(sep) == 1 else "python",
            encoding=encoding,
        )
    except pd.errors.ParserError as exc:
        raise _field_count_error(path, sep, encoding, opts.limit_data_rows, exc) from exc
    missing = [(k, c) for k, c in cols.items() if c and c not in df.columns]
    if missing:
        k, c = missing[0]
        raise DataError(
            f"{path}: column {c!r} (dataset.columns.{k}) not in header {list(df.columns)}; set dataset.columns.{k}"
        )
    out = pd.DataFrame(index=df.index)
    for key in ("user", "item"):
        s = df[cols[key]].str.strip()
        if (s == "").any():
            raise _first_bad_row(path, s != "", f"empty {key} id", s)
        out[key] = _ids(s)
    out["timestamp"] = _timestamps(path, df[cols["timestamp"]].str.strip())
    if cols["rating"]:
        r = pd.to_numeric(df[cols["rating"]].str.strip(), errors="coerce")
        if r.isna().any():
            raise _first_bad_row(path, r.notna(), "rating", df[cols["rating"]])
        out["rating"] = r.astype(np.float64)
    titles: dict = {}
    if cols["title"]:
        t = pd.DataFrame({"item": out["item"], "title": df[cols["title"]].str.strip()})
        t = t[t["title"] != ""].drop_duplicates("item")
        titles = dict(zip(t["item"].tolist(), t["title"].tolist()))
    out = out.reset_index(drop=True)
    log_duplicates(out, path)
    return RawData(out, titles)


def _field_count_error(path: Path, sep: str, encoding: str, limit: int | None, exc: Exception) -> DataError:
    """Locate the first row whose field count differs from the header (slow path, errors only)."""
    lines = iter_lines(path, encoding, None if limit is None else limit + 1)
    expected = None
    for lineno, line in lines:
        n = len(next(csv.reader([line], delimiter=sep))) if len(sep) == 1 else len(line.split(sep))
        if expected is None:
            expected = n
        elif n != expected:
            return bad_line(path, lineno, f"{n} fields where the header has {expected}", line)
    return DataError(f"{path}: could not parse CSV ({str(exc).splitlines()[0]}); check dataset.sep={sep!r}")
