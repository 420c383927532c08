"""Evaluate baseline, teacher and distilled models with ONE protocol (the shared evaluator).

Writes ``all_evaluation_results.json`` (run root, the customer's name), ``metrics/eval_all.md`` (a table)
and ``metrics/eval_all.png`` (a bar chart).
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from ..core.artifacts import find_latest_artifact, fingerprint_matcher, read_manifest, write_json_atomic
from ..core.errors import ArtifactError, ConfigError
from ..core.report import print_metrics_table
from ..core.run_logging import RunDir, stage_log_file
from ..data import SplitData
from ..student.evaluator import evaluate
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
        return lambda b: model.score(b["seq"], b["len_seq"]), int(cfg.teacher.eval_batch_size), True
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
    with stage_log_file(run, "eval") as slog:
        for name in cfg.eval.models:
            located = locate(cfg, data, run, name)
            if located is None:
                slog.warning("no %s model found for data set %s: skipped", name, data.name)
                continue
            ckpt, manifest = located
            score_fn, batch_size, is_llm = score_fn_for(name, ckpt, manifest, data, cfg)
            entry = {"checkpoint": str(ckpt)}
            for split in ("val", "test"):
                samples = teacher_eval_samples(cfg, data, split) if is_llm else getattr(data, split)
                entry[split] = _evaluate(cfg, score_fn, samples, batch_size, f"{name} {split}")
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
        split = str(cfg.eval.split)
        same = same_users_comparison(cfg, data, split, results, id_scorers)
        if same is not None:
            payload["same_users"] = same
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


def _evaluate(cfg: DictConfig, score_fn, samples, batch_size: int, description: str) -> dict:
    out = evaluate(
        score_fn,
        samples,
        batch_size=batch_size,
        ks=list(cfg.metrics.ks),
        exclude_history=bool(cfg.metrics.exclude_history),
        progress=bool(cfg.logging.progress_bar),
        description=description,
    )
    out["num_samples"] = len(samples)
    return out


def teacher_eval_samples(cfg: DictConfig, data: SplitData, split: str):
    from ..teacher.train import teacher_eval_samples as samples  # lazy: the teacher package imports transformers

    return samples(cfg, data, split)


def same_users_comparison(
    cfg: DictConfig, data: SplitData, split: str, results: dict[str, dict], id_scorers: dict[str, tuple]
) -> dict | None:
    """Every model on the LLM teacher's evaluation users, when that is a subset (``teacher.max_eval_samples``).

    Why: the main table scores the ID models on all users and the LLM teacher on a subset (its scoring is
    slow on CPU), and metrics over different users are not comparable; this table is.
    """
    full = len(getattr(data, split))
    if not any(r[split]["num_samples"] < full for r in results.values()):
        return None
    samples = teacher_eval_samples(cfg, data, split)
    models = {}
    for name, entry in results.items():
        if name in id_scorers:
            score_fn, batch_size = id_scorers[name]
            models[name] = _evaluate(cfg, score_fn, samples, batch_size, f"{name} {split} (teacher's users)")
        else:
            models[name] = entry[split]
    return {"split": split, "num_samples": len(samples), "of": full, "models": models}


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
    return lines
