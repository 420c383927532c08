"""Package layering: core -> data -> student -> handoff -> teacher | distill -> report -> exp (docs/DESIGN.md).

Every import in every module under src/ilora_dllm2rec is parsed (also the ones inside functions), so a
shortcut across the layers fails here instead of growing into an import cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "src" / "ilora_dllm2rec"
PACKAGE = "ilora_dllm2rec"

# subpackage -> the subpackages it must never import (exp sits on top and may import any)
ABOVE = {
    "core": {"data", "student", "handoff", "teacher", "distill", "exp", "report"},
    "data": {"student", "handoff", "teacher", "distill", "exp", "report"},
    "student": {"handoff", "teacher", "distill", "exp", "report"},
    "handoff": {"teacher", "distill", "exp", "report"},
    "teacher": {"distill", "exp", "report"},
    "distill": {"teacher", "exp", "report"},
    "report": {"exp"},  # exp/stages.py hands report/ its typed bundle: the other way round would be a cycle
}


def imported_subpackages(source: str, module: str, is_package: bool = False) -> set[str]:
    """First-level subpackages of ilora_dllm2rec that ``source`` (module ``module``) imports, relative or not."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name.split(".") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = base + (node.module.split(".") if node.module else [])
            # ``from .. import distill`` names the subpackage among the imported names
            targets = [target] if node.module else [target + [alias.name] for alias in node.names]
        else:
            continue
        found |= {t[1] for t in targets if len(t) > 1 and t[0] == PACKAGE}
    return found


def _modules() -> list[Path]:
    return sorted(PACKAGE_ROOT.rglob("*.py"))


def test_every_subpackage_has_a_rule() -> None:
    subpackages = {p.name for p in PACKAGE_ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert subpackages - {"exp"} == set(ABOVE)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE_ROOT)))
def test_imports_follow_the_layers(path: Path) -> None:
    rel = path.relative_to(PACKAGE_ROOT)
    parts = [PACKAGE, *rel.with_suffix("").parts]
    is_package = parts[-1] == "__init__"
    module = ".".join(parts[:-1] if is_package else parts)
    bad = imported_subpackages(path.read_text(), module, is_package) & ABOVE.get(rel.parts[0], set())
    assert not bad, f"{rel} imports {sorted(bad)}, a layer above it"


def test_report_takes_typed_sections_not_the_composed_config() -> None:
    """Only exp/ holds the composed Hydra config; report/ is handed a typed bundle (exp/stages.py: eval_stage)."""
    readers = [p.name for p in sorted((PACKAGE_ROOT / "report").glob("*.py")) if "DictConfig" in p.read_text()]
    assert not readers, f"report/ modules that name the composed DictConfig: {readers}"


def test_import_parser_resolves_relative_absolute_and_nested_imports() -> None:
    source = (
        "from ..distill.train import x\n"
        "from .. import exp\n"
        "from .export import y\n"
        "import numpy\n"
        "def f():\n"
        "    import ilora_dllm2rec.report.plots\n"
        "    from ilora_dllm2rec.core import errors\n"
    )
    found = imported_subpackages(source, "ilora_dllm2rec.teacher.probe")
    assert found == {"distill", "exp", "teacher", "report", "core"}
    assert imported_subpackages("from . import outputs\n", "ilora_dllm2rec.handoff", is_package=True) == {"handoff"}
