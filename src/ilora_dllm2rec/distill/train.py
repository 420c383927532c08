"""The distillation stage: teacher export -> DLLM2Rec student training -> metrics + manifest."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..core.artifacts import find_input
from ..core.errors import ArtifactError, ConfigError
from ..core.run_logging import RunDir, stage_log_file
from ..core.schema_data import Student
from ..core.schema_groups import Active, Logging, Metrics, Train
from ..core.schema_stages import Distill
from ..core.seed import set_seed
from ..core.stage import publish_stage, split_rows
from ..data import SplitData
from ..handoff.outputs import CONFIDENCE_FILE, TeacherOutputs, to_dense
from ..handoff.outputs_reader import load_teacher_outputs
from ..handoff.selection import SelectionContext, build_selection_policy, student_entropy_and_topk
from ..student.train import (
    build_student_module,
    find_baseline,
    fit_and_evaluate,
    fit_student,
    load_student_checkpoint,
)
from .function_matching import check_online_backend
from .kd_losses import attach_teacher_item_embeddings
from .lit_module import DistillLitModule
from .softmax_kd import check_log_prob_distances

log = logging.getLogger(__name__)

TeacherLoader = Callable[[str, Path, SplitData], torch.nn.Module]


@dataclasses.dataclass(frozen=True)
class DistillStage:
    """The sections the distillation stage reads; ``config_fingerprint``: the whole run config's hash, for its
    metrics; ``load_teacher``: ``(backend, checkpoint, data) -> teacher module``, given by the layer above (the
    teacher package sits beside this one), for function matching."""

    student: Student
    distill: Distill
    active: Active
    train: Train
    metrics: Metrics
    logging: Logging
    result_root: str
    seed: int
    config_fingerprint: str
    load_teacher: TeacherLoader | None = None


def init_from_baseline(model: torch.nn.Module, path: Path, student_cfg: dict) -> None:
    """Copy a baseline's weights into the student; a different architecture is an error, not a partial copy.

    Without the check a two-block baseline (``num_blocks`` 2, the older default) would silently give a
    one-block student its first block only.
    """
    baseline, hparams = load_student_checkpoint(path)
    source = baseline.state_dict()
    target = model.state_dict()
    # llm_*: embedding distillation's projection and table, new in the distilled student
    missing = sorted(k for k in set(target) - set(source) if not k.startswith("llm_"))
    unexpected = sorted(set(source) - set(target))
    wrong_shape = sorted(k for k in set(source) & set(target) if source[k].shape != target[k].shape)
    if missing or unexpected or wrong_shape:
        theirs = dict(hparams.get("student_cfg") or {})
        differing = sorted(k for k in set(theirs) | set(student_cfg) if theirs.get(k) != student_cfg.get(k))
        shown = ", ".join(f"student.{k}: {theirs.get(k)!r} there, {student_cfg.get(k)!r} here" for k in differing)
        raise ConfigError(
            f"distill.init_from_baseline: baseline {path} has another architecture ({shown or 'parameters differ'};"
            f" parameters only there: {unexpected[:3]}, only here: {missing[:3]}, other shapes: {wrong_shape[:3]}):"
            " set the student.* keys to the baseline's, point distill.baseline_checkpoint_path at a matching"
            " baseline, or set distill.init_from_baseline=false"
        )
    model.load_state_dict(source, strict=False)


def listwise_columns(weight: float, topn: int | None) -> int | None:
    """Teacher columns the listwise KD term (``distill.listwise_weight``, ``distill.listwise_topn``) needs: None when
    it is off, 0 for every exported column."""
    if float(weight) <= 0:
        return None
    return 0 if topn is None else int(topn)


def export_matcher(data: SplitData):
    order = data.train.order_fingerprint()

    def accept(manifest: dict) -> str | None:
        if manifest.get("data_fingerprint") != data.fingerprint:
            return f"data fingerprint {manifest.get('data_fingerprint')} != {data.fingerprint}"
        if manifest.get("train_order_fingerprint") != order:
            return f"training-sample order {manifest.get('train_order_fingerprint')} != {order}"
        return None

    return accept


def find_teacher_outputs(explicit: str | None, result_root: str, data: SplitData, run: RunDir) -> Path:
    """Explicit ``distill.teacher_outputs_dir``; else this run's export; else the newest matching one."""
    found = find_input(
        result_root,
        "teacher_outputs",
        export_matcher(data),
        explicit=explicit,
        explicit_error=f"distill.teacher_outputs_dir={explicit} does not exist: run run-teacher first",
        is_folder=True,
        own_run=run.root,
        exclude_run=run.root,
        missing=(
            f"no complete teacher export for data set {data.name} (fingerprint {data.fingerprint}) under "
            f"{result_root}: run run-teacher first, or set distill.teacher_outputs_dir"
        ),
    )
    if found.source == "newest":
        log.info("using teacher outputs from %s", found.folder)
    return found.path


