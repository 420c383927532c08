"""Does the Lightning loop slow the iLoRA teacher's training down? Same batches, same model, two loops.

    PYTHONPATH=src python bench/teacher_loop_overhead.py --student-checkpoint RUN/models/baseline/best.ckpt \
        [--data-dir ../shared/data/ml-100k] [--batches 12] [--rounds 2] [--override teacher.batch_size=16 ...]
        [--profile]   # instead: torch.profiler table of the bare loop's batches (where a training step's time goes)

Builds the teacher of ``experiment=ml100k_cpu`` (real SmolLM2, real ml-100k prompts, the preset's batches grouped
by prompt length) on a trained SASRec baseline, then times each training batch (forward + backward + clipping +
AdamW) twice per round: inside ``Trainer.fit`` (the platform's path, bf16-mixed) and in a bare PyTorch loop
(autocast bf16, the same ``training_step``, clipping and AdamW). Reports seconds per batch and the fraction of
this process's bf16 matmul peak (4 x non-embedding parameters x real prompt tokens, as issue 3 counts it).
The first batch of every loop is dropped (compilation / warm-up). Not part of the test run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import lightning as L
import torch

from bench_common import base_overrides, check_data_dir, command_line, compose_cfg, default_data_dir, worker_setup
from bench_common import markdown_table as table
from teacher_clock import matmul_peak, non_embedding_parameters


class _BatchClock(L.Callback):
    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._t0 = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.seconds.append(time.perf_counter() - self._t0)


def preset_teacher(args: argparse.Namespace):
    """The ``experiment=ml100k_cpu`` teacher on ``args.student_checkpoint`` (a trained SASRec), with
    ``args.data_dir``, ``args.work_dir``, ``args.model_cache_dir`` and ``args.override``: (cfg, model, loader(),
    module()) where
    ``loader()`` yields the preset's training batches (grouped by prompt length) and ``module()`` builds a
    fresh Lightning module around the model. Shared with ``teacher_memory.py``."""
    from ilora_dllm2rec.core.config import with_train_preset
    from ilora_dllm2rec.data import build_dataloader, prepare_data
    from ilora_dllm2rec.teacher.prompts import prompt_token_counts
    from ilora_dllm2rec.teacher.train import build_teacher, build_teacher_module, load_frozen_student, subset

    overrides = base_overrides(check_data_dir(args.data_dir), args.work_dir) + [
        "experiment=ml100k_cpu",
        f"paths.model_cache_dir={args.model_cache_dir}",
        *args.override,
    ]
    cfg = with_train_preset(compose_cfg(overrides), "teacher", [])
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    student, _ = load_frozen_student(args.student_checkpoint, data)
    model = build_teacher(cfg, student, data)
    seed = int(cfg.general.seed)
    train = subset(data.train, cfg.teacher.max_train_samples, cfg.teacher.train_sample_ratio, seed)
    lengths = prompt_token_counts(model.prompts, train.seq, train.len_seq) if cfg.teacher.group_by_length else None

    def loader():
        return build_dataloader(train, int(cfg.train.batch_size), shuffle=True, seed=seed, lengths=lengths)

    def module():
        return build_teacher_module(cfg, model, meta={})

    return cfg, model, loader, module


def add_preset_teacher_args(p: argparse.ArgumentParser, work_dir: str) -> None:
    """The options :func:`preset_teacher` reads (shared with ``teacher_memory.py``)."""
    p.add_argument("--data-dir", type=Path, default=default_data_dir(), help="MovieLens-100K folder")
    p.add_argument("--student-checkpoint", type=Path, required=True, help="a SASRec baseline best.ckpt on that data")
    p.add_argument("--work-dir", type=Path, default=Path(work_dir), help="data cache, checkpoints, worker logs")
    p.add_argument("--model-cache-dir", type=Path, default=Path(__file__).resolve().parents[1] / "data" / "models")
    p.add_argument("--override", action="append", default=[], help="Hydra override on top of the preset")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_preset_teacher_args(p, "/tmp/teacher_loop_overhead")
    p.add_argument("--batches", type=int, default=12, help="training batches per loop")
    p.add_argument("--rounds", type=int, default=2, help="rounds of (bare loop, Lightning loop)")
    p.add_argument("--profile", action="store_true", help="profile the bare loop's batches instead of timing")
    args = p.parse_args()
    worker_setup(None)

    from ilora_dllm2rec.core.trainer import build_trainer
    from ilora_dllm2rec.teacher.factory import build_lambda_schedule

    cfg, model, loader, module = preset_teacher(args)
    batches = [b for _, b in zip(range(args.batches), loader(), strict=False)]
    tokens = [int(model.prompts.build(b["seq"], b["len_seq"])["attention_mask"].sum()) for b in batches]

    def bare_loop() -> list[float]:
        m = module()
        m.log = lambda *a, **k: None  # no Trainer attached
        m.schedule = build_lambda_schedule(cfg.teacher, len(batches))  # as on_fit_start: decay over the run
        lr, gate_scale, decay = float(cfg.train.lr), float(cfg.teacher.gate_lr_scale), float(cfg.train.weight_decay)
        groups = model.parameter_groups(lr, gate_scale, decay)  # the module's own optimiser groups
        optimizer = torch.optim.AdamW(groups)
        params = [q for g in groups for q in g["params"]]
        clip = float(cfg.train.gradient_clip_val or 0.0)
        model.train()
        seconds = []
        for batch in batches:
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = m.training_step(batch, 0)
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(params, clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            seconds.append(time.perf_counter() - start)
        return seconds

    def lightning_loop() -> list[float]:
        clock = _BatchClock()
        train_cfg = cfg.train.copy()
        train_cfg.limit_train_batches, train_cfg.max_epochs, train_cfg.patience = args.batches, 1, 0
        trainer, _ = build_trainer(
            train_cfg, models_dir=args.work_dir / "models", tb_dir=None, progress_bar=False, extra_callbacks=[clock]
        )
        trainer.limit_val_batches = 0  # training batches only
        trainer.fit(module(), train_dataloaders=loader())
        return clock.seconds

    bare_loop()  # compilation (teacher.compile) and warm-up, not timed
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            bare_loop()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
        print(f"\n{command_line()}")
        return
    seconds: dict[str, list[float]] = {"bare PyTorch loop": [], "Lightning Trainer.fit": []}
    for _ in range(args.rounds):
        seconds["bare PyTorch loop"] += bare_loop()[1:]
        seconds["Lightning Trainer.fit"] += lightning_loop()[1:]
    frozen = {id(q) for n, q in model.llm.named_parameters() if "lora_" not in n}  # adapters excluded
    params = non_embedding_parameters(model.llm, keep=frozen)
    peak = matmul_peak(torch.bfloat16)["flops"]
    per_batch = statistics.mean(tokens[1:])
    rows = []
    for name, values in seconds.items():
        mean = statistics.mean(values)
        fraction = 4 * params * per_batch / mean / peak
        rows.append([name, f"{mean:.3f}", f"{statistics.median(values):.3f}", f"{min(values):.3f}", str(len(values)),
                     f"{int(cfg.train.batch_size) / mean:.2f}", f"{100 * fraction:.1f}%"])  # fmt: skip
    print(f"batch {cfg.train.batch_size}, {per_batch:,.0f} real prompt tokens per batch; non-embedding parameters "
          f"{params:,}; bf16 matmul peak {peak / 1e9:,.0f} GFLOP/s")  # fmt: skip
    print(table(["loop", "s/batch (mean)", "median", "min", "batches", "samples/s", "of bf16 peak"], rows))
    print(f"\n{command_line()}")


if __name__ == "__main__":
    main()
