"""The end every training stage shares: metrics JSON, then the stage manifest, then the console table.

The order is the contract of core/artifacts.py: the manifest is written after every other file of the stage,
so a stage killed before it leaves a folder that no later stage trusts.
"""

from __future__ import annotations

from collections.abc import Mapping

from .artifacts import write_json_atomic, write_manifest
from .report import print_metrics_table
from .run_logging import RunDir


def split_rows(label: str, results: Mapping[str, Mapping[str, float]]) -> dict[str, Mapping[str, float]]:
    """``{"<label> val": ..., "<label> test": ...}``: a model's two rows of the console table."""
    return {f"{label} val": results["val"], f"{label} test": results["test"]}


def publish_stage(
    run: RunDir,
    stage: str,
    payload: dict,
    manifest: dict,
    title: str,
    rows: Mapping[str, Mapping[str, float]],
) -> dict:
    """Write ``metrics/eval_<stage>.json`` (``payload``), then ``models/<stage>/manifest.json`` (last: it marks
    the stage complete), then print the metrics table; returns ``payload``."""
    write_json_atomic(run.metrics(f"eval_{stage}.json"), payload)
    write_manifest(run.models(stage), manifest)
    print_metrics_table(title, rows)
    return payload
