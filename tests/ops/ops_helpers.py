"""Run the cmd/ scripts against fake programs that record their arguments (no real training).

``make_project`` copies cmd/ (and what the Colab install script reads) into a temporary project, so a
test controls its .venv, env_shell/ and result/ folders. Fake programs (python, python3, poetry, the
project's .venv/bin/python) append one record per call to ``FAKE_LOG``: program path, working folder,
``ILORA_TEST_PROBE`` and the arguments, NUL-separated. ``FAKE_EXIT`` is their exit code;
``FAKE_FAIL_ON=<module>`` applies it to that entry-point module only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULE = "ilora_dllm2rec.exp."

FAKE_PROGRAM = r"""#!/usr/bin/env bash
if [[ $(basename "$0") == poetry && ${1:-} == env ]]; then   # `poetry env info -p`
    [[ ${FAKE_POETRY_ENV:-1} == 0 ]] && { echo /fake/poetry/venv; exit 0; }
    exit 1
fi
n=$(find "$FAKE_LOG" -maxdepth 1 -name 'call_*' | wc -l)
printf '%s\0' "$0" "$PWD" "${ILORA_TEST_PROBE:-}" "$@" > "$FAKE_LOG/call_$(printf %03d "$n")"
code=${FAKE_EXIT:-0}
if [[ -n ${FAKE_FAIL_ON:-} && " $* " != *" ilora_dllm2rec.exp.$FAKE_FAIL_ON "* ]]; then
    code=0
fi
if [[ $code == 2 ]]; then
    echo "error: fake user error" >&2
fi
exit "$code"
"""


@dataclass
class Call:
    program: str
    cwd: str
    probe: str
    args: list[str]

    @property
    def module(self) -> str | None:
        """The entry point module after ``-m``, without the package prefix."""
        if "-m" in self.args:
            name = self.args[self.args.index("-m") + 1]
            return name.removeprefix(MODULE)
        return None

    @property
    def overrides(self) -> list[str]:
        """The arguments after ``-m <module>``."""
        return self.args[self.args.index("-m") + 2 :]


def write_fake(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(FAKE_PROGRAM)
    path.chmod(0o755)
    return path


def make_project(tmp_path: Path, venv: bool = True) -> Path:
    """A copy of cmd/ (+ pyproject.toml and the locks) in tmp_path/proj, optionally with a fake .venv."""
    proj = tmp_path / "proj"
    shutil.copytree(ROOT / "cmd", proj / "cmd")
    for name in ("pyproject.toml", "requirements.lock", "requirements-llm.lock"):
        shutil.copy(ROOT / name, proj / name)
    if venv:
        write_fake(proj / ".venv" / "bin" / "python")
    return proj


def fake_bin(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "fakebin"
    for name in names:
        write_fake(folder / name)
    folder.mkdir(exist_ok=True)
    return folder


def script_env(tmp_path: Path, bin_dir: Path | None = None, **extra: str) -> dict[str, str]:
    """The current environment without ILORA_*/FAKE_* variables, fakes first on PATH, a fresh FAKE_LOG."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ILORA_", "FAKE_", "VIRTUAL_ENV"))}
    log = tmp_path / "calls"
    log.mkdir(exist_ok=True)
    env["FAKE_LOG"] = str(log)
    if bin_dir is not None:
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def run_script(
    proj: Path, script: str, args: list[str], env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(proj / "cmd" / script), *args],
        cwd=cwd or proj,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def calls(env: dict[str, str]) -> list[Call]:
    out = []
    for record in sorted(Path(env["FAKE_LOG"]).glob("call_*")):
        program, cwd, probe, *args = record.read_bytes().decode().split("\0")[:-1]
        out.append(Call(program, cwd, probe, args))
    return out


def make_run(result_root: Path, run: str, folder: str, manifest: bool = True, files: tuple[str, ...] = ()) -> Path:
    """A fake run artifact: result_root/run/folder with files and (optionally) its manifest.json."""
    path = result_root / run / folder
    path.mkdir(parents=True)
    for name in files:
        (path / name).write_text("x")
    if manifest:
        (path / "manifest.json").write_text("{}")
    return path


def movielens_zip(folder: Path, name: str, members: dict[str, str]) -> Path:
    """A MovieLens-shaped archive folder/<name>.zip holding <name>/<member> files."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for member, text in members.items():
            zf.writestr(f"{name}/{member}", text)
    return path
