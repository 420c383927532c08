"""Evaluate baseline, teacher and distilled models with ONE protocol (the shared evaluator).

Writes ``all_evaluation_results.json`` (run root, the customer's name), ``metrics/eval_all.md`` (a table)
and ``metrics/eval_all.png`` (a bar chart).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from ..core.artifacts import find_latest_artifact, fingerprint_matcher, read_manifest, write_json_atomic
from ..core.errors import ArtifactError, ConfigError
from ..core.report import print_metrics_table
from ..core.run_logging import RunDir, stage_log_file
from ..core.significance import paired_comparison
from ..core.trainer import inference_device
from ..data import SplitData
from ..student.evaluator import evaluate_per_sample
from ..student.train import load_student_checkpoint
from .plots import bar_chart, markdown_table

log = logging.getLogger(__name__)
MODELS = ("baseline", "teacher", "distill")


def locate(cfg: DictConfig, data: SplitData, run: RunDir, name: str) -> tuple[Path, dict] | None:
    """Explicit ``eval.<name>_checkpoint`` (must exist), else this run's, else the newest matching run's."""
    explicit = cfg.eval.get(f"{name}_checkpoint")
    if explicit:
        path = Path(explicit)
        folder = path if path.is_dir() else path.parent
        manifest = read_manifest(folder) or {}
        ckpt = folder / manifest.get("best_checkpoint", "best.ckpt") if path.is_dir() else path
        if not ckpt.is_file():
            raise ArtifactError(f"eval.{name}_checkpoint={explicit} does not exist: fix the path or set it to null")
        return ckpt, manifest
    own = read_manifest(run.root / "models" / name)
    if own is not None:
        return run.root / "models" / name / own["best_checkpoint"], own
    found = find_latest_artifact(
        cfg.paths.result_root, f"models/{name}", fingerprint_matcher(data.fingerprint, data.num_items), run.root
    )
    if found is None:
        return None
    folder, manifest = found
    return folder / manifest["best_checkpoint"], manifest


def score_fn_for(name: str, ckpt: Path, manifest: dict, data: SplitData, cfg: DictConfig):
    if name == "teacher" and manifest.get("backend", "ilora") == "ilora":
        from ..teacher.train import load_teacher_checkpoint

        model, _ = load_teacher_checkpoint(ckpt, data, cfg)
        device = inference_device(cfg.train)  # an LLM on the GPU when there is one; the ID models stay on the CPU
        model.to(device)

        def score(b: dict) -> torch.Tensor:
            return model.score(b["seq"].to(device), b["len_seq"].to(device)).float().cpu()

        return score, int(cfg.teacher.eval_batch_size), True
    if name == "teacher" and manifest.get("backend") == "ensemble":
        from ..teacher.ensemble_teacher import load_ensemble_teacher

        ensemble = load_ensemble_teacher(ckpt)
        return lambda b: ensemble.score(b["seq"], b["len_seq"]), int(cfg.train.eval_batch_size), False
    model, _ = load_student_checkpoint(ckpt)
    return lambda b: model(b["seq"], b["len_seq"]), int(cfg.train.eval_batch_size), False


def run_eval_all_stage(cfg: DictConfig, run: RunDir, data: SplitData) -> dict:
    unknown = [m for m in cfg.eval.models if m not in MODELS]
    if unknown:
        raise ConfigError(f"eval.models has unknown entries {unknown}; valid: {list(MODELS)}")
    results: dict[str, dict] = {}
    id_scorers: dict[str, tuple] = {}  # non-LLM models, kept to re-score them on an LLM teacher's users
    split = str(cfg.eval.split)
    per_user: dict[str, dict[str, np.ndarray]] = {}  # each model's per-user values on the eval split
    with stage_log_file(run, "eval") as slog:
        for name in cfg.eval.models:
            located = locate(cfg, data, run, name)
            if located is None:
                slog.warning("no %s model found for data set %s: skipped", name, data.name)
                continue
            ckpt, manifest = located
            score_fn, batch_size, is_llm = score_fn_for(name, ckpt, manifest, data, cfg)
            entry = {"checkpoint": str(ckpt)}
            for part in ("val", "test"):
                samples = teacher_eval_samples(cfg, data, part) if is_llm else getattr(data, part)
                values = _evaluate(cfg, score_fn, samples, batch_size, f"{name} {part}")
                entry[part] = _means(values)
                if part == split:
                    per_user[name] = values
            results[name] = entry
            if not is_llm:
                id_scorers[name] = (score_fn, batch_size)
            slog.info("%s (%s): test %s", name, ckpt, entry["test"])
        if not results:
            raise ArtifactError(f"no model to evaluate for data set {data.name}: train one first")
        payload = {
            "data_set": data.name,
            "data_fingerprint": data.fingerprint,
            "split": str(cfg.eval.split),
            "models": results,
        }
        same, same_per_user = same_users_comparison(cfg, data, split, results, id_scorers, per_user)
        if same is not None:
            payload["same_users"] = same
        significance = compare_with_reference(cfg, results, split, per_user, same_per_user)
        if significance:
            payload["significance"] = significance
        write_json_atomic(run.root / "all_evaluation_results.json", payload)
        rows = {name: r[split] for name, r in results.items()}
        (run.root / "metrics").mkdir(exist_ok=True)
        (run.root / "metrics" / "eval_all.md").write_text(
            "\n".join([f"**{data.name}, {split}**", "", *results_markdown(payload)]) + "\n"
        )
        bar_chart(rows, run.root / "metrics" / "eval_all.png", title=f"{data.name} ({split})")
        print_metrics_table(f"all models on {data.name} ({split})", rows)
        if same is not None:
            print_metrics_table(f"on the LLM teacher's {same['num_samples']} {split} users", same["models"])
    return payload


def _evaluate(cfg: DictConfig, score_fn, samples, batch_size: int, description: str) -> dict[str, np.ndarray]:
    return evaluate_per_sample(
        score_fn,
        samples,
        batch_size=batch_size,
        ks=list(cfg.metrics.ks),
        exclude_history=bool(cfg.metrics.exclude_history),
        progress=bool(cfg.logging.progress_bar),
        description=description,
    )


def _means(values: dict[str, np.ndarray]) -> dict:
    out: dict = {key: float(v.mean()) for key, v in values.items()}
    out["num_samples"] = len(next(iter(values.values())))
    return out


def compare_with_reference(
    cfg: DictConfig,
    results: dict[str, dict],
    split: str,
    per_user: dict[str, dict[str, np.ndarray]],
    same_per_user: dict[str, dict[str, np.ndarray]] | None,
) -> dict | None:
    """Every model against ``eval.significance.reference`` on the same users (core/significance.py): on all
    users when both were scored on all of them, else on the LLM teacher's users."""
    spec = cfg.eval.significance
    reference = str(spec.reference)
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


def teacher_eval_samples(cfg: DictConfig, data: SplitData, split: str):
    from ..teacher.train import teacher_eval_samples as samples  # lazy: the teacher package imports transformers

    return samples(cfg, data, split)


def same_users_comparison(
    cfg: DictConfig,
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
    samples = teacher_eval_samples(cfg, data, split)
    models, values = {}, {}
    for name, entry in results.items():
        if name in id_scorers:
            score_fn, batch_size = id_scorers[name]
            values[name] = _evaluate(cfg, score_fn, samples, batch_size, f"{name} {split} (teacher's users)")
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
