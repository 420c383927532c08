"""Teacher stages for every backend: train (``teacher.backend``) and export for distillation."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..core.artifacts import find_input, fingerprint_matcher, read_manifest, update_json
from ..core.errors import ConfigError
from ..core.run_logging import RunDir, stage_log_file
from ..core.schema_groups import Active, Paths, Train
from ..core.schema_teacher import Teacher
from ..core.trainer import inference_device
from ..data import SplitData
from ..handoff.outputs import make_manifest, write_teacher_outputs
from ..handoff.selection import SelectionContext, build_selection_policy, student_entropy_and_topk
from ..student.train import find_baseline, load_student_checkpoint
from .backends import teacher_backend
from .export import predict_top_n
from .interfaces import TeacherStage
from .llm import check_local_llm_path

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ExportStage:
    """The sections the export stage reads; ``teacher_checkpoint`` and ``baseline_checkpoint`` are
    ``distill.teacher_checkpoint_path`` and ``distill.baseline_checkpoint_path``."""

    teacher: Teacher
    active: Active
    train: Train
    paths: Paths
    teacher_checkpoint: str | None
    baseline_checkpoint: str | None


def train_teacher(stage: TeacherStage, run: RunDir, data: SplitData, train_baseline: Callable[[], dict]) -> dict:
    """Train the teacher of ``teacher.backend`` into ``models/teacher`` (teacher/backends.py)."""
    return teacher_backend(str(stage.teacher.backend)).train(stage, run, data, train_baseline)


def find_teacher(stage: ExportStage, data: SplitData, run: RunDir) -> tuple[Path, str]:
    """(checkpoint, backend): distill.teacher_checkpoint_path, else this run's, else the newest matching run's."""
    explicit = stage.teacher_checkpoint
    found = find_input(
        stage.paths.result_root,
        "models/teacher",
        fingerprint_matcher(data.fingerprint, data.num_items),
        explicit=explicit,
        explicit_error=f"distill.teacher_checkpoint_path={explicit} not found: point it at models/teacher",
        own_run=run.root,
        exclude_run=run.root,
        missing=(
            f"no complete teacher run for data set {data.name} (fingerprint {data.fingerprint}) under "
            f"{stage.paths.result_root}: run run-teacher first or set distill.teacher_checkpoint_path"
        ),
    )
    if found.source == "newest":
        log.info("using teacher from %s", found.folder)
    if found.source == "explicit":  # an explicit file may have no manifest beside it: the configured backend
        return found.path, str(found.manifest.get("backend", stage.teacher.backend))
    return found.path, str(found.manifest["backend"])


def selection_student_path(stage: ExportStage, data: SplitData, run: RunDir) -> Path:
    """The baseline an informed selection policy reads: this run's own baseline, else
    ``distill.baseline_checkpoint_path``, else the iLoRA teacher's frozen student
    (``teacher.rec_model_checkpoint_path``), else the newest complete matching baseline run."""
    explicit = stage.baseline_checkpoint or stage.teacher.rec_model_checkpoint_path
    return find_baseline(stage.paths.result_root, data, explicit, own_run=run.root, own_first=True)


def export_top_n(top_n: int, data: SplitData) -> int:
    """``teacher.export.top_n``, checked against the catalogue."""
    top_n = int(top_n)
    if not 1 <= top_n <= data.num_items:
        raise ConfigError(f"teacher.export.top_n={top_n} must be between 1 and the number of items ({data.num_items})")
    return top_n


def check_export_inputs(stage: ExportStage, data: SplitData, run: RunDir) -> None:
    """Before a teacher is trained: fail now, not after training, on an export setting that cannot work or a
    selection policy that will find no baseline (the iLoRA stage finds or trains its own baseline first, so
    only the ID backends can miss one), or an LLM folder or file that is not there."""
    export_top_n(stage.teacher.export.top_n, data)
    uses_llm = teacher_backend(str(stage.teacher.backend)).uses_llm
    if uses_llm:
        check_local_llm_path(str(stage.teacher.llm_path))
    if not uses_llm and build_selection_policy(stage.active).needs_student:
        selection_student_path(stage, data, run)


def select_export_samples(stage: ExportStage, data: SplitData, run: RunDir) -> np.ndarray | None:
    """Which training samples the teacher is asked about (None = all): fewer LLM calls."""
    policy = build_selection_policy(stage.active)
    if policy.name == "all":
        return None
    provider = None
    if policy.needs_student:
        baseline, _ = load_student_checkpoint(selection_student_path(stage, data, run))
        k = getattr(policy, "topk", 1)  # the top-K comparing strategies' K; uncertainty reads the entropy only
        provider = lambda: student_entropy_and_topk(baseline, data.train, 1024, k, "cpu")  # noqa: E731
    mask = policy.select(SelectionContext(num_train=len(data.train), student_provider=provider))
    ids = np.flatnonzero(mask)
    log.info("selection policy %r: exporting %d of %d training samples", policy, len(ids), len(data.train))
    return ids


def run_export_stage(stage: ExportStage, run: RunDir, data: SplitData) -> dict | None:
    """Write all_embeddings.pt, myrank_train.txt, confidence_train.txt and the manifest (last) into
    ``{run}/teacher_outputs``; ``distill_teacher_export_time`` goes to time.json."""
    with stage_log_file(run, "export") as slog:
        ckpt, backend = find_teacher(stage, data, run)
        start = time.perf_counter()
        # an LLM teacher's inference-only padding: this run's value wins (none when teacher= is an ID teacher)
        pad = getattr(stage.teacher, "pad_to_multiple_of", None)
        teacher = teacher_backend(backend).load(ckpt, data, stage.paths.model_cache_dir, pad)
        sample_ids = select_export_samples(stage, data, run)
        samples = data.train if sample_ids is None else data.train.subset(sample_ids)
        export_cfg = stage.teacher.export
        top_n = export_top_n(export_cfg.top_n, data)
        result = predict_top_n(
            teacher,
            samples,
            top_n=top_n,
            batch_size=int(export_cfg.batch_size),
            train_cfg=stage.train,
            shard_dir=run.root / ".export_shards",
        )
        if result is None:  # non-zero rank under DDP: rank 0 writes
            return None
        ranks, dists = result
        teacher.to(inference_device(stage.train.accelerator))  # Lightning's predict teardown left it on the CPU
        with torch.inference_mode():
            embeddings = teacher.item_embeddings(int(export_cfg.batch_size)).cpu()
        elapsed = time.perf_counter() - start
        manifest = make_manifest(
            data_fingerprint=data.fingerprint,
            train_samples=data.train,
            num_items=data.num_items,
            sample_ids=sample_ids,
            teacher_checkpoint=str(ckpt),
            export_time_sec=round(elapsed, 3),
            extra={"teacher_backend": backend},
        )
        write_teacher_outputs(run.teacher_outputs, embeddings, ranks, dists, manifest)
        update_json(run.time_json, {"distill_teacher_export_time": round(elapsed, 3)})
        slog.info(
            "teacher export: %d rows x top %d, embeddings %s, %.1f s -> %s",
            ranks.shape[0],
            top_n,
            tuple(embeddings.shape),
            elapsed,
            run.teacher_outputs,
        )
    return read_manifest(run.teacher_outputs)
