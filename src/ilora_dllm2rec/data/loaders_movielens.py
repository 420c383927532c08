"""MovieLens loaders (GroupLens files, unchanged).

- ml-1m: ``ratings.dat`` (``user::item::rating::timestamp``) and ``movies.dat``
  (``item::title::genres``), "::"-separated, Latin-1.
- ml-100k: ``u.data`` (tab-separated ``user item rating timestamp``) and ``u.item``
  (``id|title|release date|...``, "|"-separated, Latin-1).
"""

from __future__ import annotations

from pathlib import Path

from ilora_dllm2rec.data.options import DatasetOptions
from ilora_dllm2rec.data.raw import RawData, read_numeric_table, read_titles, require_files

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
    return RawData(df[["user", "item", "timestamp", "rating"]], read_titles(movies, "::", "latin-1", min_fields=2))


def load_ml100k(opts: DatasetOptions) -> RawData:
    udata, uitem = ml100k_files(opts)
    df = read_numeric_table(
        udata, "\t", COLUMNS, opts.limit_data_rows, float_cols=("rating",), layout="user<TAB>item<TAB>rating<TAB>ts"
    )
    return RawData(df[["user", "item", "timestamp", "rating"]], read_titles(uitem, "|", "latin-1", min_fields=2))
