"""Typed, validated view of a ``dataset`` config node (conf/dataset/*.yaml).

Library code never reads global config: :func:`dataset_options` takes the ``dataset``
sub-node (DictConfig or plain Mapping), resolves interpolations and checks every value
once, so loaders and preprocessing work on plain Python values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ilora_dllm2rec.core.errors import ConfigError
from ilora_dllm2rec.core.schema import check
from ilora_dllm2rec.core.schema_data import Dataset

FORMATS = tuple(Dataset.variants)


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
    raw: dict = field(default_factory=dict)  # the whole resolved node, as given (the data fingerprint hashes it)
    spec: Dataset | None = None  # the checked section: every key of the format, defaults filled in

    def path(self, key: str, default: str | None = None) -> Path | None:
        """A file named by ``dataset.<key>`` (relative to data_dir), or None when the key is null."""
        name = self.raw.get(key, default)
        if name is None:
            return None
        p = Path(str(name))
        return p if p.is_absolute() or self.data_dir is None else self.data_dir / p


def dataset_options(cfg: Any) -> DatasetOptions:
    """Check a dataset config node against the schema (core/schema_groups.py ``Dataset``; ConfigError naming the
    bad key) and view it as :class:`DatasetOptions`."""
    raw = to_plain(cfg)
    spec = check(Dataset, raw, "dataset")
    values = {f.name: getattr(spec, f.name) for f in fields(DatasetOptions) if hasattr(spec, f.name)}
    for key in ("limit_data_rows", "limit_users"):  # -1 and null: no limit
        if values.get(key) == -1:
            values[key] = None
    if values.get("min_rating") is not None:
        values["min_rating"] = float(values["min_rating"])
    values["data_dir"] = None if spec.data_dir is None else Path(str(spec.data_dir))
    return DatasetOptions(**values, raw=raw, spec=spec)
