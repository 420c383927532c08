"""Distil the teacher into a student with DLLM2Rec (``run-distill`` / ``... run_distill train=distill``).

Teacher knowledge comes from ``distill.teacher_outputs_dir``, or is exported here from
``distill.teacher_checkpoint_path``, or from the newest complete export with the same data fingerprint.
"""

from __future__ import annotations

from omegaconf import DictConfig

from ..core.distributed import barrier
from ..core.run_logging import RunDir
from .common import command_line_overrides, hydra_entry, mark_stage_complete


@hydra_entry("run_distill")
def main(cfg: DictConfig, run: RunDir) -> None:
    from ..core.config import with_train_preset
    from ..data import prepare_data
    from .stages import distill, export

    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    if cfg.distill.teacher_checkpoint_path and not cfg.distill.teacher_outputs_dir:
        teacher_cfg = with_train_preset(cfg, "teacher", command_line_overrides())
        export(teacher_cfg, run, data)
        mark_stage_complete(run, "export", cfg=teacher_cfg)  # rank 0 writes (DDP); every rank waits before training
        barrier()
    result = distill(cfg, run, data)
    mark_stage_complete(run, "distill", {"test_ndcg@10": result["test"].get("ndcg@10")}, cfg)


if __name__ == "__main__":
    main()
