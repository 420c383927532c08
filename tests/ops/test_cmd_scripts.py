"""cmd/*.sh: argument pass-through, exit codes, runner choice (Poetry / .venv / python3), env_shell."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from .ops_helpers import ROOT, calls, fake_bin, make_project, movielens_zip, run_script, script_env, write_fake

# script -> entry-point module it runs (the specification's script names included)
ENTRY_SCRIPTS = {
    "run_preprocess_data.sh": "run_preprocess_data",
    "run_student_baseline.sh": "run_student_baseline",
    "run_teacher.sh": "run_teacher",
    "run_teacher_train.sh": "run_teacher",
    "run_distill.sh": "run_distill",
    "run_distill_dllm2rec.sh": "run_distill",
    "run_eval_all.sh": "run_eval_all",
    "run_all_pipeline.sh": "run_pipeline",
}
# awkward but legal arguments: spaces, shell syntax, quotes, a Hydra flag; all must arrive unchanged
ARGS = ["dataset=ml-1m", "train.batch_size=64", "hydra.run.dir=result/my run", "x=$(touch pwned)", "k='q'", "-c", "job"]


def all_scripts() -> list[Path]:
    return sorted((ROOT / "cmd").rglob("*.sh"))


def test_every_script_is_executable_strict_bash() -> None:
    names = {p.relative_to(ROOT / "cmd").as_posix() for p in all_scripts()}
    assert set(ENTRY_SCRIPTS) | {"movielens.sh", "_common.sh"} <= names
    for path in all_scripts():
        if path.name == "_common.sh":  # sourced, not run
            continue
        text = path.read_text()
        assert text.startswith("#!/usr/bin/env bash\n"), path
        assert "\nset -euo pipefail\n" in text, path
        assert path.stat().st_mode & 0o111, f"{path} is not executable (chmod +x)"


@pytest.mark.parametrize("script,module", sorted(ENTRY_SCRIPTS.items()))
def test_arguments_pass_through_unchanged(tmp_path: Path, script: str, module: str) -> None:
    proj = make_project(tmp_path)
    env = script_env(tmp_path, fake_bin(tmp_path, "poetry"), ILORA_PYTHON=str(write_fake(tmp_path / "py" / "ipy")))
    proc = run_script(proj, script, ARGS, env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    [call] = calls(env)
    assert call.args == ["-m", f"ilora_dllm2rec.exp.{module}", *ARGS]
    assert call.cwd == str(proj)  # commands run in the project folder: data/ and result/ land there
    assert not (proj / "pwned").exists() and not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("script", sorted(ENTRY_SCRIPTS))
@pytest.mark.parametrize("code", [1, 2, 7])
def test_exit_code_of_the_entry_point_is_kept(tmp_path: Path, script: str, code: int) -> None:
    proj = make_project(tmp_path)
    env = script_env(tmp_path, ILORA_PYTHON=str(write_fake(tmp_path / "py" / "ipy")), FAKE_EXIT=str(code))
    proc = run_script(proj, script, ["dataset=ml-1m"], env)
    assert proc.returncode == code
    if code == 2:
        assert "error: fake user error" in proc.stderr


def test_poetry_runs_when_it_manages_the_project(tmp_path: Path) -> None:
    proj = make_project(tmp_path)
    env = script_env(tmp_path, fake_bin(tmp_path, "poetry"), FAKE_POETRY_ENV="0")
    proc = run_script(proj, "run_teacher.sh", ["teacher.batch_size=4"], env)
    assert proc.returncode == 0, proc.stderr
    [call] = calls(env)
    assert Path(call.program).name == "poetry"
    assert call.args == ["run", "python", "-m", "ilora_dllm2rec.exp.run_teacher", "teacher.batch_size=4"]


def test_poetry_with_another_work_folder_names_the_project(tmp_path: Path) -> None:
    proj = make_project(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    env = script_env(tmp_path, fake_bin(tmp_path, "poetry"), FAKE_POETRY_ENV="0", ILORA_WORKDIR=str(work))
    assert run_script(proj, "run_distill.sh", ["a=1"], env).returncode == 0
    [call] = calls(env)
    assert call.args[:4] == ["--project", str(proj), "run", "python"] and call.cwd == str(work)


@pytest.mark.parametrize("use_poetry", ["auto", "0"])
def test_project_venv_without_a_poetry_environment(tmp_path: Path, use_poetry: str) -> None:
    """`poetry env info -p` fails (auto), or Poetry is switched off: the project's .venv runs."""
    proj = make_project(tmp_path)
    env = script_env(
        tmp_path,
        fake_bin(tmp_path, "poetry", "python3"),
        ILORA_USE_POETRY=use_poetry,
        FAKE_POETRY_ENV="0" if use_poetry == "0" else "1",
    )
    assert run_script(proj, "run_eval_all.sh", ["eval.split=val"], env).returncode == 0
    [call] = calls(env)
    assert call.program == str(proj / ".venv" / "bin" / "python")
    assert call.args == ["-m", "ilora_dllm2rec.exp.run_eval_all", "eval.split=val"]


