"""A non-LLM teacher backend: a larger ID-based student (SASRec by default) behind the teacher interface.

It trains like a student (same Lightning module, validation-only selection) into ``models/teacher`` and
exports the same three DLLM2Rec files, with its item embedding table as ``all_embeddings.pt``.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import torch
from torch import nn

from ..core.run_logging import RunDir, stage_log_file
from ..core.schema_groups import Logging, Metrics, Train
from ..core.seed import set_seed
from ..core.stage import publish_stage, split_rows
from ..data import SplitData
from ..student.base import SequentialRecommender
from ..student.train import build_student_module, fit_and_evaluate, fit_student, load_student_checkpoint
from .interfaces import TeacherRecommender, TeacherStage

log = logging.getLogger(__name__)


class IDTeacher(nn.Module, TeacherRecommender):
    def __init__(self, model: SequentialRecommender) -> None:
        super().__init__()
        self.model = model
        self.num_items = model.num_items  # TeacherRecommender's catalogue size

    def score(self, seq: torch.Tensor, len_seq: torch.Tensor) -> torch.Tensor:
        return self.model(seq, len_seq)

    def item_embeddings(self, batch_size: int = 32) -> torch.Tensor:
        return self.model.item_embedding.weight[: self.model.num_items].detach().float().cpu()


def load_id_teacher(path: str | Path) -> IDTeacher:
    model, _ = load_student_checkpoint(path)
    return IDTeacher(model).eval()


def train_id_model(
    train: Train,
    metrics: Metrics,
    logs: Logging,
    run: RunDir,
    data: SplitData,
    model_cfg: dict,
    stage: str,
    seed: int,
) -> tuple[Path, int]:
    """Train one ID model of ``model_cfg`` with ``seed`` (its weights and data order) into ``models/{stage}``:
    (best checkpoint, best epoch)."""
    set_seed(seed)
    module = build_student_module(data, model_cfg, train, metrics, seed)
    log.info(
        "ID model %s (seed %d): %d parameters", model_cfg["name"], seed, sum(p.numel() for p in module.parameters())
    )
    return fit_student(module, data, train, logs, seed, run, stage)


def run_id_teacher_stage(stage_cfg: TeacherStage, run: RunDir, data: SplitData) -> dict:
    stage, c = "teacher", stage_cfg
    model_cfg = dataclasses.asdict(c.teacher.model)  # as the checkpoint stores it: a plain dict
    with stage_log_file(run, stage):
        best, best_epoch, results = fit_and_evaluate(
            run,
            data,
            "teacher_train_time_total",
            lambda: train_id_model(c.train, c.metrics, c.logging, run, data, model_cfg, stage, c.seed),
            c.train,
            c.metrics,
            c.logging,
        )
        payload = {
            "stage": stage,
            "model": f"{model_cfg['name']} (ID teacher)",
            "best_epoch": best_epoch,
            "best_checkpoint": str(best),
            "data_fingerprint": data.fingerprint,
            "val": results["val"],
            "test": results["test"],
        }
        manifest = {
            "stage": stage,
            "backend": "sasrec",
            "data_fingerprint": data.fingerprint,
            "num_items": data.num_items,
            "best_checkpoint": best.name,
            "last_checkpoint": "last.ckpt",
            "hidden_size": int(model_cfg["hidden_size"]),
        }
        publish_stage(run, stage, payload, manifest, f"ID teacher on {data.name}", split_rows("teacher", results))
    return payload
