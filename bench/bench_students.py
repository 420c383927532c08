"""Student baselines on the real MovieLens-100K (leave-one-out, full ranking, max_seq_len 50).
Feeds docs/BENCHMARKS.md "Students on MovieLens-100K".

    PYTHONPATH=src:bench python bench/bench_students.py --data-dir ../shared/data/ml-100k \
        --work-dir result/bench/students [--models a,b,...] [--seeds 0,1,2] [--override student.num_blocks=2 ...]
        [--epochs 200] [--quick]

``--seeds``: trained rows once per seed (``general.seed``), plus a mean +- sd table.

Rows: popularity and Markov-chain sanity checks, then SASRec (ce), SASRec (dros = bce + DRO), GRU4Rec and
Caser, each trained through the platform's library code (the real Hydra config from conf/ with overrides,
``run_baseline_stage``: early stopping and best-epoch selection on validation only) and evaluated with the
platform's evaluator. Each row runs in its own child process, so its peak RSS and wall time are its own.
A throughput section times SASRec training steps (Lightning module, fp32 and bf16 autocast) against a plain
PyTorch reference loop on the same model, in the same run. Prints Markdown tables and the command line.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench_common import (
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

SIMPLE = ("popularity", "markov1", "markov3")
TRAINED = {  # row -> config overrides on top of the ml-100k defaults
    "sasrec": ["student=sasrec", "student.loss=ce"],
    "sasrec_dros": ["student=sasrec", "student.loss=dros"],
    "gru4rec": ["student=gru4rec"],
    "caser": ["student=caser"],
    "sasrec_bf16": ["student=sasrec", "student.loss=ce", "train.precision=bf16-mixed"],
}
LABELS = {
    "popularity": "popularity",
    "markov1": "Markov, first order",
    "markov3": "Markov, third order (sum of 1st)",
    "sasrec": "SASRec (ce)",
    "sasrec_dros": "SASRec (dros = bce + DRO)",
    "gru4rec": "GRU4Rec (ce)",
    "caser": "Caser (ce)",
    "sasrec_bf16": "SASRec (ce), bf16-mixed",
}
DEFAULT_MODELS = "popularity,markov1,markov3,sasrec,sasrec_dros,gru4rec,caser,sasrec_bf16,throughput"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, default=default_data_dir(), help="MovieLens-100K folder (u.data, u.item)")
    p.add_argument("--epochs", type=int, default=200, help="max epochs (early stopping: train.patience)")
    p.add_argument("--patience", type=int, default=None, help="override train.patience (default: the config's)")
    p.add_argument("--models", default=DEFAULT_MODELS, help=f"comma list of rows (default {DEFAULT_MODELS})")
    p.add_argument("--override", action="append", default=[], help="extra Hydra override for every trained row")
    p.add_argument("--quick", action="store_true", help="smoke test: 2 epochs, few timed steps")
    p.add_argument("--steps", type=int, default=150, help="timed steps per throughput measurement")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the throughput configs (best kept)")
    p.add_argument("--work-dir", type=Path, default=None, help="scratch folder (default: a temporary one, deleted)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads per row (default: torch's)")
    p.add_argument("--seeds", default=None, help="comma list of general.seed values: trained rows run once per seed")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--worker-out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.epochs, args.steps, args.rounds = min(args.epochs, 2), min(args.steps, 15), 1
    args.data_dir = args.data_dir.resolve()
    return args


def worker_args(args: argparse.Namespace, work: Path) -> list[str]:
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
        str(work),
    ]
    if args.patience is not None:
        out += ["--patience", str(args.patience)]
    if args.threads is not None:
        out += ["--threads", str(args.threads)]
    for o in args.override:
        out += ["--override", o]
    return out


# -- sanity-check baselines -----------------------------------------------------------------------------------
# Counts come from the TRAINING samples only (history -> target); scores go through the platform's evaluator
# (full ranking, half-ties rule, candidate protocol), like every model.
# - popularity: score_j = how often item j is a training target.
# - first-order Markov: score_j = count(last history item -> j) + popularity / total (tie-break only).
# - "third-order" Markov: score_j = sum over the LAST THREE history items h of count(h -> j), with the same
#   popularity tie-break (first-order transition counts from each of the three most recent items).


def item_before_target(samples, distance: int, pad_id: int) -> np.ndarray:
    """[M] the history item ``distance`` positions before the target (1 = last), ``pad_id`` if none."""
    width = samples.seq.shape[1]
    col = samples.len_seq - distance
    picked = np.take_along_axis(samples.seq, np.clip(col, 0, width - 1)[:, None], axis=1)[:, 0]
    return np.where(col >= 0, picked, pad_id)


def transition_counts(data) -> torch.Tensor:
    """[N + 1, N] first-order counts (row N = padding, all zero) from the training samples."""
    n = data.num_items
    src = item_before_target(data.train, 1, n)
    flat = np.bincount(src * n + data.train.target, minlength=(n + 1) * n).reshape(n + 1, n)
    flat[n] = 0
    return torch.from_numpy(flat.astype(np.float32))


def popularity(data) -> torch.Tensor:
    return torch.from_numpy(data.train_target_counts().astype(np.float32))


def score_fns(data) -> dict:
    """name -> score_fn(batch) -> [B, N] for the evaluator."""
    pop = popularity(data)
    trans = transition_counts(data)
    tie = pop / pop.sum()  # < 1: only orders items with equal transition counts
    n = data.num_items

    def last_items(batch: dict, distance: int) -> torch.Tensor:
        col = batch["len_seq"] - distance
        picked = batch["seq"].gather(1, col.clamp(min=0).view(-1, 1)).squeeze(1)
        return torch.where(col >= 0, picked, torch.full_like(picked, n))

    def markov(order: int):
        def fn(batch: dict) -> torch.Tensor:
            scores = tie.expand(batch["seq"].shape[0], n).clone()
            for distance in range(1, order + 1):  # order <= 3: a loop over history positions, not items
                scores += trans[last_items(batch, distance)]
            return scores

        return fn

    return {
        "popularity": lambda batch: pop.expand(batch["seq"].shape[0], n),
        "markov1": markov(1),
        "markov3": markov(3),
    }


def evaluate_simple(data, name: str, eval_batch_size: int = 1024) -> dict:
    """Test metrics of one simple baseline, with fit + evaluation time."""
    from ilora_dllm2rec.student.evaluator import evaluate

    start = time.perf_counter()
    fn = score_fns(data)[name]
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    test = evaluate(fn, data.test, batch_size=eval_batch_size)
    eval_s = time.perf_counter() - start
    return {"test": test, "fit_s": fit_s, "eval_s": eval_s, "eval_users_per_s": len(data.test) / eval_s}


# -- workers (child processes) ---------------------------------------------------------------------------------


def row_config(args: argparse.Namespace, row: str):
    overrides = base_overrides(args.data_dir, args.work_dir) + TRAINED.get(row, ["student=sasrec"])
    overrides.append(f"student.num_epochs={args.epochs}")
    if args.patience is not None:
        overrides.append(f"train.patience={args.patience}")
    return compose_cfg(overrides + list(args.override))


def student_module(cfg, data):
    from omegaconf import OmegaConf

    from ilora_dllm2rec.student.lit_module import StudentLitModule

    return StudentLitModule(
        OmegaConf.to_container(cfg.student, resolve=True),
        data.num_items,
        lr=float(cfg.train.lr),
        weight_decay=float(cfg.train.weight_decay),
        ks=list(cfg.metrics.ks),
        target_counts=data.train_target_counts().tolist(),
        seed=int(cfg.general.seed),
    )


def steady_state(cfg, data, precision: str, steps: int, warmup: int = 10):
    """Samples/s of N training steps of the platform's Lightning module (fwd + bwd + Adam), batch from cfg."""
    import torch

    from bench_common import cycle, module_step_fn, time_steps
    from ilora_dllm2rec.data import build_dataloader

    torch.manual_seed(0)
    step = module_step_fn(student_module(cfg, data), precision)
    loader = build_dataloader(data.train, int(cfg.train.batch_size), shuffle=True, seed=0)
    return lambda: time_steps(step, cycle(loader), warmup, steps)


