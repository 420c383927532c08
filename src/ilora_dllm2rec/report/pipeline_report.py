"""The pipeline's report: ``report.md`` in the run folder with the metric table of all models, the
distilled-vs-baseline gain, learning curves (from TensorBoard logs) and the timings of every stage."""

from __future__ import annotations

import json
from pathlib import Path

from ..core.run_logging import RunDir
from .eval_all import results_markdown
from .plots import learning_curves

GAIN_METRICS = ("ndcg@10", "hr@10", "cand_hr@1")


def read_scalars(tb_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not tb_dir.is_dir():
        return {}
    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags().get("scalars", [])}


def relative_gain(new: float, old: float) -> str:
    return f"{(new - old) / old * 100:+.1f}%" if old else "n/a"


def write_report(run: RunDir) -> Path:
    lines = [f"# Pipeline report: {run.root.name}", ""]
    results_path = run.root / "all_evaluation_results.json"
    if results_path.is_file():
        results = json.loads(results_path.read_text())
        split = results.get("split", "test")
        rows = {name: r[split] for name, r in results["models"].items()}
        lines += [f"## Metrics ({results['data_set']}, {split} split, full ranking over all items)", ""]
        lines += results_markdown(results)
        same = results.get("same_users", {}).get("models", rows)
        for new, old, label in (("distill", "baseline", "Distilled"), ("teacher", "baseline", "Teacher")):
            pair = same if "teacher" in (new, old) else rows  # the teacher only against the same users
            if new in pair and old in pair:
                gains = [f"{m} {relative_gain(pair[new][m], pair[old][m])}" for m in GAIN_METRICS if m in pair[old]]
                lines += [f"{label} vs baseline: " + ", ".join(gains), ""]
        if (run.root / "metrics" / "eval_all.png").is_file():
            lines += ["![metrics](metrics/eval_all.png)", ""]
    curves = {stage: read_scalars(run.tb(stage)) for stage in ("baseline", "teacher", "distill")}
    if learning_curves(curves, run.root / "metrics" / "learning_curves.png"):
        lines += ["## Learning curves", "", "![learning curves](metrics/learning_curves.png)", ""]
    timings = run.timings()
    if timings:
        lines += ["## Timings (seconds)", "", "| stage | seconds |", "|---|---:|"]
        lines += [f"| {k} | {v:.1f} |" for k, v in timings.items()]
        lines.append("")
    out = run.root / "report.md"
    out.write_text("\n".join(lines))
    return out
