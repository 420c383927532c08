"""Does the iLoRA teacher's resident memory grow over a long training run, and is it memory in use or free heap?

    PYTHONPATH=src python bench/teacher_memory.py --student-checkpoint RUN/models/baseline/best.ckpt \
        [--data-dir ../shared/data/ml-100k] [--batches 300] [--sample-every 10] [--trims 0,50]

One child process per ``--trims`` value trains the ``experiment=ml100k_cpu`` teacher (real SmolLM2, real ml-100k
prompts, the preset's batches grouped by prompt length; bare loop as in ``teacher_loop_overhead.py``) for
``--batches`` batches and records, every ``--sample-every`` batches, its resident set (VmRSS), its peak (VmHWM)
and the bytes glibc's malloc hands out (``mallinfo2``: in use, and held by the heap). A trim value N > 0 calls
``malloc_trim(0)`` after every N batches (0: never, the platform's default with ``general.tune_malloc``). RSS
far above the in-use bytes is free heap the process keeps (fragmentation); RSS that tracks the in-use bytes is
real growth. Not part of the test run.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import statistics
import time
from pathlib import Path

from bench_common import command_line, markdown_table, run_worker, worker_setup, write_worker_result
from teacher_loop_overhead import add_preset_teacher_args, preset_teacher


class _MallInfo2(ctypes.Structure):  # glibc >= 2.33, <malloc.h>
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )  # fmt: skip
    ]


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.mallinfo2.restype = _MallInfo2
    return libc


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_sample(libc: ctypes.CDLL) -> dict:
    info = libc.mallinfo2()  # main arena only plus mmapped blocks; other threads' arenas are not counted
    return {
        "rss_mb": _status_mb("VmRSS"),
        "hwm_mb": _status_mb("VmHWM"),
        "malloc_in_use_mb": (info.uordblks + info.hblkhd) / 2**20,
        "malloc_held_mb": (info.arena + info.hblkhd) / 2**20,
    }


def worker(args: argparse.Namespace) -> None:
    worker_setup(None)
    import torch

    from ilora_dllm2rec.teacher.factory import build_lambda_schedule

    libc = _libc()
    cfg, model, loader, module = preset_teacher(args)
    m = module()
    m.log = lambda *a, **k: None  # no Trainer attached
    m.schedule = build_lambda_schedule(cfg.teacher, args.batches)
    groups = model.parameter_groups(float(cfg.train.lr), float(cfg.teacher.gate_lr_scale), 0.0)
    optimizer = torch.optim.AdamW(groups)
    params = [q for g in groups for q in g["params"]]
    model.train()
    samples, seconds = [{"batch": 0, **memory_sample(libc)}], []
    for i, batch in enumerate(loader(), start=1):
        if i > args.batches:
            break
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = m.training_step(batch, 0)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, float(cfg.train.gradient_clip_val))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if args.trim_every and i % args.trim_every == 0:
            libc.malloc_trim(0)
        seconds.append(time.perf_counter() - start)
        if i % args.sample_every == 0:
            samples.append({"batch": i, **memory_sample(libc)})
    write_worker_result(args.worker_out, {"samples": samples, "seconds": seconds})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_preset_teacher_args(p, "/tmp/teacher_memory")
    p.add_argument("--batches", type=int, default=300, help="training batches per child process")
    p.add_argument("--sample-every", type=int, default=10, help="batches between memory samples")
    p.add_argument("--trims", default="0,50", help="comma list: malloc_trim every N batches (0: never)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--worker-out", help=argparse.SUPPRESS)
    p.add_argument("--trim-every", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    args.work_dir.mkdir(parents=True, exist_ok=True)
    passed = [f"--{k}={v}" for k, v in (("data-dir", args.data_dir), ("student-checkpoint", args.student_checkpoint),
              ("work-dir", args.work_dir), ("model-cache-dir", args.model_cache_dir), ("batches", args.batches),
              ("sample-every", args.sample_every))] + [f"--override={o}" for o in args.override]  # fmt: skip
    rows, curves = [], []
    for trim in (int(t) for t in args.trims.split(",")):
        result = run_worker(Path(__file__), f"trim{trim}", [*passed, f"--trim-every={trim}"], args.work_dir)
        s = result["samples"]
        last, top = s[-1], max(s, key=lambda x: x["rss_mb"])
        rows.append([
            f"every {trim} batches" if trim else "never (default)",
            f"{s[1]['rss_mb']:,.0f}", f"{top['rss_mb']:,.0f} (batch {top['batch']})", f"{last['hwm_mb']:,.0f}",
            f"{last['malloc_in_use_mb']:,.0f}", f"{last['malloc_held_mb']:,.0f}",
            f"{statistics.mean(result['seconds'][1:]):.3f}",
        ])  # fmt: skip
        curve = ", ".join(
            f"{x['batch']}: {x['rss_mb']:,.0f}/{x['malloc_in_use_mb']:,.0f}" for x in s[:: max(1, len(s) // 10)]
        )
        curves.append(f"- trim {trim}: batch: RSS/in-use MB {curve}")
    headers = ["malloc_trim", f"RSS after {args.sample_every} batches MB", "highest sampled RSS MB", "VmHWM MB",
               "malloc in use at the end MB", "malloc heap held MB", "s/batch"]  # fmt: skip
    print(markdown_table(headers, rows))
    print("\n".join(["", *curves]))
    print(f"\n{command_line()}")


if __name__ == "__main__":
    main()
