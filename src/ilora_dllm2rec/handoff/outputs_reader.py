"""The reading side of the teacher outputs folder: load_teacher_outputs and its checks (format: handoff/outputs.py)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ilora_dllm2rec.core.errors import ArtifactError, ConfigError
from ilora_dllm2rec.core.safe_load import load_torch_file
from ilora_dllm2rec.data.types import SampleSet
from ilora_dllm2rec.handoff.outputs import CONFIDENCE_FILE, EMBEDDINGS_FILE, MANIFEST_FILE, RANKS_FILE, TeacherOutputs
from ilora_dllm2rec.handoff.text_matrix import line_number, read_matrix

log = logging.getLogger(__name__)


def load_teacher_outputs(
    folder: str | Path,
    *,
    num_items: int,
    train_samples: SampleSet,
    data_fingerprint: str | None,
    candidate_topk: int,
    load_embeddings: bool = True,
    listwise_topn: int | None = None,
) -> TeacherOutputs:
    """Read and validate a teacher outputs folder against this run's data (format: handoff/outputs.py).

    ``listwise_topn``: the listwise KD term's columns (``distill.listwise_topn``; 0 = every exported column);
    the result then keeps ``max(candidate_topk, listwise_topn)`` columns instead of ``candidate_topk``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(f"teacher outputs folder {folder} does not exist; run the teacher export or set it")
    if candidate_topk < 1:
        raise ConfigError(f"distill.candidate_topk must be >= 1, got {candidate_topk}")
    num_train = len(train_samples)
    manifest_path = folder / MANIFEST_FILE
    manifest = _read_manifest(manifest_path) if manifest_path.exists() else {}
    if manifest:
        _check_manifest(manifest, manifest_path, num_items, train_samples, data_fingerprint)
        sample_ids = _manifest_sample_ids(manifest, manifest_path, num_train)
    else:
        log.warning(
            "%s has no %s (public DLLM2Rec tooling?): assuming one row per training sample in order; "
            "the sample order cannot be verified",
            folder,
            MANIFEST_FILE,
        )
        sample_ids = np.arange(num_train, dtype=np.int64)

    ranks_path, conf_path = folder / RANKS_FILE, folder / CONFIDENCE_FILE
    ranks = read_matrix(ranks_path, integer=True)
    conf = read_matrix(conf_path, integer=False)
    expected = "manifest sample_ids" if manifest and manifest["sample_ids"] != "all" else "training samples"
    for path, arr in ((ranks_path, ranks), (conf_path, conf)):
        if arr.shape[0] != len(sample_ids):
            raise ArtifactError(
                f"{path} has {arr.shape[0]} rows but this run has {len(sample_ids)} {expected}; "
                "re-export the teacher for this data set"
            )
    if ranks.shape[1] != conf.shape[1]:
        raise ArtifactError(f"{ranks_path} has {ranks.shape[1]} columns but {conf_path} has {conf.shape[1]}")
    if manifest and int(manifest["top_n"]) != ranks.shape[1]:
        raise ArtifactError(f"{manifest_path} says top_n={manifest['top_n']} but {ranks_path} has {ranks.shape[1]}")
    if candidate_topk > ranks.shape[1]:
        raise ConfigError(
            f"distill.candidate_topk={candidate_topk} exceeds top_n={ranks.shape[1]} of {ranks_path}; "
            "lower candidate_topk or re-export with a larger top_n"
        )
    keep = candidate_topk
    if listwise_topn is not None:
        if listwise_topn > ranks.shape[1]:
            raise ConfigError(
                f"distill.listwise_topn={listwise_topn} exceeds top_n={ranks.shape[1]} of {ranks_path}; "
                "lower listwise_topn or re-export with a larger teacher.export.top_n"
            )
        keep = max(candidate_topk, listwise_topn or ranks.shape[1])
    _check_ids(ranks, ranks_path, num_items)
    _check_distances(conf, conf_path)

    embeddings = None
    if load_embeddings:
        embeddings = _load_embeddings(folder / EMBEDDINGS_FILE, num_items)
        if manifest and manifest.get("hidden_size") not in (None, embeddings.shape[1]):
            raise ArtifactError(
                f"{manifest_path} says hidden_size={manifest['hidden_size']} but {folder / EMBEDDINGS_FILE} "
                f"has D={embeddings.shape[1]}; re-export the teacher"
            )
    return TeacherOutputs(
        item_embeddings=embeddings,
        ranks=torch.from_numpy(np.ascontiguousarray(ranks[:, :keep])),
        confidences=torch.from_numpy(np.ascontiguousarray(conf[:, :keep], dtype=np.float32)),
        sample_ids=torch.from_numpy(sample_ids),
        manifest=manifest,
        order_verified=bool(manifest),
    )


