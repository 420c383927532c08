"""SASRec (Kang & McAuley, ICDM 2018), pre-LayerNorm variant as in pmixer/SASRec.pytorch.

Input: item embedding * sqrt(d) + learned position embedding, dropout, padding positions zeroed.
Positions (``positions``): ``recency`` (default) counts back from the most recent item (0 = the last
item), which is what pmixer's left-padded layout gives (the last item always sits at the same position);
``absolute`` counts from the oldest kept item (0 = first), the older default, kept for old
checkpoints. With right padding and short histories the two differ: under ``absolute`` the position of
the most recent item depends on the history length. Then
``num_blocks`` x [causal multi-head self-attention,
point-wise FFN], each as ``x + sublayer(LayerNorm(x))``; final LayerNorm. The state is the
output at position ``len_seq - 1``.

Why no key-padding mask: histories are RIGHT-padded and attention is causal, so a real
position ``t < len_seq`` only attends to positions ``<= t``, all real. Padding positions can
never influence a state we read, so a causal mask alone is exact (``is_causal=True`` for
torch's fused SDPA; no [B, T, T] padding mask to build).

CPU speed-ups (each keeps the model's maths; tests compare against the plain computation):
- only REAL tokens go through the per-token layers (LayerNorm, Q/K/V/output projections,
  FFN, dropout): they are packed into an [n, d] matrix (:class:`_Packed`) and scattered into
  the zero-padded [B, T, d] grid only for the attention matmuls. Padding is never computed,
  and columns after the batch's longest history are dropped (:func:`trim_padding`);
- the LAST block only needs its output at ``len_seq - 1``: keys/values for every token, but
  query, output projection and FFN for that one position;
- separate Q/K/V projections (a fused one pays a large strided ``cat`` in backward);
- :class:`FastDropout` instead of ``nn.Dropout`` (``bernoulli_`` dominated the CPU step);
- with attention dropout on CPU, plain matmul/softmax attention replaces SDPA, whose CPU
  dropout path is several times slower than its fused no-dropout kernel.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ilora_dllm2rec.core.errors import ConfigError
from ilora_dllm2rec.student.base import SequentialRecommender, real_positions, trim_padding


class FastDropout(nn.Module):
    """Inverted dropout whose CPU mask costs ~1/4 of ``F.dropout``'s (plain ``F.dropout`` elsewhere).

    Why: on CPU, ``bernoulli_`` draws one Mersenne-Twister number per element and dominated
    the SASRec step. Here one full-range 64-bit draw gives four 16-bit uniforms, so the keep
    probability is quantised to 1/65536 (the scale uses the exact quantised keep rate).
    Randomness comes from torch's default generator, so ``torch.manual_seed`` reproduces it.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)
        self.drop16 = round(self.p * 65536)  # number of the 65536 int16 values that drop
        self.scale = 65536 / (65536 - self.drop16) if self.drop16 < 65536 else 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop16 == 0:
            return x
        if x.device.type != "cpu" or torch.compiler.is_compiling():  # GPU / compiled RNG is fast already
            return F.dropout(x, self.p, True)
        n = x.numel()
        bits = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device).random_(-(2**63), None)
        keep = bits.view(torch.int16)[:n].view(x.shape) >= self.drop16 - 32768
        return x * keep.to(x.dtype).mul_(self.scale)  # a float mask multiplies faster than a bool one


def _attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, drop: FastDropout
) -> torch.Tensor:
    """Plain attention with a cheap dropout on the probabilities (fused SDPA + dropout is slow on CPU)."""
    scores = (q @ k.transpose(-1, -2)).mul_(1.0 / math.sqrt(q.shape[-1]))
    probs = scores.masked_fill_(~mask, float("-inf")).softmax(dim=-1)
    return drop(probs) @ v


def _autocast_once(h: torch.Tensor) -> torch.Tensor:
    """Under autocast, cast a tensor feeding several matmuls ONCE (autocast would cast it per matmul)."""
    device = h.device.type
    if torch.is_autocast_enabled(device) and h.is_floating_point():
        return h.to(torch.get_autocast_dtype(device))
    return h


