"""Baseline vs DLLM2Rec-distilled students on the real MovieLens-100K, and the distillation step's speed.
Feeds docs/BENCHMARKS.md "Distillation speed against the public DLLM2Rec reference", "Distillation in DLLM2Rec's
own student setting", "iLoRA teacher: speed and memory" and "iLoRA teacher: quality against its SASRec".

    PYTHONPATH=src:bench python bench/bench_distill.py --data-dir ../shared/data/ml-100k \
        --work-dir result/bench/ml100k [--students sasrec,gru4rec] [--teacher sasrec|ilora|ensemble]
        [--reuse] [--no-throughput] [--override KEY=VALUE ...] [--teacher-override ...] [--distill-override ...]
        [--epochs 200] [--quick]

Rows already in ``--work-dir`` (``<row>.json``) are kept with ``--reuse``; a teacher row copied from another
work dir is reused too, so several student seeds can share one teacher.

Stages are the platform's library functions, with the train preset switched per stage as run-pipeline does
(``with_train_preset(cfg, "student" | "teacher" | "distill", overrides)``): ``run_baseline_stage`` per student,
``train_teacher`` + ``run_export_stage`` once per teacher (``--teacher sasrec``: the non-LLM ID teacher;
``--teacher ilora``: the iLoRA LLM teacher, expensive on CPU: shrink it with ``--teacher-override``), then
``run_distill_stage`` per (student, teacher) from that export. Model selection is on validation only.
Each row runs in its own child process (peak RSS and wall time per row).

A throughput section times the platform's distillation step (the Lightning module's ``training_step`` +
backward + Adam) against a re-implementation of the public DLLM2Rec reference loop's data handling
(bench/reference_loops.py) on the same data, model, teacher export and settings, and against the public
reference step itself, ported operation for operation with its own one-block SASRec
(bench/reference_dllm2rec.py; its DRO term on exactly when the platform's is), interleaved in one process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench_common import (
    ROOT,
    TrainerSpy,
    base_overrides,
    check_data_dir,
    command_line,
    compose_cfg,
    default_data_dir,
    fmt,
    loadavg,
    markdown_table,
    quiet,
    run_worker,
    worker_setup,
    write_worker_result,
)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, default=default_data_dir(), help="MovieLens-100K folder")
    p.add_argument("--students", default="sasrec,gru4rec", help="comma list of students")
    p.add_argument("--teacher", default="sasrec", help="comma list of teacher backends: sasrec (ID), ilora (LLM)")
    p.add_argument("--epochs", type=int, default=200, help="max epochs of baseline and distilled students")
    p.add_argument("--teacher-epochs", type=int, default=None, help="max teacher epochs (default: teacher config)")
    p.add_argument("--override", action="append", default=[], help="Hydra override for every stage")
    p.add_argument("--teacher-override", action="append", default=[], help="override for the teacher stages")
    p.add_argument("--distill-override", action="append", default=[], help="override for the distillation stages")
    p.add_argument("--model-cache-dir", type=Path, default=None, help="converted LLMs (default: repo data/models)")
    p.add_argument("--no-throughput", action="store_true", help="skip the reference-style throughput comparison")
    p.add_argument("--steps", type=int, default=300, help="timed steps per throughput measurement")
    p.add_argument("--rounds", type=int, default=2, help="interleaved throughput rounds (best kept)")
    p.add_argument(
        "--throughput-embeddings",
        type=Path,
        default=None,
        help="all_embeddings.pt for the throughput rows only (e.g. an LLM teacher's, whose width drives the "
        "reference's per-token projection cost, while the rankings come from a full-row ID-teacher export)",
    )
    p.add_argument("--quick", action="store_true", help="smoke test: 2 epochs everywhere, few timed steps")
    p.add_argument("--reuse", action="store_true", help="keep rows already in --work-dir (run the rest)")
    p.add_argument("--work-dir", type=Path, default=None, help="scratch folder (default: temporary, deleted)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads per row (default: torch's)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--worker-out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.epochs, args.steps, args.rounds = min(args.epochs, 2), min(args.steps, 15), 1
        args.teacher_epochs = min(args.teacher_epochs or 2, 2)
    args.data_dir = args.data_dir.resolve()
    if args.throughput_embeddings is not None and not args.throughput_embeddings.is_file():
        p.error(f"--throughput-embeddings: {args.throughput_embeddings} is not a file (an export's all_embeddings.pt)")
    return args


def worker_args(args: argparse.Namespace) -> list[str]:
    out = [
        "--data-dir",
        str(args.data_dir),
        "--epochs",
        str(args.epochs),
        "--steps",
        str(args.steps),
        "--rounds",
        str(args.rounds),
        "--work-dir",
        str(args.work_dir),
    ]
    if args.teacher_epochs is not None:
        out += ["--teacher-epochs", str(args.teacher_epochs)]
    if args.model_cache_dir is not None:
        out += ["--model-cache-dir", str(args.model_cache_dir)]
    if args.throughput_embeddings is not None:
        out += ["--throughput-embeddings", str(args.throughput_embeddings.resolve())]
    if args.threads is not None:
        out += ["--threads", str(args.threads)]
    for flag, values in (
        ("--override", args.override),
        ("--teacher-override", args.teacher_override),
        ("--distill-override", args.distill_override),
    ):
        for v in values:
            out += [flag, v]
    return out


# -- stage configs ---------------------------------------------------------------------------------------------


def stage_cfg(args: argparse.Namespace, preset: str, extra: list[str]):
    """The run-pipeline config with ``extra`` overrides, then the stage's train preset composed with the same
    overrides (``with_train_preset``, as run-pipeline does), so ``train.*`` overrides reach the stage's preset."""
    from ilora_dllm2rec.core.config import with_train_preset

    cache = args.model_cache_dir or Path(os.environ.get("ILORA_MODEL_CACHE", ROOT / "data" / "models"))
    overrides = base_overrides(args.data_dir, args.work_dir) + [f"paths.model_cache_dir={Path(cache).resolve()}"]
    overrides += list(args.override) + extra
    # train.* keys may exist in only one preset (e.g. train.warmup_ratio): apply them with the preset only
    cfg = compose_cfg([o for o in overrides if not o.startswith("train.")], "run_pipeline")
    return with_train_preset(cfg, preset, overrides)


