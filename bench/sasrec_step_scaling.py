"""SASRec training-step throughput against batch size and Adam's implementation, on ml-100k.

    PYTHONPATH=src python bench/sasrec_step_scaling.py [--data-dir DIR] [--batches 256,512,1024] [--rounds 3]

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
    args = p.parse_args()
    worker_setup(None)
    import torch

    from ilora_dllm2rec.data import build_dataloader, prepare_data

    cfg = compose_cfg(base_overrides(check_data_dir(args.data_dir), args.work_dir) + ["student=sasrec"])
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)

    def make(batch: int, foreach: bool):
        torch.manual_seed(0)
        module = student_module(cfg, data)
        lr, wd = float(cfg.train.lr), float(cfg.train.weight_decay)
        module.configure_optimizers = lambda: torch.optim.Adam(
            module.parameters(), lr=lr, weight_decay=wd, foreach=foreach
        )
        step = module_step_fn(module, "32-true")
        batches = cycle(build_dataloader(data.train, batch, shuffle=True, seed=0))
        return lambda: time_steps(step, batches, 5, max(10, args.samples // batch))["samples_per_s"]

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


if __name__ == "__main__":
    main()
