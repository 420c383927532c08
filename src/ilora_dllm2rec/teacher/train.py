"""The teacher stage: frozen baseline student -> iLoRA teacher trained, selected on validation, evaluated.

The frozen student's lookup and loading are in teacher/frozen_student.py, the teacher's evaluation users and
evaluation in teacher/evaluation.py.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

import torch
from omegaconf import OmegaConf

from ..core.artifacts import checkpoint_in
from ..core.atomic import atomic_path
from ..core.distributed import barrier, is_rank_zero
from ..core.errors import ArtifactError
from ..core.run_logging import RunDir, stage_log_file, time_block
from ..core.safe_load import load_checkpoint
from ..core.schema_teacher import IloraTeacher
from ..core.seed import set_seed
from ..core.stage import publish_stage, split_rows
from ..core.trainer import build_trainer, inference_device
from ..data import SampleSet, SplitData, build_dataloader
from ..student.base import SequentialRecommender
from .evaluation import evaluate_teacher, subset
from .factory import build_ilora_model, build_lambda_schedule
from .frozen_student import baseline_for_teacher, check_rec_model_type, load_frozen_student
from .head_refit import check_refit_config, refit_head
from .ilora_model import ILoRAModel
from .interfaces import TeacherStage
from .lit_module import TeacherLitModule
from .prompts import prompt_token_counts

log = logging.getLogger(__name__)


def build_teacher(
    teacher: IloraTeacher, model_cache_dir: str, student: SequentialRecommender, data: SplitData
) -> ILoRAModel:
    return build_ilora_model(teacher, student, data.item_titles, model_cache_dir=model_cache_dir)


def build_teacher_module(stage: TeacherStage, model: ILoRAModel, meta: dict) -> TeacherLitModule:
    """The Lightning module that trains ``model`` with the stage's optimiser, schedules and loss settings."""
    teacher, train = stage.teacher, stage.train
    return TeacherLitModule(
        model,
        lr=float(train.lr),
        gate_lr_scale=float(teacher.gate_lr_scale),
        head_lr_scale=float(teacher.head_lr_scale),
        weight_decay=float(train.weight_decay),
        warmup_ratio=float(train.warmup_ratio),
        loss_type=str(teacher.distill_loss_type),
        temperature=float(teacher.contrastive_temperature),
        schedule_factory=lambda total: build_lambda_schedule(teacher, total),
        meta=meta,
        ks=list(stage.metrics.ks),
    )


TEACHER_REMEDY = "point the option at a models/teacher/best.ckpt written by run-teacher, or train the teacher again"


def load_teacher_checkpoint(
    path: str | Path, data: SplitData, model_cache_dir: str, pad_to_multiple_of: int | None = None
) -> tuple[ILoRAModel, dict]:
    """Rebuild the teacher from a self-contained teacher checkpoint (see teacher/lit_module.py);
    ``pad_to_multiple_of``: this run's ``teacher.pad_to_multiple_of`` (inference-only: it wins over the stored)."""
    path = Path(path)
    if path.is_dir():  # the folder's manifest names the chosen checkpoint (head_refit.ckpt after a refit)
        path = checkpoint_in(path)
    if not path.is_file():
        raise ArtifactError(
            f"teacher checkpoint not found: {path}; run run-teacher or fix distill.teacher_checkpoint_path"
        )
    # weights_only=False: a teacher checkpoint carries more than tensors and containers
    ckpt = load_checkpoint(
        path, kind="teacher checkpoint", remedy=TEACHER_REMEDY, weights_only=False, required=("teacher_meta",)
    )
    meta = ckpt["teacher_meta"]
    if int(meta["num_items"]) != data.num_items or meta["data_fingerprint"] != data.fingerprint:
        raise ArtifactError(
            f"teacher checkpoint {path} is for {meta['num_items']} items / data {meta['data_fingerprint']}, this run "
            f"has {data.num_items} items / data {data.fingerprint}: use a teacher trained on the same data"
        )
    from ..student.factory import stored_student_cfg
    from ..student.lit_module import StudentLitModule

    hp = meta["student_hparams"]
    meta.setdefault("rec_model_type", str(hp["student_cfg"]["name"]).lower())  # checkpoints from before the key
    student_module = StudentLitModule(stored_student_cfg(hp["student_cfg"]), int(hp["num_items"]), lr=float(hp["lr"]))
    student_module.model.load_state_dict(meta["student_state"])
    student = student_module.model.eval()
    teacher_cfg = OmegaConf.create(meta["teacher_cfg"])
    model = build_ilora_model(teacher_cfg, student, data.item_titles, model_cache_dir=model_cache_dir)
    model.load_trainable_state_dict({k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()})
    if pad_to_multiple_of is not None:
        model.pad_to_multiple_of = pad_to_multiple_of  # the setter rejects values below 1
    return model.eval(), meta


