"""Does the iLoRA head find more when trained against out-of-fold SASRec scores (cross-fitting)?

    PYTHONPATH=src:bench python bench/teacher_crossfit_probe.py --teacher-checkpoint RUN/models/teacher/best.ckpt \
        --work-dir /tmp/s13/probe [--folds 5] [--train-samples 24000] [--data-dir ../shared/data/ml-100k]

The teacher's residual head ``q_u = z_u + P(h_u)`` is trained on training rows, where its frozen SASRec is far
better than on held-out users (NDCG@10 0.1569 on 24,000 training rows vs 0.1189 on validation): the head learns
to correct errors the SASRec does not make on new users. Cross-fitting (stacked generalisation) removes that
mismatch: the users are split into K folds, one SASRec per fold is trained WITHOUT that fold's users (same
config, same epochs budget, validation-picked), and a training row's base scores come from the SASRec that did
not see its user. Because the head is linear in the item space (``score(z + P) = score(z) + score(P)`` for the
tied output layer; minus the
bias for a Linear one), the residual ``score(P(h_u))`` is added to whichever base scores a row has: out-of-fold ones
while fitting, the full SASRec's on validation and test. Validation picks the epoch, as in the stage.

The LLM states ``h_u`` are those of bench/teacher_head_probe.py (same teacher, same rows, same file under
``--work-dir``; computed here when absent). Printed: the frozen SASRec, the head refitted in-fold (the earlier
probe) and out-of-fold, each on validation and test with the paired gain over the frozen SASRec.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from bench_common import base_overrides, command_line, compose_cfg, markdown_table
from teacher_head_probe import (
    base_scores,
    fit_residual,
    load_or_cache_states,
    load_probe_inputs,
    parse_probe_args,
    per_sample,
    residual_scores,
)


def fold_of_users(users: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """fold index per user id (a seeded permutation of the user ids cut into ``folds`` near-equal parts)."""
    ids = np.unique(users)
    perm = np.random.default_rng(seed).permutation(ids)
    fold = np.empty(int(ids.max()) + 1, dtype=np.int64)
    fold[perm] = np.arange(len(perm)) % folds
    return fold


def train_fold_students(args, data, fold: np.ndarray) -> list[Path]:
    """One SASRec per fold on the training rows of the OTHER folds' users (the baseline stage, its config)."""
    from ilora_dllm2rec.core.config import with_train_preset
    from ilora_dllm2rec.core.run_logging import RunDir
    from ilora_dllm2rec.student.train import run_baseline_stage

    overrides = base_overrides(args.data_dir, args.work_dir) + ["student=sasrec", "student.num_epochs=200"]
    cfg = with_train_preset(compose_cfg(overrides, "run_pipeline"), "student", overrides)
    paths = []
    for k in range(args.folds):
        run = RunDir(args.work_dir / f"crossfit_fold{k}of{args.folds}")
        done = run.root / "metrics" / "eval_baseline.json"
        if not done.is_file():
            keep = np.flatnonzero(fold[data.train.user] != k)
            start = time.perf_counter()
            payload = run_baseline_stage(cfg, run, dataclasses.replace(data, train=data.train.subset(keep)))
            seconds = time.perf_counter() - start
            val, test = payload["val"]["ndcg@10"], payload["test"]["ndcg@10"]
            print(f"fold {k}: {len(keep):,} rows, {seconds:.0f} s, val {val:.4f}, test {test:.4f}", flush=True)

        paths.append(Path(json.loads(done.read_text())["best_checkpoint"]))
    return paths


def main() -> None:
    def folds_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--folds", type=int, default=5, help="user folds, one SASRec trained without each")

    args = parse_probe_args(__doc__, train_samples=24000, epochs=40, extra=folds_option)
    if args.folds < 2:
        raise SystemExit("--folds must be >= 2")

    from ilora_dllm2rec.core.significance import paired_comparison
    from ilora_dllm2rec.student.train import load_student_checkpoint

    cfg, data, model, rows = load_probe_inputs(args)  # the head probe's rows and states
    student = model.student
    ks = list(cfg.metrics.ks)
    caches = load_or_cache_states(args, model, rows, data)

    fold = fold_of_users(data.train.user, args.folds, seed=int(cfg.general.seed))
    fold_paths = train_fold_students(args, data, fold)
    in_fold = base_scores(student, rows)
    out_of_fold = torch.empty_like(in_fold)
    for k, path in enumerate(fold_paths):
        mask = torch.from_numpy(fold[rows.user] == k)
        fold_student, _ = load_student_checkpoint(path)
        out_of_fold[mask] = base_scores(fold_student, rows.subset(np.flatnonzero(mask.numpy())))
    target = torch.from_numpy(np.asarray(rows.target, dtype=np.int64))
    print(command_line())
    for name, s in (("full SASRec (in-fold)", in_fold), ("out-of-fold SASRecs", out_of_fold)):
        print(f"{name} on the {len(rows):,} training rows: NDCG@10 {per_sample(s, rows, ks)['ndcg@10'].mean():.4f}")

    val_base, test_base = base_scores(student, data.val), base_scores(student, data.test)
    frozen = {"val": per_sample(val_base, data.val, ks), "test": per_sample(test_base, data.test, ks)}
    table = [["frozen SASRec", f"{frozen['val']['ndcg@10'].mean():.4f}", f"{frozen['test']['ndcg@10'].mean():.4f}",
              "-", f"{frozen['test']['hr@10'].mean():.4f}", "-"]]  # fmt: skip
    for label, base in (("head refitted in-fold", in_fold), ("head refitted out-of-fold", out_of_fold)):
        start = time.perf_counter()
        head, best_epoch, history = fit_residual(
            student, caches["train"]["h"], base, target, caches["val"]["h"], val_base, data.val, args, ks
        )
        with torch.no_grad():
            val = per_sample(val_base + residual_scores(student, head, caches["val"]["h"]), data.val, ks)
            test = per_sample(test_base + residual_scores(student, head, caches["test"]["h"]), data.test, ks)
        cmp = paired_comparison(frozen["test"]["ndcg@10"], test["ndcg@10"])
        print(f"{label}: best epoch {best_epoch} of {len(history) - 1}, {time.perf_counter() - start:.0f} s, "
              "val per epoch " + ", ".join(f"{v:.4f}" for v in history))  # fmt: skip
        table.append([
            label, f"{val['ndcg@10'].mean():.4f}", f"{test['ndcg@10'].mean():.4f}",
            f"{cmp['gain']:+.1%} ({cmp['gain_ci_low']:+.1%} .. {cmp['gain_ci_high']:+.1%}, p {cmp['p_value']:.3f})",
            f"{test['hr@10'].mean():.4f}", str(best_epoch),
        ])  # fmt: skip
    print(markdown_table(["head", "val NDCG@10", "test NDCG@10", "test gain (paired)", "test HR@10", "epoch"], table))


if __name__ == "__main__":
    main()
