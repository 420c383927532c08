"""core/artifacts.py find_input: explicit path, else this run's, else the newest complete matching run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ilora_dllm2rec.core.artifacts import find_input
from ilora_dllm2rec.core.errors import ArtifactError


def model_folder(root: Path, run: str, fingerprint: str = "fp", best: str = "best.ckpt", complete: bool = True) -> Path:
    folder = root / run / "models" / "teacher"
    folder.mkdir(parents=True)
    (folder / best).write_bytes(b"x")
    if complete:
        (folder / "manifest.json").write_text(json.dumps({"best_checkpoint": best, "data_fingerprint": fingerprint}))
    return folder


def same_fp(manifest: dict) -> str | None:
    return None if manifest.get("data_fingerprint") == "fp" else "other data"


def find(root: Path, **kwargs):
    return find_input(root, "models/teacher", same_fp, explicit_error="explicit missing", **kwargs)


def test_newest_complete_matching_run_and_skips(tmp_path):
    model_folder(tmp_path, "result_1")
    model_folder(tmp_path, "result_2", best="head_refit.ckpt")
    model_folder(tmp_path, "result_3", fingerprint="other")  # newer, other data
    model_folder(tmp_path, "result_4", complete=False)  # newer, no manifest: incomplete
    found = find(tmp_path)
    assert found.source == "newest" and found.path == tmp_path / "result_2" / "models" / "teacher" / "head_refit.ckpt"
    assert found.folder == found.path.parent and found.manifest["best_checkpoint"] == "head_refit.ckpt"
    assert find(tmp_path, exclude_run=tmp_path / "result_2").path.parts[-4] == "result_1"


def test_own_run_before_earlier_runs_and_explicit_before_both(tmp_path):
    model_folder(tmp_path, "result_1")
    own = model_folder(tmp_path, "result_0", fingerprint="other")  # this run's is taken without `accept`
    found = find(tmp_path, own_run=tmp_path / "result_0")
    assert found.source == "own" and found.path == own / "best.ckpt"
    explicit = model_folder(tmp_path / "x", "y", best="chosen.ckpt")
    found = find(tmp_path, own_run=tmp_path / "result_0", explicit=str(explicit))
    assert found.source == "explicit" and found.path == explicit / "chosen.ckpt"  # the folder: its manifest's file
    assert find(tmp_path, explicit=str(explicit / "chosen.ckpt")).manifest["best_checkpoint"] == "chosen.ckpt"
    (explicit / "best.ckpt").write_bytes(b"x")
    assert find(tmp_path, explicit=str(explicit), explicit_manifest=False).path == explicit / "best.ckpt"
    assert find(tmp_path, own_run=tmp_path / "result_0", own_first=True, explicit=str(explicit)).source == "own"


def test_folder_inputs_and_what_is_missing(tmp_path):
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    found = find(tmp_path, explicit=str(outputs), is_folder=True)
    assert found.path == outputs and found.manifest == {} and found.source == "explicit"
    with pytest.raises(ArtifactError, match="explicit missing"):
        find(tmp_path, explicit=str(tmp_path / "nowhere"), is_folder=True)
    with pytest.raises(ArtifactError, match="explicit missing"):
        find(tmp_path, explicit=str(outputs))  # a folder without best.ckpt
    assert find(tmp_path) is None  # nothing anywhere, no `missing` message
    with pytest.raises(ArtifactError, match="run run-teacher first"):
        find(tmp_path, missing="no teacher: run run-teacher first")
    model_folder(tmp_path, "result_1")
    assert find(tmp_path, is_folder=True).path == tmp_path / "result_1" / "models" / "teacher"
