"""Teacher LLM speed on this machine: forward (hidden states only) and one MoE-LoRA training step.
Feeds docs/BENCHMARKS.md "iLoRA teacher: speed and memory" (the micro-benchmark).

    PYTHONPATH=src:bench python bench/bench_teacher_llm.py [--cache-dir data/models] [--batch 8] [--tokens 128] \
        [--rounds 4] [--configs bf16/sdpa,bf16/eager] [--compile [full]]

Uses the embedded SmolLM2-135M-Instruct (prepare it first: python -m ilora_dllm2rec.teacher.prepare_llm) and
MovieLens-like titles; prints samples/s per dtype / attention and the training step time (MoE-LoRA on q,k,v,o,
forward + backward + AdamW). Configurations are timed interleaved and the minimum is reported, because this
machine is shared. Not part of the test run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from ilora_dllm2rec.core.runtime import tune_malloc
from ilora_dllm2rec.student.base import SequentialRecommender
from ilora_dllm2rec.teacher.ilora_model import ILoRAModel
from ilora_dllm2rec.teacher.imitation import LambdaSchedule, teacher_loss
from ilora_dllm2rec.teacher.llm import compile_decoder_layers, load_llm
from ilora_dllm2rec.teacher.moe_lora import moelora_layers
from teacher_clock import matmul_peak, non_embedding_parameters


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


def _time_once(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _setup(dtype: str, attn: str, cache_dir: Path, batch: int, tokens: int) -> dict:
    n = 500
    torch.manual_seed(0)
    seq, len_seq = torch.randint(0, n, (batch, 50)), torch.full((batch,), 50)
    target = torch.randint(0, n, (batch,))
    llm, tok = load_llm(
        "embedded:smollm2-135m-instruct", dtype=dtype, attn_implementation=attn, model_cache_dir=cache_dir,
        allow_download=False,
    )  # fmt: skip
    model = ILoRAModel(llm, tok, _MeanStudent(n), _titles(n), max_prompt_tokens=tokens, max_history_items=50)
    opt = torch.optim.AdamW(model.parameter_groups(1e-4))
    sched = LambdaSchedule(1.0, 0.0, "linear", 100)

    @torch.no_grad()
    def forward() -> None:
        model.eval()
        model(seq, len_seq)

    def train_step(dropout: float) -> None:
        for layer in moelora_layers(model.llm):
            if isinstance(layer.dropout, nn.Dropout):
                layer.dropout.p = dropout
        model.train()
        out = model(seq, len_seq)
        teacher_loss(out["scores"], target, out["q_u"], out["z_u"], 0, schedule=sched)["loss"].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    prompt = model.prompts.build(seq, len_seq)

    @torch.no_grad()
    def bare() -> None:  # the LLM's decoder stack alone on the same token ids: no adapters, mask or projector
        model.eval()
        model.backbone(input_ids=prompt["input_ids"], use_cache=False)

    t_len = prompt["input_ids"].shape[1]
    return {"forward": forward, "bare": bare, "train": train_step, "tokens": t_len, "model": model}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache-dir", default="data/models", help="converted LLMs (prepare-llm writes them here)")
    ap.add_argument("--batch", type=int, default=8, help="prompts per batch")
    ap.add_argument("--tokens", type=int, default=128, help="maximum prompt tokens (teacher.max_prompt_tokens)")
    ap.add_argument("--rounds", type=int, default=4, help="interleaved rounds; the minimum over rounds is reported")
    ap.add_argument("--configs", default="bf16/sdpa,bf16/eager,fp32/sdpa", help="dtype/attn pairs")
    ap.add_argument("--train-dtypes", default="bf16", help="dtypes whose training step is timed")
    ap.add_argument(
        "--compile", nargs="?", const="regional", default=None, choices=("regional", "full"),
        help="torch.compile the LLM: per decoder layer (regional, as teacher.compile=true) or the whole stack",
    )  # fmt: skip
    ap.add_argument("--no-tune-malloc", action="store_true", help="glibc malloc defaults (general.tune_malloc=false)")
    args = ap.parse_args()
    print("malloc tuning:", tune_malloc(not args.no_tune_malloc))
    b = args.batch
    print(f"torch threads={torch.get_num_threads()}, batch={b}, max_prompt_tokens={args.tokens}")
    setups = {c: _setup(*c.split("/"), Path(args.cache_dir), b, args.tokens) for c in args.configs.split(",")}
    if args.compile:
        for s in setups.values():
            start = time.perf_counter()
            compile_decoder_layers(s["model"].llm, regional=args.compile == "regional")
            s["forward"]()
            print(f"{args.compile} compile + first forward: {time.perf_counter() - start:.0f} s")
    jobs = {}
    for c, s in setups.items():
        jobs[f"{c} forward (hidden states, no grad)"] = s["forward"]
        jobs[f"{c} bare backbone forward (no adapters/mask)"] = s["bare"]
        if c.split("/")[0] in args.train_dtypes.split(","):
            for p in (0.1, 0.0):
                jobs[f"{c} train step, lora_dropout={p}"] = lambda s=s, p=p: s["train"](p)
    for fn in jobs.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {k: [] for k in jobs}
    for _ in range(args.rounds):  # interleaved: a burst of load from other processes hits all configs alike
        for k, fn in jobs.items():
            times[k].append(_time_once(fn))
    first = next(iter(setups.values()))
    t_len = first["tokens"]
    params = non_embedding_parameters(first["model"].llm, keep={id(p) for n, p in first["model"].llm.named_parameters()
                                                              if "lora_" not in n})  # fmt: skip
    peak = matmul_peak(torch.bfloat16)["flops"]
    print(f"prompt length {t_len} tokens; non-embedding parameters {params:,}; bf16 peak {peak / 1e9:,.0f} GFLOP/s")
    for k, ts in times.items():
        best, med = min(ts), statistics.median(ts)
        flops = (4 if "train" in k else 2) * params * b * t_len / best
        print(
            f"{k:55s} min {best:6.3f} s ({b / best:5.1f} samples/s, {b * t_len / best:6,.0f} tok/s, "
            f"{100 * flops / peak:4.1f}% of peak)   median {med:6.3f} s"
        )


if __name__ == "__main__":
    main()
