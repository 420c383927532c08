"""Which process writes under Lightning's ``ddp`` strategy, and where the processes wait for each other.

With ``train.strategy=ddp`` Lightning re-runs the whole entry point once per extra device (its subprocess
launcher), so every line outside ``Trainer.fit``/``predict`` runs on every rank. The platform follows
Lightning's own rule for checkpoints and loggers: rank 0 writes every artifact (JSON files, manifests, logs,
reports; :func:`ilora_dllm2rec.core.artifacts.write_json_atomic` checks it), the other ranks compute the same
things and write nothing, and the entry points put a :func:`barrier` between stages so no rank reads an
artifact before rank 0 has written it. Without ``torch.distributed`` every function here is a no-op.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

# Lightning's launchers set one of these in the processes they start (the order Lightning reads them in)
_RANK_ENV = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


def _group():
    """``torch.distributed`` when a process group exists, else None. Looked up, not imported: the entry
    points report config errors before torch loads, and without torch there is no group."""
    dist = sys.modules.get("torch.distributed")
    return dist if dist is not None and dist.is_available() and dist.is_initialized() else None


def global_rank() -> int:
    """This process's rank: from the process group when it exists, else Lightning's record of it (which its
    strategies keep current), else the launcher's environment."""
    dist = _group()
    if dist is not None:
        return dist.get_rank()
    rank_zero = sys.modules.get("lightning.fabric.utilities.rank_zero")
    if rank_zero is not None:
        return int(getattr(rank_zero.rank_zero_only, "rank", 0) or 0)
    return next((int(os.environ[k]) for k in _RANK_ENV if os.environ.get(k, "").isdigit()), 0)


def is_rank_zero() -> bool:
    return global_rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op outside a process group)."""
    dist = _group()
    if dist is not None and dist.get_world_size() > 1:
        dist.barrier()


def leave_other_ranks() -> bool:
    """End the process group after a last barrier; True on rank 0, which goes on alone (evaluation,
    reports: work without collectives, where a barrier with finished ranks would hang)."""
    rank = global_rank()
    dist = _group()
    if dist is not None:
        barrier()
        dist.destroy_process_group()
    return rank == 0


@contextmanager
def rank_zero_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. builds a shared cache), the others after it finished."""
    if not is_rank_zero():
        barrier()
    yield
    if is_rank_zero():
        barrier()