def eval_speed(model, data, batch_size: int, repeats: int = 5) -> float:
    from ilora_dllm2rec.student.evaluator import evaluate_model

    evaluate_model(model, data.test, batch_size=batch_size)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        evaluate_model(model, data.test, batch_size=batch_size)
        best = min(best, time.perf_counter() - start)
    return best


def worker_trained(args: argparse.Namespace, row: str) -> dict:

    from ilora_dllm2rec.core.run_logging import RunDir
    from ilora_dllm2rec.data import prepare_data
    from ilora_dllm2rec.exp import stages
    from ilora_dllm2rec.student.train import load_student_checkpoint

    cfg = row_config(args, row)
    start = time.perf_counter()
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    run = RunDir(args.work_dir / f"run_{row}")
    spy = TrainerSpy()
    payload = stages.baseline(cfg, run, data)
    wall = time.perf_counter() - start
    train_s = float(run.timings()["student_baseline_train_time"])
    epochs_run = spy.epochs_run()
    model, _ = load_student_checkpoint(payload["best_checkpoint"])
    eval_s = eval_speed(model, data, int(cfg.train.eval_batch_size))
    steady = steady_state(cfg, data, str(cfg.train.precision), args.steps)()
    return {
        "row": row,
        "test": payload["test"],
        "val": payload["val"],
        "best_epoch": payload["best_epoch"] + 1,
        "epochs_run": epochs_run,
        "train_s": train_s,
        "wall_s": wall,
        "train_samples_per_s": len(data.train) * epochs_run / train_s,
        "steady_samples_per_s": steady["samples_per_s"],
        "eval_s": eval_s,
        "eval_users_per_s": len(data.test) / eval_s,
        "num_train": len(data.train),
    }