def run_dir(args: argparse.Namespace, name: str):
    from ilora_dllm2rec.core.run_logging import RunDir

    return RunDir(args.work_dir / f"run_{name}")


# -- workers -------------------------------------------------------------------------------------------------------


def worker_baseline(args: argparse.Namespace, student: str) -> dict:
    from ilora_dllm2rec.data import prepare_data
    from ilora_dllm2rec.exp import stages

    cfg = stage_cfg(args, "student", [f"student={student}", f"student.num_epochs={args.epochs}"])
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    run = run_dir(args, f"baseline-{student}")
    start = time.perf_counter()
    spy = TrainerSpy()
    payload = stages.baseline(cfg, run, data)
    train_s = float(run.timings()["student_baseline_train_time"])
    n_ep = spy.epochs_run()
    return {
        "test": payload["test"],
        "val": payload["val"],
        "best_epoch": payload["best_epoch"] + 1,
        "epochs_run": n_ep,
        "train_s": train_s,
        "train_samples_per_s": len(data.train) * n_ep / train_s,
        "wall_s": time.perf_counter() - start,
        "best_checkpoint": payload["best_checkpoint"],
    }


def teacher_extra(args: argparse.Namespace, backend: str) -> list[str]:
    extra = [f"teacher={backend}"]
    if args.teacher_epochs is not None:
        extra.append(f"teacher.num_epochs={args.teacher_epochs}")
    if backend == "ilora":  # the frozen SASRec inside iLoRA: the SASRec baseline of this benchmark
        baseline = args.work_dir / "baseline-sasrec.json"
        if baseline.is_file():  # also the baseline that informed selection policies score samples with
            best = json.loads(baseline.read_text())["best_checkpoint"]
            extra += [f"teacher.rec_model_checkpoint_path={best}", f"distill.baseline_checkpoint_path={best}"]
    return extra + list(args.teacher_override)


TEACHER_KEYS = (
    "llm_path",
    "dtype",
    "adapter",
    "max_prompt_tokens",
    "max_history_items",
    "batch_size",
    "eval_batch_size",
    "lr",
    "num_epochs",
    "max_train_samples",
    "max_eval_samples",
    "head_residual",
    "attn_implementation",
    "train_attn_implementation",
    "compile",
)


def best_epochs(payload: dict) -> str:
    """1-based best epoch; an ensemble teacher lists its trained members' ("ext" for given checkpoints)."""
    if "members" in payload:
        epochs = [m["best_epoch"] for m in payload["members"].values()]
        return ",".join("ext" if e is None else str(e + 1) for e in epochs)
    return str(payload["best_epoch"] + 1)


