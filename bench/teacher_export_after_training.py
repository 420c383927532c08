"""Is the iLoRA teacher's export slower in a process that trained first? Four exports in one process.

    PYTHONPATH=src python bench/teacher_export_after_training.py --work-dir /tmp/bt7 \
        --teacher-override experiment=ml100k_cpu [--train-batches 100]

``--work-dir`` and ``--teacher-override`` as given to the ``bench_distill.py --teacher ilora`` run that trained
the teacher (its ``run_teacher-ilora`` folder and ``run_baseline-sasrec`` baseline are reused; the export's
files are rewritten with the same content). Order: export (fresh process), ``--train-batches`` training
batches of the preset teacher (bare loop, as in ``teacher_loop_overhead.py``), export, ``malloc_trim(0)``
(the heap handed back), export, export. Prints each export's predict rate (the phase clock of
``teacher_clock.py``, model loading excluded). Not part of the test run.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import sys
import time

import torch

import teacher_clock
from bench_common import ROOT, command_line, markdown_table
from teacher_export_only import export_setup
from teacher_loop_overhead import preset_teacher


def train_batches(args: argparse.Namespace, batches: int) -> float:
    """``batches`` training steps of the preset teacher on the work dir's baseline; returns seconds."""
    from ilora_dllm2rec.teacher.factory import build_lambda_schedule

    student = args.work_dir / "run_baseline-sasrec" / "models" / "baseline" / "best.ckpt"
    models = ROOT / "data" / "models"
    preset = argparse.Namespace(
        data_dir=args.data_dir, work_dir=args.work_dir, model_cache_dir=models, student_checkpoint=student, override=[]
    )
    cfg, model, loader, module = preset_teacher(preset)
    m = module()
    m.log = lambda *a, **k: None  # no Trainer attached
    m.schedule = build_lambda_schedule(cfg.teacher, batches)
    optimizer = torch.optim.AdamW(model.parameter_groups(float(cfg.train.lr), float(cfg.teacher.gate_lr_scale), 0.0))
    model.train()
    start = time.perf_counter()
    for _, batch in zip(range(batches), loader(), strict=False):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = m.training_step(batch, 0)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def main() -> None:
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--train-batches", type=int, default=100)
    known, rest = extra.parse_known_args()
    sys.argv = [sys.argv[0], *rest]
    args, clock, run_export = export_setup()
    rows = []

    def export(label: str) -> None:
        seconds, samples = clock.seconds["predict"], clock.samples["predict"]
        run_export()
        s, n = clock.seconds["predict"] - seconds, clock.samples["predict"] - samples
        rows.append([label, f"{n:,}", f"{s:.1f}", f"{n / s:.2f}"])

    export("1: fresh process")
    trained = train_batches(args, known.train_batches)
    gc.collect()
    export(f"2: after {known.train_batches} training batches ({trained:.0f} s)")
    ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)
    export("3: after malloc_trim(0)")
    export("4: once more")
    peak = teacher_clock.matmul_peak(torch.bfloat16)["flops"] / 1e9
    print(markdown_table(["export", "samples", "predict s", "samples/s"], rows))
    print(f"\nbf16 matmul peak of this process at the end: {peak:,.0f} GFLOP/s\n\n{command_line()}")


if __name__ == "__main__":
    main()
