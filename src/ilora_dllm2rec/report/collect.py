"""Which models run-eval-all evaluates (``eval.collect``, ``eval.runs``; conf/eval/default.yaml).

- ``newest`` (default): one model per stage of ``eval.models``: ``eval.<stage>_checkpoint``, else this run's, else
  the newest complete run with the same data fingerprint under ``paths.result_root``. Rows are named by stage.
- ``all``: every complete baseline / teacher / distill under ``paths.result_root/result_*`` whose manifest matches
  this data (fingerprint and item count); rows are named ``<stage> <model> [<run folder>]``.
- ``eval.runs=[...]``: an explicit list of run folders, model folders or checkpoints, named the same way; each
  must match this data (an entry that does not is an error naming it).

A model is complete when its ``models/<stage>/manifest.json`` exists (core/artifacts.py writes it last).
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from ..core.artifacts import MANIFEST_NAME, find_input, fingerprint_matcher, read_manifest
from ..core.distributed import is_rank_zero
from ..core.errors import ArtifactError, ConfigError
from ..core.run_logging import RunDir
from ..core.schema_groups import Eval, Significance
from ..data import SplitData

log = logging.getLogger(__name__)
MODELS = ("baseline", "teacher", "distill")


@dataclass(frozen=True)
class Candidate:
    """One model to evaluate: its row label, stage, model name, run folder name, checkpoint and stage manifest."""

    label: str
    stage: str
    model: str
    run: str
    ckpt: Path
    manifest: dict


def model_name(stage: str, manifest: dict) -> str:
    """The student type of a baseline / distilled model, the backend of a teacher (ilora, sasrec, ensemble)."""
    if stage == "teacher":
        return str(manifest.get("backend", "ilora"))
    return str(manifest.get("model", stage))


def run_name(model_folder: Path) -> str:
    """``result_X`` for ``result_X/models/<stage>``; the folder's own name for any other layout."""
    return model_folder.parent.parent.name if model_folder.parent.name == "models" else model_folder.name


def collect_models(spec: Eval, result_root: str, data: SplitData, run: RunDir) -> list[Candidate]:
    """The models to evaluate, in table order; an empty list when there is none (the caller reports it).
    ``spec`` was checked by the schema (which refuses eval.runs with collect=all, or with a <stage>_checkpoint)."""
    stages, mode, runs = list(spec.models), spec.collect, list(spec.runs)
    if runs:
        return _unique([c for entry in runs for c in _from_entry(entry, stages, data)])
    if mode == "all":
        return _collect_all(result_root, data, run, stages)
    return _newest(spec, result_root, data, run, stages)


def locate(spec: Eval, result_root: str, data: SplitData, run: RunDir, name: str) -> tuple[Path, dict] | None:
    """Explicit ``eval.<name>_checkpoint`` (must exist), else this run's, else the newest matching run's."""
    explicit = getattr(spec, f"{name}_checkpoint")
    found = find_input(
        result_root,
        f"models/{name}",
        fingerprint_matcher(data.fingerprint, data.num_items),
        explicit=explicit,
        explicit_error=f"eval.{name}_checkpoint={explicit} does not exist: fix the path or set it to null",
        own_run=run.root,
        exclude_run=run.root,
    )
    return None if found is None else (found.path, found.manifest)


def _newest(spec: Eval, result_root: str, data: SplitData, run: RunDir, stages: list[str]) -> list[Candidate]:
    out = []
    for stage in stages:
        located = locate(spec, result_root, data, run, stage)
        if located is None:
            log.warning("no %s model found for data set %s: skipped", stage, data.name)
            continue
        ckpt, manifest = located
        out.append(Candidate(stage, stage, model_name(stage, manifest), run_name(ckpt.parent), ckpt, manifest))
    return out


def _candidate(folder: Path, stage: str) -> Candidate | None:
    """The complete model in ``folder`` (``models/<stage>``), or None when it has no manifest."""
    manifest = read_manifest(folder) if folder.is_dir() else None
    if manifest is None:
        return None
    ckpt = folder / manifest.get("best_checkpoint", "best.ckpt")
    model, name = model_name(stage, manifest), run_name(folder)
    return Candidate(f"{stage} {model} [{name}]", stage, model, name, ckpt, manifest)


