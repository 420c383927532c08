"""Shared pieces of the raw loaders: the :class:`RawData` table and robust fast readers.

Every loader returns interactions in FILE ORDER (columns ``user, item, timestamp`` and
``rating`` when the format has one) plus a dict raw item id -> title. Fast paths use the
pandas C parser; when it rejects a file we re-scan it line by line only to report the
first malformed line (file + 1-based line number), so errors stay precise without
slowing down the happy path.

Text encodings (:func:`detect_encoding`, used for every title/metadata file and the generic CSV): a UTF-8
BOM means ``utf-8-sig``; otherwise ``utf-8`` when the whole file decodes as strict UTF-8; otherwise
``latin-1`` (the encoding GroupLens ships MovieLens in; it decodes any byte). Titles reach the LLM's
prompts, so reading a UTF-8 file as Latin-1 (``MisÃ©rables``) or the reverse (``Mis\ufffdrables``) is
never acceptable. Latin-1 text decodes as UTF-8 only when every accented letter is followed by a byte in
0x80-0xBF (symbols such as '©' or '°'), which titles do not have: the MovieLens files stay Latin-1.
"""

from __future__ import annotations

import codecs
import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ilora_dllm2rec.core.errors import DataError

log = logging.getLogger(__name__)
DUPLICATE_KEY = ["user", "item", "timestamp"]


@dataclass
class RawData:
    interactions: pd.DataFrame  # user, item, timestamp[, rating]; file order
    titles: dict = field(default_factory=dict)  # raw item id -> title


def require_files(data_dir: Path, files: list[Path], what: str, fix: str) -> None:
    """DataError when the folder or a required file is missing; ``fix`` says how to get them."""
    if not data_dir.is_dir():
        raise DataError(f"dataset.data_dir {data_dir} does not exist (expected {what}); {fix}")
    for f in files:
        if not f.is_file():
            raise DataError(f"{f} not found (expected {what} in {data_dir}); {fix}")


def detect_encoding(path: Path) -> str:
    """``utf-8-sig`` (BOM), ``utf-8`` (decodes strictly) or ``latin-1``; logs the choice naming the file."""
    with open(path, "rb") as fh:
        if fh.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8:
            encoding = "utf-8-sig"
        else:
            fh.seek(0)
            decoder = codecs.getincrementaldecoder("utf-8")()  # in chunks: metadata dumps can be large
            try:
                for chunk in iter(lambda: fh.read(1 << 22), b""):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
                encoding = "utf-8"
            except UnicodeDecodeError:
                encoding = "latin-1"
    log.info("%s: read with encoding %s", path, encoding)
    return encoding


def log_duplicates(df: pd.DataFrame, path: Path) -> int:
    """Count rows repeating an earlier (user, item, timestamp); they are kept, the count is logged when > 0."""
    count = int(df.duplicated(DUPLICATE_KEY).sum()) if len(df) else 0
    if count:
        log.warning(
            "%s: %d duplicate (user, item, timestamp) rows, kept as separate interactions; "
            "deduplicate the file if they are export artefacts",
            path,
            count,
        )
    return count


def iter_lines(path: Path, encoding: str, limit_rows: int | None) -> Iterator[tuple[int, str]]:
    """(1-based line number, stripped line) for non-blank lines, at most ``limit_rows`` of them."""
    count = 0
    with open(path, encoding=encoding, errors="replace", newline="") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if limit_rows is not None and count >= limit_rows:
                return
            count += 1
            yield lineno, line


def _is_number(text: str, kind: type) -> bool:
    try:
        kind(text)
    except ValueError:
        return False
    return True


def read_numeric_table(
    path: Path,
    sep: str,
    names: list[str],
    limit_rows: int | None,
    float_cols: tuple[str, ...] = (),
    encoding: str = "latin-1",
    layout: str = "",
) -> pd.DataFrame:
    """Read a header-less file of numeric fields (ratings.dat, u.data) fast, or fail on the first bad line."""
    dtypes = {i: (np.float64 if n in float_cols else np.int64) for i, n in enumerate(names)}
    data = path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):  # a re-saved file; the fields are numbers, so only the BOM matters
        data = data[len(codecs.BOM_UTF8) :]
    if len(sep) > 1:  # the C parser takes one-character separators only
        data = data.replace(sep.encode(), b"\t")
    try:
        df = pd.read_csv(
            io.BytesIO(data),
            sep="\t" if len(sep) > 1 else sep,
            header=None,
            dtype=dtypes,
            nrows=limit_rows,
            engine="c",
            encoding=encoding,
        )
        if df.shape[1] != len(names):
            raise ValueError(f"{df.shape[1]} columns")
    except (ValueError, pd.errors.ParserError, KeyError) as exc:
        kinds = [float if n in float_cols else int for n in names]
        _raise_first_bad_line(path, encoding, limit_rows, lambda line: _fields_ok(line, sep, kinds), layout, exc)
        raise AssertionError("unreachable") from exc
    df.columns = names
    return df


def _fields_ok(line: str, sep: str, kinds: list[type]) -> bool:
    parts = line.split(sep)
    return len(parts) == len(kinds) and all(_is_number(p.strip(), k) for p, k in zip(parts, kinds))


def _raise_first_bad_line(
    path: Path, encoding: str, limit_rows: int | None, ok: Callable[[str], bool], layout: str, exc: Exception
) -> None:
    for lineno, line in iter_lines(path, encoding, limit_rows):
        if not ok(line):
            raise DataError(f"{path}: line {lineno}: malformed, expected {layout}, got {line[:80]!r}; fix or remove it")
    raise DataError(f"{path}: could not parse ({str(exc).splitlines()[0]}); expected {layout}")


def bad_line(path: Path, lineno: int, problem: str, line: str = "") -> DataError:
    shown = f" {line[:80]!r}" if line else ""
    return DataError(f"{path}: line {lineno}: {problem}{shown}; fix or remove it")


def read_titles(path: Path, sep: str, min_fields: int = 2, maxsplit: int = -1) -> dict:
    """Small metadata files (movies.dat, u.item, id2name.txt): integer raw id -> title, line by line.

    The encoding is detected (:func:`detect_encoding`)."""
    titles: dict = {}
    for lineno, line in iter_lines(path, detect_encoding(path), None):
        parts = line.split(sep, maxsplit)
        if len(parts) < min_fields:
            raise bad_line(path, lineno, f"expected at least {min_fields} '{sep}'-separated fields id{sep}title", line)
        key = parts[0].strip()
        if not _is_number(key, int):
            raise bad_line(path, lineno, "item id is not an integer", line)
        titles[int(key)] = parts[1].strip()
    return titles
