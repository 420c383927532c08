"""Train a baseline student (no distillation): ``run-student-baseline dataset=ml-100k student=sasrec``."""

from __future__ import annotations

from omegaconf import DictConfig

from ..core.run_logging import RunDir
from .common import hydra_entry, mark_stage_complete


@hydra_entry("config")
def main(cfg: DictConfig, run: RunDir) -> None:
    # heavy imports inside: a config error is reported before torch/Lightning load
    from ..data import prepare_data
    from .stages import baseline

    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    result = baseline(cfg, run, data)
    mark_stage_complete(run, "baseline", {"test_ndcg@10": result["test"].get("ndcg@10")}, cfg)


if __name__ == "__main__":
    main()