class _Packed:
    """Where the packed real tokens ([n, d], row-major over the [B, T] grid) sit in the padded grid.

    Rows with ``len_seq == 0`` keep one (zero-embedded) token at position 0, so their state is
    the finite output of a padding-only input.
    """

    def __init__(self, seq_len: torch.Tensor, width: int) -> None:
        lens = seq_len.clamp(min=1, max=width)
        self.batch, self.width = seq_len.shape[0], width
        self.rows = real_positions(lens, width).view(-1).nonzero().squeeze(1)  # [n] flat b * T + t
        self.last = lens.cumsum(0) - 1  # [B] packed index of each row's last token
        last_pos = (lens - 1).view(-1, 1, 1, 1)
        self.last_mask = torch.arange(width, device=seq_len.device).view(1, 1, 1, -1) <= last_pos  # [B,1,1,T]

    def pack(self, grid: torch.Tensor) -> torch.Tensor:  # [B, T, d] -> [n, d]
        return grid.reshape(self.batch * self.width, -1).index_select(0, self.rows)

    def unpack(self, tokens: torch.Tensor) -> torch.Tensor:  # [n, d] -> [B, T, d], zeros at padding
        grid = tokens.new_zeros(self.batch * self.width, tokens.shape[1]).index_copy_(0, self.rows, tokens)
        return grid.view(self.batch, self.width, -1)


class _Block(nn.Module):
    """Pre-LN transformer block: causal self-attention + point-wise FFN (d -> d -> d, ReLU)."""

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

    def _heads(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, d] -> [B, H, T, d/H]
        if self.num_heads == 1:  # no transpose, no copies
            return x.unsqueeze(1)
        b, t, d = x.shape
        return x.view(b, t, self.num_heads, d // self.num_heads).transpose(1, 2)

    def _merge(self, a: torch.Tensor) -> torch.Tensor:  # [B, H, T, d/H] -> [B, T, d]
        if self.num_heads == 1:
            return a.squeeze(1)
        b, h, t, dh = a.shape
        return a.transpose(1, 2).reshape(b, t, h * dh)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """mask None = causal. Fused SDPA unless dropout must run on CPU (SDPA's dropout path is slow there)."""
        drop = self.attn_drop
        if drop.training and drop.drop16 and q.device.type == "cpu":
            if mask is None:
                mask = torch.ones(q.shape[2], k.shape[2], dtype=torch.bool, device=q.device).tril()
            return _attention(q, k, v, mask, drop)
        p = drop.p if drop.training else 0.0
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=mask is None)

    def forward(self, x: torch.Tensor, packed: _Packed) -> torch.Tensor:
        """Packed real tokens [n, d] -> [n, d]."""
        h = _autocast_once(self.attn_norm(x))
        q, k, v = (self._heads(packed.unpack(f(h))) for f in (self.query, self.key, self.value))
        x = x + self.attn_out(packed.pack(self._merge(self._attend(q, k, v, None))))
        return x + self.ffn(self.ffn_norm(x))

    def forward_last(self, x: torch.Tensor, packed: _Packed) -> torch.Tensor:
        """Packed tokens [n, d] -> [B, d], the output at each row's last position only."""
        h = _autocast_once(self.attn_norm(x))
        k, v = self._heads(packed.unpack(self.key(h))), self._heads(packed.unpack(self.value(h)))
        q = self._heads(self.query(h.index_select(0, packed.last)).unsqueeze(1))  # [B, H, 1, d/H]
        a = self._merge(self._attend(q, k, v, packed.last_mask)).squeeze(1)
        x_last = x.index_select(0, packed.last) + self.attn_out(a)
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
        # the values are checked by the config schema (core/schema_groups.py, SasrecModel)
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
        seq = trim_padding(seq, seq_len)
        t = seq.shape[1]
        if t > self.max_seq_len:
            raise ConfigError(
                f"history length {t} exceeds student.max_seq_len={self.max_seq_len}; "
                "set student.max_seq_len to dataset.max_seq_len"
            )
        packed = _Packed(seq_len, t)
        ids = seq.reshape(-1).index_select(0, packed.rows)  # embed real tokens only
        col = packed.rows % t
        row_len = seq_len.index_select(0, packed.rows // t)
        pos = (row_len - 1 - col).clamp(min=0) if self.positions == "recency" else col
        x = self.embed_items(ids) * self.emb_scale + self.position_embedding(pos)
        # the placeholder token of a len_seq == 0 row is padding: zero it (by position, not by id)
        is_real = col < row_len
        x = self.emb_dropout(x * is_real.unsqueeze(-1).to(x.dtype))
        if not self.blocks:
            return self.final_norm(x.index_select(0, packed.last))
        for block in self.blocks[:-1]:
            x = block(x, packed)
        return self.final_norm(self.blocks[-1].forward_last(x, packed))
