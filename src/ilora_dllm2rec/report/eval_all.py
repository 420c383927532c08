"""Evaluate baseline, teacher and distilled models with ONE protocol (the shared evaluator).

Which models: report/collect.py (``eval.collect=newest|all``, ``eval.runs=[...]``). Writes
``all_evaluation_results.json`` (run root, the name users' tools read), ``metrics/eval_all.md`` (a table) and
``metrics/eval_all.png`` (bars with their values, and the relative gains against the reference with their intervals).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.artifacts import write_json_atomic
from ..core.errors import ConfigError
from ..core.report import print_metrics_table
from ..core.run_logging import RunDir, stage_log_file
from ..core.schema_groups import Eval, Logging, Metrics, Paths, Significance, Train
from ..core.schema_teacher import Teacher
from ..core.significance import paired_comparison
from ..core.trainer import inference_device
from ..data import SampleSet, SplitData
from ..student.evaluator import evaluate_per_sample
from ..student.train import load_student_checkpoint
from .collect import collect_models, nothing_to_evaluate, resolve_reference
from .plots import bar_chart, markdown_table

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalStage:
    """The sections the evaluation of all models reads; ``train``: the student stage's trainer (its evaluation
    batch size and accelerator), ``teacher``: this run's teacher section (an LLM teacher's inference settings)."""

    eval: Eval
    teacher: Teacher
    train: Train
    metrics: Metrics
    logging: Logging
    paths: Paths
    seed: int


def score_fn_for(
    name: str, ckpt: Path, manifest: dict, data: SplitData, stage: EvalStage
) -> tuple[Callable[[dict], torch.Tensor], int, bool]:
    """``(score(batch) -> [B, N], batch size, is_llm)`` for a model of stage ``name``."""
    if name == "teacher":
        from ..teacher.backends import teacher_backend

        backend = teacher_backend(str(manifest.get("backend", "ilora")))  # manifests before the key: iLoRA
        # an LLM teacher's inference-only padding: this run's value wins (none when teacher= is an ID teacher)
        pad = getattr(stage.teacher, "pad_to_multiple_of", None)
        teacher = backend.load(ckpt, data, str(stage.paths.model_cache_dir), pad)
        if backend.uses_llm:
            device = inference_device(
                str(stage.train.accelerator)
            )  # an LLM on the GPU when there is one; the ID models stay on the CPU
            teacher.to(device)

            def score(b: dict) -> torch.Tensor:
                return teacher.score(b["seq"].to(device), b["len_seq"].to(device)).float().cpu()

            return score, int(stage.teacher.eval_batch_size), True
        return lambda b: teacher.score(b["seq"], b["len_seq"]), int(stage.train.eval_batch_size), False
    model, _ = load_student_checkpoint(ckpt)
    return lambda b: model(b["seq"], b["len_seq"]), int(stage.train.eval_batch_size), False


def run_eval_all_stage(stage: EvalStage, run: RunDir, data: SplitData) -> dict:
    """Evaluate the collected models; returns the payload written to ``all_evaluation_results.json``."""
    spec, result_root = stage.eval, stage.paths.result_root
    candidates = collect_models(spec, result_root, data, run)
    if not candidates:  # before any file is written: the empty run folder is removed
        raise nothing_to_evaluate(spec, result_root, data, run)
    reference = resolve_reference(spec.significance, candidates)
    results: dict[str, dict] = {}
    id_scorers: dict[str, tuple] = {}  # non-LLM models, kept to re-score them on an LLM teacher's users
    split = str(spec.split)
    per_user: dict[str, dict[str, np.ndarray]] = {}  # each model's per-user values on the eval split
    with stage_log_file(run, "eval") as slog:
        for c in candidates:
            score_fn, batch_size, is_llm = score_fn_for(c.stage, c.ckpt, c.manifest, data, stage)
            entry = {"checkpoint": str(c.ckpt), "stage": c.stage, "model": c.model, "run": c.run}
            for part in ("val", "test"):
                samples = teacher_eval_samples(stage, data, part) if is_llm else getattr(data, part)
                values = _evaluate(stage, score_fn, samples, batch_size, f"{c.label} {part}")
                entry[part] = _means(values)
                if part == split:
                    per_user[c.label] = values
            results[c.label] = entry
            if not is_llm:
                id_scorers[c.label] = (score_fn, batch_size)
            slog.info("%s (%s): test %s", c.label, c.ckpt, entry["test"])
        payload = {
            "data_set": data.name,
            "data_fingerprint": data.fingerprint,
            "split": split,
            "collect": "runs" if spec.runs else str(spec.collect),
            "models": results,
        }
        same, same_per_user = same_users_comparison(stage, data, split, results, id_scorers, per_user)
        if same is not None:
            payload["same_users"] = same
        significance = compare_with_reference(
            spec.significance, results, split, per_user, same_per_user, reference=reference
        )
        if significance:
            payload["significance"] = significance
        write_json_atomic(run.root / "all_evaluation_results.json", payload)
        rows = {name: r[split] for name, r in results.items()}
        (run.root / "metrics").mkdir(exist_ok=True)
        (run.root / "metrics" / "eval_all.md").write_text(
            "\n".join([f"**{data.name}, {split}**", "", *results_markdown(payload)]) + "\n"
        )
        bar_chart(
            rows,
            run.root / "metrics" / "eval_all.png",
            title=f"{data.name} ({split})",
            gains=significance["models"] if significance else None,
            reference=significance["reference"] if significance else None,
        )
        print_metrics_table(f"all models on {data.name} ({split})", rows)
        if same is not None:
            print_metrics_table(f"on the LLM teacher's {same['num_samples']} {split} users", same["models"])
    return payload


def _evaluate(stage: EvalStage, score_fn, samples, batch_size: int, description: str) -> dict[str, np.ndarray]:
    return evaluate_per_sample(
        score_fn,
        samples,
        batch_size=batch_size,
        ks=list(stage.metrics.ks),
        exclude_history=bool(stage.metrics.exclude_history),
        progress=bool(stage.logging.progress_bar),
        description=description,
    )


def _means(values: dict[str, np.ndarray]) -> dict:
    out: dict = {key: float(v.mean()) for key, v in values.items()}
    out["num_samples"] = len(next(iter(values.values())))
    return out


def compare_with_reference(
    spec: Significance,
    results: dict[str, dict],
    split: str,
    per_user: dict[str, dict[str, np.ndarray]],
    same_per_user: dict[str, dict[str, np.ndarray]] | None,
    reference: str | None = None,
) -> dict | None:
    """Every model against the reference (``reference``: a row label, by default ``eval.significance.reference``)
    on the same users (core/significance.py): on all users when both were scored on all of them, else on the LLM
    teacher's users."""
    reference = str(spec.reference) if reference is None else reference
    if not spec.enabled or reference not in results or len(results) < 2:
        return None
    metrics = [str(m) for m in spec.metrics]
    unknown = [m for m in metrics if m not in per_user[reference]]
    if unknown:
        raise ConfigError(f"eval.significance.metrics has {unknown}, not among {sorted(per_user[reference])}")
    out: dict = {"reference": reference, "split": split, "models": {}}
    for name in results:
        if name == reference:
            continue
        full = results[name][split]["num_samples"] == results[reference][split]["num_samples"]
        source = per_user if full or same_per_user is None else same_per_user
        out["models"][name] = {
            m: paired_comparison(
                source[reference][m], source[name][m], resamples=int(spec.resamples), seed=int(spec.seed)
            )
            for m in metrics
        }
    return out


