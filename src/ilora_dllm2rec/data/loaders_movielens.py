"""MovieLens loaders (GroupLens files, unchanged).

- ml-1m: ``ratings.dat`` (``user::item::rating::timestamp``) and ``movies.dat``
  (``item::title::genres``), "::"-separated.
- ml-100k: ``u.data`` (tab-separated ``user item rating timestamp``) and ``u.item``
  (``id|title|release date|...``, "|"-separated).

GroupLens ships the title files in Latin-1; re-saved copies are often UTF-8, with or without a BOM:
the encoding is detected per file (:func:`~ilora_dllm2rec.data.raw.detect_encoding`). The rating files
are numeric. Duplicate (user, item, timestamp) rows are kept and counted in the log.
"""

from __future__ import annotations

from pathlib import Path

from ilora_dllm2rec.data.options import DatasetOptions
from ilora_dllm2rec.data.raw import RawData, log_duplicates, read_numeric_table, read_titles, require_files

COLUMNS = ["user", "item", "rating", "timestamp"]


def _fix(variant: str) -> str:
    return f"download it with `bash cmd/movielens.sh {variant}` or point dataset.data_dir at the unpacked folder"


def ml1m_files(opts: DatasetOptions) -> list[Path]:
    assert opts.data_dir is not None
    files = [opts.data_dir / "ratings.dat", opts.data_dir / "movies.dat"]
    require_files(opts.data_dir, files, "ratings.dat and movies.dat", _fix("ml-1m"))
    return files


def ml100k_files(opts: DatasetOptions) -> list[Path]:
    assert opts.data_dir is not None
    files = [opts.data_dir / "u.data", opts.data_dir / "u.item"]
    require_files(opts.data_dir, files, "u.data and u.item", _fix("ml-100k"))
    return files


def load_ml1m(opts: DatasetOptions) -> RawData:
    ratings, movies = ml1m_files(opts)
    df = read_numeric_table(
        ratings, "::", COLUMNS, opts.limit_data_rows, float_cols=("rating",), layout="user::item::rating::timestamp"
    )
    log_duplicates(df, ratings)
    return RawData(df[["user", "item", "timestamp", "rating"]], read_titles(movies, "::", min_fields=2))


def load_ml100k(opts: DatasetOptions) -> RawData:
    udata, uitem = ml100k_files(opts)
    df = read_numeric_table(
        udata, "\t", COLUMNS, opts.limit_data_rows, float_cols=("rating",), layout="user<TAB>item<TAB>rating<TAB>ts"
    )
    log_duplicates(df, udata)
    return RawData(df[["user", "item", "timestamp", "rating"]], read_titles(uitem, "|", min_fields=2))
