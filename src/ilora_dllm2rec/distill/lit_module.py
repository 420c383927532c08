"""Lightning module for DLLM2Rec distillation: the student's base loss + lam * L_RD.

Teacher knowledge is held as dense per-training-row tensors (candidate ids, distances, and a
mask of rows that get the KD loss), looked up by ``batch["index"]``; no per-batch I/O or parsing.
"""

from __future__ import annotations

import torch

from ..student.lit_module import StudentLitModule
from .kd_losses import kd_negatives, ranking_distillation_loss, ranking_loss_kwargs


class DistillLitModule(StudentLitModule):
    def __init__(self, *args, distill_cfg: dict, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.distill_cfg = distill_cfg
        self.lam = float(distill_cfg["lam"])
        self.use_ranking = bool(distill_cfg.get("use_ranking_distill", True))
        self.n_neg = int(distill_cfg.get("n_neg", 1))
        self.kd_kwargs = ranking_loss_kwargs(distill_cfg, student_loss=str(self.hparams.student_cfg.get("loss", "ce")))
        # filled by set_teacher_knowledge; not persistent: checkpoints hold only the student
        self.register_buffer("cand_ids", torch.zeros(0, 0, dtype=torch.long), persistent=False)
        self.register_buffer("cand_dist", torch.zeros(0, 0), persistent=False)
        self.register_buffer("kd_mask", torch.zeros(0, dtype=torch.bool), persistent=False)

    def set_teacher_knowledge(self, cand_ids: torch.Tensor, cand_dist: torch.Tensor, kd_mask: torch.Tensor) -> None:
        """Dense [num_train, K] candidates/distances and [num_train] bool: rows that get the KD loss."""
        self.cand_ids = cand_ids.long()
        self.cand_dist = cand_dist.float()
        self.kd_mask = kd_mask.bool()

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        scores, base, parts = self.base_loss(batch)
        loss = base
        size = batch["target"].shape[0]
        if self.use_ranking and self.lam > 0 and self.cand_ids.numel():
            idx = batch["index"]
            cand_ids = self.cand_ids[idx]
            negatives = kd_negatives(
                batch["seq"],
                batch["target"],
                cand_ids,
                self.model.num_items,
                self.n_neg,
                generator=self.negative_generator(),
            )
            l_rd = ranking_distillation_loss(
                scores.float(),
                cand_ids,
                self.cand_dist[idx],
                negatives,
                self.kd_mask[idx],
                propensity=self.propensity,
                **self.kd_kwargs,
            )
            loss = base + self.lam * l_rd
            self.log("train/l_rd", l_rd.detach(), batch_size=size)
        self.check_finite(loss)
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log("train/base_loss", base.detach(), batch_size=size)
        for name, value in parts.items():
            self.log(f"train/{name}", value, batch_size=size)
        return loss
