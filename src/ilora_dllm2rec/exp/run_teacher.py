"""Train the teacher and export its knowledge for distillation (教師モデル学習＋教師出力生成).

``run-teacher dataset=ml-100k`` / ``python -m ilora_dllm2rec.exp.run_teacher train=teacher
teacher.rec_model_checkpoint_path=result/result_X/models/baseline/best.ckpt`` / ``run-teacher teacher=sasrec``.
``resume=true hydra.run.dir=<that run's folder>`` keeps a completed teacher (same data, same student/teacher/train
config apart from ``teacher.export``) and only exports.
"""

from __future__ import annotations

from omegaconf import DictConfig

from ..core.distributed import barrier
from ..core.run_logging import RunDir
from .common import command_line_overrides, hydra_entry, mark_stage_complete, stage_done


@hydra_entry("run_teacher")
def main(cfg: DictConfig, run: RunDir) -> None:
    from ..data import prepare_data
    from ..distill.train import export_matcher
    from .stages import check_export, export, teacher

    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    check_export(cfg, data, run)
    trained = not stage_done(cfg, run, "teacher", "models/teacher", data.fingerprint)  # resume=true: export only
    if trained:
        result = teacher(cfg, run, data, command_line_overrides())
        mark_stage_complete(run, "teacher", {"test_ndcg@10": result["test"].get("ndcg@10")}, cfg)
    barrier()  # DDP: the export reads the teacher's manifest, which rank 0 writes
    if not trained and stage_done(cfg, run, "export", "teacher_outputs", data.fingerprint, export_matcher(data)):
        return
    manifest = export(cfg, run, data)
    if manifest is not None:
        rows = {"rows": manifest.get("num_rows"), "train_samples": manifest.get("num_train")}
        mark_stage_complete(run, "export", rows, cfg)


if __name__ == "__main__":
    main()
