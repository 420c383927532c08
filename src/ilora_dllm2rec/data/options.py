"""Typed, validated view of a ``dataset`` config node (conf/dataset/*.yaml).

Library code never reads global config: :func:`dataset_options` takes the ``dataset``
sub-node (DictConfig or plain Mapping), resolves interpolations and checks every value
once, so loaders and preprocessing work on plain Python values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ilora_dllm2rec.core.errors import ConfigError

FORMATS = ("ml-1m", "ml-100k", "csv", "amazon", "sequence", "synthetic")
ID_ORDERS = ("sorted", "first_appearance")


def to_plain(cfg: Any) -> dict:
    """DictConfig / Mapping -> plain dict with interpolations resolved."""
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except ImportError:  # omegaconf is a dependency; plain mappings still work without it
        pass
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"dataset config must be a mapping, got {type(cfg).__name__}")
    return {k: to_plain(v) if isinstance(v, Mapping) else v for k, v in cfg.items()}


def _limit(value: Any, key: str) -> int | None:
    """null or -1 -> no limit; otherwise a positive int."""
    if value is None or value == -1:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"dataset.{key} must be a positive integer, -1 or null, got {value!r}")
    return value


def _int(cfg: dict, key: str, default: int, minimum: int) -> int:
    value = cfg.get(key, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"dataset.{key} must be an integer >= {minimum}, got {value!r}")
    return value


@dataclass
class DatasetOptions:
    name: str
    format: str
    data_dir: Path | None
    max_seq_len: int
    min_rating: float | None = None
    min_user_inter: int = 5
    min_item_inter: int = 0
    k_core: bool = False
    limit_data_rows: int | None = None
    limit_users: int | None = None
    id_order: str = "sorted"
    num_candidates: int = 20
    candidate_seed: int = 0
    write_split_csv: bool = False
    raw: dict = field(default_factory=dict)  # the whole resolved node (format-specific keys live here)

    def path(self, key: str, default: str | None = None) -> Path | None:
        """A file named by ``dataset.<key>`` (relative to data_dir), or None when the key is null."""
        name = self.raw.get(key, default)
        if name is None:
            return None
        p = Path(str(name))
        return p if p.is_absolute() or self.data_dir is None else self.data_dir / p


def dataset_options(cfg: Any) -> DatasetOptions:
    """Validate a dataset config node; raise ConfigError naming the bad key."""
    raw = to_plain(cfg)
    fmt = raw.get("format")
    if fmt not in FORMATS:
        raise ConfigError(f"dataset.format={fmt!r} is unknown; valid formats: {', '.join(FORMATS)}")
    name = raw.get("name")
    if not name or not isinstance(name, str):
        raise ConfigError(f"dataset.name must be a non-empty string, got {name!r}")
    max_seq_len = raw.get("max_seq_len")
    if isinstance(max_seq_len, bool) or not isinstance(max_seq_len, int) or max_seq_len < 1:
        raise ConfigError(f"dataset.max_seq_len must be an integer >= 1, got {max_seq_len!r}")
    id_order = raw.get("id_order") or "sorted"
    if id_order not in ID_ORDERS:
        raise ConfigError(f"dataset.id_order={id_order!r} is unknown; valid: {', '.join(ID_ORDERS)}")
    method = (raw.get("split") or {}).get("method", "leave_one_out")
    if method != "leave_one_out":
        raise ConfigError(f"dataset.split.method={method!r} is not supported; use leave_one_out")
    min_rating = raw.get("min_rating")
    if min_rating is not None and (isinstance(min_rating, bool) or not isinstance(min_rating, int | float)):
        raise ConfigError(f"dataset.min_rating must be a number or null, got {min_rating!r}")
    data_dir = raw.get("data_dir")
    if data_dir is None and fmt != "synthetic":
        raise ConfigError(f"dataset.data_dir must be set for dataset.format={fmt}")
    return DatasetOptions(
        name=name,
        format=fmt,
        data_dir=None if data_dir is None else Path(str(data_dir)),
        max_seq_len=max_seq_len,
        min_rating=None if min_rating is None else float(min_rating),
        min_user_inter=_int(raw, "min_user_inter", 5, 0),
        min_item_inter=_int(raw, "min_item_inter", 0, 0),
        k_core=bool(raw.get("k_core", False)),
        limit_data_rows=_limit(raw.get("limit_data_rows"), "limit_data_rows"),
        limit_users=_limit(raw.get("limit_users"), "limit_users"),
        id_order=id_order,
        num_candidates=_int(raw, "num_candidates", 20, 2),
        candidate_seed=_int(raw, "candidate_seed", 0, 0),
        write_split_csv=bool(raw.get("write_split_csv", False)),
        raw=raw,
    )