def _collect_all(result_root: str, data: SplitData, run: RunDir, stages: list[str]) -> list[Candidate]:
    root = Path(result_root)
    folders = sorted(p for p in root.glob("result_*") if p.is_dir()) if root.is_dir() else []
    if all(f.resolve() != run.root.resolve() for f in folders):
        folders.append(run.root)  # a run folder outside result_root (hydra.run.dir=...): its own models count too
    accept = fingerprint_matcher(data.fingerprint, data.num_items)
    out = []
    for folder in folders:
        for stage in stages:
            found = _candidate(folder / "models" / stage, stage)
            if found is None:
                continue
            reason = accept(found.manifest)
            if reason is None and not found.ckpt.is_file():
                reason = f"its manifest names {found.ckpt.name}, which is missing"
            if reason is not None:
                log.info("skipping %s: %s", folder / "models" / stage, reason)
                continue
            out.append(found)
    return sorted(out, key=lambda c: (MODELS.index(c.stage), c.run))


def _from_entry(entry: str, stages: list[str], data: SplitData) -> list[Candidate]:
    """The models of one ``eval.runs`` entry: a run folder (each complete model of ``stages``), a model folder or
    a checkpoint (that one model, whatever ``eval.models`` says: it was named explicitly)."""
    path = Path(entry)
    if not path.exists():
        raise ArtifactError(
            f"eval.runs: {entry} does not exist: list run folders (result/result_X), model folders "
            "(result/result_X/models/baseline) or checkpoints"
        )
    if path.is_dir() and (path / "models").is_dir():
        found = [c for stage in stages if (c := _candidate(path / "models" / stage, stage)) is not None]
        if not found:
            raise ArtifactError(
                f"eval.runs: {entry} holds no complete model of eval.models={stages} (models/<stage>/{MANIFEST_NAME}): "
                "finish that run or remove it from the list"
            )
    else:
        folder = path if path.is_dir() else path.parent
        manifest = read_manifest(folder)
        if manifest is None:
            raise ArtifactError(
                f"eval.runs: {entry} has no {MANIFEST_NAME} (an incomplete run, or not a model folder), so its data "
                "cannot be checked: list a complete run folder or model folder"
            )
        stage = str(manifest.get("stage", folder.name))
        if stage not in MODELS:
            raise ArtifactError(f"eval.runs: {entry} is a {stage!r} folder, not one of {list(MODELS)}")
        one = _candidate(folder, stage)
        if path.is_file() and path.resolve() != one.ckpt.resolve():  # not the manifest's choice (last.ckpt): named
            one = Candidate(f"{one.label[:-1]} {path.name}]", stage, one.model, one.run, path, manifest)
        found = [one]
    accept = fingerprint_matcher(data.fingerprint, data.num_items)
    for c in found:
        reason = accept(c.manifest)
        if reason is not None:
            named = dataset_of(path if (path / "models").is_dir() else c.ckpt.parent.parent.parent)
            hint = f"; its run used dataset={named} (pass that)" if named else ""
            raise ArtifactError(
                f"eval.runs: {entry} was trained on other data than this config's dataset={data.name} ({reason}){hint}"
                ": evaluate it with the data it was trained on, or remove it from the list"
            )
        if not c.ckpt.is_file():
            raise ArtifactError(f"eval.runs: {entry}: the checkpoint {c.ckpt} is missing: rerun that stage")
    return found


def _unique(candidates: list[Candidate]) -> list[Candidate]:
    seen, out = set(), []
    for c in candidates:
        key = c.ckpt.resolve()
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def dataset_of(run_folder: Path) -> str | None:
    """``dataset.name`` from a run folder's ``.hydra/config.yaml`` (written by every entry point), if readable."""
    config = run_folder / ".hydra" / "config.yaml"
    if not config.is_file():
        return None
    try:
        name = OmegaConf.select(OmegaConf.load(config), "dataset.name")
    except Exception:  # noqa: BLE001 - only a hint for an error message: an unreadable config gives none
        return None
    return str(name) if name else None


