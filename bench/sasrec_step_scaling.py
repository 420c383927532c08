"""SASRec training-step throughput against batch size and Adam's implementation, on ml-100k.

    PYTHONPATH=src python bench/sasrec_step_scaling.py [--data-dir DIR] [--batches 256,512,1024] [--rounds 3]
    PYTHONPATH=src python bench/sasrec_step_scaling.py --profile [--precision bf16-mixed]   # where the time goes
    PYTHONPATH=src python bench/sasrec_step_scaling.py --compile [--override student.dropout=0]   # torch.compile
    PYTHONPATH=src python bench/sasrec_step_scaling.py --bf16-weights   # fp32 vs the whole module in bf16

Answers "is the CPU step bound by per-step overhead (Python, optimizer, kernel launches) or by per-sample
work?": if samples/s barely grows with the batch size, and a multi-tensor (foreach) Adam does not help, it
is per-sample work. Same Lightning module step as ``bench_students.py --models throughput`` (fp32);
configurations interleaved, best round kept (shared machine). Not part of the test run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench_common import (
    base_overrides,
    check_data_dir,
    command_line,
    compose_cfg,
    cycle,
    default_data_dir,
    markdown_table,
    module_step_fn,
    time_steps,
    worker_setup,
)
from bench_students import student_module


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=default_data_dir(), help="MovieLens-100K folder")
    p.add_argument("--batches", default="256,512,1024", help="comma list of batch sizes (foreach Adam)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (best kept)")
    p.add_argument("--samples", type=int, default=10240, help="timed samples per measurement")
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/sasrec_step_scaling"), help="data cache folder")
    p.add_argument("--profile", action="store_true", help="torch.profiler table of 20 batch-256 steps instead")
    p.add_argument("--precision", default="32-true", help="--profile only: 32-true | bf16-mixed (CPU autocast)")
    p.add_argument("--compile", action="store_true", help="batch 256: eager vs torch.compile of each block instead")
    p.add_argument("--bf16-weights", action="store_true", help="batch 256: fp32 vs bf16 weights and activations")
    p.add_argument("--override", action="append", default=[], help="Hydra override, e.g. student.dropout=0")
    args = p.parse_args()
    worker_setup(None)
    import torch

    from ilora_dllm2rec.data import build_dataloader, prepare_data

    cfg = compose_cfg(base_overrides(check_data_dir(args.data_dir), args.work_dir) + ["student=sasrec", *args.override])
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)

    def make(batch: int, foreach: bool, compiled: bool = False, bf16: bool = False):
        torch.manual_seed(0)
        module = student_module(cfg, data)
        if bf16:  # "bf16-true": parameters, activations and Adam state in bf16 (no casts at all)
            module.to(torch.bfloat16)
        if compiled:  # each transformer block (the packed-token bookkeeping stays eager), dynamic shapes
            for block in module.model.blocks:
                block.compile(dynamic=True)
        lr, wd = float(cfg.train.lr), float(cfg.train.weight_decay)
        module.configure_optimizers = lambda: torch.optim.Adam(
            module.parameters(), lr=lr, weight_decay=wd, foreach=foreach
        )
        step = module_step_fn(module, "32-true")
        batches = cycle(build_dataloader(data.train, batch, shuffle=True, seed=0))
        return lambda: time_steps(step, batches, 5, max(10, args.samples // batch))["samples_per_s"]

    if args.profile:
        profile_steps(cfg, data, args.precision)
        return
    if args.compile or args.bf16_weights:
        other = "compiled blocks" if args.compile else "bf16 weights"
        runs = {"eager fp32": make(256, False), other: make(256, False, args.compile, args.bf16_weights)}
        runs[other]()  # compilation / warm-up, not timed
        rates = dict.fromkeys(runs, 0.0)
        for _ in range(args.rounds):
            for name, run in runs.items():
                rates[name] = max(rates[name], run())
        rows = [[k, f"{v:,.0f}", f"{v / rates['eager fp32']:.2f}x"] for k, v in rates.items()]
        print(markdown_table(["SASRec step, batch 256", "samples/s (best)", "vs eager fp32"], rows))
        print(f"\n{command_line()}")
        return
    configs = {(256, False): make(256, False)}
    configs.update({(b, True): make(b, True) for b in (int(x) for x in args.batches.split(","))})
    best = dict.fromkeys(configs, 0.0)
    for _ in range(args.rounds):
        for key, run in configs.items():
            best[key] = max(best[key], run())
    base = best[(256, False)]
    rows = [
        [str(b), "foreach" if f else "per-parameter loop", f"{v:,.0f}", f"{v / base:.2f}x"]
        for (b, f), v in best.items()
    ]
    print(markdown_table(["batch", "Adam", "samples/s (best)", "vs batch 256, loop"], rows))
    print(f"\n{command_line()}")


def profile_steps(cfg, data, precision: str, steps: int = 20) -> None:
    """Self time per op over ``steps`` training steps (after 10 warm-up steps), with the matmuls' FLOP rate."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from ilora_dllm2rec.data import build_dataloader

    torch.manual_seed(0)
    step = module_step_fn(student_module(cfg, data), precision)
    batches = cycle(build_dataloader(data.train, 256, shuffle=True, seed=0))
    time_steps(step, batches, 10, 1)
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        for _ in range(steps):
            step(next(batches))
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    print(events.table(sort_by="self_cpu_time_total", row_limit=20))
    mm = [e for e in events if e.key in ("aten::mm", "aten::addmm", "aten::bmm")]
    mm_us = sum(e.self_cpu_time_total for e in mm)
    mm_flops = sum(e.flops for e in mm)
    print(
        f"{steps} steps: {total / 1e3 / steps:.1f} ms per step; matmuls (mm, addmm, bmm) {100 * mm_us / total:.0f}% "
        f"of the time at {mm_flops / (mm_us / 1e6) / 1e9:,.0f} GFLOP/s ({mm_flops / steps / 1e9:.2f} GFLOP per step)"
    )
    print(f"\n{command_line()}")


if __name__ == "__main__":
    main()
