"""Fast batching of a :class:`SampleSet` for Lightning.

Batches are sliced from tensors built once (``torch.from_numpy``, no copy): the sampler yields a
whole batch of row indices and the dataset's ``__getitem__`` takes that index tensor, so there is
no per-sample ``__getitem__`` and no default collate (``DataLoader(batch_size=None)``).

Shuffling is a ``torch.randperm`` drawn from a generator seeded with ``seed + epoch``: two runs with the
same seed see identical batches, and each epoch has its own order. Lightning calls ``set_epoch`` on the
loader's sampler before every epoch; without Lightning the epoch counter advances on every iteration.

Length grouping (``lengths``, training the LLM teacher): each shuffled epoch is cut into chunks of
``GROUP_BATCHES`` batches, each chunk is sorted by length and cut into batches, and the batches are shuffled
again; batches then hold rows of similar prompt length (little padding) while the epoch stays random at the
chunk scale (the idea of Hugging Face's ``group_by_length``).

Distributed: the sampler shards batches itself when ``torch.distributed`` is initialised (like
``DistributedSampler``: every rank gets ``ceil(M / world)`` rows, the last rows padded by repeating
the first ones; the ``index`` field identifies duplicates). Lightning must therefore NOT swap in its own
sampler: the trainer is built with ``use_distributed_sampler=False``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler

from ilora_dllm2rec.data.types import SampleSet

GROUP_BATCHES = 50  # batches per length-sorted chunk of a shuffled epoch


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

    def __init__(
        self,
        num_rows: int,
        batch_size: int,
        shuffle: bool,
        seed: int,
        drop_last: bool = False,
        lengths: np.ndarray | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if lengths is not None and len(lengths) != num_rows:
            raise ValueError(f"lengths has {len(lengths)} entries for {num_rows} rows")
        self.num_rows, self.batch_size, self.shuffle = num_rows, batch_size, shuffle
        self.seed, self.drop_last = seed, drop_last
        self.lengths = None if lengths is None else torch.as_tensor(np.asarray(lengths), dtype=torch.long)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @staticmethod
    def _world() -> tuple[int, int]:
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def _rows(self) -> torch.Tensor:
        rank, world = self._world()
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.num_rows, generator=g)
            if self.lengths is not None:
                order = self._group_by_length(order, g, self.batch_size * world)
        else:
            order = torch.arange(self.num_rows)
        if world > 1:
            per_rank = -(-self.num_rows // world)
            order = torch.cat([order, order[: per_rank * world - self.num_rows]])[rank::world]
        return order

    def _group_by_length(self, order: torch.Tensor, g: torch.Generator, global_batch: int) -> torch.Tensor:
        """Sort chunks of the shuffled order by length, cut them into global batches, shuffle those batches.

        Global batches (batch_size x world) keep each rank's ``rank::world`` share length-homogeneous too."""
        chunks: list[torch.Tensor] = []
        for chunk in torch.split(order, global_batch * GROUP_BATCHES):
            chunk = chunk[torch.sort(self.lengths[chunk], stable=True).indices]
            chunks.extend(torch.split(chunk, global_batch))
        if not chunks:
            return order
        *full, last = chunks
        if len(last) < global_batch:  # the short batch stays last: drop_last and DDP padding see the usual tail
            shuffled = [full[i] for i in torch.randperm(len(full), generator=g).tolist()] + [last]
        else:
            shuffled = [chunks[i] for i in torch.randperm(len(chunks), generator=g).tolist()]
        return torch.cat(shuffled)

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
    lengths: np.ndarray | None = None,
) -> DataLoader:
    """DataLoader yielding dict batches: seq [B, L], len_seq, target, user, index [B] (+ candidates [B, 20]).

    ``lengths`` (one per row; used when shuffling): batch rows of similar length together (module docstring)."""
    sampler = BatchIndexSampler(len(samples), batch_size, shuffle, seed, drop_last, lengths)
    return DataLoader(
        SampleTensors(samples),
        batch_size=None,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
    )
