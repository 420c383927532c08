"""Shared helpers of the ml-100k benchmarks (bench_students.py, bench_distill.py); not part of the package.

- the real Hydra config composed from conf/ with overrides (as the entry points and tests do);
- one benchmark row per child process, so each row's peak RSS and wall time are its own;
- steady-state training throughput of a Lightning module's ``training_step`` (fwd + bwd + Adam);
- Markdown tables.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import shlex
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"


def default_data_dir() -> Path:
    """``$ML100K_DIR`` or ``../shared/data/ml-100k`` next to the repository (the data is read, never copied)."""
    return Path(os.environ.get("ML100K_DIR", ROOT.parent / "shared" / "data" / "ml-100k")).resolve()


def check_data_dir(path: Path) -> Path:
    if not (path / "u.data").is_file():
        sys.exit(f"error: MovieLens-100K not found at {path} (u.data missing): pass --data-dir or set ML100K_DIR")
    return path


def compose_cfg(overrides: Sequence[str], config_name: str = "config") -> DictConfig:
    """The real config tree from conf/, like an entry point would compose it (no run folder, no chdir)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        return compose(config_name=config_name, overrides=list(overrides))


def base_overrides(data_dir: Path, work: Path) -> list[str]:
    """ml-100k from ``data_dir``; every written file (cache, result folders) inside ``work``; quiet console."""
    return [
        "dataset=ml-100k",
        f"dataset.data_dir={data_dir}",
        f"paths.cache_dir={work / 'cache'}",
        f"paths.result_root={work / 'result'}",
        f"paths.data_dir={work / 'data'}",
        "logging.progress_bar=false",
        "logging.tensorboard=false",
    ]


def quiet() -> None:
    """Keep the worker logs readable (Lightning banners, per-epoch info)."""
    from ilora_dllm2rec.exp.common import quiet_third_party_logs

    quiet_third_party_logs()
    warnings.filterwarnings("ignore", message=".*Checkpoint directory.*")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)


def worker_setup(threads: int | None) -> None:
    """A benchmark worker's process settings: quiet logs, the entry points' malloc tuning
    (``general.tune_malloc`` default, so a worker runs like ``run-*`` would) and torch's intra-op threads
    (``--threads``; by default torch uses one per physical core)."""
    from ilora_dllm2rec.core.runtime import tune_malloc

    quiet()
    tune_malloc()
    if threads is not None:
        torch.set_num_threads(int(threads))


def peak_rss_mb() -> float:
    """Peak resident set size of THIS process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def loadavg() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


# -- one row per child process --------------------------------------------------------------------------


def run_worker(script: Path, row: str, args: list[str], work: Path, timeout: float | None = None) -> dict:
    """Run ``python script --worker row args`` and return the JSON it writes; its log goes to ``work/row.log``."""
    out = work / f"{row}.json"
    log_path = work / f"{row}.log"
    cmd = [sys.executable, str(script), "--worker", row, "--worker-out", str(out), *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    load_before = loadavg()
    with log_path.open("w") as log_file:
        proc = subprocess.run(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env, timeout=timeout, check=False)
    if proc.returncode != 0 or not out.is_file():
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-25:])
        raise RuntimeError(f"row {row} failed (exit {proc.returncode}); command: {shlex.join(cmd)}\n{tail}")
    result = json.loads(out.read_text())
    result.setdefault("process_wall_s", time.perf_counter() - start)
    result["load_before"], result["load_after"] = load_before, loadavg()
    return result


def write_worker_result(path: str, result: dict) -> None:
    result["peak_rss_mb"] = peak_rss_mb()
    result["torch_threads"] = torch.get_num_threads()
    Path(path).write_text(json.dumps(result, indent=2, default=float))


# -- steady-state training throughput ---------------------------------------------------------------------


def autocast_context(precision: str):
    """Lightning's ``bf16-mixed`` on CPU is ``torch.autocast('cpu', dtype=torch.bfloat16)``."""
    if precision.startswith("bf16"):
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return nullcontext()


def time_steps(step: Callable[[dict], None], batches: Iterable[dict], warmup: int, steps: int) -> dict:
    """Run ``warmup`` untimed then ``steps`` timed calls of ``step(batch)``; samples/s over the timed ones."""
    it = iter(batches)
    for _ in range(warmup):
        step(next(it))
    samples = 0
    start = time.perf_counter()
    for _ in range(steps):
        batch = next(it)
        step(batch)
        samples += int(batch["target"].shape[0])
    elapsed = time.perf_counter() - start
    return {"samples_per_s": samples / elapsed, "steps": steps, "seconds": elapsed}


def cycle(loader: Iterable[dict]) -> Iterable[dict]:
    while True:
        yield from loader


def module_step_fn(module, precision: str = "32-true") -> Callable[[dict], None]:
    """One optimisation step of a Lightning module outside a Trainer: ``training_step`` + backward + Adam."""
    module.log = lambda *a, **k: None  # no Trainer attached: logging is a no-op here
    module.train()
    optimizer = module.configure_optimizers()

    def step(batch: dict) -> None:
        with autocast_context(precision):
            loss = module.training_step(batch, 0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


# -- tables ----------------------------------------------------------------------------------------------------


def fmt(value, spec: str = ".4f") -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, str):
        return value
    return format(value, spec)


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def command_line() -> str:
    """The exact command that produced a table (relative script path, as typed in the repository root)."""
    script = Path(sys.argv[0]).resolve()
    try:
        shown = str(script.relative_to(ROOT))
    except ValueError:
        shown = str(script)
    return "PYTHONPATH=src python " + shlex.join([shown, *sys.argv[1:]])


class TrainerSpy:
    """Records the Lightning Trainers the stages build (``fit_student`` -> ``build_trainer``), to read back
    how many epochs actually ran (early stopping) without changing the library code."""

    def __init__(self) -> None:
        import ilora_dllm2rec.student.train as student_train

        self.trainers: list = []
        self._module = student_train
        self._original = student_train.build_trainer

        def spy(*args, **kwargs):
            trainer, ckpt = self._original(*args, **kwargs)
            self.trainers.append(trainer)
            return trainer, ckpt

        student_train.build_trainer = spy

    def epochs_run(self) -> int:
        """Epochs completed by the most recent fit."""
        return int(self.trainers[-1].current_epoch)
