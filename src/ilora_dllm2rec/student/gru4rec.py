"""GRU4Rec (Hidasi et al., ICLR 2016): a GRU over the item embeddings; state = last real hidden state.

Why no ``pack_padded_sequence``: histories are RIGHT-padded and a GRU is causal, so the
hidden state at position ``len_seq - 1`` of an unpacked run is exactly the final state of
the packed run (padding only comes after it). Running the plain GRU over the batch's
longest history and gathering at ``len_seq - 1`` gives the same numbers without the
sort/pack/unpack overhead. ``len_seq == 0`` reads position 0 (a padding-only input).

The embedding / state size is ``emb_size`` (the ``d`` the tied head and the LLM projection
use); the GRU's own width is ``hidden_size``, projected back to ``emb_size`` when they differ.
"""

from __future__ import annotations

import torch
from torch import nn

from ilora_dllm2rec.student.base import SequentialRecommender, gather_last, real_positions, trim_padding


class GRU4Rec(SequentialRecommender):
    def __init__(
        self,
        num_items: int,
        *,
        emb_size: int,
        hidden_size: int,
        max_seq_len: int,
        num_layers: int,
        dropout: float,
        head: str,
    ) -> None:
        super().__init__(num_items, emb_size, max_seq_len, head)
        self.gru_hidden_size = hidden_size
        self.emb_dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(
            emb_size, hidden_size, num_layers=num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0.0
        )
        self.projection = nn.Linear(hidden_size, emb_size) if hidden_size != emb_size else None
        nn.init.xavier_normal_(self.item_embedding.weight)
        with torch.no_grad():
            self.item_embedding.weight[self.pad_id].zero_()

    def encode(self, seq: torch.Tensor, seq_len: torch.Tensor) -> torch.Tensor:
        seq = trim_padding(seq, seq_len)
        mask = real_positions(seq_len, seq.shape[1]).unsqueeze(-1)  # padding positions -> 0
        x = self.embed_items(seq) * mask.to(self.item_embedding.weight.dtype)
        out, _ = self.gru(self.emb_dropout(x))  # [B, T, hidden]
        state = gather_last(out, seq_len)
        return self.projection(state) if self.projection is not None else state