def refit_teacher_head(
    stage: TeacherStage, run: RunDir, data: SplitData, model: ILoRAModel, val: SampleSet, best_state: dict, slog
) -> tuple[dict, Path]:
    """Second phase (teacher/head_refit.py): the head refitted on cached LLM states, saved as
    ``head_refit.ckpt`` beside the first phase's checkpoints (which stay as they are)."""
    refit_cfg = stage.teacher.head_refit
    seed = stage.seed
    train = subset(data.train, int(refit_cfg.samples), None, seed)
    model.to(inference_device(stage.train.accelerator))
    with time_block(run, "teacher_head_refit_time"):
        result = refit_head(
            model,
            train,
            val,
            refit_cfg,
            seed=seed,
            ks=list(stage.metrics.ks),
            exclude_history=bool(stage.metrics.exclude_history),
            llm_batch_size=int(stage.teacher.eval_batch_size),
        )
    state = dict(best_state)
    state["state_dict"] = dict(best_state["state_dict"])
    for name, tensor in model.head.state_dict().items():
        state["state_dict"][f"model.head.{name}"] = tensor.detach().cpu().clone()
    path = run.models("teacher") / "head_refit.ckpt"
    if is_rank_zero():  # under DDP every rank refits the same head; one writes it
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
    barrier()
    slog.info(
        "head refit on %d training samples (states %.0f s): best epoch %d, val ndcg@10 %.4f -> %.4f; saved %s",
        result.num_samples,
        result.states_seconds,
        result.best_epoch,
        result.val_ndcg_at_10[0],
        result.val_ndcg_at_10[result.best_epoch],
        path,
    )
    info = {
        "num_samples": result.num_samples,
        "best_epoch": result.best_epoch,
        "val_ndcg@10_per_epoch": result.val_ndcg_at_10,
        "states_seconds": result.states_seconds,
    }
    return info, path


