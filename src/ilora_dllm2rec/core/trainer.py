"""Build a Lightning ``Trainer`` from a ``train`` preset (accelerator auto, precision, strategy)."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig

from .errors import ConfigError

log = logging.getLogger(__name__)


def resolve_precision(precision: str | int | None) -> str:
    """bf16 only where the hardware supports it; otherwise fall back to fp32 with a message."""
    precision = str(precision or "32-true")
    if precision.startswith("bf16"):
        cuda_ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        if torch.cuda.is_available() and not cuda_ok:
            log.warning("precision %s requested but this GPU has no bf16; using 32-true", precision)
            return "32-true"
    if precision.startswith("16") and not torch.cuda.is_available():
        log.warning("precision %s needs a CUDA GPU; using 32-true on CPU", precision)
        return "32-true"
    return precision


def checkpoint_callback(dirpath: Path, monitor: str) -> ModelCheckpoint:
    """Keep ``best.ckpt`` (by the validation metric, mode max) and ``last.ckpt``."""
    ckpt = ModelCheckpoint(
        dirpath=dirpath,
        filename="best",
        monitor=monitor,
        mode="max",
        save_top_k=1,
        save_last=True,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )
    ckpt.CHECKPOINT_NAME_LAST = "last"
    return ckpt


def build_trainer(
    train_cfg: DictConfig,
    *,
    models_dir: Path,
    tb_dir: Path | None,
    progress_bar: bool = True,
    extra_callbacks: list[Callback] | None = None,
    max_epochs: int | None = None,
) -> tuple[L.Trainer, ModelCheckpoint]:
    """A Trainer with best/last checkpointing and early stopping on ``train_cfg.monitor`` (validation)."""
    monitor = str(train_cfg.monitor)
    if not monitor.startswith("val/"):
        raise ConfigError(f"train.monitor={monitor!r}: model selection must use a validation metric (val/...)")
    ckpt = checkpoint_callback(models_dir, monitor)
    callbacks: list[Callback] = [ckpt]
    if train_cfg.patience is not None and int(train_cfg.patience) > 0:
        callbacks.append(EarlyStopping(monitor=monitor, mode="max", patience=int(train_cfg.patience)))
    if progress_bar:
        callbacks.append(RichProgressBar(leave=True))
    callbacks.extend(extra_callbacks or [])
    logger = TensorBoardLogger(save_dir=str(tb_dir), name="", version="") if tb_dir is not None else False
    trainer = L.Trainer(
        accelerator=str(train_cfg.accelerator),
        devices=train_cfg.devices,
        strategy=str(train_cfg.strategy),
        precision=resolve_precision(train_cfg.precision),
        max_epochs=int(max_epochs if max_epochs is not None else train_cfg.max_epochs),
        gradient_clip_val=train_cfg.gradient_clip_val,
        accumulate_grad_batches=int(train_cfg.accumulate_grad_batches),
        log_every_n_steps=int(train_cfg.log_every_n_steps),
        limit_train_batches=train_cfg.limit_train_batches,
        deterministic=bool(train_cfg.deterministic),
        callbacks=callbacks,
        logger=logger,
        enable_progress_bar=progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        # our batch sampler shards itself under torch.distributed (data/dataloader.py)
        use_distributed_sampler=False,
        default_root_dir=str(models_dir),
    )
    return trainer, ckpt
