"""Is a student's gain over its baseline real across seeds? Paired comparisons per seed and pooled.
Feeds docs/BENCHMARKS.md "Seed-to-seed spread and paired comparisons" and "Distillation in DLLM2Rec's own
student setting".

    PYTHONPATH=src:bench python bench/paired_seeds.py --data-dir ../shared/data/ml-100k --work-dir result/bench/paired \
        --pair RUN_A/models/baseline:RUN_A/models/distill --pair RUN_B/models/baseline:RUN_B/models/distill ...

Each ``--pair BASELINE:OTHER`` names two models of one seed: a run's ``models/<stage>`` folders (a teacher of any
backend: ensemble, sasrec or iLoRA), checkpoint files, or an ensemble teacher's ``ensemble.json``.
Every model is scored on every test user with the shared evaluator; each pair gets the paired comparison of
``run-eval-all`` (core/significance.py), and the pooled row compares the per-user means over the seeds (each
user's baseline values averaged over the pairs against its other values averaged likewise), i.e. whether the
gain holds in expectation over seeds, with users resampled as the unit.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench_common import base_overrides, check_data_dir, command_line, compose_cfg, default_data_dir, markdown_table

if TYPE_CHECKING:
    import torch


def resolve(path: Path) -> tuple[str, Path, dict]:
    """``(stage, checkpoint, manifest)`` of one ``--pair`` side: a run's ``models/<stage>`` folder (its manifest
    names the checkpoint and, for a teacher, the backend), a checkpoint file inside one, a student checkpoint,
    or an ensemble teacher's ``ensemble.json``."""
    from ilora_dllm2rec.core.artifacts import read_manifest

    folder = path if path.is_dir() else path.parent
    manifest = (read_manifest(folder) if folder.is_dir() else None) or {}
    if path.is_dir():
        path = path / manifest.get("best_checkpoint", "best.ckpt")
    if not path.is_file():
        raise SystemExit(
            f"error: --pair: {path} is not a checkpoint file (a run's models/baseline, models/distill or "
            "models/teacher)"
        )
    if not manifest and path.suffix == ".json":  # a bare ensemble.json, outside its run folder
        manifest = {"stage": "teacher", "backend": "ensemble"}
    return str(manifest.get("stage", "student")), path, manifest


def scorer(side: tuple[str, Path, dict], data, stage) -> tuple[Callable[[dict], torch.Tensor], int]:
    """``(score(batch) -> [B, N], batch size)`` of one resolved ``--pair`` side (``resolve``), loaded as
    ``run-eval-all`` loads it (a teacher through its backend: ensemble, sasrec or an iLoRA LLM), so a run's
    teacher is paired with the same evaluator as its students."""
    from ilora_dllm2rec.report.eval_all import score_fn_for

    name, ckpt, manifest = side
    score, batch_size, _ = score_fn_for(name, ckpt, manifest, data, stage)
    return score, batch_size


def split_samples(data, split: str):
    """``val``, ``test``, or ``test-without-newest``: the test target (and its candidates) from the validation
    input, i.e. each user's test history without its newest item (the validation target). Comparing a model
    there and on ``test`` separates what the newest item, never seen in training, does to it from the target."""
    if split != "test-without-newest":
        return getattr(data, split)
    val, test = data.val, data.test
    if not np.array_equal(val.user, test.user):
        raise SystemExit("error: --split test-without-newest: validation and test rows are not the same users")
    return dataclasses.replace(val, target=test.target, candidates=test.candidates)


def per_user(side: tuple[str, Path, dict], data, stage, split: str, ks: list[int]) -> dict[str, np.ndarray]:
    """Per-user metric values of one resolved side on every user of ``split`` (an LLM teacher too: pairs need
    the same users)."""
    from ilora_dllm2rec.student.evaluator import evaluate_per_sample

    score, batch_size = scorer(side, data, stage)
    samples = split_samples(data, split)
    exclude = bool(stage.metrics.exclude_history)
    return evaluate_per_sample(score, samples, batch_size=batch_size, ks=ks, exclude_history=exclude)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, default=default_data_dir())
    p.add_argument("--work-dir", type=Path, default=Path("result/bench/paired"), help="data cache folder")
    p.add_argument("--pair", action="append", required=True, help="BASELINE:OTHER checkpoints of one seed")
    p.add_argument(
        "--split",
        default="test",
        choices=["val", "test", "test-without-newest"],
        help="test-without-newest: the test target from the validation input (the history without its newest item)",
    )
    p.add_argument("--metrics", default="ndcg@10,hr@10")
    p.add_argument("--resamples", type=int, default=2000)
    args = p.parse_args()
    pairs = []
    for text in args.pair:
        base, sep, other = text.partition(":")
        if not sep:
            p.error(f"--pair {text!r}: write BASELINE:OTHER")
        pairs.append((resolve(Path(base)), resolve(Path(other))))  # fails before the data is prepared
    check_data_dir(args.data_dir)

    from ilora_dllm2rec.core.significance import paired_comparison
    from ilora_dllm2rec.data import prepare_data
    from ilora_dllm2rec.exp.stages import eval_stage

    cfg = compose_cfg(base_overrides(args.data_dir, args.work_dir))
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    stage = eval_stage(cfg)
    ks = list(cfg.metrics.ks)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    values = [tuple(per_user(side, data, stage, args.split, ks) for side in pair) for pair in pairs]
    rows = []
    for metric in metrics:
        for i, (base, other) in enumerate(values):
            c = paired_comparison(base[metric], other[metric], resamples=args.resamples)
            rows.append(_row(f"pair {i + 1}", metric, c))
        if len(values) > 1:
            pooled_base = np.mean([b[metric] for b, _ in values], axis=0)
            pooled_other = np.mean([o[metric] for _, o in values], axis=0)
            c = paired_comparison(pooled_base, pooled_other, resamples=args.resamples)
            rows.append(_row(f"pooled over {len(values)} seeds", metric, c))
            gains = [paired_comparison(b[metric], o[metric], resamples=1)["gain"] for b, o in values]
            spread = f"{np.mean(gains):+.1%} +- {np.std(gains, ddof=1):.1%}"
            rows.append(["per-seed gains, mean +- sd", metric, "", "", spread, "", "", ""])
    print(command_line())
    for i, (b, o) in enumerate(pairs):
        print(f"pair {i + 1}: {b[1]} vs {o[1]}")
    print(markdown_table(["pair", "metric", "other", "baseline", "gain", "95% interval", "p", "users"], rows))


def _row(label: str, metric: str, c: dict) -> list[str]:
    return [
        label,
        metric,
        f"{c['mean']:.4f}",
        f"{c['reference_mean']:.4f}",
        f"{c['gain']:+.1%}",
        f"{c['gain_ci_low']:+.1%} .. {c['gain_ci_high']:+.1%}",
        f"{c['p_value']:.3f}",
        str(c["num_users"]),
    ]


if __name__ == "__main__":
    main()
