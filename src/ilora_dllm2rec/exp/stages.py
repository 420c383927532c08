"""The composed config (a DictConfig) read once into the typed schema, and each stage called with its sections.

Entry points keep the DictConfig: they compose it, re-apply each stage's trainer preset
(core/config.py ``with_train_preset``) and hash its sections for resume (exp/common.py). The stage library
(student, teacher, distill) and the evaluation of all models (report) receive only the typed sections they read,
in one frozen bundle per stage.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from ..core.config import with_train_preset
from ..core.run_logging import RunDir
from ..core.schema_stages import validate_config
from ..data import SplitData
from ..distill.train import DistillStage, run_distill_stage
from ..report.eval_all import EvalStage, run_eval_all_stage
from ..student.train import BaselineStage, run_baseline_stage
from ..teacher.backends import teacher_backend
from ..teacher.interfaces import TeacherStage
from ..teacher.stages import ExportStage, check_export_inputs, run_export_stage, train_teacher


def config_fingerprint(cfg: DictConfig) -> str:
    """The whole run config's hash, recorded in the student stages' metrics."""
    text = json.dumps(OmegaConf.to_container(cfg, resolve=True), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def baseline_stage(cfg: DictConfig) -> BaselineStage:
    c = validate_config(cfg)  # each stage's own trainer values, checked
    return BaselineStage(c.student, c.train, c.metrics, c.logging, c.general.seed, config_fingerprint(cfg))


def teacher_stage(cfg: DictConfig) -> TeacherStage:
    c = validate_config(cfg)  # each stage's own trainer values, checked
    return TeacherStage(c.teacher, c.train, c.metrics, c.logging, c.paths, str(c.student.name), c.general.seed)


def export_stage(cfg: DictConfig) -> ExportStage:
    c = validate_config(cfg)  # each stage's own trainer values, checked
    return ExportStage(
        c.teacher, c.active, c.train, c.paths, c.distill.teacher_checkpoint_path, c.distill.baseline_checkpoint_path
    )


def distill_stage(cfg: DictConfig) -> DistillStage:
    c = validate_config(cfg)  # each stage's own trainer values, checked
    return DistillStage(
        c.student,
        c.distill,
        c.active,
        c.train,
        c.metrics,
        c.logging,
        c.paths.result_root,
        c.general.seed,
        config_fingerprint(cfg),
        load_teacher=load_id_teacher,
    )


def load_id_teacher(backend: str, checkpoint: Path, data: SplitData) -> torch.nn.Module:
    """An ID teacher from its checkpoint (function matching queries it during distillation)."""
    return teacher_backend(backend).load(checkpoint, data, "", None)


def eval_stage(cfg: DictConfig) -> EvalStage:
    c = validate_config(cfg)  # train: the student stage's, whose evaluation batch size scores the ID models
    return EvalStage(c.eval, c.teacher, c.train, c.metrics, c.logging, c.paths, c.general.seed)


def baseline(cfg: DictConfig, run: RunDir, data: SplitData) -> dict:
    """The baseline stage with ``cfg`` (a config whose ``train`` is the student stage's)."""
    return run_baseline_stage(baseline_stage(cfg), run, data)


def teacher(cfg: DictConfig, run: RunDir, data: SplitData, overrides: Sequence[str] | None = None) -> dict:
    """The teacher stage with ``cfg`` (``train`` the teacher stage's); a baseline it must train first gets the
    student stage's trainer, composed with the run's command-line ``overrides``."""
    return train_teacher(
        teacher_stage(cfg), run, data, lambda: baseline(with_train_preset(cfg, "student", overrides or []), run, data)
    )


def export(cfg: DictConfig, run: RunDir, data: SplitData) -> dict | None:
    return run_export_stage(export_stage(cfg), run, data)


def check_export(cfg: DictConfig, data: SplitData, run: RunDir) -> None:
    check_export_inputs(export_stage(cfg), data, run)


def distill(cfg: DictConfig, run: RunDir, data: SplitData) -> dict:
    return run_distill_stage(distill_stage(cfg), run, data)


def eval_all(cfg: DictConfig, run: RunDir, data: SplitData) -> dict:
    """Every model evaluated with one protocol (report/eval_all.py); ``cfg``'s ``train`` is the student stage's."""
    return run_eval_all_stage(eval_stage(cfg), run, data)
