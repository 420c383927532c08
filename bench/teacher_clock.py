"""Instruments an iLoRA teacher run from the outside (no library change): time and prompt tokens per phase,
the LLM's non-embedding parameter count, and this machine's bf16 matrix-multiply peak, measured in the same
process so FLOP-rate fractions compare like with like. A helper module of bench_distill.py,
bench_teacher_llm.py and teacher_export_only.py (no command of its own).

Phases: ``train`` (Lightning training batches: forward + backward + optimizer step), ``predict`` (the export's
top-N batches) and ``other`` (validation/test evaluation and item embeddings). Tokens are the real prompt
tokens (attention mask), so padding counts against the achieved rate.
"""

from __future__ import annotations

import time
from collections import defaultdict

import lightning as L
import torch

# the FLOP counts the issue asks for: 2 x params x tokens (forward), 4 x params x tokens (adapter training:
# forward + activation gradients, no weight gradients for the frozen LLM)
FLOPS_PER_PARAM_TOKEN = {"train": 4, "predict": 2, "other": 2}


class PhaseClock(L.Callback):
    """Accumulates wall time, samples and prompt tokens of training and predict batches."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.samples: dict[str, int] = defaultdict(int)
        self.tokens: dict[str, int] = defaultdict(int)
        # the first batch of a phase (compilation with teacher.compile=true, warm-up), kept apart for steady rates
        self.first: dict[str, dict[str, float]] = {}
        self.phase = "other"
        self._t0 = 0.0
        self._tokens0 = 0
        self.llm_params = 0  # set when the ILoRAModel is built

    def _start(self, phase: str, batch: dict) -> None:
        self.phase = phase
        self.samples[phase] += int(batch["seq"].shape[0])
        self._tokens0 = self.tokens[phase]
        self._t0 = time.perf_counter()

    def _end(self) -> None:
        seconds = time.perf_counter() - self._t0
        self.seconds[self.phase] += seconds
        if self.phase not in self.first:
            self.first[self.phase] = {"seconds": seconds, "samples": self.samples[self.phase],
                                      "tokens": self.tokens[self.phase] - self._tokens0}  # fmt: skip
        self.phase = "other"

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._start("train", batch)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._end()

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self._start("predict", batch)

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._end()


CLOCK = PhaseClock()


def install() -> PhaseClock:
    """Attach ``CLOCK`` to every Lightning Trainer built from now on, and count prompt tokens per phase."""
    from ilora_dllm2rec.teacher.prompts import PromptBuilder

    original_init = L.Trainer.__init__

    def init(self, *args, **kwargs):
        kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), CLOCK]
        original_init(self, *args, **kwargs)

    L.Trainer.__init__ = init
    original_build = PromptBuilder.build

    def build(self, seq, len_seq, *args, **kwargs):
        out = original_build(self, seq, len_seq, *args, **kwargs)
        CLOCK.tokens[CLOCK.phase] += int(out["attention_mask"].sum())  # real tokens: alignment padding not counted
        return out

    PromptBuilder.build = build
    from ilora_dllm2rec.teacher.ilora_model import ILoRAModel

    original_model_init = ILoRAModel.__init__

    def model_init(self, *args, **kwargs):
        original_model_init(self, *args, **kwargs)
        base = {id(p) for n, p in self.llm.named_parameters() if "lora_" not in n}  # adapters excluded
        CLOCK.llm_params = non_embedding_parameters(self.llm, keep=base)

    ILoRAModel.__init__ = model_init
    return CLOCK


def non_embedding_parameters(llm: torch.nn.Module, keep: set[int] | None = None) -> int:
    """Parameters that multiply every token: all but the input embeddings and the (unused) LM head
    (restricted to ``keep`` ids when given)."""
    skip = {id(p) for p in llm.get_input_embeddings().parameters()}
    out = llm.get_output_embeddings()
    if out is not None:
        skip |= {id(p) for p in out.parameters()}
    return sum(p.numel() for p in llm.parameters() if id(p) not in skip and (keep is None or id(p) in keep))


def matmul_peak(dtype: torch.dtype = torch.bfloat16, seconds: float = 3.0) -> dict:
    """Best FLOP/s of square matmuls (1024..4096) in ``dtype`` on this process's threads."""
    best, best_n = 0.0, 0
    for n in (1024, 2048, 3072, 4096):
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        torch.matmul(a, b)  # warm-up
        reps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 4:
            torch.matmul(a, b)
            reps += 1
        rate = 2 * n**3 * reps / (time.perf_counter() - start)
        if rate > best:
            best, best_n = rate, n
    dtype_name = str(dtype).replace("torch.", "")
    return {"flops": best, "size": best_n, "dtype": dtype_name, "threads": torch.get_num_threads()}


def report(clock: PhaseClock, params: int, peak_flops: float) -> dict:
    """Per phase: samples/s, tokens/s, tokens per sample, achieved FLOP/s and its fraction of the peak."""
    out = {}
    for phase in ("train", "predict"):
        sec, n, tok = clock.seconds.get(phase, 0.0), clock.samples.get(phase, 0), clock.tokens.get(phase, 0)
        if not sec or not n:
            continue
        flops = FLOPS_PER_PARAM_TOKEN[phase] * params * tok / sec
        out[phase] = {
            "seconds": sec,
            "samples": n,
            "tokens": tok,
            "samples_per_s": n / sec,
            "tokens_per_s": tok / sec,
            "tokens_per_sample": tok / n,
            "flops": flops,
            "peak_fraction": flops / peak_flops,
        }
        first = clock.first.get(phase)
        if first and n > first["samples"]:  # steady state: without the first batch (compilation, warm-up)
            s_sec, s_tok = sec - first["seconds"], tok - first["tokens"]
            s_flops = FLOPS_PER_PARAM_TOKEN[phase] * params * s_tok / s_sec
            out[phase].update(
                first_batch_seconds=first["seconds"],
                steady_samples_per_s=(n - first["samples"]) / s_sec,
                steady_tokens_per_s=s_tok / s_sec,
                steady_flops=s_flops,
                steady_peak_fraction=s_flops / peak_flops,
            )
    return out
