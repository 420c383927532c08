"""Teacher export in the DLLM2Rec format (ALGORITHMS.md section 7), for any teacher backend.

Top-N lists are produced with Lightning ``predict`` (inference mode, the trainer's device and precision);
every rank writes its shard of ``(row index, ids, distances)`` and rank 0 merges them by row index, so the
rows come out in training-sample order whatever the number of devices (Lightning strategies, e.g. ddp).
The distance is ``-log p`` with ``p`` the teacher's softmax probability (``exp(-d) = p``).
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from ..core.runtime import HeapGuard
from ..core.safe_load import load_torch_file
from ..core.schema_groups import Train
from ..core.trainer import resolve_precision
from ..data import SampleSet, build_dataloader
from .prompts import prompt_token_counts

log = logging.getLogger(__name__)


class TopNPredictor(L.LightningModule):
    def __init__(self, teacher: torch.nn.Module, top_n: int) -> None:
        super().__init__()
        self.teacher = teacher
        self.top_n = top_n

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        scores = self.teacher.score(batch["seq"], batch["len_seq"]).float()
        top = torch.topk(torch.log_softmax(scores, dim=-1), self.top_n, dim=-1)
        return {"index": batch["index"].cpu(), "ids": top.indices.cpu(), "dist": (-top.values).clamp(min=0).cpu()}


class HeapGuardCallback(L.Callback):
    """Releases the free heap when a predict loop over every training row has grown it by a GB
    (core/runtime.py: HeapGuard); an LLM's steady working set stays below that and is not trimmed."""

    def __init__(self) -> None:
        self.guard = HeapGuard()

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self.guard.check()


class ExportProgress(L.Callback):
    """Progress of the export as log lines (rows done, rows/s, time left): at ~55 rows/s on a CPU an LLM export
    of every training row runs for half an hour, which must not look like a hang. A line every ``interval``
    seconds and at the end; rank 0 reports its own shard, scaled by the number of ranks."""

    def __init__(self, total_rows: int, interval: float = 30.0) -> None:
        self.total = total_rows
        self.interval = interval
        self.rows = 0
        self.start = self.last = time.perf_counter()

    def on_predict_start(self, trainer, pl_module) -> None:
        self.rows, self.start = 0, time.perf_counter()
        self.last = self.start

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self.rows += int(batch["index"].shape[0]) * trainer.world_size
        now = time.perf_counter()
        if trainer.is_global_zero and (now - self.last >= self.interval or self.rows >= self.total):
            self.last = now
            log.info("%s", progress_line(min(self.rows, self.total), self.total, now - self.start))


def progress_line(done: int, total: int, seconds: float) -> str:
    """``export: 12,000/97,171 rows (12%), 410 rows/s, 3 min 52 s left``."""
    rate = done / seconds if seconds > 0 else 0.0
    left = (total - done) / rate if rate > 0 else float("nan")
    left_text = "done" if done >= total else (f"{int(left // 60)} min {int(left % 60)} s left" if left == left else "")
    return f"export: {done:,}/{total:,} rows ({done / max(total, 1):.0%}), {rate:,.0f} rows/s, {left_text}"


class ShardWriter(BasePredictionWriter):
    """Each rank saves its predictions; rank 0 merges them in row order after a barrier."""

    def __init__(self, folder: Path) -> None:
        super().__init__(write_interval="epoch")
        self.folder = folder

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        parts = predictions if predictions and isinstance(predictions[0], dict) else predictions[0]
        merged = {k: torch.cat([p[k] for p in parts]) for k in ("index", "ids", "dist")} if parts else {}
        torch.save(merged, self.folder / f"shard_{trainer.global_rank}.pt")


def merge_shards(folder: Path, num_rows: int) -> tuple[np.ndarray, np.ndarray]:
    ids = dist = None
    seen = np.zeros(num_rows, dtype=bool)
    for shard in sorted(folder.glob("shard_*.pt")):
        part = load_torch_file(shard, kind="teacher export shard", remedy="run the export again")
        if not part:
            continue
        index = part["index"].numpy()
        if ids is None:
            ids = np.zeros((num_rows, part["ids"].shape[1]), dtype=np.int64)
            dist = np.zeros((num_rows, part["ids"].shape[1]), dtype=np.float32)
        ids[index], dist[index] = part["ids"].numpy(), part["dist"].numpy()  # DDP padding rows repeat: same values
        seen[index] = True
    if ids is None or not seen.all():
        raise RuntimeError(f"teacher export is missing {int((~seen).sum())} of {num_rows} rows after merging shards")
    return ids, dist


def length_order(teacher: torch.nn.Module, samples: SampleSet) -> np.ndarray:
    """Row order for batching: by prompt token count for LLM teachers (titles differ in length, so history
    length alone leaves ~10% padding at 10 titles per prompt), by history length otherwise."""
    prompts = getattr(teacher, "prompts", None)
    if prompts is None:
        return np.argsort(samples.len_seq, kind="stable")
    lengths = prompt_token_counts(prompts, samples.seq, samples.len_seq)
    return np.lexsort((samples.len_seq, lengths))  # stable: by prompt length, then history length


def predict_top_n(
    teacher: torch.nn.Module,
    samples: SampleSet,
    *,
    top_n: int,
    batch_size: int,
    train_cfg: Train,
    shard_dir: Path,
) -> tuple[np.ndarray, np.ndarray] | None:
    """[M, top_n] ids and distances for every row of ``samples`` in order; None on non-zero ranks.

    ``shard_dir`` must be visible to every rank (the run folder is).
    """
    tmp = Path(shard_dir)
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        trainer = L.Trainer(
            accelerator=str(train_cfg.accelerator),
            devices=train_cfg.devices,
            strategy=str(train_cfg.strategy),
            precision=resolve_precision(train_cfg.precision),
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            use_distributed_sampler=False,
            callbacks=[ShardWriter(tmp), HeapGuardCallback(), ExportProgress(len(samples))],
        )
        # batch prompts of similar length together (less padding); rows are put back in order below
        order = length_order(teacher, samples)
        loader = build_dataloader(samples.subset(order), batch_size, shuffle=False, seed=0)
        trainer.predict(TopNPredictor(teacher, top_n), loader, return_predictions=False)
        trainer.strategy.barrier()
        if not trainer.is_global_zero:
            return None
        ids_sorted, dist_sorted = merge_shards(tmp, len(samples))
        ids, dist = np.empty_like(ids_sorted), np.empty_like(dist_sorted)
        ids[order], dist[order] = ids_sorted, dist_sorted
        return ids, dist
    finally:
        rank0 = not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0
        if rank0 and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
