"""SASRec (Kang & McAuley, ICDM 2018), pre-LayerNorm variant as in pmixer/SASRec.pytorch.

Input: item embedding * sqrt(d) + learned position embedding, dropout, padding positions zeroed.
Then ``num_blocks`` x [causal multi-head self-attention, point-wise FFN], each as ``x + sublayer(LayerNorm(x))``;
final LayerNorm. The user state is the output at position ``len_seq - 1``.

Positions (``positions``): ``recency`` (default) counts back from the most recent item (0 = the last item),
which is what pmixer's left-padded layout gives (the last item always sits at the same position); ``absolute``
counts from the oldest kept item (0 = first), the older default, kept for old checkpoints. With right padding
and short histories the two differ: under ``absolute`` the position of the most recent item depends on the
history length.

Why no key-padding mask: histories are RIGHT-padded and attention is causal, so a real position
``t < len_seq`` only attends to positions ``<= t``, all real. Padding can never influence a state we read, so a
causal mask alone is exact. The same fact lets the model compute real tokens only and the last block at the
last position only: those CPU speed-ups live in student/sasrec_fast.py, and keep the maths above.
"""

from __future__ import annotations

import torch
from torch import nn

from ilora_dllm2rec.core.errors import ConfigError
from ilora_dllm2rec.student.base import SequentialRecommender, trim_padding
from ilora_dllm2rec.student.sasrec_fast import FastDropout, PackedTokens, autocast_once


class _Block(nn.Module):
    """Pre-LN transformer block: ``x + Attention(LN(x))``, then ``x + FFN(LN(x))`` (FFN d -> d -> d, ReLU).

    Works on packed real tokens [n, d] (:class:`PackedTokens`). Separate Q/K/V projections, not a fused one:
    a fused projection pays a large strided ``cat`` in backward.
    """

    def __init__(self, d: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.attn_norm = nn.LayerNorm(d)
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.attn_out = nn.Linear(d, d)
        self.attn_drop = FastDropout(dropout)  # on the attention probabilities, as in SASRec
        self.ffn_norm = nn.LayerNorm(d)
        self.ffn = nn.Sequential(
            nn.Linear(d, d), nn.ReLU(), FastDropout(dropout), nn.Linear(d, d), FastDropout(dropout)
        )

    def forward(self, x: torch.Tensor, tokens: PackedTokens) -> torch.Tensor:
        """Every token: [n, d] -> [n, d]."""
        h = autocast_once(self.attn_norm(x))
        a = tokens.attention(self.query(h), self.key(h), self.value(h), self.num_heads, self.attn_drop)
        x = x + self.attn_out(a)
        return x + self.ffn(self.ffn_norm(x))

    def forward_last(self, x: torch.Tensor, tokens: PackedTokens) -> torch.Tensor:
        """Each row's last token only: [n, d] -> [B, d] (keys and values still come from every token)."""
        h = autocast_once(self.attn_norm(x))
        k, v = self.key(h), self.value(h)
        q_last = self.query(h.index_select(0, tokens.last))
        a = tokens.last_attention(q_last, k, v, self.num_heads, self.attn_drop)
        x_last = x.index_select(0, tokens.last) + self.attn_out(a)
        return x_last + self.ffn(self.ffn_norm(x_last))


class SASRec(SequentialRecommender):
    """Self-attentive sequential recommender; ``hidden_size`` is both embedding and state size."""

    def __init__(
        self,
        num_items: int,
        *,
        hidden_size: int,
        max_seq_len: int,
        num_blocks: int,
        num_heads: int,
        dropout: float,
        head: str,
        positions: str,
    ) -> None:
        # the values are checked by the config schema (core/schema_data.py, SasrecModel)
        super().__init__(num_items, hidden_size, max_seq_len, head)
        self.positions = positions
        self.position_embedding = nn.Embedding(max_seq_len, hidden_size)
        self.emb_dropout = FastDropout(dropout)
        self.blocks = nn.ModuleList(_Block(hidden_size, num_heads, dropout) for _ in range(num_blocks))
        self.final_norm = nn.LayerNorm(hidden_size)
        self.emb_scale = hidden_size**0.5
        self._init_weights()

    def _init_weights(self) -> None:
        # xavier-normal for every matrix (as pmixer), zero biases, LayerNorm at identity
        for name, param in self.named_parameters():
            if param.dim() >= 2:
                nn.init.xavier_normal_(param)
            elif name.endswith("bias"):
                nn.init.zeros_(param)
        with torch.no_grad():
            self.item_embedding.weight[self.pad_id].zero_()

    def encode(self, seq: torch.Tensor, seq_len: torch.Tensor) -> torch.Tensor:
        seq = trim_padding(seq, seq_len)  # tail columns after the longest history are all padding
        if seq.shape[1] > self.max_seq_len:
            raise ConfigError(
                f"history length {seq.shape[1]} exceeds student.max_seq_len={self.max_seq_len}; "
                "set student.max_seq_len to dataset.max_seq_len"
            )
        tokens = PackedTokens(seq_len, seq.shape[1])  # the real tokens only, [n, d] from here on
        if self.positions == "recency":
            pos = (tokens.row_len - 1 - tokens.column).clamp(min=0)
        else:
            pos = tokens.column
        x = self.embed_items(tokens.pack(seq)) * self.emb_scale + self.position_embedding(pos)
        # the placeholder token of a len_seq == 0 row is padding: zero it (by position, not by id)
        x = self.emb_dropout(x * tokens.is_real.unsqueeze(-1).to(x.dtype))
        if not self.blocks:
            return self.final_norm(x.index_select(0, tokens.last))
        for block in self.blocks[:-1]:
            x = block(x, tokens)
        # the state is the output at len_seq - 1, so the last block computes only that position
        return self.final_norm(self.blocks[-1].forward_last(x, tokens))
