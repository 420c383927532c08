"""The student stages: train a baseline student, load students back from checkpoints."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

from ..core.artifacts import find_input, fingerprint_matcher
from ..core.errors import ArtifactError
from ..core.run_logging import RunDir, stage_log_file, time_block
from ..core.safe_load import load_checkpoint
from ..core.schema_data import Student
from ..core.schema_groups import Logging, Metrics, Train
from ..core.seed import set_seed
from ..core.stage import publish_stage, split_rows
from ..core.trainer import build_trainer
from ..data import SplitData, build_dataloader
from .base import SequentialRecommender
from .evaluator import evaluate_model
from .factory import stored_student_cfg
from .lit_module import StudentLitModule

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class BaselineStage:
    """The sections the baseline stage reads; ``config_fingerprint``: the whole run config's hash, for its
    metrics."""

    student: Student
    train: Train
    metrics: Metrics
    logging: Logging
    seed: int
    config_fingerprint: str


def build_student_module(
    data: SplitData,
    model_cfg: dict,
    train: Train,
    metrics: Metrics,
    seed: int,
    *,
    module_class: type[StudentLitModule] = StudentLitModule,
    **extra,
) -> StudentLitModule:
    """A student Lightning module of ``model_cfg`` with the stage's train/metrics settings (``extra``: subclass
    args)."""
    return module_class(
        model_cfg,
        data.num_items,
        lr=float(train.lr),
        weight_decay=float(train.weight_decay),
        ks=list(metrics.ks),
        exclude_history=bool(metrics.exclude_history),
        target_counts=data.train_target_counts().tolist(),
        data_fingerprint=data.fingerprint,
        seed=seed,
        **extra,
    )


def fit_student(
    module: StudentLitModule,
    data: SplitData,
    train: Train,
    logs: Logging,
    seed: int,
    run: RunDir,
    stage: str,
) -> tuple[Path, int]:
    """Fit with validation-only model selection (``seed``: the data order's); returns (best checkpoint, best
    epoch)."""
    train_dl = build_dataloader(data.train, int(train.batch_size), shuffle=True, seed=seed)
    val_dl = build_dataloader(data.val, int(train.eval_batch_size), shuffle=False, seed=seed)
    models_dir = run.models(stage)
    trainer, ckpt = build_trainer(
        train,
        models_dir=models_dir,
        tb_dir=run.tb(stage) if logs.tensorboard else None,
        progress_bar=bool(logs.progress_bar),
    )
    trainer.fit(module, train_dataloaders=train_dl, val_dataloaders=val_dl)
    best = Path(ckpt.best_model_path) if ckpt.best_model_path else models_dir / "last.ckpt"
    if not best.is_file():
        raise ArtifactError(f"training produced no checkpoint in {models_dir}; check train.max_epochs > 0")
    state = load_checkpoint(best, kind="student checkpoint", remedy="train again", weights_only=False, required=())
    best_epoch = int(state.get("epoch", -1))
    return best, best_epoch


def evaluate_splits(
    model: SequentialRecommender,
    data: SplitData,
    metrics: Metrics,
    batch_size: int,
    progress: bool,
    device: str = "cpu",
) -> dict:
    out = {}
    for split in ("val", "test"):
        out[split] = evaluate_model(
            model,
            getattr(data, split),
            batch_size=batch_size,
            ks=list(metrics.ks),
            exclude_history=bool(metrics.exclude_history),
            device=device,
            progress=progress,
            description=f"{split}",
        )
    return out


STUDENT_REMEDY = "point the option at a best.ckpt written by a student stage (models/baseline, models/distill)"


def load_student_checkpoint(path: str | Path) -> tuple[SequentialRecommender, dict]:
    """Rebuild a student from a Lightning checkpoint written by any student stage."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"student checkpoint not found: {path}")
    # Read once through the shared helper (weights_only, as Lightning's default): a file that is no checkpoint is
    # refused in one line instead of PyTorch's advice to unpickle it. Student checkpoints are small, so
    # Lightning reading the file again to rebuild the module costs little.
    state = load_checkpoint(
        path, kind="student checkpoint", remedy=STUDENT_REMEDY, required=("state_dict", "hyper_parameters")
    )
    stored = stored_student_cfg(state["hyper_parameters"]["student_cfg"])
    module = StudentLitModule.load_from_checkpoint(path, map_location="cpu", student_cfg=stored)
    model = module.model.eval()
    return model, dict(module.hparams)


