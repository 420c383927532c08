"""The whole pipeline into ONE run folder: baseline -> teacher -> export -> distill -> eval-all -> report.

``run-pipeline experiment=quickstart``; resume a killed run in place with
``run-pipeline resume=true hydra.run.dir=result/result_YYYYMMDD_HHMMSS`` (stages whose manifest exists
and matches this data set are skipped; nothing half-written is ever read).
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from ..core.run_logging import RunDir
from .common import command_line_overrides, hydra_entry, mark_stage_complete, stage_done

log = logging.getLogger("ilora_dllm2rec.pipeline")


@hydra_entry("run_pipeline")
def main(cfg: DictConfig, run: RunDir) -> None:
    from ..core.config import with_train_preset
    from ..data import prepare_data
    from ..distill.train import export_matcher, run_distill_stage
    from ..report.eval_all import run_eval_all_stage
    from ..report.pipeline_report import write_report
    from ..student.train import run_baseline_stage
    from ..teacher.stages import check_export_inputs, run_export_stage, train_teacher

    overrides = command_line_overrides()
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)

    def done(folder: str, check=None) -> bool:
        return stage_done(cfg, run, data.fingerprint, folder, check)

    if not done("models/baseline"):
        run_baseline_stage(with_train_preset(cfg, "student", overrides), run, data)
        mark_stage_complete(run, "baseline")
    teacher_cfg = with_train_preset(cfg, "teacher", overrides)
    check_export_inputs(teacher_cfg, data, run)  # before the teacher trains, not after
    if not done("models/teacher"):
        train_teacher(teacher_cfg, run, data, overrides)
        mark_stage_complete(run, "teacher")
    if not done("teacher_outputs", export_matcher(data)):
        if run_export_stage(teacher_cfg, run, data) is None:
            return  # non-zero rank under DDP
        mark_stage_complete(run, "export")
    if not done("models/distill"):
        run_distill_stage(with_train_preset(cfg, "distill", overrides), run, data)
        mark_stage_complete(run, "distill")
    run_eval_all_stage(with_train_preset(cfg, "student", overrides), run, data)
    report = write_report(run)
    mark_stage_complete(run, "eval")
    print(f"report: {report}")


if __name__ == "__main__":
    main()