def teacher_eval_samples(stage: EvalStage, data: SplitData, split: str) -> SampleSet:
    from ..teacher.evaluation import teacher_eval_samples as samples  # lazy: the teacher package imports transformers

    return samples(getattr(stage.teacher, "max_eval_samples", None), int(stage.seed), data, split)


def same_users_comparison(
    stage: EvalStage,
    data: SplitData,
    split: str,
    results: dict[str, dict],
    id_scorers: dict[str, tuple],
    per_user: dict[str, dict[str, np.ndarray]],
) -> tuple[dict | None, dict[str, dict[str, np.ndarray]] | None]:
    """Every model on the LLM teacher's evaluation users, when that is a subset (``teacher.max_eval_samples``).

    Why: the main table scores the ID models on all users and the LLM teacher on a subset (its scoring is
    slow on CPU), and metrics over different users are not comparable; this table is. Returns the table and
    every model's per-user values on those users, or ``(None, None)`` when every model saw all users.
    """
    full = len(getattr(data, split))
    if not any(r[split]["num_samples"] < full for r in results.values()):
        return None, None
    samples = teacher_eval_samples(stage, data, split)
    models, values = {}, {}
    for name, entry in results.items():
        if name in id_scorers:
            score_fn, batch_size = id_scorers[name]
            values[name] = _evaluate(stage, score_fn, samples, batch_size, f"{name} {split} (teacher's users)")
            models[name] = _means(values[name])
        else:
            values[name] = per_user[name]
            models[name] = entry[split]
    return {"split": split, "num_samples": len(samples), "of": full, "models": models}, values


def results_markdown(payload: dict) -> list[str]:
    """The metric table(s) of ``all_evaluation_results.json`` as Markdown lines (eval_all.md, report.md)."""
    split = payload["split"]
    rows = {name: r[split] for name, r in payload["models"].items()}
    users = ", ".join(f"{name} {int(r.get('num_samples', 0))}" for name, r in rows.items())
    lines = [markdown_table(rows), "", f"Users evaluated: {users}.", ""]
    same = payload.get("same_users")
    if same:
        lines += [
            f"On the LLM teacher's {same['num_samples']} of {same['of']} {split} users (`teacher.max_eval_samples`;"
            " compare the teacher with these rows, not with the table above):",
            "",
            markdown_table(same["models"]),
            "",
        ]
    sig = payload.get("significance")
    if sig and sig["models"]:
        first = next(iter(next(iter(sig["models"].values())).values()))
        lines += [
            f"Against `{sig['reference']}` on the same users (paired: {first['confidence']:.0%} bootstrap interval of"
            f" the relative gain and a two-sided sign-flip p-value, {first['resamples']:,} resamples of the users):",
            "",
            "| model | metric | mean | reference | gain | interval | p | users |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name, per_metric in sig["models"].items():
            for metric, c in per_metric.items():
                lines.append(
                    f"| {name} | {metric} | {c['mean']:.4f} | {c['reference_mean']:.4f} | {c['gain']:+.1%} | "
                    f"{c['gain_ci_low']:+.1%} .. {c['gain_ci_high']:+.1%} | {c['p_value']:.3f} | {c['num_users']} |"
                )
        lines.append("")
    return lines
