"""SASRec / GRU4Rec / Caser: shapes, padding invariance, causality, empty histories, training, LLM embeddings."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence

from ilora_dllm2rec.core.errors import ConfigError
from ilora_dllm2rec.student.factory import build_student

N, L, D = 30, 8, 16
NAMES = ["sasrec", "gru4rec", "caser"]


def _model(name: str, head: str = "tied", dropout: float = 0.0, **extra):
    cfg = {"name": name, "max_seq_len": L, "emb_size": D, "hidden_size": D, "head": head, "dropout": dropout}
    cfg.update(extra)
    torch.manual_seed(0)
    return build_student(cfg, N).eval()


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    lens = torch.tensor([0, 1, 3, 5, L, 2])
    seq = torch.randint(0, N, (len(lens), L), generator=g)
    seq[torch.arange(L).view(1, -1) >= lens.view(-1, 1)] = N  # right padding
    return seq, lens


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("head", ["tied", "linear"])
def test_output_shapes(name: str, head: str, batch) -> None:
    model = _model(name, head)
    seq, lens = batch
    assert model.encode(seq, lens).shape == (6, D)
    scores = model(seq, lens)
    assert scores.shape == (6, N) and torch.isfinite(scores).all()


@pytest.mark.parametrize("name", NAMES)
def test_padding_invariance(name: str, batch) -> None:
    model = _model(name)
    seq, lens = batch
    before = model.encode(seq, lens)
    # other ids in the padded positions (any value) and a non-zero padding embedding row
    noisy = torch.where(seq == N, torch.randint(0, N, seq.shape, generator=torch.Generator().manual_seed(1)), seq)
    with torch.no_grad():
        model.item_embedding.weight[N].normal_()
    assert torch.allclose(model.encode(noisy, lens), before, atol=1e-5)
    assert torch.allclose(model.encode(seq, lens), before, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_empty_history_is_finite(name: str) -> None:
    model = _model(name)
    seq = torch.full((2, L), N)
    seq[1, :3] = torch.tensor([1, 2, 3])  # content beyond len_seq = 0 must be ignored too
    state = model.encode(seq, torch.tensor([0, 0]))
    assert torch.isfinite(state).all()
    assert torch.allclose(state[0], state[1], atol=1e-6)
    model.train()
    assert torch.isfinite(model(seq, torch.tensor([0, 0]))).all()


@pytest.mark.parametrize("positions", ["recency", "absolute"])
def test_sasrec_is_causal_and_last_block_shortcut_is_exact(batch, positions: str) -> None:
    model = _model("sasrec", num_blocks=2, num_heads=2, positions=positions)
    seq, lens = batch
    # state at len 3 only depends on the first 3 items
    prefix = seq[3:4].clone()
    changed = prefix.clone()
    changed[0, 3:] = torch.tensor([7, 8, 9, 10, 11])
    assert torch.allclose(model.encode(prefix, torch.tensor([3])), model.encode(changed, torch.tensor([3])), atol=1e-5)
    assert not torch.allclose(model.encode(prefix, torch.tensor([3])), model.encode(prefix, torch.tensor([4])))
    # reference: the textbook computation on the full padded grid (every position, fused causal
    # SDPA, no packing, no last-block shortcut), then read position len_seq - 1
    with torch.no_grad():
        col = torch.arange(L).view(1, -1).expand(len(lens), -1)
        # recency: 0 = the most recent real item (pmixer's left-padded layout); absolute: 0 = the oldest
        pos = (lens.view(-1, 1) - 1 - col).clamp(min=0) if positions == "recency" else col
        x = model.item_embedding(seq) * model.emb_scale + model.position_embedding(pos)
        x = x * (seq != N).unsqueeze(-1)
        for blk in model.blocks:
            h = blk.attn_norm(x)
            q, k, v = (f(h).view(6, L, 2, D // 2).transpose(1, 2) for f in (blk.query, blk.key, blk.value))
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(6, L, D)
            x = x + blk.attn_out(a)
            x = x + blk.ffn(blk.ffn_norm(x))
        idx = (lens.clamp(min=1) - 1).view(-1, 1, 1).expand(-1, 1, D)
        reference = model.final_norm(x.gather(1, idx).squeeze(1))
    assert torch.allclose(model.encode(seq, lens), reference, atol=1e-5)


def test_sasrec_recency_positions_pin_the_latest_item() -> None:
    """Under recency positions the most recent item has the same position whatever the history length."""
    model = _model("sasrec", num_blocks=0, positions="recency")
    absolute = _model("sasrec", num_blocks=0, positions="absolute")
    seq = torch.tensor([[5, N, N, N, N, N, N, N], [1, 2, 3, 5, N, N, N, N]])
    lens = torch.tensor([1, 4])
    with torch.no_grad():  # zero-block SASRec: state = LayerNorm(emb(last) * sqrt(d) + pos(p))
        expect = model.final_norm(model.item_embedding.weight[5] * model.emb_scale + model.position_embedding.weight[0])
        assert torch.allclose(model.encode(seq, lens), expect.expand(2, -1), atol=1e-5)
        states = absolute.encode(seq, lens)
    assert not torch.allclose(states[0], states[1], atol=1e-3)  # absolute: item 5 at positions 0 and 3
    with pytest.raises(Exception, match="student.positions"):
        _model("sasrec", positions="relative")


def test_gru4rec_gather_equals_packed_gru(batch) -> None:
    model = _model("gru4rec", hidden_size=12)  # hidden != emb: state projected back to emb_size
    seq, lens = batch
    keep = lens > 0
    with torch.no_grad():
        x = model.item_embedding(seq[keep])
        packed = pack_padded_sequence(x, lens[keep], batch_first=True, enforce_sorted=False)
        _, h = model.gru(packed)
        reference = model.projection(h[-1])
    assert torch.allclose(model.encode(seq, lens)[keep], reference, atol=1e-5)


def test_caser_uses_the_most_recent_items_right_aligned() -> None:
    cfg = {"name": "caser", "max_seq_len": 3, "emb_size": D, "hidden_size": D, "filter_heights": [2, 3]}
    model = build_student(cfg, N).eval()
    short = torch.tensor([[1, 2, 3, N, N]])  # exactly the last 3 items
    longer = torch.tensor([[9, 8, 1, 2, 3]])  # same last 3 items, older ones dropped
    a = model.encode(short, torch.tensor([3]))
    assert torch.allclose(a, model.encode(longer, torch.tensor([5])), atol=1e-6)
    assert torch.allclose(a, model.encode(short[:, :3], torch.tensor([3])), atol=1e-6)
    # a different length is a different position layout: [2, 3] != [1, 2, 3]
    assert not torch.allclose(a, model.encode(torch.tensor([[2, 3, N]]), torch.tensor([2])))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("head", ["tied", "linear"])
def test_one_adam_step_reduces_the_loss(name: str, head: str, batch) -> None:
    model = _model(name, head)
    seq, lens = batch
    target = torch.tensor([1, 2, 3, 4, 5, 6])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = F.cross_entropy(model(seq, lens), target)
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = F.cross_entropy(model(seq, lens), target)
    assert float(after) < float(before.detach())


@pytest.mark.parametrize("name", NAMES)
def test_llm_item_embeddings(name: str, batch) -> None:
    model = _model(name)
    seq, lens = batch
    before = model(seq, lens)
    with pytest.raises(ValueError):
        model.set_llm_item_embeddings(torch.randn(N + 1, 24), 0.3)
    model.set_llm_item_embeddings(torch.randn(N, 24), 0.3)
    assert model.llm_projection.weight.device == model.item_embedding.weight.device
    emb = model.embed_items(seq)
    plain = model.item_embedding(seq)
    pad = seq == N
    assert torch.equal(emb[pad], plain[pad])  # padding gets nothing added
    assert not torch.allclose(emb[~pad], plain[~pad])
    assert not torch.allclose(model(seq, lens), before)
    # gradients reach the projection
    model(seq, lens).sum().backward()
    assert model.llm_projection.weight.grad is not None


@pytest.mark.parametrize("name", NAMES)
def test_bf16_autocast_trains(name: str, batch) -> None:
    model = _model(name, dropout=0.2).train()
    seq, lens = batch
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores = model(seq, lens)
    F.cross_entropy(scores.float(), torch.arange(6)).backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
    model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        low = model(seq, lens).float()
    assert torch.allclose(low, model(seq, lens), atol=0.1)


@pytest.mark.parametrize("num_blocks", [0, 1, 3])
def test_sasrec_block_counts(num_blocks: int, batch) -> None:
    model = _model("sasrec", num_blocks=num_blocks)
    seq, lens = batch
    assert len(model.blocks) == num_blocks
    state = model.encode(seq, lens)
    assert state.shape == (6, D) and torch.isfinite(state).all()


@pytest.mark.parametrize("name", NAMES)
def test_history_bias_starts_at_the_plain_model_and_moves_only_history_items(name: str, batch) -> None:
    seq, lens = batch
    plain = _model(name)(seq, lens)
    model = _model(name, history_bias=True)
    assert torch.equal(model(seq, lens), plain)  # b = 0 at initialisation
    with torch.no_grad():
        model.history_bias.fill_(-2.5)
    scores = model(seq, lens)
    # direct formula: s_i + b * [i in the row's real history]; padding ids never count
    seen = torch.zeros(seq.shape[0], N, dtype=torch.bool)
    for row, length in enumerate(lens.tolist()):
        for item in seq[row, :length].tolist():
            seen[row, item] = True
    assert torch.allclose(scores, plain - 2.5 * seen.float())
    # ids in padding slots (any value, as test_padding_invariance allows) are not history
    noisy = torch.where(seq == N, torch.randint(0, N, seq.shape, generator=torch.Generator().manual_seed(1)), seq)
    assert torch.allclose(model(noisy, lens), scores, atol=1e-5)
    # the bias trains: CE on targets outside the history pushes it down
    model.history_bias.data.zero_()
    target = torch.tensor([0, 7, 11, 13, 17, 19])
    target = torch.where(seen.gather(1, target.view(-1, 1)).squeeze(1), torch.tensor(N - 1), target)
    F.cross_entropy(model(seq, lens), target).backward()
    assert float(model.history_bias.grad) > 0  # a gradient step makes b negative


def test_history_bias_must_be_a_bool() -> None:
    with pytest.raises(ConfigError, match=r"student\.history_bias"):
        _model("sasrec", history_bias="yes")


def test_llm_item_embedding_gradient_is_deterministic_across_threads() -> None:
    """The projected LLM table is gathered with ``F.embedding``: advanced indexing (``table[ids]``) sums
    repeated items' gradients in a thread-dependent order on CPU, which made distillation with embedding
    distillation differ between processes in the 4th digit (the quickstart's distilled metric)."""
    num_items, dim = 300, 64
    model = build_student({"name": "sasrec", "max_seq_len": 50, "emb_size": dim, "hidden_size": dim}, num_items)
    model.set_llm_item_embeddings(torch.randn(num_items, 96, generator=torch.Generator().manual_seed(1)), 0.5)
    seq = torch.randint(0, num_items, (512, 50), generator=torch.Generator().manual_seed(2))  # many repeats
    upstream = torch.randn(512, 50, dim, generator=torch.Generator().manual_seed(3))
    threads = torch.get_num_threads()
    grads = []
    try:
        for n in (1, 2, 2, 2):
            torch.set_num_threads(n)
            model.zero_grad()
            (model.embed_items(seq) * upstream).sum().backward()
            grads.append(model.llm_projection.weight.grad.clone())
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(grads[0], g) for g in grads[1:])
