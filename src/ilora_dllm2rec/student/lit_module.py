"""Lightning module for ID-based students (baseline training; distillation subclasses it).

The network (``SequentialRecommender``) is built from plain hyper-parameters so a checkpoint
alone is enough to rebuild it (``StudentLitModule.load_from_checkpoint``).
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import torch
from torchmetrics.aggregation import MeanMetric

from ..core.errors import TrainingError
from ..core.metrics import ranking_metrics
from ..core.trainer import written_checkpoint_state
from .factory import build_student
from .losses import StudentLoss, item_propensity


class StudentLitModule(L.LightningModule):
    def __init__(
        self,
        student_cfg: dict,
        num_items: int,
        *,
        lr: float,
        weight_decay: float = 0.0,
        ks: Sequence[int] = (1, 5, 10, 20),
        exclude_history: bool = False,
        target_counts: list[int] | None = None,
        llm_embedding_dim: int | None = None,
        ed_weight: float = 0.0,
        data_fingerprint: str = "",
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = build_student(student_cfg, num_items)
        if llm_embedding_dim:
            # placeholder so a distilled checkpoint's state dict (projection + E_llm buffer) loads back
            self.model.set_llm_item_embeddings(torch.zeros(num_items, llm_embedding_dim), ed_weight)
        counts = torch.tensor(target_counts if target_counts is not None else [0] * num_items, dtype=torch.float)
        self.loss_fn = StudentLoss.from_config(student_cfg, num_items, target_counts=counts)
        # DROS propensities also serve the distillation loss (subclass), whatever the base loss is
        self.register_buffer("propensity", item_propensity(counts), persistent=False)
        self.ks = tuple(int(k) for k in ks)
        self.exclude_history = exclude_history
        self.metric_names = [f"{m}@{k}" for m in ("hr", "ndcg", "recall") for k in self.ks] + ["mrr", "cand_hr@1"]
        self.val_metrics = torch.nn.ModuleDict({_key(n): MeanMetric() for n in self.metric_names})
        self.test_metrics = torch.nn.ModuleDict({_key(n): MeanMetric() for n in self.metric_names})
        self._neg_generator: torch.Generator | None = None

    # -- training ------------------------------------------------------------------
    def negative_generator(self) -> torch.Generator:
        """A seeded generator for negative sampling, so runs with the same seed are identical."""
        if self._neg_generator is None or self._neg_generator.device != self.device:
            self._neg_generator = torch.Generator(device=self.device)
            self._neg_generator.manual_seed(int(self.hparams.seed) + 1000 * self.global_rank)
        return self._neg_generator

    def base_loss(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, dict]:
        scores = self.model(batch["seq"], batch["len_seq"])
        loss, parts = self.loss_fn(scores, batch, generator=self.negative_generator())
        return scores, loss, parts

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        _, loss, parts = self.base_loss(batch)
        self.check_finite(loss)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["target"].shape[0])
        for name, value in parts.items():
            self.log(f"train/{name}", value, batch_size=batch["target"].shape[0])
        return loss

    def check_finite(self, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss):
            raise TrainingError(
                f"loss became {loss.item()} at epoch {self.current_epoch}, step {self.global_step}; "
                f"lower the learning rate (train.lr) or check the data; {self.checkpoint_state()}"
            )

    def checkpoint_state(self) -> str:
        return written_checkpoint_state(self)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=float(self.hparams.lr), weight_decay=self.hparams.weight_decay)

    # -- evaluation ----------------------------------------------------------------------
    def _eval_step(self, batch: dict, metrics: torch.nn.ModuleDict) -> None:
        scores = self.model(batch["seq"], batch["len_seq"]).float()
        values = ranking_metrics(
            scores,
            batch["target"],
            ks=self.ks,
            candidates=batch.get("candidates"),
            history=batch["seq"] if self.exclude_history else None,
            pad_id=self.model.pad_id,
        )
        for name in self.metric_names:
            if name in values:
                metrics[_key(name)].update(values[name])

    def _log_metrics(self, prefix: str, metrics: torch.nn.ModuleDict) -> None:
        for name in self.metric_names:
            metric = metrics[_key(name)]
            if metric.update_count:
                self.log(f"{prefix}/{name}", metric.compute(), prog_bar=name == "ndcg@10", sync_dist=False)
            metric.reset()

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, self.val_metrics)

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val", self.val_metrics)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, self.test_metrics)

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test", self.test_metrics)


def _key(metric_name: str) -> str:
    """ModuleDict keys cannot contain '@' or '.'."""
    return metric_name.replace("@", "_at_")