def online_teacher(
    outputs: TeacherOutputs, folder: Path, data: SplitData, load_teacher: TeacherLoader | None
) -> torch.nn.Module:
    """The ID teacher behind the export (its manifest's ``teacher_checkpoint``), for function matching."""
    if load_teacher is None:
        raise ConfigError("distill.function_matching_weight > 0 needs a teacher loader: run it through run-distill")
    manifest_path = folder / "manifest.json"
    backend = outputs.manifest.get("teacher_backend")
    check_online_backend(backend, str(manifest_path))
    recorded = str(outputs.manifest.get("teacher_checkpoint") or "")
    checkpoint = Path(recorded)
    if not recorded or not checkpoint.is_file():
        raise ArtifactError(
            f"{manifest_path}: its teacher_checkpoint {recorded or '(none)'} is not a file; function matching "
            "queries that teacher: keep the teacher run beside its export, or set distill.function_matching_weight=0"
        )
    teacher = load_teacher(str(backend), checkpoint, data)
    if int(teacher.num_items) != data.num_items:
        raise ArtifactError(
            f"teacher {checkpoint} ranks {teacher.num_items} items, the data set {data.num_items}: use the teacher "
            "of this data set"
        )
    return teacher


def kd_mask_for(
    active: Active,
    result_root: str,
    baseline_path: str | None,
    data: SplitData,
    outputs: TeacherOutputs,
    has_teacher: torch.Tensor,
    run: RunDir,
) -> torch.Tensor:
    """Rows that get the KD loss: rows with teacher outputs, further thinned by the policy when the
    export covered every training sample (a subset export already reflects a policy's choice). An informed
    policy's student: ``baseline_path`` (``distill.baseline_checkpoint_path``), else the newest baseline under
    ``result_root``."""
    num_train = len(data.train)
    if int(has_teacher.sum()) < num_train:
        log.info("teacher outputs cover %d of %d training samples; KD on those", int(has_teacher.sum()), num_train)
        return has_teacher
    policy = build_selection_policy(active)
    provider = None
    if policy.needs_student:
        student, _ = load_student_checkpoint(find_baseline(result_root, data, baseline_path))
        k = getattr(policy, "topk", 1)  # the top-K comparing strategies' K; uncertainty reads the entropy only
        provider = lambda: student_entropy_and_topk(student, data.train, 1024, k, "cpu")  # noqa: E731
    context = SelectionContext(
        num_train=num_train,
        teacher_topk=outputs.ranks.numpy() if policy.uses_teacher else None,
        eligible=has_teacher.numpy(),
        student_provider=provider,
    )
    mask = policy.select(context)
    log.info("selection policy %r: KD on %d of %d training samples", policy, int(mask.sum()), num_train)
    return torch.from_numpy(np.asarray(mask, dtype=bool))


