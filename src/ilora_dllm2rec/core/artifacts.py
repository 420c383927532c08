"""JSON files, stage manifests and discovery of earlier runs.

Every artifact is written under a temporary name and renamed into place (core/atomic.py), and each stage writes
its ``manifest.json`` LAST: a folder without a manifest is incomplete and never trusted. Under DDP only
rank 0 writes (core/distributed.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .atomic import atomic_path
from .distributed import is_rank_zero
from .errors import ArtifactError

MANIFEST_NAME = "manifest.json"
log = logging.getLogger(__name__)


def write_json_atomic(path: str | Path, payload: Any) -> Path:
    """Write JSON atomically; under DDP only rank 0 writes (core/distributed.py), the others return the path."""
    if not is_rank_zero():
        return Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")
    return Path(path)


def read_json(path: str | Path, what: str = "file") -> dict:
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(
            f"{what} {path} is not valid JSON (line {exc.lineno}): delete it and rerun the stage"
        ) from exc


def write_manifest(folder: str | Path, payload: dict) -> Path:
    """Write ``folder/manifest.json`` (atomically). Call it after every other file of the stage."""
    return write_json_atomic(Path(folder) / MANIFEST_NAME, payload)


def read_manifest(folder: str | Path) -> dict | None:
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        return None
    return read_json(path, "manifest")


def update_json(path: str | Path, updates: dict) -> dict:
    """Merge ``updates`` into a JSON object file (created if absent), atomically."""
    path = Path(path)
    current = read_json(path, "json file") if path.is_file() else {}
    current.update(updates)
    write_json_atomic(path, current)
    return current


def find_latest_artifact(
    result_root: str | Path,
    relative_folder: str,
    accept: Callable[[dict], str | None],
    exclude_run: str | Path | None = None,
) -> tuple[Path, dict] | None:
    """Newest ``result_root/result_*/<relative_folder>`` with a manifest that ``accept`` approves.

    ``accept(manifest)`` returns None when the manifest fits this run, else the reason it does not
    (logged, so users see why an earlier run was skipped). Folders are ordered by name
    (``result_YYYYMMDD_HHMMSS`` sorts chronologically), newest first.
    """
    root = Path(result_root)
    if not root.is_dir():
        return None
    exclude = Path(exclude_run).resolve() if exclude_run else None
    for run in sorted((p for p in root.glob("result_*") if p.is_dir()), reverse=True):
        if exclude is not None and run.resolve() == exclude:
            continue
        folder = run / relative_folder
        manifest = read_manifest(folder) if folder.is_dir() else None
        if manifest is None:
            continue
        reason = accept(manifest)
        if reason is None:
            return folder, manifest
        log.info("skipping %s: %s", folder, reason)
    return None


def fingerprint_matcher(data_fingerprint: str, num_items: int) -> Callable[[dict], str | None]:
    """An ``accept`` function for :func:`find_latest_artifact`: same data set and item count."""

    def accept(manifest: dict) -> str | None:
        if manifest.get("data_fingerprint") != data_fingerprint:
            return f"data fingerprint {manifest.get('data_fingerprint')} != {data_fingerprint}"
        if int(manifest.get("num_items", -1)) != num_items:
            return f"num_items {manifest.get('num_items')} != {num_items}"
        return None

    return accept
