"""Teacher LLM speed on this machine: forward (hidden states only) and one MoE-LoRA training step.

    PYTHONPATH=src python bench/bench_teacher_llm.py [--cache-dir data/models] [--batch 8] [--tokens 128]

Uses the embedded SmolLM2-135M-Instruct (prepare it first: python -m ilora_dllm2rec.teacher.prepare_llm) and
MovieLens-like titles; prints samples/s per dtype and the training step time. Not part of the test run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch import nn

from ilora_dllm2rec.student.base import SequentialRecommender
from ilora_dllm2rec.teacher.ilora_model import ILoRAModel
from ilora_dllm2rec.teacher.imitation import LambdaSchedule, teacher_loss
from ilora_dllm2rec.teacher.llm import load_llm


class _MeanStudent(SequentialRecommender):
    def __init__(self, n: int, d: int = 64) -> None:
        super().__init__(n, d, 50)
        self.out = nn.Linear(d, d)

    def encode(self, seq: torch.Tensor, seq_len: torch.Tensor) -> torch.Tensor:
        m = (seq != self.pad_id).unsqueeze(-1).float()
        return self.out((self.item_embedding(seq) * m).sum(1) / m.sum(1).clamp(min=1))


def _titles(n: int) -> list[str]:
    words = ["Story", "Night", "Return", "American", "Lost", "City", "Man", "Love", "Dead", "Star", "King", "Day"]
    return [f"The {words[i % 12]} of {words[(i // 12) % 12]} {i} ({1950 + i % 50})" for i in range(n)]


def _timeit(fn, repeats: int) -> float:
    """Minimum over repeats (after a warm-up): the least disturbed by other processes on a shared machine."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench(dtype: str, cache_dir: Path, batch: int, tokens: int, repeats: int, attn: str, dropout: float) -> None:
    n = 500
    torch.manual_seed(0)
    seq, len_seq = torch.randint(0, n, (batch, 50)), torch.full((batch,), 50)
    target = torch.randint(0, n, (batch,))
    llm, tok = load_llm(
        "embedded:smollm2-135m-instruct", dtype=dtype, attn_implementation=attn, model_cache_dir=cache_dir,
        allow_download=False,
    )  # fmt: skip
    model = ILoRAModel(
        llm, tok, _MeanStudent(n), _titles(n), max_prompt_tokens=tokens, max_history_items=50, lora_dropout=dropout
    )
    t_len = model.prompts.build(seq, len_seq)["input_ids"].shape[1]
    model.eval()
    with torch.no_grad():
        fwd = _timeit(lambda: model(seq, len_seq), repeats)
    print(f"{dtype}: prompt length {t_len} tokens; forward {fwd:.3f} s/batch = {batch / fwd:.1f} samples/s")
    opt = torch.optim.AdamW(model.parameter_groups(1e-4))
    sched = LambdaSchedule(1.0, 0.0, "linear", 100)
    model.train()

    def step() -> None:
        out = model(seq, len_seq)
        teacher_loss(out["scores"], target, out["q_u"], out["z_u"], 0, schedule=sched)["loss"].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    tr = _timeit(step, repeats)
    print(f"{dtype}: training step (forward+backward+AdamW, MoE-LoRA q,k,v,o) {tr:.3f} s = {batch / tr:.1f} samples/s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache-dir", default="data/models")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dtypes", default="bf16,fp32")
    ap.add_argument("--attn", default="sdpa")
    ap.add_argument("--lora-dropout", type=float, default=0.1)
    args = ap.parse_args()
    print(
        f"torch threads={torch.get_num_threads()}, batch={args.batch}, max_prompt_tokens={args.tokens}, "
        f"attn={args.attn}, lora_dropout={args.lora_dropout}"
    )
    for dtype in args.dtypes.split(","):
        bench(dtype, Path(args.cache_dir), args.batch, args.tokens, args.repeats, args.attn, args.lora_dropout)


if __name__ == "__main__":
    main()
