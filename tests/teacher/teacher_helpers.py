"""Helpers for the teacher tests (imported as ``teacher_helpers``): item titles and a tiny frozen student."""

from __future__ import annotations

import torch
from torch import nn

from ilora_dllm2rec.student.base import SequentialRecommender

NUM_ITEMS = 12
TITLES = [f"Movie number {i} ({1990 + i})" for i in range(NUM_ITEMS - 2)] + ["Heat (1995)", "A Much Longer Title Here"]


class MeanStudent(SequentialRecommender):
    """Minimal SASRec-like stand-in: masked mean of item embeddings, then a Linear (histories differ -> z_u differs)."""

    def __init__(self, num_items: int, hidden_size: int = 16, max_seq_len: int = 8) -> None:
        super().__init__(num_items, hidden_size, max_seq_len)
        self.out = nn.Linear(hidden_size, hidden_size)
        self.drop = nn.Dropout(0.5)  # must be inactive inside the teacher (frozen, eval)

    def encode(self, seq: torch.Tensor, seq_len: torch.Tensor) -> torch.Tensor:
        mask = (seq != self.pad_id).unsqueeze(-1).float()
        mean = (self.embed_items(seq) * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.out(self.drop(mean))
