"""Teacher outputs folder <-> tensors (ALGORITHMS.md section 7, the DLLM2Rec interface): format and writer.

The reader and its checks are in handoff/outputs_reader.py.

Folder layout (one row per exported training sample, in training-sample order):
- ``all_embeddings.pt``    float tensor [N, D] (optional when embedding distillation is off);
- ``myrank_train.txt``     [rows, top_n] item ids, best first, whitespace-separated;
- ``confidence_train.txt`` [rows, top_n] distances ``-log p`` (>= 0, smaller = more confident);
- ``manifest.json``        written LAST; see :func:`make_manifest`.

Without ``manifest.json`` (files from the public DLLM2Rec/BIGRec tooling for a sequence-format data
set) rows are taken as all training samples in file order: the row count and id ranges are
checked, the order cannot be. Negative distances are an error (``-log p`` is never negative).
``ranks``/``confidences`` are truncated to ``candidate_topk`` columns at load time (or to the listwise KD
term's ``listwise_topn``, when larger). Distances exported by this platform are ``-log p`` of the teacher's
full-catalogue softmax (manifest ``"distance": "neg_log_softmax"``), which the listwise KD term's tail
bucket relies on.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ilora_dllm2rec.core.atomic import atomic_path
from ilora_dllm2rec.core.errors import ArtifactError
from ilora_dllm2rec.data.types import SampleSet
from ilora_dllm2rec.handoff.text_matrix import write_matrix

EMBEDDINGS_FILE = "all_embeddings.pt"
RANKS_FILE = "myrank_train.txt"
CONFIDENCE_FILE = "confidence_train.txt"
MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1


@dataclass
class TeacherOutputs:
    """Teacher knowledge for (a subset of) the training samples.

    item_embeddings: [N, D] float32 or None; ranks: [M, K] int64; confidences: [M, K] float32
    distances; sample_ids: [M] int64 training-row index of each row; manifest: {} when absent.
    """

    item_embeddings: torch.Tensor | None
    ranks: torch.Tensor
    confidences: torch.Tensor
    sample_ids: torch.Tensor
    manifest: dict[str, Any] = field(default_factory=dict)
    order_verified: bool = True

    @property
    def top_n(self) -> int:
        return int(self.ranks.shape[1])


def make_manifest(
    *,
    data_fingerprint: str,
    train_samples: SampleSet,
    num_items: int,
    sample_ids: np.ndarray | list[int] | None = None,
    teacher_checkpoint: str | None = None,
    export_time_sec: float | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Manifest for :func:`write_teacher_outputs` (``hidden_size``, ``top_n``, ``num_rows`` are filled there)."""
    manifest: dict[str, Any] = {
        "format_version": MANIFEST_VERSION,
        "data_fingerprint": data_fingerprint,
        "train_order_fingerprint": train_samples.order_fingerprint(),
        "num_train": len(train_samples),
        "num_items": int(num_items),
        "sample_ids": "all" if sample_ids is None else [int(i) for i in np.asarray(sample_ids).tolist()],
        "teacher_checkpoint": teacher_checkpoint,
        "distance": "neg_log_softmax",  # confidence_train.txt = -log p, p the teacher's full-catalogue softmax
        "export_time_sec": export_time_sec,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    manifest.update(extra or {})
    return manifest


def write_teacher_outputs(
    folder: str | Path,
    item_embeddings: torch.Tensor | None,
    ranks: torch.Tensor | np.ndarray,
    confidences: torch.Tensor | np.ndarray,
    manifest: dict[str, Any],
) -> Path:
    """Write the three files and the manifest atomically (temporary names, ``os.replace``, manifest last).

    An existing manifest is removed first, so an interrupted re-export never looks complete.
    Returns the folder.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ranks_np = np.asarray(ranks.cpu() if isinstance(ranks, torch.Tensor) else ranks, dtype=np.int64)
    conf_np = np.asarray(confidences.cpu() if isinstance(confidences, torch.Tensor) else confidences, np.float32)
    if ranks_np.ndim != 2 or ranks_np.shape != conf_np.shape:
        raise ValueError(f"ranks {ranks_np.shape} and confidences {conf_np.shape} must both be [rows, top_n]")
    ids = manifest.get("sample_ids", "all")
    expected_rows = manifest.get("num_train") if ids == "all" else len(ids)
    if expected_rows is not None and expected_rows != ranks_np.shape[0]:
        raise ValueError(f"{ranks_np.shape[0]} teacher rows but the manifest describes {expected_rows} samples")
    if "num_items" in manifest and ranks_np.size and not 0 <= ranks_np.min() <= ranks_np.max() < manifest["num_items"]:
        raise ValueError(f"ranks hold ids outside [0, num_items={manifest['num_items']})")
    manifest = dict(manifest)
    manifest["num_rows"], manifest["top_n"] = int(ranks_np.shape[0]), int(ranks_np.shape[1])
    manifest["hidden_size"] = None if item_embeddings is None else int(item_embeddings.shape[1])
    manifest["files"] = [RANKS_FILE, CONFIDENCE_FILE] + ([] if item_embeddings is None else [EMBEDDINGS_FILE])

    (folder / MANIFEST_FILE).unlink(missing_ok=True)
    if item_embeddings is not None:
        with atomic_path(folder / EMBEDDINGS_FILE) as tmp:
            torch.save(item_embeddings.detach().float().cpu(), tmp)
    with atomic_path(folder / RANKS_FILE) as tmp:
        write_matrix(tmp, ranks_np, "%d")
    with atomic_path(folder / CONFIDENCE_FILE) as tmp:
        write_matrix(tmp, conf_np, "%.9g")
    with atomic_path(folder / MANIFEST_FILE) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1))
    return folder


def to_dense(outputs: TeacherOutputs, num_train: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scatter rows to training-row order: cand_ids [num_train, K], cand_dist [num_train, K], has_teacher [num_train].

    Rows without teacher outputs hold id 0 / distance 0 placeholders and ``has_teacher=False``
    (pass ``has_teacher[batch["index"]]`` as the loss mask).
    """
    ids = outputs.sample_ids.long()
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= num_train):
        raise ArtifactError(f"teacher sample_ids range [{int(ids.min())}, {int(ids.max())}] outside [0, {num_train})")
    k = outputs.ranks.shape[1]
    cand_ids = torch.zeros(num_train, k, dtype=torch.long)
    cand_dist = torch.zeros(num_train, k, dtype=torch.float32)
    has_teacher = torch.zeros(num_train, dtype=torch.bool)
    cand_ids[ids] = outputs.ranks.long()
    cand_dist[ids] = outputs.confidences.float()
    has_teacher[ids] = True
    return cand_ids, cand_dist, has_teacher
