"""Shared plumbing for the thin Hydra entry points.

``hydra_entry`` turns a stage function ``fn(cfg, run)`` into a console-script ``main``:
- the config is composed by Hydra (overrides apply, unknown keys are errors: struct mode);
- a :class:`UserError` prints ONE line ``error: ...`` on stderr (once: the log files get it, the console
  logger does not) and exits with status 2;
- any other exception propagates, and Hydra prints it and exits with status 1.
Nothing is swallowed: an entry point that exits 0 on failure hides the failure from scripts and CI.

Hydra creates the run folder (``hydra.run.dir``, ``.hydra/``, its job log) BEFORE the task function runs, so
every refusal of a run that never starts (unknown keys and options, wrong types, values out of range, a result
folder that cannot be written) happens in ``main`` before Hydra does: no folder is left behind, and an existing
one (``resume=true``) is not touched.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from ..core.artifacts import read_json, update_json
from ..core.config import config_dir
from ..core.errors import UserError
from ..core.git_info import save_git_info
from ..core.override_check import check_command_line, multirun_jobs
from ..core.run_logging import RunDir, log_to_files, run_dir_problem
from ..core.runtime import configure_threads, cpu_bf16_override, release_free_heap, tune_malloc
from ..core.schema_stages import validate_config

log = logging.getLogger("ilora_dllm2rec")


def run_dir_from_hydra() -> RunDir:
    return RunDir(Path(HydraConfig.get().runtime.output_dir))


def command_line_overrides() -> list[str]:
    """The ``key=value`` overrides this run was started with (re-applied to each stage's trainer by run-pipeline)."""
    return list(HydraConfig.get().overrides.task)


# What each resumable stage's result depends on besides the data (the data fingerprint covers the dataset
# section and the files): these config sections are hashed into the key its run-manifest entry records.
# Training a teacher ignores ``teacher.export``, so an export-only change re-exports and keeps the teacher.
STAGE_SECTIONS: dict[str, tuple[str, ...]] = {
    "baseline": ("student", "train", "metrics", "general.seed"),
    "teacher": ("student", "teacher", "train", "metrics", "general.seed"),
    "export": ("student", "teacher", "active", "general.seed"),
    "distill": ("student", "distill", "active", "train", "metrics", "general.seed"),
}


def stage_config_key(cfg: DictConfig, stage: str) -> dict[str, str]:
    """A short hash per config section ``stage`` depends on (sections named, so a mismatch can say which)."""
    import hashlib
    import json

    from omegaconf import OmegaConf

    key = {}
    for section in STAGE_SECTIONS[stage]:
        node = OmegaConf.select(cfg, section)
        value = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
        if stage == "teacher" and section == "teacher" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k != "export"}
        text = json.dumps(value, sort_keys=True, default=str)
        key[section] = hashlib.sha256(text.encode()).hexdigest()[:12]
    return key


def mark_stage_complete(run: RunDir, stage: str, info: dict | None = None, cfg: DictConfig | None = None) -> None:
    """The run-level manifest (written last by each stage) lists the stages that completed, each with the
    config key ``resume=true`` compares (``cfg``: the config the stage ran with)."""
    manifest_path = run.root / "manifest.json"
    current = read_json(manifest_path, "run manifest") if manifest_path.is_file() else {}
    stages = current.get("completed_stages", {})
    stages[stage] = dict(info or {})
    if cfg is not None and stage in STAGE_SECTIONS:
        stages[stage]["config_key"] = stage_config_key(cfg, stage)
    update_json(manifest_path, {"completed_stages": stages, "run_dir": str(run.root)})
    release_free_heap()  # the next stage starts from what is in use, not from this stage's freed peak


def _config_mismatch(cfg: DictConfig, run: RunDir, stage: str) -> str | None:
    """Why the run manifest's record of ``stage`` does not match ``cfg`` (None: it matches)."""
    path = run.root / "manifest.json"
    recorded = read_json(path, "run manifest").get("completed_stages", {}) if path.is_file() else {}
    if stage not in recorded:
        return f"{path} does not list the {stage} stage as complete"
    if "config_key" not in recorded[stage]:  # a folder from before config keys were recorded
        log.warning("resume: %s records no config key for %s (older version): assuming it matches", path, stage)
        return None
    old, new = recorded[stage]["config_key"], stage_config_key(cfg, stage)
    changed = sorted(s for s in set(old) | set(new) if old.get(s) != new.get(s))
    return f"config changed since it ran: {', '.join(changed)}" if changed else None


