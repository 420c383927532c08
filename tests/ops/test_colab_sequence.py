"""The Colab sequence end to end, for real, in a FRESH virtual environment on CPU, as a Colab user runs it.

01 installs the project with pip into the new environment (torch: the lock's version, which pip takes
from the machine's local wheels when it has them), then 02 (synthetic data), 10, 11 and 12 run with tiny
settings; 11 and 12 must find the baseline / teacher export of the step before by themselves.
It installs every dependency into a fresh venv (a few minutes); it is part of `make test`, so CI runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .ops_helpers import ROOT


def newest(result: Path, folder: str) -> Path:
    runs = sorted(p for p in result.glob("result_*") if (p / folder / "manifest.json").is_file())
    assert runs, f"no run with {folder}/manifest.json under {result}"
    return runs[-1]


def test_colab_sequence_in_a_fresh_venv(tmp_path: Path) -> None:
    venv, work = tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ILORA_", "PYTHON", "VIRTUAL_ENV"))}
    # as `source venv/bin/activate` (or a Colab notebook's own python3) would leave it
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}",
        VIRTUAL_ENV=str(venv),
        ILORA_USE_POETRY="0",
        ILORA_WORKDIR=str(work),
        HF_HUB_OFFLINE="1",
    )

    def step(script: str, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            ["bash", str(ROOT / "cmd" / "colab" / script), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{proc.stderr[-4000:]}"
        return proc

    proc = step("01_install_dependencies.sh", timeout=1800)
    assert "no torch in python3" in proc.stderr
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import ilora_dllm2rec, torch; print(torch.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert installed.startswith(str(venv))  # the fresh environment, not the project's .venv
    proc = step("01_install_dependencies.sh", timeout=900)  # again: the torch now present is kept
    assert "keeping the installed torch" in proc.stderr

    tiny = [
        "experiment=quickstart",
        "dataset.synthetic.num_users=60",
        "student.num_epochs=1",
        f"teacher.llm_path=tiny:{tmp_path / 'tinyllm'}",
        "teacher.max_train_samples=32",
        "teacher.max_eval_samples=20",
        "teacher.num_epochs=1",
        "teacher.max_prompt_tokens=64",
        "distill.num_epochs=1",
        "logging.progress_bar=false",
    ]
    result = work / "result"
    step("02_prepare_dataset.sh", "synthetic", *tiny)
    assert any((work / "data" / "processed").iterdir())

    step("10_run_student_baseline.sh", *tiny)
    baseline_run = newest(result, "models/baseline")
    assert (baseline_run / "models" / "baseline" / "best.ckpt").is_file()

    proc = step("11_run_teacher.sh", *tiny)
    assert f"newest complete baseline: result/{baseline_run.name}/models/baseline" in proc.stderr
    teacher_run = newest(result, "teacher_outputs")
    assert teacher_run != baseline_run
    assert (teacher_run / "models" / "teacher" / "manifest.json").is_file()
    assert (teacher_run / "teacher_outputs" / "myrank_train.txt").is_file()

    proc = step("12_run_distill.sh", *tiny)
    assert f"newest complete teacher export: result/{teacher_run.name}/teacher_outputs" in proc.stderr
    distill_run = newest(result, "models/distill")
    assert distill_run not in (baseline_run, teacher_run)
    stages = json.loads((distill_run / "manifest.json").read_text())["completed_stages"]
    assert "distill" in stages
