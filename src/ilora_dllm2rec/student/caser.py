"""Caser (Tang & Wang, WSDM 2018): convolutions over the L x d matrix of the last L items.

Layout: Caser's vertical filters weight POSITIONS, so row ``r`` must mean the same thing for
every user. Histories arrive right-padded (real items first, variable length), so we
RIGHT-ALIGN them: row ``L-1`` is always the most recent item, row ``L-2`` the one before,
and missing (older-than-history) rows are zero. Padding rows are zeroed explicitly, so the
padding embedding row never matters. This works for any input width (the last ``L`` real
items are taken even if a longer history is passed).

Horizontal filters of each height ``h`` (Conv1d over time with the d embedding dims as
channels = Conv2d(1, n_h, (h, d)) of the paper), ReLU, max-pooled over time; a vertical
convolution (``num_vertical`` position-weight vectors of length L, one d-vector each);
concatenated, dropout, projected to d (no activation, so the tied head sees a free vector).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ilora_dllm2rec.student.base import SequentialRecommender


class Caser(SequentialRecommender):
    def __init__(
        self,
        num_items: int,
        *,
        hidden_size: int,
        max_seq_len: int,
        num_horizontal: int,
        filter_heights: Sequence[int],
        num_vertical: int,
        dropout: float,
        head: str,
    ) -> None:
        super().__init__(num_items, hidden_size, max_seq_len, head)
        d = hidden_size
        self.horizontal = nn.ModuleList(nn.Conv1d(d, num_horizontal, int(h)) for h in filter_heights)
        self.vertical_weight = nn.Parameter(torch.empty(num_vertical, max_seq_len))
        self.vertical_bias = nn.Parameter(torch.zeros(num_vertical))
        self.dropout = nn.Dropout(dropout)
        self.projection = nn.Linear(num_horizontal * len(self.horizontal) + num_vertical * d, d)
        nn.init.xavier_normal_(self.item_embedding.weight)
        nn.init.xavier_normal_(self.vertical_weight)
        with torch.no_grad():
            self.item_embedding.weight[self.pad_id].zero_()

    def _last_items(self, seq: torch.Tensor, seq_len: torch.Tensor) -> torch.Tensor:
        """[B, W] right-padded -> [B, L] right-aligned ids (row L-1 = most recent, pad before)."""
        L = self.max_seq_len
        pos = seq_len.view(-1, 1) - L + torch.arange(L, device=seq.device)  # source column of each row
        ids = seq.gather(1, pos.clamp(min=0, max=seq.shape[1] - 1))
        return torch.where(pos >= 0, ids, torch.full_like(ids, self.pad_id))

    def encode(self, seq: torch.Tensor, seq_len: torch.Tensor) -> torch.Tensor:
        ids = self._last_items(seq, seq_len)
        emb = self.embed_items(ids) * (ids != self.pad_id).unsqueeze(-1).to(self.item_embedding.weight.dtype)
        channels = emb.transpose(1, 2)  # [B, d, L]
        horizontal = [F.relu(conv(channels)).amax(dim=2) for conv in self.horizontal]  # each [B, n_h]
        vertical = torch.einsum("vl,bld->bvd", self.vertical_weight, emb) + self.vertical_bias.view(1, -1, 1)
        z = torch.cat([*horizontal, vertical.flatten(1)], dim=1)
        return self.projection(self.dropout(z))