def run_teacher_stage(
    stage_cfg: TeacherStage, run: RunDir, data: SplitData, train_baseline: Callable[[], dict]
) -> dict:
    """``train_baseline()``: trains this run's frozen student when no baseline is found (teacher/frozen_student.py)."""
    stage, c = "teacher", stage_cfg
    tcfg = c.teacher
    check_refit_config(tcfg.head_refit)
    student_path = baseline_for_teacher(c, run, data, train_baseline)
    with stage_log_file(run, stage) as slog:
        set_seed(c.seed)
        student, hparams = load_frozen_student(student_path, data)
        rec_type = check_rec_model_type(tcfg, student_path, hparams)
        slog.info("frozen student (rec model %s, d=%d) from %s", rec_type, student.hidden_size, student_path)
        if rec_type != c.student_name.lower():
            slog.info(
                "the frozen student is a %s: student.name=%s is not used for it (the checkpoint's type is)",
                rec_type,
                c.student_name,
            )
        model = build_teacher(tcfg, c.paths.model_cache_dir, student, data)
        report = model.trainable_parameter_report()
        slog.info("teacher parameters: trainable %d of %d %s", report["trainable"], report["total"], report["by_group"])
        seed = c.seed
        train = subset(data.train, tcfg.max_train_samples, tcfg.train_sample_ratio, seed)
        val = subset(data.val, tcfg.max_eval_samples, None, seed)
        slog.info("teacher trains on %d of %d training samples, validates on %d", len(train), len(data.train), len(val))
        meta = {
            "teacher_cfg": dataclasses.asdict(tcfg),  # a plain dict, as the composed config's section
            "num_items": data.num_items,
            "data_fingerprint": data.fingerprint,
            "llm_path": str(tcfg.llm_path),
            "student_checkpoint": str(student_path),
            "rec_model_type": rec_type,
            "student_hparams": {k: hparams[k] for k in ("student_cfg", "num_items", "lr")},
            "student_state": {k: v.detach().cpu() for k, v in student.state_dict().items()},
            "hidden_size": model.hidden_size,
        }
        module = build_teacher_module(c, model, meta)
        trainer, ckpt = build_trainer(
            c.train,
            models_dir=run.models(stage),
            tb_dir=run.tb(stage) if c.logging.tensorboard else None,
            progress_bar=bool(c.logging.progress_bar),
        )
        with time_block(run, "teacher_train_time_total"):
            trainer.fit(
                module,
                train_dataloaders=build_dataloader(
                    train,
                    int(c.train.batch_size),
                    shuffle=True,
                    seed=seed,
                    lengths=prompt_token_counts(model.prompts, train.seq, train.len_seq)
                    if tcfg.group_by_length
                    else None,
                ),
                val_dataloaders=build_dataloader(val, int(c.train.eval_batch_size), shuffle=False, seed=seed),
            )
        best = Path(ckpt.best_model_path) if ckpt.best_model_path else run.models(stage) / "last.ckpt"
        best_state = load_checkpoint(best, kind="teacher checkpoint", remedy="train it again", weights_only=False)
        model.load_trainable_state_dict({k.removeprefix("model."): v for k, v in best_state["state_dict"].items()})
        refit = None
        if int(tcfg.head_refit.samples) > 0:
            refit, best = refit_teacher_head(c, run, data, model, val, best_state, slog)
        # after fit, evaluate on a known device (Lightning's teardown has moved the module to the CPU)
        device = inference_device(c.train.accelerator)
        model.to(device)
        results = evaluate_teacher(model, data, c, device=device)
        # the frozen student on the same users: the teacher's gain over it is the stage's headline number,
        # and with teacher.max_eval_samples the students' own metrics cover other users
        frozen = evaluate_teacher(
            model, data, c, score_fn=lambda b: model.student(b["seq"], b["len_seq"]), device=device
        )
        payload = {
            "stage": stage,
            "model": "ilora",
            "llm_path": str(tcfg.llm_path),
            "adapter": str(tcfg.adapter),
            "rec_model_type": rec_type,
            "best_epoch": int(best_state.get("epoch", -1)),
            "best_checkpoint": str(best),
            "parameters": report,
            "data_fingerprint": data.fingerprint,
            "num_train_samples": len(train),
            "val": results["val"],
            "test": results["test"],
            "frozen_student": frozen,
        }
        if refit is not None:
            payload["head_refit"] = refit
        manifest = {
            "stage": stage,
            "backend": "ilora",
            "data_fingerprint": data.fingerprint,
            "num_items": data.num_items,
            "best_checkpoint": best.name,
            "last_checkpoint": "last.ckpt",
            "llm_path": str(tcfg.llm_path),
            "hidden_size": model.hidden_size,
            "student_checkpoint": str(student_path),
            "rec_model_type": rec_type,
        }
        rows = {**split_rows("teacher", results), **split_rows("frozen student", frozen)}
        publish_stage(run, stage, payload, manifest, f"iLoRA teacher on {data.name}", rows)
        slog.info(
            "teacher vs its frozen student on the same %d test users: ndcg@10 %+.1f%%",
            results["test"]["num_samples"],
            100 * (results["test"]["ndcg@10"] / max(frozen["test"]["ndcg@10"], 1e-12) - 1),
        )
    return payload
