"""The student stages: train a baseline student, load students back from checkpoints."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ..core.artifacts import find_input, fingerprint_matcher
from ..core.errors import ArtifactError
from ..core.run_logging import RunDir, stage_log_file, time_block
from ..core.safe_load import load_checkpoint
from ..core.seed import set_seed
from ..core.stage import publish_stage, split_rows
from ..core.trainer import build_trainer
from ..data import SplitData, build_dataloader
from .base import SequentialRecommender
from .evaluator import evaluate_model
from .factory import stored_student_cfg
from .lit_module import StudentLitModule

log = logging.getLogger(__name__)


def config_fingerprint(cfg: DictConfig) -> str:
    import hashlib
    import json

    text = json.dumps(OmegaConf.to_container(cfg, resolve=True), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_student_module(
    cfg: DictConfig,
    data: SplitData,
    model_cfg: dict,
    *,
    seed: int | None = None,
    module_class: type[StudentLitModule] = StudentLitModule,
    **extra,
) -> StudentLitModule:
    """A student Lightning module of ``model_cfg`` with the run's train/metrics settings (``extra``: subclass args)."""
    return module_class(
        model_cfg,
        data.num_items,
        lr=float(cfg.train.lr),
        weight_decay=float(cfg.train.weight_decay),
        ks=list(cfg.metrics.ks),
        exclude_history=bool(cfg.metrics.exclude_history),
        target_counts=data.train_target_counts().tolist(),
        data_fingerprint=data.fingerprint,
        seed=int(cfg.general.seed) if seed is None else seed,
        **extra,
    )


def fit_student(
    module: StudentLitModule,
    data: SplitData,
    cfg: DictConfig,
    run: RunDir,
    stage: str,
) -> tuple[Path, int]:
    """Fit with validation-only model selection; returns (best checkpoint path, best epoch)."""
    train_cfg = cfg.train
    seed = int(cfg.general.seed)
    train_dl = build_dataloader(data.train, int(train_cfg.batch_size), shuffle=True, seed=seed)
    val_dl = build_dataloader(data.val, int(train_cfg.eval_batch_size), shuffle=False, seed=seed)
    models_dir = run.models(stage)
    trainer, ckpt = build_trainer(
        train_cfg,
        models_dir=models_dir,
        tb_dir=run.tb(stage) if cfg.logging.tensorboard else None,
        progress_bar=bool(cfg.logging.progress_bar),
    )
    trainer.fit(module, train_dataloaders=train_dl, val_dataloaders=val_dl)
    best = Path(ckpt.best_model_path) if ckpt.best_model_path else models_dir / "last.ckpt"
    if not best.is_file():
        raise ArtifactError(f"training produced no checkpoint in {models_dir}; check train.max_epochs > 0")
    state = load_checkpoint(best, kind="student checkpoint", remedy="train again", weights_only=False, required=())
    best_epoch = int(state.get("epoch", -1))
    return best, best_epoch


def evaluate_splits(model: SequentialRecommender, data: SplitData, cfg: DictConfig, device: str = "cpu") -> dict:
    out = {}
    for split in ("val", "test"):
        out[split] = evaluate_model(
            model,
            getattr(data, split),
            batch_size=int(cfg.train.eval_batch_size),
            ks=list(cfg.metrics.ks),
            exclude_history=bool(cfg.metrics.exclude_history),
            device=device,
            progress=bool(cfg.logging.progress_bar),
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
    cfg: DictConfig,
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
        cfg.paths.result_root,
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
            f"{cfg.paths.result_root}: run run-student-baseline first, or point teacher.rec_model_checkpoint_path "
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
    cfg: DictConfig, run: RunDir, data: SplitData, timer: str, fit: Callable[[], tuple[Path, int]]
) -> tuple[Path, int, dict]:
    """The student stages' fit -> evaluate: ``fit()`` timed as ``timer`` in time.json, then the best
    checkpoint reloaded (what later stages will load) and evaluated on val and test.

    Returns (best checkpoint, best epoch, ``{"val": ..., "test": ...}``)."""
    with time_block(run, timer):
        best, best_epoch = fit()
    model, _ = load_student_checkpoint(best)
    return best, best_epoch, evaluate_splits(model, data, cfg)


def run_baseline_stage(cfg: DictConfig, run: RunDir, data: SplitData) -> dict:
    """Train the baseline student, select on validation, evaluate val/test, write metrics + manifest."""
    stage = "baseline"
    with stage_log_file(run, stage) as slog:
        set_seed(int(cfg.general.seed))
        slog.info("data %s: %s", data.name, data.summary())
        module = build_student_module(cfg, data, OmegaConf.to_container(cfg.student, resolve=True))
        best, best_epoch, results = fit_and_evaluate(
            cfg, run, data, "student_baseline_train_time", lambda: fit_student(module, data, cfg, run, stage)
        )
        payload = {
            "stage": stage,
            "model": str(cfg.student.name),
            "best_epoch": best_epoch,
            "best_checkpoint": str(best),
            "data_fingerprint": data.fingerprint,
            "config_fingerprint": config_fingerprint(cfg),
            "val": results["val"],
            "test": results["test"],
        }
        manifest = {
            "stage": stage,
            "model": str(cfg.student.name),
            "data_fingerprint": data.fingerprint,
            "num_items": data.num_items,
            "hidden_size": int(cfg.student.hidden_size),
            "best_checkpoint": best.name,
            "last_checkpoint": "last.ckpt",
            "best_epoch": best_epoch,
            "val_ndcg@10": results["val"].get("ndcg@10"),
        }
        slog.info("baseline done: best epoch %d, test %s", best_epoch, results["test"])
        title = f"baseline {cfg.student.name} on {data.name}"
        publish_stage(run, stage, payload, manifest, title, split_rows(str(cfg.student.name), results))
    return payload
