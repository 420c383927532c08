"""An ensemble of ID-based recommenders as a teacher (``teacher=ensemble``).

Why it exists: distillation can only transfer what the teacher knows beyond its student. On ml-100k
neither a single larger SASRec nor the CPU-budget iLoRA teacher ranks better than the SASRec student
(docs/BENCHMARKS.md), so there is nothing to distil and no way to tell a working distillation from a
broken one. Averaging a few independently trained models is the cheapest reliably stronger teacher; it
answers "does distillation move the student towards a better teacher" and, next to the LLM teacher, how much
an LLM is worth over the best ID-based teacher one can build.

Members: ``teacher.num_members`` models trained here with seeds ``general.seed + 1 ..`` (so none repeats a
baseline trained with ``general.seed``), of ``teacher.model`` or, with ``teacher.member_models`` (e.g.
``[sasrec, gru4rec, caser]``), of those kinds in turn: a teacher of several kinds is stronger on test than one of
SASRecs alone (docs/BENCHMARKS.md "Distillation for the CE student"), plus any existing student or ID-teacher
checkpoints in ``teacher.checkpoints`` (any architecture, same data set). Scores are combined per user:
``zscore`` averages each member's scores standardised over the catalogue (members' score scales differ),
``log_softmax`` averages their log-probabilities. ``all_embeddings.pt`` is the members' item tables side by
side ([N, sum of d]); embedding distillation projects it to the student's size anyway.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ..core.artifacts import checkpoint_in, write_json_atomic
from ..core.errors import ArtifactError, ConfigError
from ..core.run_logging import RunDir, stage_log_file, time_block
from ..core.stage import publish_stage
from ..data import SplitData
from ..student.base import SequentialRecommender
from ..student.evaluator import evaluate
from ..student.train import evaluate_splits, load_student_checkpoint
from .id_teacher import train_id_model
from .interfaces import TeacherRecommender, TeacherStage

COMBINE_MODES = ("zscore", "log_softmax")
MEMBERS_FILE = "ensemble.json"


def check_combine(combine: str) -> None:
    if combine not in COMBINE_MODES:
        raise ConfigError(f"teacher.combine={combine!r} is not supported: use one of {list(COMBINE_MODES)}")


def _standardise(scores: torch.Tensor, mode: str) -> torch.Tensor:
    scores = scores.float()
    if mode == "zscore":
        return (scores - scores.mean(-1, keepdim=True)) / scores.std(-1, keepdim=True).clamp_min(1e-6)
    return torch.log_softmax(scores, dim=-1)


class EnsembleTeacher(nn.Module, TeacherRecommender):
    """Mean of the members' per-user standardised scores; see the module docstring."""

    def __init__(self, members: Sequence[SequentialRecommender], combine: str = "zscore") -> None:
        super().__init__()
        check_combine(combine)
        if not members:
            raise ConfigError("teacher=ensemble has no members: set teacher.num_members > 0 or teacher.checkpoints")
        counts = sorted({m.num_items for m in members})
        if len(counts) != 1:
            raise ArtifactError(f"ensemble members rank different catalogues (item counts {counts}): same data set")
        self.members = nn.ModuleList(members)
        self.combine = combine
        self.num_items = counts[0]

    def score(self, seq: torch.Tensor, len_seq: torch.Tensor) -> torch.Tensor:
        total = sum(_standardise(m(seq, len_seq), self.combine) for m in self.members)
        return total / len(self.members)

    def item_embeddings(self, batch_size: int = 32) -> torch.Tensor:
        return torch.cat([m.item_embedding.weight[: self.num_items].detach().float().cpu() for m in self.members], 1)


def member_checkpoint(entry: str, index: int) -> Path:
    """``teacher.checkpoints[index]``: a checkpoint file, or a models folder (its manifest's best checkpoint)."""
    path = Path(entry)
    if path.is_dir():
        path = checkpoint_in(path)
    if not path.is_file():
        raise ArtifactError(
            f"teacher.checkpoints[{index}]={entry} not found: point it at a student or ID-teacher "
            "best.ckpt or its models/<stage> folder"
        )
    return path


def load_members(paths: Sequence[Path], data: SplitData | None = None) -> list[SequentialRecommender]:
    """Load member checkpoints; with ``data``, each must belong to that data set (fingerprint, item count)."""
    members = []
    for path in paths:
        model, hparams = load_student_checkpoint(path)
        if data is not None:
            fingerprint = hparams.get("data_fingerprint") or ""
            if model.num_items != data.num_items or (fingerprint and fingerprint != data.fingerprint):
                raise ArtifactError(
                    f"ensemble member {path} was trained on other data ({model.num_items} items, fingerprint "
                    f"{fingerprint or '?'}) than {data.name} ({data.num_items} items, {data.fingerprint}): "
                    "use checkpoints of this data set"
                )
        members.append(model)
    return members


