"""What the teacher stages (training, export, evaluation) rely on: the recommender interface any teacher implements,
and the typed sections the teacher stage is given."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod

import torch

from ..core.schema_groups import Logging, Metrics, Paths, Train
from ..core.schema_teacher import Teacher


@dataclasses.dataclass(frozen=True)
class TeacherStage:
    """The sections the teacher stage reads, whatever ``teacher.backend`` is; ``student_name``: ``student.name``
    (the type of a baseline this stage would train)."""

    teacher: Teacher
    train: Train
    metrics: Metrics
    logging: Logging
    paths: Paths
    student_name: str
    seed: int


class TeacherRecommender(ABC):
    """A recommender that ranks the full catalogue and provides per-item semantic embeddings.

    ``num_items`` is N (items ``0..N-1``; the padding id N never gets a score).
    """

    num_items: int

    @abstractmethod
    def score(self, seq: torch.Tensor, len_seq: torch.Tensor) -> torch.Tensor:
        """seq [B, L] right-padded item ids, len_seq [B] -> scores [B, N] (higher = better)."""

    @abstractmethod
    def item_embeddings(self, batch_size: int = 32) -> torch.Tensor:
        """[N, D] float tensor: row i is the teacher's semantic embedding of item i (all_embeddings.pt)."""
