"""Second phase of iLoRA teacher training: the ranking head refitted on cached LLM states (``teacher.head_refit``).

In the first phase (the Lightning fit) the head ``P`` of ``q_u = z_u + P(h_u)`` moves together with the
adapters, at their learning rate, over the stage's few thousand samples. Once adapters, projector and gate
are fixed, a sample's LLM state ``h_u`` no longer changes: it is computed once (inference, batches grouped by
prompt length, the cost of an export row) for ``samples`` training rows and the validation rows, and the head
alone is trained on those cached tensors for many epochs at a tiny fraction of an LLM step's cost. The epoch
with the best validation NDCG@10 is kept, the first phase's head included (epoch 0), so the refit never
lowers the teacher's validation score. Measured on ml-100k: docs/BENCHMARKS.md "iLoRA teacher: quality
against its SASRec".

The loop is written here rather than run through Lightning: it trains one Linear layer on in-memory tensors,
runs identically on every rank of a distributed job (no process group, sampler or device interplay) and
writes nothing until the stage saves the chosen head.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..core.errors import ConfigError, TrainingError
from ..core.schema import check
from ..core.schema_teacher import HeadRefit
from ..data import SampleSet, build_dataloader
from ..student.evaluator import evaluate
from .export import length_order
from .ilora_model import ILoRAModel

log = logging.getLogger(__name__)


@dataclass
class RefitResult:
    best_epoch: int  # 0: the first phase's head was best on validation and is kept
    val_ndcg_at_10: list[float]  # per epoch, epoch 0 first
    num_samples: int
    states_seconds: float


def check_refit_config(refit: HeadRefit | Mapping[str, Any]) -> None:
    """ConfigError for values the refit cannot use (the schema's ``HeadRefit``; checked before the first phase)."""
    check(HeadRefit, refit, "teacher.head_refit")


@torch.no_grad()  # not inference_mode: the cached tensors are the head's inputs under autograd later
def cache_states(model: ILoRAModel, samples: SampleSet, batch_size: int) -> dict[str, torch.Tensor]:
    """``h`` [M, D] and ``z`` [M, d] (fp32, CPU) for every row of ``samples``, in row order."""
    device = next(model.head.parameters()).device
    order = length_order(model, samples)  # similar prompt lengths per batch: little padding
    loader = build_dataloader(samples.subset(order), batch_size, shuffle=False, seed=0)
    h, z = [], []
    for batch in loader:
        out = model(batch["seq"].to(device), batch["len_seq"].to(device))
        h.append(out["h_u"].float().cpu())
        z.append(out["z_u"].float().cpu())
    inverse = torch.from_numpy(np.argsort(order, kind="stable"))
    return {"h": torch.cat(h)[inverse], "z": torch.cat(z)[inverse]}


def _scores(model: ILoRAModel, states: dict, rows: torch.Tensor, samples: SampleSet) -> torch.Tensor:
    """[len(rows), N] scores on the head's device (the cached states and the row ids live on the CPU)."""
    device = next(model.head.parameters()).device
    rows = rows.cpu()
    seq = torch.from_numpy(np.asarray(samples.seq[rows.numpy()], dtype=np.int64)).to(device)
    len_seq = torch.from_numpy(np.asarray(samples.len_seq[rows.numpy()], dtype=np.int64)).to(device)
    return model.head_scores(states["h"][rows].to(device), states["z"][rows].to(device), seq, len_seq)[1]


def _val_ndcg(model: ILoRAModel, states: dict, samples: SampleSet, ks: list[int], exclude_history: bool) -> float:
    offset = [0]

    def score(batch: dict) -> torch.Tensor:  # the evaluator walks the rows in order
        rows = torch.arange(offset[0], offset[0] + batch["target"].shape[0])
        offset[0] += len(rows)
        return _scores(model, states, rows, samples)

    device = next(model.head.parameters()).device  # the evaluator's batches (targets) go where the scores are
    return evaluate(score, samples, batch_size=1024, ks=ks, exclude_history=exclude_history, device=device)["ndcg@10"]


def refit_head(
    model: ILoRAModel,
    train: SampleSet,
    val: SampleSet,
    refit: HeadRefit,
    *,
    seed: int,
    ks: list[int],
    exclude_history: bool,
    llm_batch_size: int,
) -> RefitResult:
    """Train ``model.head`` alone on cached states of ``train``; keep the best epoch on ``val`` (in place)."""
    import time

    if not model.use_item_embeddings_head:
        raise ConfigError("teacher.head_refit needs teacher.use_item_embeddings_head=true (the residual head)")
    model.eval()
    start = time.perf_counter()
    train_states = cache_states(model, train, llm_batch_size)
    val_states = cache_states(model, val, llm_batch_size)
    states_seconds = time.perf_counter() - start
    head = model.head
    head.float()
    best_state = {k: v.detach().clone() for k, v in head.state_dict().items()}
    history = [_val_ndcg(model, val_states, val, ks, exclude_history)]
    best_epoch = 0
    optimizer = torch.optim.Adam(head.parameters(), lr=float(refit.lr), weight_decay=float(refit.weight_decay))
    targets = torch.from_numpy(np.asarray(train.target, dtype=np.int64))
    generator = torch.Generator().manual_seed(seed)
    with torch.enable_grad():
        for epoch in range(1, int(refit.epochs) + 1):
            order = torch.randperm(len(train), generator=generator)
            for first in range(0, len(train), int(refit.batch_size)):
                rows = order[first : first + int(refit.batch_size)]
                scores = _scores(model, train_states, rows, train)
                loss = torch.nn.functional.cross_entropy(scores, targets[rows].to(scores.device))
                if not torch.isfinite(loss):
                    raise TrainingError(
                        f"teacher head refit loss became {loss.item()} in epoch {epoch}; lower "
                        "teacher.head_refit.lr (the first phase's checkpoint in models/teacher is kept)"
                    )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            history.append(_val_ndcg(model, val_states, val, ks, exclude_history))
            if history[-1] > history[best_epoch]:
                best_epoch = epoch
                best_state = {k: v.detach().clone() for k, v in head.state_dict().items()}
            elif epoch - best_epoch >= int(refit.patience):
                break
    head.load_state_dict(best_state)
    log.info("head refit: best epoch %d, val ndcg@10 per epoch %s", best_epoch, [round(v, 4) for v in history])
    return RefitResult(best_epoch, history, len(train), states_seconds)
