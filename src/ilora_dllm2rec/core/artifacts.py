"""JSON files, stage manifests and discovery of earlier runs.

Every artifact is written under a temporary name and renamed into place (core/atomic.py), and each stage writes
its ``manifest.json`` LAST: a folder without a manifest is incomplete and never trusted. Under DDP only
rank 0 writes (core/distributed.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class FoundInput:
    """A stage input located by :func:`find_input`."""

    path: Path  # the checkpoint the manifest names, or the folder itself for a folder input
    folder: Path
    manifest: dict  # {} for an explicit path whose folder has no manifest (or whose manifest is not read)
    source: str  # "explicit", "own" (this run's) or "newest" (an earlier run's; callers say which one they use)


def checkpoint_in(folder: str | Path) -> Path:
    """The checkpoint a model folder's manifest names (``best.ckpt`` without a manifest)."""
    folder = Path(folder)
    return folder / (read_manifest(folder) or {}).get("best_checkpoint", "best.ckpt")


def find_input(
    result_root: str | Path,
    relative_folder: str,
    accept: Callable[[dict], str | None],
    *,
    explicit: str | Path | None = None,
    explicit_error: str = "",
    explicit_manifest: bool = True,
    is_folder: bool = False,
    own_run: str | Path | None = None,
    own_first: bool = False,
    exclude_run: str | Path | None = None,
    missing: str | None = None,
) -> FoundInput | None:
    """A stage's input, in the order every stage looks for one: the ``explicit`` path option; else this run's
    (``own_run/relative_folder``, when complete; ``own_first``: before the explicit path); else the newest
    complete ``result_root/result_*/relative_folder`` that ``accept`` approves (:func:`find_latest_artifact`,
    never ``exclude_run``).

    The input is the checkpoint the folder's manifest names (``best_checkpoint``), or the folder itself
    (``is_folder``). An explicit checkpoint may be a file or its folder; ``explicit_manifest=False`` skips
    reading the manifest beside it (the folder's file is then ``best.ckpt``). An explicit path that does not
    exist raises ArtifactError(``explicit_error``); when nothing is found, ArtifactError(``missing``) is
    raised, or None returned when ``missing`` is None.
    """
    own_folder = Path(own_run) / relative_folder if own_run is not None else None
    if own_first and (own := _complete(own_folder, is_folder, "own")) is not None:
        return own
    if explicit:
        return _explicit_input(Path(explicit), explicit_error, explicit_manifest, is_folder)
    if not own_first and (own := _complete(own_folder, is_folder, "own")) is not None:
        return own
    found = find_latest_artifact(result_root, relative_folder, accept, exclude_run)
    if found is not None:
        return _complete(found[0], is_folder, "newest", found[1])
    if missing is not None:
        raise ArtifactError(missing)
    return None


def _complete(folder: Path | None, is_folder: bool, source: str, manifest: dict | None = None) -> FoundInput | None:
    manifest = manifest if manifest is not None else (read_manifest(folder) if folder is not None else None)
    if manifest is None:
        return None
    path = folder if is_folder else folder / manifest["best_checkpoint"]
    return FoundInput(path, folder, manifest, source)


def _explicit_input(path: Path, error: str, read: bool, is_folder: bool) -> FoundInput:
    if is_folder:
        if not path.is_dir():
            raise ArtifactError(error)
        return FoundInput(path, path, {}, "explicit")
    folder = path if path.is_dir() else path.parent
    manifest = (read_manifest(folder) or {}) if read else {}
    file = folder / manifest.get("best_checkpoint", "best.ckpt") if path.is_dir() else path
    if not file.is_file():
        raise ArtifactError(error)
    return FoundInput(file, folder, manifest, "explicit")
