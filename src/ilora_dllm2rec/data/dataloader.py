"""Fast batching of a :class:`SampleSet` for Lightning.

Batches are sliced from tensors built once (``torch.from_numpy``, no copy): the sampler yields a
whole batch of row indices and the dataset's ``__getitem__`` takes that index tensor, so there is
no per-sample ``__getitem__`` and no default collate (``DataLoader(batch_size=None)``).

Shuffling is a ``torch.randperm`` drawn from a generator seeded with ``seed + epoch``: two runs with the
same seed see identical batches, and each epoch has its own order. Lightning calls ``set_epoch`` on the
loader's sampler before every epoch; without Lightning the epoch counter advances on every iteration.

Distributed: the sampler shards batches itself when ``torch.distributed`` is initialised (like
``DistributedSampler``: every rank gets ``ceil(M / world)`` rows, the last rows padded by repeating
the first ones; the ``index`` field identifies duplicates). Lightning must therefore NOT swap in its own
sampler: the trainer is built with ``use_distributed_sampler=False``.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler

from ilora_dllm2rec.data.types import SampleSet


class SampleTensors(Dataset):
    """A SampleSet as tensors; ``ds[index_tensor]`` returns a whole batch dict."""

    def __init__(self, samples: SampleSet) -> None:
        self.tensors = {
            "seq": torch.from_numpy(samples.seq).long(),
            "len_seq": torch.from_numpy(samples.len_seq).long(),
            "target": torch.from_numpy(samples.target).long(),
            "user": torch.from_numpy(samples.user).long(),
        }
        if samples.candidates is not None:
            self.tensors["candidates"] = torch.from_numpy(samples.candidates).long()

    def __len__(self) -> int:
        return int(self.tensors["target"].shape[0])

    def __getitem__(self, index: torch.Tensor | list[int] | int) -> dict[str, torch.Tensor]:
        if isinstance(index, int):
            return {**{k: v[index] for k, v in self.tensors.items()}, "index": torch.tensor(index)}
        idx = torch.as_tensor(index, dtype=torch.long)
        batch = {k: v.index_select(0, idx) for k, v in self.tensors.items()}  # far faster than v[idx] on CPU
        batch["index"] = idx
        return batch


class BatchIndexSampler(Sampler[torch.Tensor]):
    """Yields LongTensor batches of row indices; deterministic per (seed, epoch); shards under DDP."""

    def __init__(self, num_rows: int, batch_size: int, shuffle: bool, seed: int, drop_last: bool = False) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.num_rows, self.batch_size, self.shuffle = num_rows, batch_size, shuffle
        self.seed, self.drop_last = seed, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @staticmethod
    def _world() -> tuple[int, int]:
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def _rows(self) -> torch.Tensor:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.num_rows, generator=g)
        else:
            order = torch.arange(self.num_rows)
        rank, world = self._world()
        if world > 1:
            per_rank = -(-self.num_rows // world)
            order = torch.cat([order, order[: per_rank * world - self.num_rows]])[rank::world]
        return order

    def __len__(self) -> int:
        _, world = self._world()
        rows = -(-self.num_rows // world)
        return rows // self.batch_size if self.drop_last else -(-rows // self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        order = self._rows()
        self.epoch += 1  # next plain iteration gets a new order; Lightning overrides via set_epoch
        n = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        yield from torch.split(order[:n], self.batch_size)


def build_dataloader(
    samples: SampleSet,
    batch_size: int,
    shuffle: bool,
    seed: int,
    drop_last: bool = False,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """DataLoader yielding dict batches: seq [B, L], len_seq, target, user, index [B] (+ candidates [B, 20])."""
    sampler = BatchIndexSampler(len(samples), batch_size, shuffle, seed, drop_last)
    return DataLoader(
        SampleTensors(samples),
        batch_size=None,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
    )