def run_distill_stage(stage_cfg: DistillStage, run: RunDir, data: SplitData) -> dict:
    stage, c = "distill", stage_cfg
    dcfg = c.distill
    student_cfg = dataclasses.asdict(c.student)  # as the checkpoint stores it: a plain dict
    with stage_log_file(run, stage) as slog:
        set_seed(c.seed)
        folder = find_teacher_outputs(dcfg.teacher_outputs_dir, c.result_root, data, run)
        outputs = load_teacher_outputs(
            folder,
            num_items=data.num_items,
            train_samples=data.train,
            data_fingerprint=data.fingerprint,
            candidate_topk=int(dcfg.candidate_topk),
            load_embeddings=bool(dcfg.use_embedding_distill),
            listwise_topn=listwise_columns(dcfg.listwise_weight, dcfg.listwise_topn),
        )
        cand_ids, cand_dist, has_teacher = to_dense(outputs, len(data.train))
        if float(dcfg.listwise_weight) > 0 and str(dcfg.listwise_normaliser) == "bucket":
            check_log_prob_distances(outputs.confidences, str(folder / CONFIDENCE_FILE))
        kd_mask = kd_mask_for(c.active, c.result_root, dcfg.baseline_checkpoint_path, data, outputs, has_teacher, run)
        use_emb = bool(dcfg.use_embedding_distill) and outputs.item_embeddings is not None
        module = build_student_module(
            data,
            student_cfg,
            c.train,
            c.metrics,
            c.seed,
            module_class=DistillLitModule,
            llm_embedding_dim=int(outputs.item_embeddings.shape[1]) if use_emb else None,
            ed_weight=float(dcfg.ed_weight) if use_emb else 0.0,
            distill_cfg=dataclasses.asdict(dcfg),
        )
        if dcfg.init_from_baseline:
            path = find_baseline(c.result_root, data, dcfg.baseline_checkpoint_path, exclude_run=None)
            init_from_baseline(module.model, path, student_cfg)
            slog.info("initialised from baseline %s", path)
        if use_emb:
            attach_teacher_item_embeddings(
                module.model, outputs.item_embeddings, float(dcfg.ed_weight), bool(dcfg.ed_standardize)
            )
        module.set_teacher_knowledge(cand_ids, cand_dist, kd_mask)
        if float(dcfg.function_matching_weight) > 0:
            module.set_function_matching_teacher(online_teacher(outputs, folder, data, c.load_teacher))
        slog.info(
            "distilling from %s: rd_form=%s, K=%d, rd_weight=%s, listwise_weight=%s over %d columns, ed_weight=%s, "
            "function_matching_weight=%s, KD rows %d/%d",
            folder,
            module.rd_form,
            int(dcfg.candidate_topk),
            dcfg.rd_weight,
            dcfg.listwise_weight,
            cand_ids.shape[1],
            dcfg.ed_weight if use_emb else 0.0,
            dcfg.function_matching_weight,
            int(kd_mask.sum()),
            len(data.train),
        )
        best, best_epoch, results = fit_and_evaluate(
            run,
            data,
            "distill_student_train_time",
            lambda: fit_student(module, data, c.train, c.logging, c.seed, run, stage),
            c.train,
            c.metrics,
            c.logging,
        )
        payload = {
            "stage": stage,
            "model": str(c.student.name),
            "best_epoch": best_epoch,
            "best_checkpoint": str(best),
            "teacher_outputs": str(folder),
            "teacher": outputs.manifest.get("teacher", outputs.manifest.get("teacher_checkpoint")),
            "kd_samples": int(kd_mask.sum()),
            "data_fingerprint": data.fingerprint,
            "config_fingerprint": c.config_fingerprint,
            "val": results["val"],
            "test": results["test"],
        }
        manifest = {
            "stage": stage,
            "model": str(c.student.name),
            "data_fingerprint": data.fingerprint,
            "num_items": data.num_items,
            "best_checkpoint": best.name,
            "last_checkpoint": "last.ckpt",
            "best_epoch": best_epoch,
            "teacher_outputs": str(folder),
        }
        title = f"distilled {c.student.name} on {data.name}"
        publish_stage(run, stage, payload, manifest, title, split_rows(str(c.student.name), results))
    return payload
