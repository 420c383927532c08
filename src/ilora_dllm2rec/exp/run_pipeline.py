"""The whole pipeline into ONE run folder: baseline -> teacher -> export -> distill -> eval-all -> report.

``run-pipeline experiment=quickstart``; resume a killed run in place with
``run-pipeline resume=true hydra.run.dir=result/result_YYYYMMDD_HHMMSS`` (stages whose manifest exists
and matches this data set and the stage's config are skipped, up to the first that does not: it and every
later stage run again; nothing half-written is ever read).
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from ..core.distributed import barrier, leave_other_ranks
from ..core.errors import ConfigError
from ..core.run_logging import RunDir
from .common import command_line_overrides, hydra_entry, mark_stage_complete, stage_done

log = logging.getLogger("ilora_dllm2rec.pipeline")


def check_rec_model_type(cfg: DictConfig) -> None:
    """The pipeline gives iLoRA this run's own baseline (a ``student``) as its frozen recommender unless
    ``teacher.rec_model_checkpoint_path`` names one: a ``teacher.rec_model_type`` of another type is refused before
    the baseline trains (the value itself is checked by the config schema, core/schema_teacher.py)."""
    teacher = cfg.get("teacher")
    wanted = teacher.get("rec_model_type") if teacher is not None else None
    if wanted is None or str(teacher.get("backend")) != "ilora" or teacher.get("rec_model_checkpoint_path"):
        return
    student = str(cfg.student.name).lower()
    if str(wanted).lower() != student:
        raise ConfigError(
            f"teacher.rec_model_type={wanted} but run-pipeline gives the teacher this run's baseline, a {student} "
            f"(student={student}): add student={str(wanted).lower()}, or set teacher.rec_model_checkpoint_path to a "
            f"{str(wanted).lower()} baseline"
        )


@hydra_entry("run_pipeline", checks=[check_rec_model_type])
def main(cfg: DictConfig, run: RunDir) -> None:
    from ..core.config import with_train_preset
    from ..data import prepare_data
    from ..distill.train import export_matcher
    from ..report.pipeline_report import write_report
    from ..teacher.backends import teacher_backend
    from ..teacher.llm import check_local_llm_path
    from .stages import baseline, check_export, distill, eval_all, export, teacher

    overrides = command_line_overrides()
    # a missing LLM folder stops the run now, not after the baseline
    if teacher_backend(str(cfg.teacher.backend)).uses_llm:
        check_local_llm_path(str(cfg.teacher.llm_path))
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    redone = False  # once a stage runs, every later one runs too: none may read an output older than its input

    def done(stage: str, stage_cfg: DictConfig, folder: str, check=None) -> bool:
        nonlocal redone
        redone = redone or not stage_done(stage_cfg, run, stage, folder, data.fingerprint, check)
        return not redone

    # Under train.strategy=ddp every rank runs this function (core/distributed.py): rank 0 writes, and the
    # barrier after each stage keeps the others from reading its artifacts before they are complete.
    student_cfg = with_train_preset(cfg, "student", overrides)
    if not done("baseline", student_cfg, "models/baseline"):
        baseline(student_cfg, run, data)
        mark_stage_complete(run, "baseline", cfg=student_cfg)
    barrier()
    teacher_cfg = with_train_preset(cfg, "teacher", overrides)
    check_export(teacher_cfg, data, run)  # before the teacher trains, not after
    if not done("teacher", teacher_cfg, "models/teacher"):
        teacher(teacher_cfg, run, data, overrides)
        mark_stage_complete(run, "teacher", cfg=teacher_cfg)
    barrier()
    if not done("export", teacher_cfg, "teacher_outputs", export_matcher(data)):
        export(teacher_cfg, run, data)  # sharded over the ranks, merged and written by rank 0
        mark_stage_complete(run, "export", cfg=teacher_cfg)
    barrier()
    distill_cfg = with_train_preset(cfg, "distill", overrides)
    if not done("distill", distill_cfg, "models/distill"):
        distill(distill_cfg, run, data)
        mark_stage_complete(run, "distill", cfg=distill_cfg)
    if not leave_other_ranks():
        return  # evaluation and the report need no second process
    eval_all(with_train_preset(cfg, "student", overrides), run, data)
    report = write_report(run)
    mark_stage_complete(run, "eval")
    print(f"report: {report}")


if __name__ == "__main__":
    main()
