"""The iLoRA teacher's frozen recommender (LLaRA's "rec model"): which baseline, its type, loading it frozen."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from ..core.artifacts import find_input, fingerprint_matcher
from ..core.errors import ArtifactError, ConfigError
from ..core.run_logging import RunDir
from ..core.schema_teacher import Teacher
from ..data import SplitData
from ..student.base import SequentialRecommender
from ..student.train import load_student_checkpoint, missing_checkpoint
from .factory import teacher_spec
from .interfaces import TeacherStage

log = logging.getLogger(__name__)


def requested_rec_model_type(teacher: Teacher) -> str | None:
    """``teacher.rec_model_type``: None (the checkpoint's own type) or sasrec | gru4rec | caser (checked by the
    schema, core/schema_teacher.py ``IloraTeacher``)."""
    return teacher_spec(teacher).rec_model_type


def check_rec_model_type(teacher: Teacher, path: Path, hparams: dict) -> str:
    """The frozen recommender's type, read from its checkpoint; must match ``teacher.rec_model_type`` when set."""
    found = str(hparams["student_cfg"]["name"]).lower()
    wanted = requested_rec_model_type(teacher)
    if wanted is not None and found != wanted:
        raise ConfigError(
            f"teacher.rec_model_type={wanted} but the frozen recommender {path} is a {found}: point "
            f"teacher.rec_model_checkpoint_path at a {wanted} baseline (or add student={wanted} where the baseline is "
            f"trained in this run), or set teacher.rec_model_type={found} or null"
        )
    return found


def baseline_for_teacher(stage: TeacherStage, run: RunDir, data: SplitData, train_baseline: Callable[[], dict]) -> Path:
    """teacher.rec_model_checkpoint_path, else this run's baseline, else the newest matching baseline run (of type
    ``teacher.rec_model_type`` when set); with none of these, ``train_baseline()`` trains one into this run first
    (users need no manual path juggling; the caller gives it the student stage's own trainer settings)."""
    wanted = requested_rec_model_type(stage.teacher)
    explicit = stage.teacher.rec_model_checkpoint_path
    # this run's own baseline is taken whatever its type: it is checked once loaded (run-pipeline trains it
    # with the `student` config); only an earlier run's must be of the wanted type to be used
    found = find_input(
        stage.paths.result_root,
        "models/baseline",
        fingerprint_matcher(data.fingerprint, data.num_items) if wanted is None else _type_matcher(data, wanted),
        explicit=explicit,
        explicit_error=missing_checkpoint(explicit),
        explicit_manifest=False,  # as find_baseline: a baseline folder's checkpoint is best.ckpt
        own_run=run.root,
        exclude_run=run.root,
    )
    if found is not None:
        if found.source == "newest" and wanted is not None:
            log.info("using the newest %s baseline, %s (teacher.rec_model_type=%s)", wanted, found.folder, wanted)
        elif found.source == "newest":
            log.info("using baseline checkpoint from %s", found.folder)
        return found.path
    if wanted is not None and stage.student_name.lower() != wanted:  # a baseline trained here: another type
        raise ConfigError(
            f"teacher.rec_model_type={wanted}: no complete {wanted} baseline for data set {data.name} under "
            f"{stage.paths.result_root}, and one trained here would be a {stage.student_name}: add student={wanted}, "
            "or set teacher.rec_model_checkpoint_path"
        )
    log.info("no baseline student found for %s: training one (%s) into this run first", data.name, stage.student_name)
    result = train_baseline()
    return Path(result["best_checkpoint"])


def _type_matcher(data: SplitData, wanted: str) -> Callable[[dict], str | None]:
    same_data = fingerprint_matcher(data.fingerprint, data.num_items)

    def accept(manifest: dict) -> str | None:
        if str(manifest.get("model", "")).lower() != wanted:
            return f"a {manifest.get('model')} baseline, teacher.rec_model_type={wanted}"
        return same_data(manifest)

    return accept


def load_frozen_student(path: Path, data: SplitData) -> tuple[SequentialRecommender, dict]:
    """The baseline at ``path``, checked against this data set, with every parameter frozen, in eval mode."""
    student, hparams = load_student_checkpoint(path)
    if int(hparams["num_items"]) != data.num_items:
        raise ArtifactError(
            f"student checkpoint {path} has num_items={hparams['num_items']} but data set {data.name} has "
            f"{data.num_items}: use a baseline trained on the same data (teacher.rec_model_checkpoint_path)"
        )
    fp = hparams.get("data_fingerprint")
    if fp and fp != data.fingerprint:
        raise ArtifactError(
            f"student checkpoint {path} was trained on data fingerprint {fp}, this run uses {data.fingerprint}: "
            "use a baseline trained on the same data set config"
        )
    for p in student.parameters():
        p.requires_grad_(False)
    return student.eval(), hparams