def worker_teacher(args: argparse.Namespace, backend: str) -> dict:
    import torch

    import teacher_clock
    from ilora_dllm2rec.data import prepare_data
    from ilora_dllm2rec.exp import stages

    cfg = stage_cfg(args, "teacher", teacher_extra(args, backend))
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    run = run_dir(args, f"teacher-{backend}")
    clock = teacher_clock.install() if backend == "ilora" else None
    start = time.perf_counter()
    spy = TrainerSpy()
    payload = stages.teacher(cfg, run, data, [])
    stages.export(cfg, run, data)
    times = run.timings()
    llm = {}
    if clock is not None:  # LLM teacher speed: rates and the FLOP fraction against this process's bf16 peak
        peak = teacher_clock.matmul_peak(torch.bfloat16)
        llm = {
            "llm_non_embedding_params": clock.llm_params,
            "matmul_peak": peak,
            "matmul_peak_fp32": teacher_clock.matmul_peak(torch.float32),
            "phases": teacher_clock.report(clock, clock.llm_params, peak["flops"]),
            "train_samples": len(data.train),
            "config": {k: cfg.teacher[k] for k in TEACHER_KEYS if k in cfg.teacher},
        }
    return {
        **llm,
        "test": payload["test"],
        "val": payload["val"],
        "best_epoch": best_epochs(payload),
        "train_s": times.get("teacher_train_time_total"),
        "export_s": times.get("distill_teacher_export_time"),
        "epochs_run": ",".join(str(int(t.current_epoch)) for t in spy.trainers) if spy.trainers else "-",
        "wall_s": time.perf_counter() - start,
        "teacher_outputs": str(run.teacher_outputs),
    }


def distill_extra(args: argparse.Namespace, student: str, backend: str) -> list[str]:
    outputs = json.loads((args.work_dir / f"teacher-{backend}.json").read_text())["teacher_outputs"]
    return [
        f"student={student}",
        f"distill.num_epochs={args.epochs}",
        f"distill.teacher_outputs_dir={outputs}",
        *args.distill_override,
    ]


def worker_distill(args: argparse.Namespace, student: str, backend: str) -> dict:
    from ilora_dllm2rec.data import prepare_data
    from ilora_dllm2rec.exp import stages

    cfg = stage_cfg(args, "distill", distill_extra(args, student, backend))
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    run = run_dir(args, f"distill-{student}-{backend}")
    start = time.perf_counter()
    spy = TrainerSpy()
    payload = stages.distill(cfg, run, data)
    train_s = float(run.timings()["distill_student_train_time"])
    n_ep = spy.epochs_run()
    return {
        "test": payload["test"],
        "val": payload["val"],
        "best_epoch": payload["best_epoch"] + 1,
        "epochs_run": n_ep,
        "train_s": train_s,
        "train_samples_per_s": len(data.train) * n_ep / train_s,
        "wall_s": time.perf_counter() - start,
    }


