"""SASRec's CPU speed-ups (student/sasrec_fast.py) against the straightforward computation they replace.

The reference here is textbook attention on the zero-padded [B, T, d] grid: every position, an explicit causal
mask, ``softmax(q k^T / sqrt(d_head))``, then the output read at the real tokens.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ilora_dllm2rec.student.sasrec_fast import (
    FastDropout,
    PackedTokens,
    autocast_once,
    masked_attention,
    merge_heads,
    split_heads,
)

B, T, D = 5, 7, 8
LENS = torch.tensor([0, 1, 3, T, 2])  # an empty history, a full one, short ones


def _grids(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random q/k/v [B, T, D]; padding slots hold noise too (causality must make it irrelevant)."""
    return torch.randn(3, B, T, D, generator=torch.Generator().manual_seed(seed)).unbind(0)


CAUSAL = torch.ones(T, T, dtype=torch.bool).tril()  # query i sees keys j <= i
LAST = torch.arange(T).view(1, 1, 1, -1) <= (LENS.clamp(min=1) - 1).view(-1, 1, 1, 1)  # [B, 1, 1, T]


def _textbook(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    num_heads: int,
    allowed: torch.Tensor = CAUSAL,
    drop: FastDropout | None = None,
) -> torch.Tensor:
    """Multi-head attention of [B, Tq, D] queries over [B, T, D] keys/values; ``allowed`` [.., Tq, T]."""
    b, tq, d = q.shape
    dh = d // num_heads
    qh, kh, vh = (x.reshape(b, -1, num_heads, dh).permute(0, 2, 1, 3) for x in (q, k, v))
    scores = qh @ kh.transpose(-1, -2) / math.sqrt(dh)  # [B, H, Tq, T]
    probs = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)
    if drop is not None:
        probs = drop(probs)
    return (probs @ vh).permute(0, 2, 1, 3).reshape(b, tq, d)


def test_packed_tokens_layout() -> None:
    tokens = PackedTokens(LENS, T)
    kept = LENS.clamp(min=1)  # an empty row keeps one placeholder token
    assert tokens.rows.numel() == int(kept.sum())
    grid = torch.arange(B * T, dtype=torch.float32).view(B, T, 1)
    packed = tokens.pack(grid)
    expected = [b * T + t for b in range(B) for t in range(int(kept[b]))]
    assert packed.squeeze(1).tolist() == expected
    assert tokens.pack(grid.squeeze(2)).tolist() == expected  # ids [B, T] -> [n]
    unpacked = tokens.unpack(packed)
    real = torch.arange(T).view(1, -1) < kept.view(-1, 1)
    assert torch.equal(unpacked[real], grid[real]) and not unpacked[~real].any()  # zeros at padding
    assert packed[tokens.last].squeeze(1).tolist() == [b * T + int(kept[b]) - 1 for b in range(B)]
    assert tokens.column.tolist() == [t for b in range(B) for t in range(int(kept[b]))]
    assert tokens.row_len.tolist() == [int(LENS[b]) for b in range(B) for _ in range(int(kept[b]))]
    assert tokens.is_real.tolist() == [bool(LENS[b]) for b in range(B) for _ in range(int(kept[b]))]


@pytest.mark.parametrize("num_heads", [1, 2, 4])
def test_packed_attention_equals_textbook_attention(num_heads: int) -> None:
    q, k, v = _grids()
    tokens = PackedTokens(LENS, T)
    drop = FastDropout(0.3).eval()
    got = tokens.attention(tokens.pack(q), tokens.pack(k), tokens.pack(v), num_heads, drop)
    assert torch.allclose(got, tokens.pack(_textbook(q, k, v, num_heads)), atol=1e-5)


@pytest.mark.parametrize("num_heads", [1, 2])
def test_last_attention_equals_textbook_at_the_last_position(num_heads: int) -> None:
    q, k, v = _grids(1)
    tokens = PackedTokens(LENS, T)
    drop = FastDropout(0.3).eval()
    q_last = tokens.pack(q).index_select(0, tokens.last)
    got = tokens.last_attention(q_last, tokens.pack(k), tokens.pack(v), num_heads, drop)
    assert got.shape == (B, D)
    expected = tokens.pack(_textbook(q, k, v, num_heads)).index_select(0, tokens.last)
    assert torch.allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("num_heads", [1, 2])
def test_attention_dropout_path_equals_textbook_with_the_same_mask(num_heads: int) -> None:
    """With dropout on CPU the plain matmul/softmax path runs; the same seed draws the same probability mask."""
    q, k, v = _grids(2)
    tokens = PackedTokens(LENS, T)
    drop = FastDropout(0.3).train()
    torch.manual_seed(11)
    got = tokens.attention(tokens.pack(q), tokens.pack(k), tokens.pack(v), num_heads, drop)
    torch.manual_seed(11)
    expected = tokens.pack(_textbook(q, k, v, num_heads, drop=drop))
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got, tokens.pack(_textbook(q, k, v, num_heads)), atol=1e-3)  # dropout did act
    # the last-position path: one query per row, so the mask covers [B, H, 1, T]
    q_last = tokens.pack(q).index_select(0, tokens.last)
    torch.manual_seed(12)
    got = tokens.last_attention(q_last, tokens.pack(k), tokens.pack(v), num_heads, drop)
    torch.manual_seed(12)
    expected = _textbook(q_last.unsqueeze(1), k, v, num_heads, LAST, drop).squeeze(1)
    assert torch.allclose(got, expected, atol=1e-5)


def test_masked_attention_matches_fused_sdpa() -> None:
    q, k, v = torch.randn(3, 3, 2, 7, 4).unbind(0)
    causal = torch.ones(7, 7, dtype=torch.bool).tril()
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert torch.allclose(masked_attention(q, k, v, causal, FastDropout(0.0)), expected, atol=1e-5)


@pytest.mark.parametrize("num_heads", [1, 2, 4])
def test_split_and_merge_heads(num_heads: int) -> None:
    x = torch.randn(B, T, D)
    heads = split_heads(x, num_heads)
    dh = D // num_heads
    assert heads.shape == (B, num_heads, T, dh)
    assert all(torch.equal(heads[:, h], x[..., h * dh : (h + 1) * dh]) for h in range(num_heads))
    assert torch.equal(merge_heads(heads), x)


def test_fast_dropout_rate_and_scale() -> None:
    drop = FastDropout(0.2)
    x = torch.ones(200_000)
    y = drop(x)
    assert abs(float((y == 0).float().mean()) - 0.2) < 0.01
    assert abs(float(y.mean()) - 1.0) < 0.02
    assert torch.equal(drop.eval()(x), x)
    assert torch.equal(FastDropout(0.0).train()(x), x)


def test_fast_dropout_is_inverted_dropout_reproduced_by_the_seed() -> None:
    drop = FastDropout(0.3)
    x = torch.randn(4, 33)
    torch.manual_seed(3)
    y = drop(x)
    torch.manual_seed(3)
    assert torch.equal(drop(x), y)  # torch.manual_seed reproduces the mask
    kept = y != 0
    assert torch.equal(y[kept], x[kept] * (65536 / (65536 - round(0.3 * 65536))))  # exact quantised keep rate


def test_autocast_once_casts_only_under_autocast() -> None:
    h = torch.randn(3, D)
    assert autocast_once(h) is h
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert autocast_once(h).dtype == torch.bfloat16
        ids = torch.arange(3)
        assert autocast_once(ids) is ids  # only floating tensors are cast
