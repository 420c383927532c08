"""SASRec (Kang & McAuley, ICDM 2018), pre-LayerNorm variant as in pmixer/SASRec.pytorch.

Input: item embedding * sqrt(d) + learned position embedding (position 0 = oldest kept item),
dropout, padding positions zeroed; ``num_blocks`` x [causal multi-head self-attention,
point-wise FFN], each as ``x + sublayer(LayerNorm(x))``; final LayerNorm. The state is the
output at position ``len_seq - 1``.

Why no key-padding mask: histories are RIGHT-padded and attention is causal, so a real
position ``t < len_seq`` only attends to positions ``<= t``, all real. Padding positions
compute garbage that nothing we read ever looks at, so ``is_causal=True`` alone gives the
exact state (and lets torch use its fused CPU/GPU kernels).

CPU speed-ups (results are identical to the plain computation):
- columns after the batch's longest history are dropped (:func:`trim_padding`);
- the LAST block only needs its output at ``len_seq - 1``: it computes keys/values for all
  positions but query, output projection and FFN for that one position only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ilora_dllm2rec.core.errors import ConfigError
from ilora_dllm2rec.student.base import SequentialRecommender, gather_last, trim_padding


class _Block(nn.Module):
    """Pre-LN transformer block: causal self-attention + point-wise FFN (d -> d -> d, ReLU)."""

    def __init__(self, d: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.attn_norm = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)  # fused Q, K, V projection: one matmul instead of three
        self.attn_out = nn.Linear(d, d)
        self.ffn_norm = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Dropout(dropout), nn.Linear(d, d), nn.Dropout(dropout))

    def _heads(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, d] -> [B, H, T, d/H]
        b, t, d = x.shape
        return x.view(b, t, self.num_heads, d // self.num_heads).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """All positions: [B, T, d] -> [B, T, d]."""
        b, t, d = x.shape
        q, k, v = self.qkv(self.attn_norm(x)).split(d, dim=-1)
        p = self.dropout if self.training else 0.0
        a = F.scaled_dot_product_attention(self._heads(q), self._heads(k), self._heads(v), dropout_p=p, is_causal=True)
        x = x + self.attn_out(a.transpose(1, 2).reshape(b, t, d))
        return x + self.ffn(self.ffn_norm(x))

    def forward_last(self, x: torch.Tensor, seq_len: torch.Tensor) -> torch.Tensor:
        """Only the output at ``len_seq - 1`` (0 for empty histories): [B, T, d] -> [B, d]."""
        b, t, d = x.shape
        h = self.attn_norm(x)
        w, bias = self.qkv.weight, self.qkv.bias
        k, v = F.linear(h, w[d:], bias[d:]).split(d, dim=-1)  # keys/values for every position
        x_last = gather_last(x, seq_len)
        q = F.linear(gather_last(h, seq_len), w[:d], bias[:d]).view(b, 1, self.num_heads, -1).transpose(1, 2)
        last = (seq_len.clamp(min=1, max=t) - 1).view(b, 1, 1, 1)
        causal = torch.arange(t, device=x.device).view(1, 1, 1, t) <= last  # [B, 1, 1, T]
        p = self.dropout if self.training else 0.0
        a = F.scaled_dot_product_attention(q, self._heads(k), self._heads(v), attn_mask=causal, dropout_p=p)
        x_last = x_last + self.attn_out(a.reshape(b, d))
        return x_last + self.ffn(self.ffn_norm(x_last))


class SASRec(SequentialRecommender):
    """Self-attentive sequential recommender; ``hidden_size`` is both embedding and state size."""

    def __init__(
        self,
        num_items: int,
        hidden_size: int = 64,
        max_seq_len: int = 50,
        num_blocks: int = 2,
        num_heads: int = 1,
        dropout: float = 0.2,
        head: str = "tied",
    ) -> None:
        super().__init__(num_items, hidden_size, max_seq_len, head)
        if num_heads < 1 or hidden_size % num_heads:
            raise ConfigError(f"student.num_heads ({num_heads}) must divide student.hidden_size ({hidden_size})")
        self.position_embedding = nn.Embedding(max_seq_len, hidden_size)
        self.emb_dropout = nn.Dropout(dropout)
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
        seq = trim_padding(seq, seq_len)
        t = seq.shape[1]
        if t > self.max_seq_len:
            raise ConfigError(
                f"history length {t} exceeds student.max_seq_len={self.max_seq_len}; "
                "set student.max_seq_len to dataset.max_seq_len"
            )
        x = self.embed_items(seq) * self.emb_scale + self.position_embedding.weight[:t]
        x = self.emb_dropout(x) * (seq != self.pad_id).unsqueeze(-1).to(x.dtype)  # padding positions -> 0
        if not self.blocks:
            return self.final_norm(gather_last(x, seq_len))
        for block in self.blocks[:-1]:
            x = block(x)
        return self.final_norm(self.blocks[-1].forward_last(x, seq_len))