def test_python3_on_path_without_venv_or_poetry(tmp_path: Path) -> None:
    proj = make_project(tmp_path, venv=False)
    env = script_env(tmp_path, fake_bin(tmp_path, "poetry", "python3"))
    assert run_script(proj, "run_student_baseline.sh", [], env).returncode == 0
    [call] = calls(env)
    assert call.program == str(tmp_path / "fakebin" / "python3") and call.overrides == []


def test_ilora_python_wins_over_poetry(tmp_path: Path) -> None:
    proj = make_project(tmp_path)
    mine = write_fake(tmp_path / "py" / "mypython")
    env = script_env(tmp_path, fake_bin(tmp_path, "poetry"), FAKE_POETRY_ENV="0", ILORA_PYTHON=str(mine))
    assert run_script(proj, "run_student_baseline.sh", ["student=gru4rec"], env).returncode == 0
    assert [c.program for c in calls(env)] == [str(mine)]


def test_env_shell_is_sourced_in_order_without_nounset(tmp_path: Path) -> None:
    proj = make_project(tmp_path)
    (proj / "env_shell").mkdir()
    # typical CUDA settings reference variables that may be unset
    (proj / "env_shell" / "10_cuda.sh").write_text('export ILORA_TEST_PROBE="cuda:$SURELY_UNSET_VARIABLE_X"\n')
    (proj / "env_shell" / "20_more.sh").write_text('export ILORA_TEST_PROBE="$ILORA_TEST_PROBE+more"\n')
    (proj / "env_shell" / "notes.txt").write_text("exit 9\n")  # only *.sh files are sourced
    env = script_env(tmp_path, fake_bin(tmp_path, "poetry"))
    proc = run_script(proj, "run_teacher.sh", [], env)
    assert proc.returncode == 0, proc.stderr
    assert calls(env)[0].probe == "cuda:+more"


def test_env_shell_python_setting_is_honoured(tmp_path: Path) -> None:
    """ILORA_PYTHON set in env_shell/ (the user's machine settings) selects the interpreter."""
    proj = make_project(tmp_path)
    mine = write_fake(tmp_path / "py" / "conda-python")
    (proj / "env_shell").mkdir()
    (proj / "env_shell" / "py.sh").write_text(f"export ILORA_PYTHON={mine}\n")
    env = script_env(tmp_path, fake_bin(tmp_path, "poetry"))
    assert run_script(proj, "run_distill.sh", [], env).returncode == 0
    assert calls(env)[0].program == str(mine)


def test_failing_env_shell_stops_before_python(tmp_path: Path) -> None:
    proj = make_project(tmp_path)
    (proj / "env_shell").mkdir()
    (proj / "env_shell" / "broken.sh").write_text("false\n")
    env = script_env(tmp_path, fake_bin(tmp_path, "poetry"))
    proc = run_script(proj, "run_teacher.sh", [], env)
    assert proc.returncode == 1 and calls(env) == []


def test_shipped_env_shell_template_changes_nothing() -> None:
    lines = (ROOT / "env_shell" / "example.sh").read_text().splitlines()
    assert lines and all(not line.strip() or line.lstrip().startswith("#") for line in lines)


