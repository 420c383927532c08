"""The ported public DLLM2Rec reference step (bench/reference_dllm2rec.py) runs and trains on a tiny table, with
and without its DRO term and embedding distillation: the distillation speed ratio is measured against it."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from .ops_helpers import ROOT

sys.path.insert(0, str(ROOT / "bench"))
from ilora_dllm2rec.data import SampleSet  # noqa: E402
from reference_dllm2rec import ReferenceSASRec, reference_port_throughput  # noqa: E402
from reference_loops import sequence_frame  # noqa: E402

N, L, B, K = 30, 6, 8, 4


def tiny_table(rows: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    len_seq = rng.integers(1, L + 1, rows)
    seq = np.full((rows, L), N)
    for r, n in enumerate(len_seq):
        seq[r, :n] = rng.integers(0, N, n)
    return seq, len_seq, rng.integers(0, N, rows)


@pytest.mark.parametrize(("alpha", "with_ed"), [(0.0, False), (1.0, True)])
def test_reference_port_steps_change_the_model(alpha: float, with_ed: bool) -> None:
    torch.manual_seed(0)
    seq, len_seq, target = tiny_table()
    model = ReferenceSASRec(N, 8, L, 0.1, llm_dim=5, ed_weight=0.2)
    before = [p.detach().clone() for p in model.parameters()]
    cand = torch.randint(0, N, (len(target), K))
    conf = torch.rand(len(target), K)
    settings = {"alpha": alpha, "beta": 1.0, "lam": 0.8, "candidate_topk": 3, "gamma_position": 0.3,
                "gamma_confidence": 0.5, "gamma_consistency": 0.1}  # fmt: skip
    ps = torch.full((N,), 1.0 / N, dtype=torch.float64) ** 0.05
    frame = sequence_frame(SampleSet(seq, len_seq, target, np.zeros_like(target)))
    out = reference_port_throughput(
        model, frame, cand, conf, torch.randn(N, 5) if with_ed else None, ps,
        settings, batch_size=B, lr=1e-2, warmup=1, steps=2,
    )  # fmt: skip
    assert out["steps"] == 2 and out["samples_per_s"] > 0
    changed = [not torch.equal(a, p) for a, p in zip(before, model.parameters())]
    assert changed[0]  # item embeddings
    assert changed[-2] == with_ed  # the LLM projection trains only when embeddings are fed


def test_reference_model_reads_the_last_real_position() -> None:
    torch.manual_seed(0)
    model = ReferenceSASRec(N, 8, L, 0.0, llm_dim=5, ed_weight=0.2).eval()
    seq = torch.tensor([[1, 2, 3, N, N, N], [1, 2, 3, 4, 5, N]])
    out = model(seq, torch.tensor([3, 5]), None)
    assert out.shape == (2, N)
    alone = model(seq[:1], torch.tensor([3]), None)  # squeeze() drops the batch axis for one row, as there
    torch.testing.assert_close(out[0], alone)
