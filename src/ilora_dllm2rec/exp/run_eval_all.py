"""Evaluate baseline, teacher and distilled models side by side (``run-eval-all``).

Checkpoints from ``eval.*_checkpoint`` (conf/eval/default.yaml or overrides), else discovered.
Writes ``all_evaluation_results.json``, ``metrics/eval_all.md`` and ``metrics/eval_all.png``.
"""

from __future__ import annotations

from omegaconf import DictConfig

from ..core.run_logging import RunDir
from .common import hydra_entry, mark_stage_complete


@hydra_entry("run_eval_all")
def main(cfg: DictConfig, run: RunDir) -> None:
    from ..data import prepare_data
    from .stages import eval_all

    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    payload = eval_all(cfg, run, data)
    mark_stage_complete(run, "eval", {"models": sorted(payload["models"])})


if __name__ == "__main__":
    main()
