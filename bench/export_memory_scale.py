"""Peak RSS growth of the teacher export and of the selection policies' student pass at ml-1m scale.
Feeds docs/BENCHMARKS.md "Memory at ml-1m scale".

    PYTHONPATH=src:bench python bench/export_memory_scale.py {export|select} ROWS --run result/bench/scale/run1

Needs a run folder of `run-pipeline teacher=sasrec` on ml-1m-sized synthetic data (the command in that
section). Prints wall time and the peak and final RSS growth over the loop (RSS sampled every 50 ms in a
thread). To measure a code change, run it on the code before and after the change.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from bench_common import command_line


# not core/runtime.resident_mb: this script must also run on code older than that function
def resident_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("loop", choices=["export", "select"], help="the teacher export or the selection's student pass")
    p.add_argument("rows", type=int, help="training rows to loop over (960855 = every row of the ml-1m-sized data)")
    p.add_argument("--run", type=Path, required=True, help="the run-pipeline folder (result/bench/scale/run1)")
    args = p.parse_args()
    if not (args.run / ".hydra" / "config.yaml").is_file():
        p.error(f"--run {args.run}: no .hydra/config.yaml (run the pipeline command of docs/BENCHMARKS.md first)")

    from ilora_dllm2rec.core.runtime import tune_malloc

    tune_malloc(True)  # as every entry point does
    from ilora_dllm2rec.data import prepare_data
    from ilora_dllm2rec.handoff.selection import student_entropy_and_topk
    from ilora_dllm2rec.student.train import load_student_checkpoint
    from ilora_dllm2rec.teacher.export import predict_top_n
    from ilora_dllm2rec.teacher.id_teacher import load_id_teacher

    cfg = OmegaConf.load(args.run / ".hydra" / "config.yaml")
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    rows = data.train.subset(np.arange(min(args.rows, len(data.train))))
    if args.loop == "export":
        model = load_id_teacher(args.run / "models" / "teacher" / "best.ckpt")
    else:
        model, _ = load_student_checkpoint(args.run / "models" / "baseline" / "best.ckpt")
    peak, done = [0.0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], resident_mb())
            time.sleep(0.05)

    start_rss = resident_mb()
    watcher = threading.Thread(target=watch)
    watcher.start()
    start = time.perf_counter()
    if args.loop == "export":
        trainer = {"accelerator": "cpu", "devices": 1, "strategy": "auto", "precision": "bf16-mixed"}
        train_cfg = OmegaConf.create(trainer)
        predict_top_n(model, rows, top_n=20, batch_size=1024, train_cfg=train_cfg, shard_dir=Path(tempfile.mkdtemp()))
    else:
        student_entropy_and_topk(model, rows, 1024, 10, "cpu")
    seconds = time.perf_counter() - start
    done.set()
    watcher.join()
    print(command_line())
    print(
        f"{args.loop} rows={len(rows)} time={seconds:.1f}s peak_growth={peak[0] - start_rss:.0f}MB "
        f"end_growth={resident_mb() - start_rss:.0f}MB"
    )


if __name__ == "__main__":
    main()
