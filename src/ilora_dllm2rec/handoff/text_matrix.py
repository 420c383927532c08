"""Whitespace-separated numeric matrices (the DLLM2Rec ``*_train.txt`` files), with line-precise errors.

Fast path: ``np.loadtxt`` (C parser). When it fails, a line-by-line scan finds the first bad line,
so the user gets ``file line N: ...`` instead of a numpy traceback.
Integer files also accept integral floats (``3.0``, ``3.000e+00``): ``np.savetxt``'s default
format, which the public tooling may have used.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ilora_dllm2rec.core.errors import ArtifactError, DataError


def write_matrix(path: Path, matrix: np.ndarray, fmt: str) -> None:
    """One row per line, values separated by one space."""
    np.savetxt(path, matrix, fmt=fmt, delimiter=" ")


def read_matrix(path: Path, *, integer: bool) -> np.ndarray:
    """[rows, cols] int64 (``integer``) or float64 matrix; DataError naming file and 1-based line."""
    if not path.exists():
        raise ArtifactError(f"{path} is missing; run the teacher export (or set distill.teacher_outputs_dir)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": reported below
            values = np.loadtxt(path, dtype=np.float64, ndmin=2, comments=None)
    except ValueError as exc:
        _diagnose(path)  # raises with the line number
        raise DataError(f"{path}: cannot parse ({exc})") from exc
    if values.size == 0:
        raise DataError(f"{path} is empty; re-export the teacher")
    if not integer:
        return values
    not_int = ~np.isfinite(values) | (values != np.round(values))
    if not_int.any():
        row, col = np.argwhere(not_int)[0]
        raise DataError(f"{path} line {line_number(path, row)}: {float(values[row, col])!r} is not an integer item id")
    return values.astype(np.int64)


def _diagnose(path: Path) -> None:
    width = None
    with path.open() as fh:
        for lineno, line in enumerate(fh, start=1):
            tokens = line.split()
            if not tokens:
                continue
            if width is None:
                width = len(tokens)
            elif len(tokens) != width:
                raise DataError(f"{path} line {lineno}: expected {width} values like line 1, found {len(tokens)}")
            for tok in tokens:
                try:
                    float(tok)
                except ValueError:
                    raise DataError(f"{path} line {lineno}: {tok!r} is not a number") from None


def line_number(path: Path, row: int) -> int:
    """1-based file line of data row ``row`` (blank lines are skipped by the parser)."""
    seen = -1
    with path.open() as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.strip():
                seen += 1
                if seen == row:
                    return lineno
    return row + 1