def worker_throughput(args: argparse.Namespace, student: str, backend: str) -> dict:
    """Platform distillation step vs the reference-style loop: same data, model config, export, settings."""
    import numpy as np
    import torch
    from omegaconf import OmegaConf

    from bench_common import cycle, module_step_fn, time_steps
    from ilora_dllm2rec.data import build_dataloader, prepare_data
    from ilora_dllm2rec.distill.kd_losses import (
        attach_teacher_item_embeddings,
        resolve_use_dros,
        standardize_item_embeddings,
    )
    from ilora_dllm2rec.distill.lit_module import DistillLitModule
    from ilora_dllm2rec.handoff.outputs import to_dense
    from ilora_dllm2rec.handoff.outputs_reader import load_teacher_outputs
    from ilora_dllm2rec.student.factory import build_student
    from ilora_dllm2rec.student.losses import item_propensity
    from reference_dllm2rec import ReferenceSASRec, reference_port_throughput
    from reference_loops import TextbookSASRec, reference_distill_throughput, sequence_frame

    cfg = stage_cfg(args, "distill", distill_extra(args, student, backend))
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    dcfg = OmegaConf.to_container(cfg.distill, resolve=True)
    folder = Path(dcfg["teacher_outputs_dir"])
    k = int(dcfg["candidate_topk"])
    outputs = load_teacher_outputs(
        folder,
        num_items=data.num_items,
        train_samples=data.train,
        data_fingerprint=data.fingerprint,
        candidate_topk=k,
        load_embeddings=True,
    )
    cand_ids, cand_dist, has_teacher = to_dense(outputs, len(data.train))
    emb, ed = outputs.item_embeddings, float(dcfg["ed_weight"])
    if args.throughput_embeddings is not None:
        emb = torch.load(args.throughput_embeddings, map_location="cpu", weights_only=True).float()
        if emb.dim() != 2 or emb.shape[0] != data.num_items:
            raise SystemExit(f"{args.throughput_embeddings}: shape {tuple(emb.shape)}, need [{data.num_items}, D]")
    if dcfg["ed_standardize"]:  # once, for the platform and both reference models alike
        emb = standardize_item_embeddings(emb)
    student_cfg = OmegaConf.to_container(cfg.student, resolve=True)
    counts = data.train_target_counts()
    bs, lr = int(cfg.train.batch_size), float(cfg.train.lr)
    torch.manual_seed(0)
    use_ed = bool(dcfg["use_embedding_distill"])  # as run_distill_stage: ED only when switched on, everywhere
    module = DistillLitModule(
        student_cfg,
        data.num_items,
        lr=lr,
        target_counts=counts.tolist(),
        llm_embedding_dim=int(emb.shape[1]) if use_ed else None,
        ed_weight=ed,
        distill_cfg=dcfg,
    )
    if use_ed:
        attach_teacher_item_embeddings(module.model, emb, ed)
    module.set_teacher_knowledge(cand_ids, cand_dist, has_teacher)
    step = module_step_fn(module, str(cfg.train.precision))
    loader = cycle(build_dataloader(data.train, bs, shuffle=True, seed=0))
    ref_model = build_student(student_cfg, data.num_items)
    if use_ed:
        attach_teacher_item_embeddings(ref_model, emb, ed)
    textbook = None
    if student == "sasrec":  # a reference-like model too: the reference runs its own, unoptimised SASRec
        s = cfg.student
        textbook = TextbookSASRec(
            data.num_items,
            int(s.hidden_size),
            int(s.max_seq_len),
            int(s.num_blocks),
            int(s.num_heads),
            float(s.dropout),
        )
        if use_ed:
            textbook.set_llm_item_embeddings(emb, ed)
    frame = sequence_frame(data.train)  # the CSV the reference reads (built once, untimed)
    rank = np.loadtxt(folder / "myrank_train.txt", dtype=np.int64)  # read once, like the reference
    if len(rank) != len(data.train):  # the reference has no selection: one teacher row per training sample
        raise SystemExit(
            f"throughput: {folder} covers {len(rank):,} of {len(data.train):,} training samples (a selection "
            "policy's subset); the reference loops need every row: use an export with active=all (--teacher sasrec)"
        )
    conf = np.loadtxt(folder / "confidence_train.txt", dtype=np.float32)
    prop = item_propensity(torch.from_numpy(counts))
    configs = {
        "platform": lambda: time_steps(step, loader, 10, args.steps),
        "reference": lambda: reference_distill_throughput(
            ref_model, frame, rank, conf, prop, dcfg, batch_size=bs, lr=lr, warmup=5, steps=args.steps
        ),
    }
    if textbook is not None:
        configs["reference_textbook"] = lambda: reference_distill_throughput(
            textbook, frame, rank, conf, prop, dcfg, batch_size=bs, lr=lr, warmup=5, steps=args.steps
        )
        # the public reference step itself (bench/reference_dllm2rec.py); its DRO term on exactly when the
        # platform's is (the reference's alpha=0 switches it off in the base loss and in L_RD alike)
        dros = resolve_use_dros(dcfg["use_dros"], str(s.loss))
        port_settings = {**dcfg, "lam": float(dcfg["rd_weight"]), "alpha": float(dcfg["alpha"]) if dros else 0.0}
        port = ReferenceSASRec(
            data.num_items,
            int(s.hidden_size),
            int(s.max_seq_len),
            float(s.dropout),
            int(emb.shape[1]) if use_ed else 1,
            ed,
        )
        port_rank, port_conf = torch.from_numpy(rank), torch.from_numpy(conf)
        ps64 = prop.double()  # the reference's propensity is a float64 NumPy array
        configs["reference_port"] = lambda: reference_port_throughput(
            port, frame, port_rank, port_conf, emb.float() if use_ed else None, ps64, port_settings,
            batch_size=bs, lr=lr, warmup=5, steps=args.steps,
        )  # fmt: skip
    rounds: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(args.rounds):
        for name, fn in configs.items():
            rounds[name].append(fn()["samples_per_s"])
    return {
        "best": {n: max(v) for n, v in rounds.items()},
        "rounds": rounds,
        "batch_size": bs,
        "steps": args.steps,
        "precision": str(cfg.train.precision),
        "student": student,
        "teacher": backend,
        "embedding_width": int(emb.shape[1]) if use_ed else 0,
    }


