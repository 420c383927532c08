"""Lightning module for the iLoRA teacher: CE over all items + decaying embedding imitation.

Checkpoints hold only what was trained (adapters, projector, gate, head) plus what is needed to
rebuild the model: the teacher config, the item count, the LLM id and the frozen student (its
hyper-parameters and weights, a few hundred KB), so a teacher checkpoint is self-contained.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import lightning as L
import torch
from torchmetrics.aggregation import MeanMetric
from transformers import get_cosine_schedule_with_warmup

from ..core.errors import TrainingError
from ..core.metrics import ranking_metrics
from ..core.trainer import written_checkpoint_state
from .ilora_model import ILoRAModel
from .imitation import LambdaSchedule, teacher_loss

METRICS = ("hr@10", "ndcg@10", "hr@20", "ndcg@20", "mrr", "cand_hr@1")


class TeacherLitModule(L.LightningModule):
    def __init__(
        self,
        model: ILoRAModel,
        *,
        lr: float,
        gate_lr_scale: float,
        weight_decay: float,
        warmup_ratio: float,
        loss_type: str,
        temperature: float,
        schedule_factory: Callable[[int], LambdaSchedule],
        meta: dict,
        ks: Sequence[int] = (1, 5, 10, 20),
        head_lr_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.model = model
        self.lr, self.gate_lr_scale, self.weight_decay = lr, gate_lr_scale, weight_decay
        self.head_lr_scale = head_lr_scale
        self.warmup_ratio = warmup_ratio
        self.loss_type, self.temperature = loss_type, temperature
        self.schedule_factory = schedule_factory
        self.schedule: LambdaSchedule | None = None
        self.meta = meta  # stored in every checkpoint (see module docstring)
        self.ks = tuple(ks)
        self.val_metrics = torch.nn.ModuleDict({m.replace("@", "_at_"): MeanMetric() for m in METRICS})

    def on_fit_start(self) -> None:
        # lam(t) decays over all training steps by default: the count is only known inside fit()
        self.schedule = self.schedule_factory(max(1, int(self.trainer.estimated_stepping_batches)))

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        out = self.model(batch["seq"], batch["len_seq"])
        parts = teacher_loss(
            out["scores"],
            batch["target"],
            out["q_u"],
            out["z_u"],
            self.global_step,
            schedule=self.schedule,
            loss_type=self.loss_type,
            temperature=self.temperature,
        )
        loss = parts["loss"]
        if not torch.isfinite(loss):
            raise TrainingError(
                f"teacher loss became {loss.item()} at step {self.global_step} (epoch {self.current_epoch}); "
                f"lower teacher.lr or use teacher.dtype=fp32; {written_checkpoint_state(self)}"
            )
        size = batch["target"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        for name in ("ce", "imitation", "lam"):
            self.log(f"train/{name}", parts[name].detach().float(), batch_size=size)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        scores = self.model.score(batch["seq"], batch["len_seq"]).float()
        values = ranking_metrics(scores, batch["target"], ks=self.ks, candidates=batch.get("candidates"))
        for name in METRICS:
            if name in values:
                self.val_metrics[name.replace("@", "_at_")].update(values[name])

    def on_validation_epoch_end(self) -> None:
        for name in METRICS:
            metric = self.val_metrics[name.replace("@", "_at_")]
            if metric.update_count:
                self.log(f"val/{name}", metric.compute(), prog_bar=name == "ndcg@10")
            metric.reset()

    def configure_optimizers(self):
        groups = self.model.parameter_groups(self.lr, self.gate_lr_scale, self.weight_decay, self.head_lr_scale)
        optimizer = torch.optim.AdamW(groups)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = get_cosine_schedule_with_warmup(optimizer, int(self.warmup_ratio * total), total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["state_dict"] = {f"model.{k}": v for k, v in self.model.trainable_state_dict().items()}
        checkpoint["teacher_meta"] = self.meta
