"""What the teacher stages (training, export, evaluation) rely on; any LLM-based teacher implements it."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch


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