def worker_simple(args: argparse.Namespace, row: str) -> dict:
    from ilora_dllm2rec.data import prepare_data

    cfg = row_config(args, "sasrec")
    start = time.perf_counter()
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    result = evaluate_simple(data, row, int(cfg.train.eval_batch_size))
    return {"row": row, **result, "wall_s": time.perf_counter() - start}


def worker_throughput(args: argparse.Namespace) -> dict:
    """SASRec training throughput, configurations interleaved over rounds (best round kept: shared machine)."""
    import torch

    from ilora_dllm2rec.data import prepare_data
    from ilora_dllm2rec.student.factory import build_student
    from reference_loops import TextbookSASRec, plain_loop_throughput

    cfg = row_config(args, "sasrec")
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    s, bs, lr, warm = cfg.student, int(cfg.train.batch_size), float(cfg.train.lr), 10
    torch.manual_seed(0)
    same_model = build_student(s, data.num_items)
    textbook = TextbookSASRec(
        data.num_items, int(s.hidden_size), int(s.max_seq_len), int(s.num_blocks), int(s.num_heads), float(s.dropout)
    )
    configs = {
        "module_fp32": steady_state(cfg, data, "32-true", args.steps, warm),
        "module_bf16": steady_state(cfg, data, "bf16-mixed", args.steps, warm),
        "plain_same_model": lambda: plain_loop_throughput(
            same_model, data.train, batch_size=bs, lr=lr, warmup=warm, steps=args.steps
        ),
        "plain_textbook": lambda: plain_loop_throughput(
            textbook, data.train, batch_size=bs, lr=lr, warmup=warm, steps=args.steps
        ),
    }
    best: dict[str, float] = {}
    per_round: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(args.rounds):
        for name, fn in configs.items():
            rate = fn()["samples_per_s"]
            per_round[name].append(rate)
            best[name] = max(best.get(name, 0.0), rate)
    return {"row": "throughput", "best": best, "rounds": per_round, "batch_size": bs, "steps": args.steps}


def worker_main(args: argparse.Namespace) -> None:
    worker_setup(args.threads)
    row, _, seed = args.worker.partition("@")  # "sasrec@2": the sasrec row with general.seed=2
    if seed:
        args.override.append(f"general.seed={int(seed)}")
    if row in SIMPLE:
        result = worker_simple(args, row)
    elif row in TRAINED:
        result = worker_trained(args, row)
    elif row == "throughput":
        result = worker_throughput(args)
    else:
        raise SystemExit(f"unknown row {row!r}")
    write_worker_result(args.worker_out, result)


# -- parent: run rows, print tables --------------------------------------------------------------------------


def main_table(results: dict[str, dict]) -> str:
    headers = [
        "model",
        "test HR@10",
        "test NDCG@10",
        "cand_hr@1",
        "best / run epochs",
        "train samples/s",
        "steady samples/s",
        "eval users/s",
        "peak RSS MB",
        "wall s",
    ]
    rows = []
    for row, r in results.items():
        if row == "throughput":
            continue
        t = r["test"]
        epochs = f"{r['best_epoch']} / {r['epochs_run']}" if "best_epoch" in r else "-"
        base, _, seed = row.partition("@")
        rows.append(
            [
                LABELS.get(base, base) + (f", seed {seed}" if seed else ""),
                fmt(t["hr@10"]),
                fmt(t["ndcg@10"]),
                fmt(t.get("cand_hr@1")),
                epochs,
                fmt(r.get("train_samples_per_s"), ",.0f"),
                fmt(r.get("steady_samples_per_s"), ",.0f"),
                fmt(r["eval_users_per_s"], ",.0f"),
                fmt(r["peak_rss_mb"], ",.0f"),
                fmt(r["wall_s"], ".1f"),
            ]
        )
    return markdown_table(headers, rows)