def find_baseline(
    result_root: str,
    data: SplitData,
    explicit: str | None,
    exclude_run: Path | None = None,
    *,
    own_run: Path | None = None,
    own_first: bool = False,
) -> Path:
    """The baseline checkpoint to use: an explicit path, else (with ``own_run``) this run's baseline, else the
    newest complete matching baseline run (core/artifacts.py find_input; ``own_first``: this run's first)."""
    found = find_input(
        result_root,
        "models/baseline",
        fingerprint_matcher(data.fingerprint, data.num_items),
        explicit=explicit,
        explicit_error=missing_checkpoint(explicit),
        explicit_manifest=False,  # a baseline folder's checkpoint is best.ckpt
        own_run=own_run,
        own_first=own_first,
        exclude_run=exclude_run,
        missing=(
            f"no complete baseline run for data set {data.name} (fingerprint {data.fingerprint}) under "
            f"{result_root}: run run-student-baseline first, or point teacher.rec_model_checkpoint_path "
            "(distill.baseline_checkpoint_path for distillation and selection) at a baseline best.ckpt"
        ),
    )
    if found.source == "newest":
        log.info("using baseline checkpoint from %s", found.folder)
    return found.path


def missing_checkpoint(explicit: str | None) -> str:
    """The error for an explicit student checkpoint option that names no file."""
    return f"checkpoint {explicit} not found: point the option at a best.ckpt or its folder"


def fit_and_evaluate(
    run: RunDir,
    data: SplitData,
    timer: str,
    fit: Callable[[], tuple[Path, int]],
    train: Train,
    metrics: Metrics,
    logs: Logging,
) -> tuple[Path, int, dict]:
    """The student stages' fit -> evaluate: ``fit()`` timed as ``timer`` in time.json, then the best
    checkpoint reloaded (what later stages will load) and evaluated on val and test (``train.eval_batch_size``).

    Returns (best checkpoint, best epoch, ``{"val": ..., "test": ...}``)."""
    with time_block(run, timer):
        best, best_epoch = fit()
    model, _ = load_student_checkpoint(best)
    return best, best_epoch, evaluate_splits(model, data, metrics, int(train.eval_batch_size), logs.progress_bar)


def run_baseline_stage(stage_cfg: BaselineStage, run: RunDir, data: SplitData) -> dict:
    """Train the baseline student, select on validation, evaluate val/test, write metrics + manifest."""
    stage, c = "baseline", stage_cfg
    with stage_log_file(run, stage) as slog:
        set_seed(c.seed)
        slog.info("data %s: %s", data.name, data.summary())
        # the checkpoint stores the student's config as a plain dict, as the composed config's section
        module = build_student_module(data, dataclasses.asdict(c.student), c.train, c.metrics, c.seed)
        best, best_epoch, results = fit_and_evaluate(
            run,
            data,
            "student_baseline_train_time",
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
            "hidden_size": int(c.student.hidden_size),
            "best_checkpoint": best.name,
            "last_checkpoint": "last.ckpt",
            "best_epoch": best_epoch,
            "val_ndcg@10": results["val"].get("ndcg@10"),
        }
        slog.info("baseline done: best epoch %d, test %s", best_epoch, results["test"])
        title = f"baseline {c.student.name} on {data.name}"
        publish_stage(run, stage, payload, manifest, title, split_rows(str(c.student.name), results))
    return payload