def stage_done(
    cfg: DictConfig,
    run: RunDir,
    stage: str,
    folder: str,
    fingerprint: str,
    check: Callable[[dict], str | None] | None = None,
) -> bool:
    """``resume=true``: is ``{run}/{folder}`` complete, made for this data set and with this config?

    The stage's own manifest must exist and match (``check(manifest)`` returns a mismatch reason or None; the
    default compares the data fingerprint), and the run manifest must record the stage with the same config
    key (:data:`STAGE_SECTIONS`). A stage that does not match is redone (a warning says why), and the caller
    must then redo every later stage too; without ``resume`` every stage runs."""
    from ..core.artifacts import read_manifest

    manifest = read_manifest(run.root / folder)
    if not cfg.get("resume", False) or manifest is None:
        return False
    if check is not None:
        reason = check(manifest)
    elif manifest.get("data_fingerprint") != fingerprint:
        reason = f"data fingerprint {manifest.get('data_fingerprint')} != {fingerprint}"
    else:
        reason = None
    reason = reason or _config_mismatch(cfg, run, stage)
    if reason:
        log.warning("resume: %s does not match this run (%s): redoing the stage", folder, reason)
        return False
    log.info("resume: %s is complete, skipping the stage", folder)
    return True


def quiet_third_party_logs() -> None:
    """Keep the console for our own messages: Lightning's tips and device banners go to DEBUG level."""
    import warnings

    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*number of training batches.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    # the teacher's frozen student stays in eval mode on purpose
    warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")
    warnings.filterwarnings("ignore", message=".*infer the batch indices.*")
    # DDP: epoch metrics are torchmetrics MeanMetrics, which sync across ranks in compute() themselves
    warnings.filterwarnings("ignore", message=".*sync_dist=True.*")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


def refuse(message: str) -> NoReturn:
    """Print ``error: <message>`` as ONE line on stderr and exit with status 2."""
    print(f"error: {' '.join(message.split())}", file=sys.stderr, flush=True)
    sys.exit(2)


ConfigCheck = Callable[[DictConfig], None]


def check_config(cfg: DictConfig, config_name: str, checks: Sequence[ConfigCheck] = ()) -> None:
    """ConfigError naming the first bad setting: an unknown or removed key, a wrong type, a value out of range, a
    rule across keys broken (the schema, core/schema_*.py), then the entry point's
    own ``checks`` (settings that only one entry point reads together)."""
    validate_config(cfg, pipeline=config_name == "run_pipeline")
    cpu_bf16_override()  # the one environment variable that changes a run: refused here, not ignored later
    for check in checks:
        check(cfg)


def check_before_start(config_name: str, argv: Sequence[str] | None = None, checks: Sequence[ConfigCheck] = ()) -> None:
    """Exit 2 with one ``error:`` line, before Hydra creates the run folder, when the command line cannot start a
    run: it does not compose, a setting is refused, or the result folder cannot be created or written.

    A ``--multirun`` command line is checked for every job it starts, and its sweep folder, before the first job
    runs. Command lines with other flags (``--cfg``, ``-cn`` ...) are left to Hydra; the task checks the config
    again.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    jobs, folder_key = multirun_jobs(args), "hydra.sweep.dir"
    if jobs is None:
        jobs, folder_key = [args], "hydra.run.dir"
    for job in jobs:
        _check_job(config_name, job, folder_key, checks)


def _check_job(config_name: str, args: list[str], folder_key: str, checks: Sequence[ConfigCheck]) -> None:
    composed = check_command_line(config_name, args)  # a misspelled key or group: one line and a suggestion
    if composed is None:
        return
    try:
        run_dir = OmegaConf.select(composed, folder_key)
    except Exception:  # an interpolation only Hydra's own run can resolve: Hydra reports on the folder itself
        run_dir = None
    cfg = composed.copy()
    with open_dict(cfg):
        del cfg["hydra"]  # what the task function receives (Hydra removes the node the same way)
    try:
        check_config(cfg, config_name, checks)
    except UserError as exc:
        refuse(str(exc))
    problem = run_dir_problem(run_dir) if run_dir else None
    if problem:
        refuse(problem)


def hydra_entry(
    config_name: str, checks: Sequence[ConfigCheck] = ()
) -> Callable[[Callable[[DictConfig, RunDir], object]], Callable[[], None]]:
    """The console-script ``main`` of a stage function; ``checks`` are refusals of this entry point's own (run
    before Hydra creates the run folder, like the common ones)."""

    def decorate(fn: Callable[[DictConfig, RunDir], object]) -> Callable[[], None]:
        @functools.wraps(fn)
        def task(cfg: DictConfig) -> None:
            try:  # already passed in main() unless the command line had flags; before our own sub-folders
                check_config(cfg, config_name, checks)
            except UserError as exc:
                refuse(str(exc))
            # before anything imports torch: the OpenMP runtime reads its wait policy when torch loads it
            configure_threads(cfg.general.num_threads, str(cfg.general.thread_wait))
            quiet_third_party_logs()
            tune_malloc(bool(cfg.general.tune_malloc))
            run = run_dir_from_hydra()
            save_git_info(run.root)
            try:
                fn(cfg, run)
            except UserError as exc:
                # the run folder's logs keep the error; the console shows refuse()'s line only
                log_to_files(log, logging.ERROR, "error: " + " ".join(str(exc).split()))
                refuse(str(exc))

        def main() -> None:
            check_before_start(config_name, checks=checks)
            hydra.main(version_base="1.3", config_path=str(config_dir()), config_name=config_name)(task)()

        main.task = task  # type: ignore[attr-defined]
        return main

    return decorate