def worker_main(args: argparse.Namespace) -> None:
    worker_setup(args.threads)
    kind, *rest = args.worker.split("-")
    fns = {
        "baseline": worker_baseline,
        "teacher": worker_teacher,
        "distill": worker_distill,
        "throughput": worker_throughput,
    }
    write_worker_result(args.worker_out, {"row": args.worker, **fns[kind](args, *rest)})


# -- parent --------------------------------------------------------------------------------------------------------


def relative_gain(test: dict, base: dict, metric: str) -> str:
    return f"{100 * (test[metric] / base[metric] - 1):+.1f}%"


def results_table(results: dict[str, dict], students: list[str], teachers: list[str]) -> str:
    headers = [
        "model",
        "test NDCG@10",
        "test HR@10",
        "cand_hr@1",
        "NDCG@10 gain",
        "HR@10 gain",
        "best / run epochs",
        "train samples/s",
        "peak RSS MB",
        "wall s",
    ]
    rows = []
    for backend in teachers:
        r = results.get(f"teacher-{backend}")
        if r:
            t = r["test"]
            rows.append(
                [
                    f"teacher: {backend}",
                    fmt(t["ndcg@10"]),
                    fmt(t["hr@10"]),
                    fmt(t.get("cand_hr@1")),
                    "-",
                    "-",
                    f"{r['best_epoch']} / {r.get('epochs_run', '-')}",
                    "-",
                    fmt(r["peak_rss_mb"], ",.0f"),
                    fmt(r["wall_s"], ".1f"),
                ]
            )
    for student in students:
        base = results.get(f"baseline-{student}")
        names = [(f"baseline-{student}", f"{student} baseline")]
        names += [(f"distill-{student}-{b}", f"{student} distilled ({b} teacher)") for b in teachers]
        for key, label in names:
            r = results.get(key)
            if not r:
                continue
            t = r["test"]
            is_base = base is None or key == f"baseline-{student}"
            rows.append(
                [
                    label,
                    fmt(t["ndcg@10"]),
                    fmt(t["hr@10"]),
                    fmt(t.get("cand_hr@1")),
                    "-" if is_base else relative_gain(t, base["test"], "ndcg@10"),
                    "-" if is_base else relative_gain(t, base["test"], "hr@10"),
                    f"{r['best_epoch']} / {r['epochs_run']}",
                    fmt(r["train_samples_per_s"], ",.0f"),
                    fmt(r["peak_rss_mb"], ",.0f"),
                    fmt(r["wall_s"], ".1f"),
                ]
            )
    return markdown_table(headers, rows)


def throughput_table(r: dict) -> str:
    """Ratios against both reference-style loops: same model (data handling + loss only) and textbook model."""
    best = r["best"]
    labels = {
        "platform": f"platform: DistillLitModule step ({r['precision']})",
        "reference": "reference-style loop, same platform model",
        "reference_textbook": "reference-style loop, textbook SASRec (reference-like model)",
        "reference_port": "public reference step, ported (its one-block SASRec)",
    }
    labels = {k: v for k, v in labels.items() if k in best}
    rows = [
        [labels[n], fmt(best[n], ",.0f"), " / ".join(f"{x:,.0f}" for x in r["rounds"][n])]
        + [f"{best[n] / best[ref]:.1f}x" for ref in labels if ref != "platform"]
        for n in labels
    ]
    width = f", item embeddings {r['embedding_width']}-d" if r.get("embedding_width") else ""
    title = f"{r['student']} distillation ({r['teacher']} teacher{width}), batch {r['batch_size']}"
    title += f", {r['steps']} timed steps"
    ratios = [f"vs {labels[ref].split(',')[1].strip()}" for ref in labels if ref != "platform"]
    return markdown_table([title, "samples/s (best)", "per round", *ratios], rows)


