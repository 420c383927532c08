"""CPU speed-ups behind SASRec (student/sasrec.py). Each computes the model's own maths, only faster on CPU.

Measured in docs/DESIGN.md "Students" ("CPU speed-ups inside SASRec"): together 1.20x a plain PyTorch loop on
the same model and 3.9x a textbook SASRec (BENCHMARKS "Students on MovieLens-100K"). Tests compare each one
with the plain computation (tests/student/test_sasrec_fast.py).

- :class:`PackedTokens`: only the REAL tokens go through the per-token layers (LayerNorm, Q/K/V/output
  projections, FFN, dropout), packed into an [n, d] matrix; they are scattered into the zero-padded [B, T, d]
  grid only for the attention matmuls. Why: histories are right-padded and most are short, so most of the
  grid is padding, which can never reach a state that is read (causal attention, see student/sasrec.py).
- :meth:`PackedTokens.last_attention`: attention for ONE query per row, the last real token. Why: the state
  is the output at ``len_seq - 1``, so the last block needs keys and values at every token but query, output
  projection and FFN at that position only (with one block, the default, this is the whole model).
- :class:`FastDropout`: ``nn.Dropout`` with a cheap CPU mask. Why: ``bernoulli_`` dominated the CPU step.
- :func:`causal_attention`: fused SDPA, except with attention dropout on CPU, where plain matmul/softmax
  attention (:func:`masked_attention`) replaces it. Why: SDPA's CPU dropout path is several times slower than
  its fused no-dropout kernel.
- :func:`autocast_once`: under autocast, cast the input of the Q/K/V projections once, not once per matmul.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ilora_dllm2rec.student.base import real_positions


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


def masked_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, drop: FastDropout
) -> torch.Tensor:
    """``drop(softmax(q k^T / sqrt(d_head), masked)) v``; ``mask`` is True where a query may attend."""
    scores = (q @ k.transpose(-1, -2)).mul_(1.0 / math.sqrt(q.shape[-1]))
    probs = scores.masked_fill_(~mask, float("-inf")).softmax(dim=-1)
    return drop(probs) @ v


def causal_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, drop: FastDropout
) -> torch.Tensor:
    """Attention of [B, H, Tq, d_head] queries over [B, H, T, d_head] keys/values, dropout ``drop`` on the
    probabilities. ``mask`` None = causal (query t sees keys <= t). Fused SDPA unless dropout must run on CPU."""
    if drop.training and drop.drop16 and q.device.type == "cpu":
        if mask is None:
            mask = torch.ones(q.shape[2], k.shape[2], dtype=torch.bool, device=q.device).tril()
        return masked_attention(q, k, v, mask, drop)
    p = drop.p if drop.training else 0.0
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=mask is None)


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """[B, T, d] -> [B, H, T, d/H]."""
    if num_heads == 1:  # no transpose, no copies
        return x.unsqueeze(1)
    b, t, d = x.shape
    return x.view(b, t, num_heads, d // num_heads).transpose(1, 2)


def merge_heads(a: torch.Tensor) -> torch.Tensor:
    """[B, H, T, d/H] -> [B, T, d]."""
    if a.shape[1] == 1:
        return a.squeeze(1)
    b, h, t, dh = a.shape
    return a.transpose(1, 2).reshape(b, t, h * dh)


def autocast_once(h: torch.Tensor) -> torch.Tensor:
    """Under autocast, cast a tensor feeding several matmuls ONCE (autocast would cast it per matmul)."""
    device = h.device.type
    if torch.is_autocast_enabled(device) and h.is_floating_point():
        return h.to(torch.get_autocast_dtype(device))
    return h


class PackedTokens:
    """The real tokens of a right-padded [B, T] batch, packed row-major into [n, ...] (``T`` = ``width``).

    Rows with ``len_seq == 0`` keep one placeholder token at position 0 (``is_real`` False there), so their
    state is the finite output of a padding-only input.
    """

    def __init__(self, seq_len: torch.Tensor, width: int) -> None:
        lens = seq_len.clamp(min=1, max=width)
        self.batch, self.width = seq_len.shape[0], width
        self.rows = real_positions(lens, width).view(-1).nonzero().squeeze(1)  # [n] flat b * T + t
        self.last = lens.cumsum(0) - 1  # [B] packed index of each row's last token
        last_pos = (lens - 1).view(-1, 1, 1, 1)
        self.last_mask = torch.arange(width, device=seq_len.device).view(1, 1, 1, -1) <= last_pos  # [B,1,1,T]
        self.column = self.rows % width  # [n] position of each token, counted from the row's start
        self.row_len = seq_len.index_select(0, self.rows // width)  # [n] len_seq of each token's row
        self.is_real = self.column < self.row_len  # [n] False only for the placeholder of an empty row

    def pack(self, grid: torch.Tensor) -> torch.Tensor:
        """[B, T, ...] -> [n, ...] (e.g. item ids [B, T] -> [n])."""
        return grid.reshape(self.batch * self.width, *grid.shape[2:]).index_select(0, self.rows)

    def unpack(self, tokens: torch.Tensor) -> torch.Tensor:
        """[n, d] -> [B, T, d], zeros at padding."""
        grid = tokens.new_zeros(self.batch * self.width, tokens.shape[1]).index_copy_(0, self.rows, tokens)
        return grid.view(self.batch, self.width, -1)

    def attention(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_heads: int, drop: FastDropout
    ) -> torch.Tensor:
        """Causal multi-head attention of every token: packed [n, d] q/k/v (heads concatenated) -> [n, d]."""
        q, k, v = (split_heads(self.unpack(x), num_heads) for x in (q, k, v))
        return self.pack(merge_heads(causal_attention(q, k, v, None, drop)))

    def last_attention(
        self, q_last: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_heads: int, drop: FastDropout
    ) -> torch.Tensor:
        """Attention of each row's last token only: q_last [B, d], packed k/v [n, d] -> [B, d]."""
        k, v = split_heads(self.unpack(k), num_heads), split_heads(self.unpack(v), num_heads)
        q = split_heads(q_last.unsqueeze(1), num_heads)  # [B, H, 1, d/H]
        return merge_heads(causal_attention(q, k, v, self.last_mask, drop)).squeeze(1)