def load_ensemble_teacher(path: str | Path) -> EnsembleTeacher:
    """Rebuild the ensemble from its ``ensemble.json`` (member paths relative to its folder or absolute)."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"ensemble teacher file not found: {path}")
    try:
        spec = json.loads(path.read_text())
        entries = [str(entry) for entry in spec["members"]]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ArtifactError(f"ensemble teacher file {path} is malformed ({exc}): re-run the teacher stage") from exc
    paths = [(path.parent / p) if not Path(p).is_absolute() else Path(p) for p in entries]
    return EnsembleTeacher(load_members(paths), str(spec.get("combine", "zscore"))).eval()


def run_ensemble_teacher_stage(stage_cfg: TeacherStage, run: RunDir, data: SplitData) -> dict:
    stage, c = "teacher", stage_cfg
    tcfg = c.teacher
    combine = str(tcfg.combine)
    check_combine(combine)
    num_members = int(tcfg.num_members)
    external = [member_checkpoint(str(e), i) for i, e in enumerate(tcfg.checkpoints or [])]
    if num_members < 0 or num_members + len(external) == 0:
        raise ConfigError(
            f"teacher.num_members={num_members} with {len(external)} teacher.checkpoints: the ensemble needs at "
            "least one member (num_members >= 0)"
        )
    external_models = load_members(external, data)  # fail before training anything
    folder = run.models(stage)
    # as the checkpoints store them: plain dicts
    model_cfgs = [dataclasses.asdict(tcfg.member_model(i)) for i in range(num_members)]
    with stage_log_file(run, stage) as slog:
        trained: list[Path] = []
        best_epochs: dict[Path, int] = {}
        with time_block(run, "teacher_train_time_total"):
            for i in range(num_members):
                seed = c.seed + 1 + i
                model_cfg = model_cfgs[i]
                best, best_epochs[best] = train_id_model(
                    c.train, c.metrics, c.logging, run, data, model_cfg, f"{stage}/member_{i}", seed
                )
                slog.info(
                    "ensemble member %d (%s, seed %d): best epoch %d, %s",
                    i, model_cfg["name"], seed, best_epochs[best], best,
                )  # fmt: skip
                trained.append(best)
        paths = trained + external
        members = load_members(trained, data) + external_models
        teacher = EnsembleTeacher(members, combine).eval()
        per_member = {}
        for path, model in zip(paths, members, strict=True):
            splits = evaluate_splits(model, data, c.metrics, int(c.train.eval_batch_size), c.logging.progress_bar)
            per_member[str(path)] = {"model": type(model).__name__, "best_epoch": best_epochs.get(path), **splits}
        results = {
            split: evaluate(
                lambda b: teacher.score(b["seq"], b["len_seq"]),
                getattr(data, split),
                batch_size=int(c.train.eval_batch_size),
                ks=list(c.metrics.ks),
                exclude_history=bool(c.metrics.exclude_history),
                description=f"ensemble {split}",
            )
            for split in ("val", "test")
        }
        spec = {
            "combine": combine,
            "members": [str(p.relative_to(folder)) if p.is_relative_to(folder) else str(p.resolve()) for p in paths],
        }
        write_json_atomic(folder / MEMBERS_FILE, spec)
        payload = {
            "stage": stage,
            "model": f"ensemble of {len(paths)} ID models ({combine})",
            "best_epoch": None,  # per member, under "members" (external checkpoints: None)
            "best_checkpoint": str(folder / MEMBERS_FILE),
            "data_fingerprint": data.fingerprint,
            "members": per_member,
            "val": results["val"],
            "test": results["test"],
        }
        manifest = {
            "stage": stage,
            "backend": "ensemble",
            "data_fingerprint": data.fingerprint,
            "num_items": data.num_items,
            "best_checkpoint": MEMBERS_FILE,
            "num_members": len(paths),
        }
        rows = {f"member {i} test": r["test"] for i, r in enumerate(per_member.values())}
        rows.update({"ensemble val": results["val"], "ensemble test": results["test"]})
        publish_stage(run, stage, payload, manifest, f"ensemble teacher on {data.name}", rows)
    return payload