def seed_table(results: dict[str, dict]) -> str:
    """Mean +- sample sd over seeds of each trained row run with --seeds (test and val NDCG@10, test HR@10)."""
    import statistics

    groups: dict[str, list[dict]] = {}
    for row, r in results.items():
        base, _, seed = row.partition("@")
        if seed:
            groups.setdefault(base, []).append(r)

    def mean_sd(values: list[float]) -> str:
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.4f} +- {sd:.4f}"

    rows = [
        [
            LABELS.get(base, base),
            str(len(rs)),
            mean_sd([r["test"]["ndcg@10"] for r in rs]),
            mean_sd([r["test"]["hr@10"] for r in rs]),
            mean_sd([r["val"]["ndcg@10"] for r in rs]),
            " / ".join(f"{r['test']['ndcg@10']:.4f}" for r in rs),
        ]
        for base, rs in groups.items()
    ]
    headers = ["model", "seeds", "test NDCG@10", "test HR@10", "val NDCG@10", "test NDCG@10 per seed"]
    return markdown_table(headers, rows)


def throughput_table(r: dict) -> str:
    best = r["best"]
    ref = best["plain_same_model"]
    names = {
        "module_fp32": "platform: Lightning module step, 32-true",
        "module_bf16": "platform: Lightning module step, bf16-mixed (CPU autocast)",
        "plain_same_model": "plain PyTorch loop, same SASRec (per-sample Dataset + default collate)",
        "plain_textbook": "plain PyTorch loop, textbook SASRec (nn.MultiheadAttention, padded grid)",
    }
    rows = [
        [label, fmt(best[k], ",.0f"), " / ".join(f"{x:,.0f}" for x in r["rounds"][k]), f"{best[k] / ref:.2f}x"]
        for k, label in names.items()
    ]
    return markdown_table(
        [
            f"SASRec training, batch {r['batch_size']}, {r['steps']} timed steps",
            "samples/s (best)",
            "per round",
            "vs plain loop (same model)",
        ],
        rows,
    )


def main() -> None:
    args = parse_args()
    check_data_dir(args.data_dir)
    if args.worker:
        worker_main(args)
        return
    rows = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in rows if m not in (*SIMPLE, *TRAINED, "throughput")]
    if unknown:
        raise SystemExit(f"unknown --models {unknown}; valid: {', '.join((*SIMPLE, *TRAINED, 'throughput'))}")
    if args.seeds:
        seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
        rows = [r for m in rows for r in ([f"{m}@{s}" for s in seeds] if m in TRAINED else [m])]
    temp = args.work_dir is None
    args.work_dir = Path(tempfile.mkdtemp(prefix="bench_students_")) if temp else args.work_dir.resolve()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    quiet()
    from ilora_dllm2rec.data import prepare_data

    cfg = row_config(args, "sasrec")
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)  # build the split cache once for all workers
    print(f"data: {data.summary()}\nload average before: {loadavg()}", flush=True)
    start = time.perf_counter()
    results: dict[str, dict] = {}
    script = Path(__file__).resolve()
    try:
        for row in rows:
            results[row] = run_worker(script, row, worker_args(args, args.work_dir), args.work_dir)
            r = results[row]
            brief = r.get("test", {}).get("ndcg@10", r.get("best"))
            print(f"[{time.perf_counter() - start:7.1f}s] {row}: {brief} (load {r['load_after']})", flush=True)
    finally:
        if temp:
            shutil.rmtree(args.work_dir, ignore_errors=True)
    print(f"\n{command_line()}\n")
    print(f"total wall time {time.perf_counter() - start:.0f} s; load average after: {loadavg()}\n")
    print(main_table(results))
    if args.seeds:
        print()
        print(seed_table(results))
    if "throughput" in results:
        print()
        print(throughput_table(results["throughput"]))


if __name__ == "__main__":
    main()