def other_data_sets(result_root: str | Path, data: SplitData) -> list[str]:
    """The data sets (by their runs' Hydra configs) of the complete runs under ``result_root`` on other data."""
    root = Path(result_root)
    names = set()
    for folder in sorted(root.glob("result_*")) if root.is_dir() else []:
        manifests = [read_manifest(folder / "models" / s) for s in MODELS if (folder / "models" / s).is_dir()]
        if any(m is not None and m.get("data_fingerprint") != data.fingerprint for m in manifests):
            name = dataset_of(folder)
            if name:
                names.add(name)
    return sorted(names)


def nothing_to_evaluate(spec: Eval, result_root: str, data: SplitData, run: RunDir) -> ArtifactError:
    """The error for an empty collection, after removing this invocation's still-empty run folder."""
    discard_empty_run_folder(run.root)
    others = other_data_sets(result_root, data)
    hint = ""
    if others:
        listed = ", ".join(f"dataset={n}" + (" (other settings)" if n == data.name else "") for n in others)
        hint = f"; the complete runs there are for {listed}: pass the data set they were trained on"
    where = "in eval.runs" if spec.runs else f"under {result_root}"
    return ArtifactError(
        f"nothing to evaluate: no complete {'/'.join(spec.models)} model for dataset={data.name} "
        f"(fingerprint {data.fingerprint}) {where}{hint}; train one first (run-student-baseline, run-pipeline) or "
        "name runs with eval.runs=[...]"
    )


def discard_empty_run_folder(root: Path) -> bool:
    """Remove ``root`` when it holds only what every start writes (Hydra's ``.hydra/`` and job log, git_info.txt,
    empty logs/ tb/ models/ metrics/), so that a run-eval-all with nothing to evaluate leaves no empty result_*
    folder behind. A folder with anything else (a pipeline's models, metrics) is kept."""
    if not is_rank_zero() or not root.is_dir():
        return False
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if path.is_dir() or rel.parts[0] == ".hydra":
            continue
        if len(rel.parts) == 1 and (rel.name == "git_info.txt" or rel.suffix == ".log"):
            continue
        return False
    shutil.rmtree(root, ignore_errors=True)
    if root.parent.is_dir() and not any(root.parent.iterdir()):
        root.parent.rmdir()  # paths.result_root, created by Hydra for this run only
    log.info("nothing to evaluate: removed the empty run folder %s", root)
    return True


def resolve_reference(spec: Significance, candidates: list[Candidate]) -> str | None:
    """The label ``eval.significance.reference`` names: a label, or words of one (stage, model, run folder); when
    several models match, the one from the newest run folder. None when significance is off, or when the reference
    is a stage that was not evaluated (then there is no comparison)."""
    if not spec.enabled:
        return None
    wanted = str(spec.reference).strip()
    labels = [c.label for c in candidates]
    if wanted in labels:
        return wanted
    words = {w for w in re.split(r"[\s\[\]]+", wanted) if w}
    matches = [c for c in candidates if words and words <= {c.stage, c.model, c.run}]
    if not matches:
        if wanted in MODELS:
            log.info("eval.significance.reference=%s: no %s model evaluated, no paired comparison", wanted, wanted)
            return None
        raise ConfigError(
            f"eval.significance.reference={wanted!r} matches none of the evaluated models {labels}: use one of these "
            "labels or words of one (a stage, a model name, a run folder)"
        )
    chosen = max(matches, key=lambda c: c.run)  # result_YYYYMMDD_HHMMSS names sort by time
    if len(matches) > 1:
        log.info(
            "eval.significance.reference=%s matches %d models: using %s (the newest run); name one of %s to choose",
            wanted,
            len(matches),
            chosen.label,
            [c.label for c in matches],
        )
    return chosen.label
