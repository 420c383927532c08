"""The one entry point of the data layer: :func:`prepare_data` (any format -> cached SplitData)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from ilora_dllm2rec.data.cache import cache_folder, fingerprint, load_split, save_split, write_split_csv
from ilora_dllm2rec.data.loaders_amazon import amazon_files, load_amazon
from ilora_dllm2rec.data.loaders_csv import csv_files, load_csv
from ilora_dllm2rec.data.loaders_movielens import load_ml1m, load_ml100k, ml1m_files, ml100k_files
from ilora_dllm2rec.data.options import DatasetOptions, dataset_options
from ilora_dllm2rec.data.preprocess import build_splits
from ilora_dllm2rec.data.raw import RawData
from ilora_dllm2rec.data.sequence_format import load_sequence, sequence_files
from ilora_dllm2rec.data.synthetic import generate_synthetic
from ilora_dllm2rec.data.types import SplitData

# format -> (source files, checked to exist; raw loader). "sequence" is already split, see below.
RAW_FORMATS: dict[str, tuple[Callable[[DatasetOptions], list[Path]], Callable[[DatasetOptions], RawData]]] = {
    "ml-1m": (ml1m_files, load_ml1m),
    "ml-100k": (ml100k_files, load_ml100k),
    "csv": (csv_files, load_csv),
    "amazon": (amazon_files, load_amazon),
    "synthetic": (lambda opts: [], generate_synthetic),
}


def source_files(opts: DatasetOptions) -> list[Path]:
    """The files a data set is built from (DataError naming what is missing and how to get it)."""
    if opts.format == "sequence":
        return sequence_files(opts)
    return RAW_FORMATS[opts.format][0](opts)


def load_raw(opts: DatasetOptions) -> RawData:
    """Raw interactions (file order) and titles for the interaction formats (not "sequence")."""
    return RAW_FORMATS[opts.format][1](opts)


def build_split_data(opts: DatasetOptions, logger: logging.Logger) -> SplitData:
    if opts.format == "sequence":
        return load_sequence(opts, logger)
    return build_splits(load_raw(opts), opts, logger)


def prepare_data(
    dataset_cfg: DictConfig | Mapping[str, Any], cache_dir: str | Path | None, logger: logging.Logger | None = None
) -> SplitData:
    """Load, filter and split the data set described by ``dataset_cfg`` (the ``dataset`` config node).

    With ``cache_dir`` the result is cached under ``{cache_dir}/{name}_{fingerprint}/`` and later calls
    with the same config and unchanged source files load it without reading the raw files.
    """
    log = logger or logging.getLogger(__name__)
    opts = dataset_options(dataset_cfg)
    fp = fingerprint(opts.raw, source_files(opts))
    folder = cache_folder(cache_dir, opts.name, fp) if cache_dir is not None else None
    if folder is not None and (folder / "meta.json").is_file():
        split = load_split(folder)
        log.info("loaded cached splits from %s", folder)
    else:
        split = build_split_data(opts, log)
        split.fingerprint = fp
        if folder is not None:
            save_split(split, folder)
            log.info("cached splits in %s", folder)
    if opts.write_split_csv:
        # CSVs go next to the cached arrays; without a cache into {data_dir}/{name}_{fingerprint}/
        out = folder
        if out is None and opts.data_dir is not None:
            out = cache_folder(opts.data_dir, opts.name, fp)
        if out is None:
            log.warning("dataset.write_split_csv is set but there is no cache_dir or data_dir to write to")
        elif not (out / "test.csv").is_file():
            write_split_csv(split, out)
            log.info("wrote split CSVs to %s", out)
    return split
