"""Every module of the package has at most 300 lines: a longer one is split by responsibility."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "ilora_dllm2rec"
MAX_LINES = 300


def test_every_module_has_at_most_300_lines():
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 50, PACKAGE  # the package itself, not an empty folder
    too_long = {}
    for path in modules:
        name = path.relative_to(PACKAGE).as_posix()
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            too_long[name] = lines
    assert not too_long, f"split these modules by responsibility (at most {MAX_LINES} lines each): {too_long}"