def test_work_folder_can_be_moved(tmp_path: Path) -> None:
    proj = make_project(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    env = script_env(tmp_path, fake_bin(tmp_path, "poetry"), ILORA_WORKDIR=str(work))
    assert run_script(proj, "run_all_pipeline.sh", ["experiment=quickstart"], env).returncode == 0
    assert calls(env)[0].cwd == str(work)
    env["ILORA_WORKDIR"] = str(tmp_path / "missing")
    proc = run_script(proj, "run_all_pipeline.sh", [], env)
    assert proc.returncode == 2 and "error: ILORA_WORKDIR=" in proc.stderr


# -- movielens.sh ---------------------------------------------------------------------------------------


def ml1m_archive(folder: Path) -> Path:
    return movielens_zip(
        folder,
        "ml-1m",
        {
            "ratings.dat": "1::1193::5::978300760\n",
            "movies.dat": "1::T (2000)::A\n",
            "users.dat": "1::F::1::10::48067\n",
        },
    )


def test_movielens_download_and_unpack(tmp_path: Path) -> None:
    proj = make_project(tmp_path)
    archive = ml1m_archive(tmp_path / "mirror")
    env = script_env(tmp_path, ILORA_MOVIELENS_URL=f"file://{archive.parent}")
    proc = run_script(proj, "movielens.sh", [], env)  # default: ml-1m into data/ml-1m
    assert proc.returncode == 0, proc.stderr
    assert (proj / "data" / "ml-1m" / "ratings.dat").read_text().startswith("1::1193")
    assert sorted(p.name for p in (proj / "data").iterdir()) == ["ml-1m"]  # no temporary folder left
    archive.unlink()  # present data: nothing is downloaded again
    proc = run_script(proj, "movielens.sh", ["movielens"], env)
    assert proc.returncode == 0 and "nothing to do" in proc.stderr


def test_movielens_destination_relative_to_caller(tmp_path: Path) -> None:
    proj = make_project(tmp_path)
    archive = movielens_zip(tmp_path / "mirror", "ml-100k", {"u.data": "1\t2\t5\t881250949\n", "u.item": "x\n"})
    env = script_env(tmp_path, ILORA_MOVIELENS_URL=f"file://{archive.parent}")
    proc = run_script(proj, "movielens.sh", ["ml-100k", "somewhere/ml100k"], env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "somewhere" / "ml100k" / "u.data").is_file()


def test_movielens_checks_published_md5(tmp_path: Path) -> None:
    proj = make_project(tmp_path)
    archive = ml1m_archive(tmp_path / "mirror")
    md5 = Path(f"{archive}.md5")
    env = script_env(tmp_path, ILORA_MOVIELENS_URL=f"file://{archive.parent}")
    md5.write_text("MD5 (ml-1m.zip) = 0123456789abcdef0123456789abcdef\n")
    proc = run_script(proj, "movielens.sh", ["ml-1m"], env)
    assert proc.returncode == 1 and "MD5 mismatch" in proc.stderr
    assert not (proj / "data" / "ml-1m").exists() and list((proj / "data").iterdir()) == []
    md5.write_text(f"{hashlib.md5(archive.read_bytes()).hexdigest()}  ml-1m.zip\n")
    proc = run_script(proj, "movielens.sh", ["ml-1m"], env)
    assert proc.returncode == 0 and "MD5 ok" in proc.stderr


@pytest.mark.parametrize("problem", ["corrupt", "missing", "not-movielens"])
def test_movielens_failures_leave_no_half_folder(tmp_path: Path, problem: str) -> None:
    proj = make_project(tmp_path)
    mirror = tmp_path / "mirror"
    if problem == "corrupt":
        mirror.mkdir()
        (mirror / "ml-1m.zip").write_bytes(b"PK\x03\x04 this is not a zip")
    elif problem == "not-movielens":
        movielens_zip(mirror, "ml-1m", {"readme.txt": "hello"})
    env = script_env(tmp_path, ILORA_MOVIELENS_URL=f"file://{mirror}")
    proc = run_script(proj, "movielens.sh", ["ml-1m"], env)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
    assert not (proj / "data" / "ml-1m").exists()
    assert not list((proj / "data").glob(".ml-1m.download.*"))


def test_movielens_user_errors(tmp_path: Path) -> None:
    proj = make_project(tmp_path)
    env = script_env(tmp_path)
    proc = run_script(proj, "movielens.sh", ["ml-20m"], env)
    assert proc.returncode == 2 and "error: unknown MovieLens data set 'ml-20m'" in proc.stderr
    (proj / "data" / "ml-1m").mkdir(parents=True)
    (proj / "data" / "ml-1m" / "mine.txt").write_text("keep me")
    proc = run_script(proj, "movielens.sh", ["ml-1m"], env)
    assert proc.returncode == 2 and "has no ratings.dat" in proc.stderr
    assert (proj / "data" / "ml-1m" / "mine.txt").read_text() == "keep me"
