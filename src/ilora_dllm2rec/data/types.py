"""In-memory containers shared by every stage (students, teacher, distillation, evaluation).

Conventions (ALGORITHMS.md section 1):
- items are ``0..N-1``; the padding id is ``N`` (DLLM2Rec/LLaRA convention);
- a history is the last ``L`` items before the target, RIGHT-padded with ``N``
  (same layout as the sequence-format CSVs), ``len_seq`` real items first;
- one row of a :class:`SampleSet` is one training/evaluation sample.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

NUM_CANDIDATES = 20  # candidate protocol: target + 19 sampled negatives


@dataclass
class SampleSet:
    """Samples of one split, as aligned numpy arrays.

    seq:        [M, L] int64, right-padded with the padding id ``N``.
    len_seq:    [M] int64, number of real items in ``seq`` (0..L).
    target:     [M] int64, the next item.
    user:       [M] int64, the (remapped) user index, -1 when unknown.
    candidates: [M, 20] int64 for val/test (column 0 is the target, then 19
                negatives the user never interacted with, fixed seed); None for train.
    """

    seq: np.ndarray
    len_seq: np.ndarray
    target: np.ndarray
    user: np.ndarray
    candidates: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.target.shape[0])

    def order_fingerprint(self) -> str:
        """sha256 over the sample arrays: identifies both content and ORDER of the samples."""
        h = hashlib.sha256()
        for arr in (self.seq, self.len_seq, self.target):
            a = np.ascontiguousarray(arr, dtype=np.int64)
            h.update(str(a.shape).encode())
            h.update(a.tobytes())
        return h.hexdigest()[:16]

    def subset(self, index: np.ndarray) -> SampleSet:
        return SampleSet(
            seq=self.seq[index],
            len_seq=self.len_seq[index],
            target=self.target[index],
            user=self.user[index],
            candidates=None if self.candidates is None else self.candidates[index],
        )


@dataclass
class SplitData:
    """A prepared data set: train/val/test samples plus item metadata.

    fingerprint identifies the data-set config and source files; every artifact
    (checkpoints, teacher exports) records it and discovery refuses a mismatch.
    """

    name: str
    num_items: int
    max_seq_len: int
    item_titles: list[str]
    train: SampleSet
    val: SampleSet
    test: SampleSet
    fingerprint: str
    raw_item_ids: list[str] = field(default_factory=list)  # remapped id -> raw id (may be empty)

    @property
    def pad_id(self) -> int:
        return self.num_items

    def train_target_counts(self) -> np.ndarray:
        """[N] how often each item is a training target (for DROS propensities, popularity)."""
        return np.bincount(self.train.target, minlength=self.num_items).astype(np.int64)

    def summary(self) -> dict:
        return {
            "name": self.name,
            "num_items": self.num_items,
            "max_seq_len": self.max_seq_len,
            "num_train": len(self.train),
            "num_val": len(self.val),
            "num_test": len(self.test),
            "fingerprint": self.fingerprint,
            "train_order_fingerprint": self.train.order_fingerprint(),
        }
