"""Prepare (and cache) a data set's splits; optionally write train/val/test CSVs for inspection.

``run-preprocess-data dataset=ml-1m dataset.write_split_csv=true``
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from ..core.run_logging import RunDir, stage_log_file
from .common import hydra_entry, mark_stage_complete

log = logging.getLogger(__name__)


@hydra_entry("config")
def main(cfg: DictConfig, run: RunDir) -> None:
    from ..data import prepare_data, write_split_csv

    with stage_log_file(run, "preprocess") as slog:
        data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
        slog.info("prepared %s", data.summary())
        print(data.summary())
        if cfg.dataset.get("write_split_csv", False):
            out = run.root / "splits"
            write_split_csv(data, out)
            print(f"split CSVs written to {out}")
    mark_stage_complete(run, "preprocess", data.summary())


if __name__ == "__main__":
    main()
