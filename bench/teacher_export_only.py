"""Re-run only the export stage of an iLoRA teacher that ``bench_distill.py`` trained, with the phase clock.
Feeds docs/BENCHMARKS.md "iLoRA teacher: speed and memory" (export in a fresh process).

    PYTHONPATH=src:bench python bench/teacher_export_only.py --data-dir ../shared/data/ml-100k \
        --work-dir result/bench/ilora --teacher-override experiment=ml100k_cpu [--teacher-override active=all]

``--work-dir`` and ``--teacher-override`` as given to the ``bench_distill.py --teacher ilora`` run that trained
the teacher (its ``run_teacher-ilora`` folder is reused; ``teacher_outputs`` are rewritten with the same
content). A fresh process, so the export's rate is measured without the training stage before it; the rate
is against the bf16 matmul peak measured in this process afterwards, as in ``bench_distill.py``. Prints JSON.
Options are ``bench_distill.py``'s (its ``--help``). With ``--teacher-override active=all`` it also writes the
every-row export that distillation without a selection needs.
"""

from __future__ import annotations

import json
import sys
import time

import torch

import bench_distill
import teacher_clock
from bench_common import command_line, worker_setup


def export_setup():
    """(args, export()) for the trained iLoRA teacher of ``--work-dir``, with the phase clock installed:
    ``export()`` runs the export stage once."""
    args = bench_distill.parse_args()
    if args.work_dir is None or not (args.work_dir / "run_teacher-ilora" / "models" / "teacher").is_dir():
        sys.exit("error: --work-dir must hold a bench_distill.py run with a trained iLoRA teacher (run_teacher-ilora)")
    worker_setup(args.threads)
    from ilora_dllm2rec.data import prepare_data
    from ilora_dllm2rec.exp import stages

    cfg = bench_distill.stage_cfg(args, "teacher", bench_distill.teacher_extra(args, "ilora"))
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    clock = teacher_clock.install()
    run = bench_distill.run_dir(args, "teacher-ilora")
    return args, clock, lambda: stages.export(cfg, run, data)


def main() -> None:
    args, clock, export = export_setup()
    start = time.perf_counter()
    export()
    wall = time.perf_counter() - start
    peak = teacher_clock.matmul_peak(torch.bfloat16)
    phases = teacher_clock.report(clock, clock.llm_params, peak["flops"])
    result = {"export_wall_s": round(wall, 1), "bf16_peak_gflops": round(peak["flops"] / 1e9), **phases}
    print(json.dumps(result, indent=1))
    print(f"\n{command_line()}")


if __name__ == "__main__":
    main()
