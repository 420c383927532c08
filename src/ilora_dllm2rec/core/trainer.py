"""Build a Lightning ``Trainer`` from a stage's ``train`` section (accelerator auto, precision, strategy)."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.strategies import DDPStrategy

from .errors import ConfigError
from .runtime import cpu_has_native_bf16
from .schema_groups import Train

log = logging.getLogger(__name__)


def resolve_precision(precision: str | int | None) -> str:
    """bf16 only where the hardware computes it natively; otherwise fall back to fp32 with a message."""
    precision = str(precision or "32-true")
    if precision.startswith("bf16"):
        # including_emulation=False: a T4 (Colab's default GPU) "supports" bf16 only by emulation, slowly
        cuda_ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
        if torch.cuda.is_available() and not cuda_ok:
            log.warning("precision %s requested but this GPU has no bf16; using 32-true", precision)
            return "32-true"
        if not torch.cuda.is_available() and not cpu_has_native_bf16():
            log.warning("precision %s requested but this CPU only emulates bf16 (slowly); using 32-true", precision)
            return "32-true"
    if precision.startswith("16") and not torch.cuda.is_available():
        log.warning("precision %s needs a CUDA GPU; using 32-true on CPU", precision)
        return "32-true"
    return precision


def inference_device(accelerator: str) -> torch.device:
    """Where a stage runs its own inference outside Lightning (teacher evaluation, item embeddings, head refit),
    for ``train.accelerator``: the GPU the trainer used when it used one (this rank's, under DDP), else the CPU.
    An LLM scored on the CPU after GPU training would take hours at 7B scale, and FlashAttention has no CPU path
    at all."""
    if torch.cuda.is_available() and str(accelerator) in ("auto", "gpu", "cuda"):
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def training_strategy(name: str) -> str | DDPStrategy:
    """Lightning's strategy for ``train.strategy``; ``ddp`` / ``ddp_spawn`` without re-broadcasting buffers.

    DDP re-sends every module buffer from rank 0 before each forward by default. Ours never change during
    training (the distillation's per-row teacher tables of [num_train, K], the LLM item table, propensities,
    rotary frequencies) and some are large: ~120 MB per step for ml-1m's teacher tables. No module here has
    BatchNorm-style running statistics that would need the broadcast."""
    if name == "ddp":
        return DDPStrategy(broadcast_buffers=False)
    if name == "ddp_spawn":
        return DDPStrategy(start_method="spawn", broadcast_buffers=False)
    return name


class EpochSummary(Callback):
    """One log line per epoch (train loss, monitored metric, best so far, seconds): the progress record when no
    live progress bar is drawn (piped to a file, a notebook log, ``logging.progress_bar=false``)."""

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor
        self.best: float | None = None
        self.started = time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # after this epoch's validation (Lightning runs it before on_train_epoch_end)
        if not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        value = metrics.get(self.monitor)
        if value is None:
            return
        value = float(value)
        self.best = value if self.best is None else max(self.best, value)
        loss = metrics.get("train/loss_epoch", metrics.get("train/loss"))
        loss_text = f"train/loss {float(loss):.4f}, " if loss is not None else ""
        log.info(
            "epoch %d/%d: %s%s %.4f (best %.4f), %.1f s",
            trainer.current_epoch,
            trainer.max_epochs - 1,
            loss_text,
            self.monitor,
            value,
            self.best,
            time.perf_counter() - self.started,
        )


class WindowedMonitor(Callback):
    """Publish ``{monitor}_mean{N}``, the mean of the monitored validation metric over the last N epochs (fewer
    at the start), for checkpointing and early stopping to select on.

    Why: a validation maximum over many plateau epochs is mostly the upper tail of epoch-to-epoch noise (on
    ml-100k, validation NDCG@10 moves by about 2.5% between epochs; ten epochs after their peak, three SASRecs had lost
    7% of it and 0.5% of their test NDCG@10: docs/BENCHMARKS.md "Validation-selected against last checkpoints").
    A trailing mean lowers that noise N-fold in variance; the checkpoint kept is the last epoch of the best window.
    Measured with N = 5 on ml-100k it did not raise test NDCG@10 (docs/DESIGN.md), hence the default N = 1.
    Lightning has no smoothed monitor, hence this callback. The value is written into ``callback_metrics`` at
    ``on_validation_end`` (after the module logged this epoch's metric), before ModelCheckpoint and EarlyStopping
    read it at the train epoch's end; the history is saved with the checkpoint so a resumed run continues it."""

    def __init__(self, monitor: str, window: int) -> None:
        self.monitor, self.window = monitor, int(window)
        self.name = f"{monitor}_mean{self.window}"
        self.history: list[float] = []

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            raise ConfigError(
                f"train.monitor={self.monitor!r} was not logged by this stage's validation: use one of "
                f"{sorted(k for k in trainer.callback_metrics if k.startswith('val/'))}"
            )
        self.history = [*self.history, float(value)][-self.window :]
        trainer.callback_metrics[self.name] = torch.tensor(sum(self.history) / len(self.history))

    def state_dict(self) -> dict:
        return {"history": list(self.history)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = [float(v) for v in state_dict.get("history", [])]


def live_progress_bar(requested: bool) -> bool:
    """The live (rich) bar only on a terminal: piped to a file its redraws become 2-3 wrapped lines per update."""
    return requested and sys.stdout.isatty()


def written_checkpoint_state(module: L.LightningModule) -> str:
    """What a diverged run leaves behind, for its NaN message: checkpoints are written at epoch ends, so a NaN in
    the first epoch finds none (saying "the last good checkpoint is kept" there sent users looking for a file that
    is not there)."""
    try:
        trainer = module.trainer
    except RuntimeError:  # not attached to a Trainer: nothing was checkpointed
        return "no checkpoint was written yet"
    # every checkpoint callback (best/last may be separate ones): the newest file written is the last good one
    callbacks = getattr(trainer, "checkpoint_callbacks", None) or [getattr(trainer, "checkpoint_callback", None)]
    paths = {getattr(c, name, "") for c in callbacks for name in ("last_model_path", "best_model_path")}
    written = [Path(p) for p in paths if p and Path(p).is_file()]
    if written:
        return f"the last good checkpoint is {max(written, key=lambda p: p.stat().st_mtime)}"
    return "no checkpoint was written yet"


def checkpoint_callback(dirpath: Path, monitor: str) -> ModelCheckpoint:
    """Keep ``best.ckpt``: the epoch with the best validation metric (mode max)."""
    return ModelCheckpoint(
        dirpath=dirpath,
        filename="best",
        monitor=monitor,
        mode="max",
        save_top_k=1,
        save_last=False,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )


def last_checkpoint_callback(dirpath: Path) -> ModelCheckpoint:
    """Keep ``last.ckpt``: the last completed epoch, rewritten after every epoch.

    Not ``save_last=True`` on the best checkpoint: Lightning (2.x) then writes ``last.ckpt`` only in a step that
    also wrote a top-k checkpoint, so it stayed at the last epoch that improved (epoch 0 of a 15-epoch run).
    Without a monitor and with ``save_top_k=1`` every epoch is saved under the same name, replacing the previous."""
    return ModelCheckpoint(
        dirpath=dirpath,
        filename="last",
        monitor=None,
        save_top_k=1,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )


def build_trainer(
    train: Train,
    *,
    models_dir: Path,
    tb_dir: Path | None,
    progress_bar: bool = True,
    extra_callbacks: list[Callback] | None = None,
    max_epochs: int | None = None,
) -> tuple[L.Trainer, ModelCheckpoint]:
    """A Trainer with best/last checkpointing and early stopping on ``train.monitor`` (validation), or on its
    trailing mean over ``train.monitor_window`` epochs."""
    monitor = str(train.monitor)
    if not monitor.startswith("val/"):
        raise ConfigError(f"train.monitor={monitor!r}: model selection must use a validation metric (val/...)")
    callbacks: list[Callback] = []
    if int(train.monitor_window) > 1:
        windowed = WindowedMonitor(monitor, int(train.monitor_window))
        callbacks.append(windowed)
        monitor = windowed.name
    ckpt = checkpoint_callback(models_dir, monitor)
    callbacks += [ckpt, last_checkpoint_callback(models_dir)]
    if train.patience is not None and int(train.patience) > 0:
        callbacks.append(EarlyStopping(monitor=monitor, mode="max", patience=int(train.patience)))
    progress_bar = live_progress_bar(progress_bar)
    callbacks.append(RichProgressBar(leave=True) if progress_bar else EpochSummary(monitor))
    callbacks.extend(extra_callbacks or [])
    logger = TensorBoardLogger(save_dir=str(tb_dir), name="", version="") if tb_dir is not None else False
    trainer = L.Trainer(
        accelerator=str(train.accelerator),
        devices=train.devices,
        strategy=training_strategy(str(train.strategy)),
        precision=resolve_precision(train.precision),
        max_epochs=int(max_epochs if max_epochs is not None else train.max_epochs),
        gradient_clip_val=train.gradient_clip_val,
        accumulate_grad_batches=int(train.accumulate_grad_batches),
        log_every_n_steps=int(train.log_every_n_steps),
        limit_train_batches=train.limit_train_batches,
        deterministic=bool(train.deterministic),
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