def llm_teacher_table(r: dict, baseline: dict | None) -> str:
    """LLM teacher speed as a fraction of the bf16 matmul peak, and quality vs its SASRec."""
    peak = r["matmul_peak"]
    lines = [
        f"LLM non-embedding parameters: {r['llm_non_embedding_params']:,}; bf16 matmul peak of this process: "
        f"{peak['flops'] / 1e9:,.0f} GFLOP/s (n={peak['size']}, {peak['threads']} threads); fp32: "
        f"{r['matmul_peak_fp32']['flops'] / 1e9:,.0f} GFLOP/s. Teacher config: {r['config']}",
        "",
    ]
    rows = []
    for phase, label in (("train", "training (fwd+bwd+step, 4 x P x tokens)"), ("predict", "export (2 x P x tokens)")):
        p = r["phases"].get(phase)
        if p:
            steady = f"{100 * p['steady_peak_fraction']:.1f}%" if "steady_peak_fraction" in p else "-"
            rows.append([label, f"{p['samples']:,}", fmt(p["seconds"], ",.0f"), fmt(p["samples_per_s"], ".2f"),
                         fmt(p["tokens_per_s"], ",.0f"), fmt(p["tokens_per_sample"], ".0f"),
                         fmt(p["flops"] / 1e9, ",.0f"), f"{100 * p['peak_fraction']:.1f}%",
                         fmt(p.get("first_batch_seconds"), ".1f"), steady])  # fmt: skip
    lines.append(markdown_table(["phase", "samples", "s", "samples/s", "tokens/s", "tokens/sample", "GFLOP/s",
                                 "of bf16 peak", "first batch s", "steady (w/o first batch)"], rows))  # fmt: skip
    lines.append("")
    rows = [["iLoRA teacher", fmt(r["test"]["ndcg@10"]), fmt(r["test"]["hr@10"]), fmt(r["test"].get("cand_hr@1")),
             fmt(r["peak_rss_mb"], ",.0f")]]  # fmt: skip
    if baseline:
        t = baseline["test"]
        rows.append(["SASRec baseline (frozen in it)", fmt(t["ndcg@10"]), fmt(t["hr@10"]), fmt(t.get("cand_hr@1")),
                     fmt(baseline["peak_rss_mb"], ",.0f")])  # fmt: skip
        rows[0].append(relative_gain(r["test"], t, "ndcg@10"))
        rows[1].append("-")
    lines.append(markdown_table(["model", "test NDCG@10", "test HR@10", "cand_hr@1", "peak RSS MB",
                                 "NDCG@10 vs SASRec"][: len(rows[0])], rows))  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    check_data_dir(args.data_dir)
    if args.worker:
        worker_main(args)
        return
    students = [s.strip() for s in args.students.split(",") if s.strip()]
    teachers = [t.strip() for t in args.teacher.split(",") if t.strip()]
    temp = args.work_dir is None
    args.work_dir = Path(tempfile.mkdtemp(prefix="bench_distill_")) if temp else args.work_dir.resolve()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    quiet()
    from ilora_dllm2rec.data import prepare_data

    cfg = stage_cfg(args, "student", [])
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)  # build the split cache once for all workers
    print(f"data: {data.summary()}\nload average before: {loadavg()}", flush=True)
    rows = [f"baseline-{s}" for s in students] + [f"teacher-{t}" for t in teachers]
    rows += [f"distill-{s}-{t}" for t in teachers for s in students]
    if not args.no_throughput:
        rows.append(f"throughput-{students[0]}-{teachers[0]}")
    start = time.perf_counter()
    results: dict[str, dict] = {}
    script = Path(__file__).resolve()
    try:
        for row in rows:
            done = args.work_dir / f"{row}.json"
            if args.reuse and done.is_file():
                results[row] = json.loads(done.read_text())
                print(f"[reused] {row}", flush=True)
                continue
            results[row] = run_worker(script, row, worker_args(args), args.work_dir)
            r = results[row]
            brief = r.get("test", {}).get("ndcg@10", r.get("best"))
            print(f"[{time.perf_counter() - start:7.1f}s] {row}: {brief} (load {r['load_after']})", flush=True)
    finally:
        if temp:
            shutil.rmtree(args.work_dir, ignore_errors=True)
    print(f"\n{command_line()}\n")
    print(f"total wall time {time.perf_counter() - start:.0f} s; load average after: {loadavg()}\n")
    print(results_table(results, students, teachers))
    llm = results.get("teacher-ilora")
    if llm and "phases" in llm:
        print()
        print(llm_teacher_table(llm, results.get("baseline-sasrec")))
    thr = [r for k, r in results.items() if k.startswith("throughput-")]
    if thr:
        print()
        print(throughput_table(thr[0]))


if __name__ == "__main__":
    main()