# -- checks ------------------------------------------------------------------------------------
def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON ({exc}); re-export the teacher") from exc
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{path} must hold a JSON object; re-export the teacher")
    missing = [k for k in ("train_order_fingerprint", "num_items", "top_n", "sample_ids") if k not in manifest]
    if missing:
        raise ArtifactError(f"{path} lacks {', '.join(missing)}; re-export the teacher with this version")
    return manifest


def _check_manifest(manifest: dict, path: Path, num_items: int, train: SampleSet, data_fingerprint: str | None) -> None:
    if data_fingerprint is not None and manifest.get("data_fingerprint") != data_fingerprint:
        raise ArtifactError(
            f"{path} data_fingerprint={manifest.get('data_fingerprint')} but this run's data set has "
            f"{data_fingerprint}; the export belongs to another data set/config, re-export the teacher"
        )
    if int(manifest["num_items"]) != num_items:
        raise ArtifactError(f"{path} num_items={manifest['num_items']} but this run has num_items={num_items}")
    if "num_train" in manifest and int(manifest["num_train"]) != len(train):
        raise ArtifactError(
            f"{path} was exported for {manifest['num_train']} training samples but this run has {len(train)}; "
            "re-export the teacher"
        )
    current = train.order_fingerprint()
    if manifest["train_order_fingerprint"] != current:
        raise ArtifactError(
            f"{path} train_order_fingerprint={manifest['train_order_fingerprint']} but this run's training samples "
            f"have {current} (different samples or order); re-export the teacher"
        )


def _manifest_sample_ids(manifest: dict, path: Path, num_train: int) -> np.ndarray:
    raw = manifest["sample_ids"]
    if raw == "all":
        return np.arange(num_train, dtype=np.int64)
    try:
        ids = np.asarray(raw, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f'{path} sample_ids must be "all" or a list of integers') from exc
    if ids.size and (ids.min() < 0 or ids.max() >= num_train):
        raise ArtifactError(f"{path} sample_ids range [{ids.min()}, {ids.max()}] outside [0, {num_train})")
    if np.unique(ids).size != ids.size:
        raise ArtifactError(f"{path} sample_ids contain duplicates; re-export the teacher")
    return ids


def _check_ids(ranks: np.ndarray, path: Path, num_items: int) -> None:
    bad = (ranks < 0) | (ranks >= num_items)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ArtifactError(
            f"{path} line {line_number(path, row)}: item id {ranks[row, col]} outside [0, num_items={num_items}); "
            "the export belongs to another data set"
        )


def _check_distances(conf: np.ndarray, path: Path) -> None:
    bad = ~np.isfinite(conf)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ArtifactError(
            f"{path} line {line_number(path, row)}: distance {conf[row, col]} is not finite; re-export the teacher"
        )
    neg = conf < 0
    if neg.any():
        row, col = np.argwhere(neg)[0]
        raise ArtifactError(
            f"{path} line {line_number(path, row)}: distance {conf[row, col]} is negative (expected -log p >= 0); "
            "re-export the teacher"
        )


def _load_embeddings(path: Path, num_items: int) -> torch.Tensor:
    if not path.exists():
        raise ArtifactError(f"{path} is missing; re-export the teacher or set distill.use_embedding_distill=false")
    emb = load_torch_file(path, kind="tensor file", remedy="re-export the teacher (run-teacher)")
    if not isinstance(emb, torch.Tensor) or emb.dim() != 2:
        shape = tuple(emb.shape) if isinstance(emb, torch.Tensor) else type(emb).__name__
        raise ArtifactError(f"{path} must hold a 2-D tensor [num_items, D], got {shape}")
    if emb.shape[0] != num_items:
        raise ArtifactError(f"{path} has {emb.shape[0]} rows but this run has num_items={num_items}")
    emb = emb.float()
    if not torch.isfinite(emb).all():
        raise ArtifactError(f"{path} contains NaN/inf values; re-export the teacher")
    return emb
