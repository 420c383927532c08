"""Every key in conf/ is declared in the schema and read by the code (no dead keys), and the schema's defaults
are the YAML's (one source of defaults: the code reads the checked sections, never a fallback of its own)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from ilora_dllm2rec.core.config import config_dir
from ilora_dllm2rec.core.schema import Section, hints
from ilora_dllm2rec.core.schema_groups import General
from ilora_dllm2rec.core.schema_stages import OPTIONAL, Config

SRC = Path(__file__).resolve().parents[2] / "src" / "ilora_dllm2rec"
SCHEMA_FILES = {"schema.py", "schema_data.py", "schema_groups.py", "schema_stages.py", "schema_teacher.py"}
# read under a computed name: report/collect.py reads getattr(spec, f"{stage}_checkpoint") for each stage
COMPUTED_READS = {
    f"eval.{stage}_checkpoint": r'getattr\(\w+, f"\{\w+\}_checkpoint"\)' for stage in ("baseline", "distill")
}
# the one split there is (leave-one-out, data/preprocess.py); every data fingerprint hashes it, so removing the key
# would orphan every cached split and every earlier run's discovery by fingerprint
KEPT = {"dataset.split.method"}
STAGE_GROUPS = ("student", "teacher", "distill")  # the values of train.name


def _classes(cls: type[Section]) -> list[type[Section]]:
    return [cls, *cls.variants.values()]


def _section_of(tp: object) -> type[Section] | None:
    return tp if isinstance(tp, type) and issubclass(tp, Section) else None


def declared(path: str) -> bool:
    """Whether the dotted ``path`` is a field of the schema (in some variant of each section on the way), or an
    entry of a mapping-valued field (``teacher.prompt_templates.movies``)."""
    classes = [Config]
    *parents, leaf = path.split(".")
    for part in parents:
        found = [hints(c)[part] for cls in classes for c in _classes(cls) if part in hints(c)]
        if any(_section_of(t) is None for t in found):
            return True  # a mapping field: its entries are values, not keys
        classes = [t for t in found if _section_of(t) is not None]
        if not classes:
            return False
    return any(leaf in hints(c) for cls in classes for c in _classes(cls))


def yaml_keys() -> dict[str, str]:
    """Every leaf key written in conf/ (dotted from the config root) -> the file that writes it."""
    keys: dict[str, str] = {}

    def walk(node: dict, prefix: str, source: str) -> None:
        for name, value in node.items():
            if name == "defaults" or (not prefix and name == "hydra"):
                continue
            path = f"{prefix}.{name}" if prefix else str(name)
            if isinstance(value, dict) and value:
                walk(value, path, source)
            else:
                keys.setdefault(path, source)

    for file in sorted(config_dir().rglob("*.yaml")):
        group = file.parent.relative_to(config_dir()).as_posix()
        if group == "hydra":
            continue  # Hydra's own settings
        text = file.read_text()
        node = yaml.safe_load(text) or {}
        is_global = group == "." or "@package _global_" in text
        walk(node, "" if is_global else group, str(file.relative_to(config_dir())))
    return keys


def schema_fields(cls: type[Section] = Config, prefix: str = "") -> set[tuple[str, str]]:
    """(dotted key, field name) of every field of every variant."""
    out = set()
    for c in _classes(cls):
        for name, tp in hints(c).items():
            path = f"{prefix}.{name}" if prefix else name
            nested = _section_of(tp)
            if nested is not None:
                out |= schema_fields(nested, path)
            else:
                out.add((path, name))
    return out


def test_every_yaml_key_is_declared_in_the_schema():
    undeclared = {k: f for k, f in yaml_keys().items() if not declared(k)}
    assert not undeclared, f"keys in conf/ that the schema does not declare: {undeclared}"


def test_every_schema_key_is_read_by_the_code():
    """Static: the field's name is read somewhere outside the schema (``.name``, ``"name"``, ``name=`` or a
    ``${...name}`` interpolation in conf/). A key nothing reads fails here, and goes."""
    code = "\n".join(p.read_text() for p in SRC.rglob("*.py") if p.name not in SCHEMA_FILES)
    conf = "\n".join(p.read_text() for p in config_dir().rglob("*.yaml"))
    unread = set()
    for path, name in schema_fields():
        if path in OPTIONAL or path in KEPT or (path in COMPUTED_READS and re.search(COMPUTED_READS[path], code)):
            continue
        in_code = re.search(rf"\.{name}\b|[\"']{name}[\"']|\b{name}=", code)
        in_conf = re.search(rf"\$\{{{re.escape(path)}\}}", conf)
        group, _, rest = path.partition(".")
        if group in STAGE_GROUPS:  # conf/train.yaml reads each stage's own values as ${${train.name}.<key>}
            in_conf = in_conf or re.search(rf"\$\{{\$\{{train\.name\}}\.{re.escape(rest)}\}}", conf)
        if not (in_code or in_conf):
            unread.add(path)
    assert not unread, f"keys nothing reads: {sorted(unread)}"


def _owner(cls: type, name: str) -> type:
    """The class that declares field ``name`` (a subclass inherits its base's fields)."""
    return next(c for c in cls.__mro__ if name in c.__dict__.get("__annotations__", {}))


def _candidates(path: str) -> set[tuple[type, str]]:
    """(declaring class, field) pairs a written YAML key may stand for (any variant on the way)."""
    classes: list[type[Section]] = [Config]
    *parents, leaf = path.split(".")
    for part in parents:
        owners = [c for cls in classes for c in _classes(cls) if part in hints(c)]
        if any(_section_of(hints(c)[part]) is None for c in owners):  # an entry of a mapping field
            return {(_owner(c, part), part) for c in owners}
        classes = [hints(c)[part] for c in owners]
    return {(_owner(c, leaf), leaf) for cls in classes for c in _classes(cls) if leaf in hints(c)}


def _all_fields(cls: type[Section] = Config, seen: set | None = None) -> set[tuple[type, str]]:
    seen = set() if seen is None else seen
    out = set()
    for c in _classes(cls):
        if c in seen:
            continue
        seen.add(c)
        for name, tp in hints(c).items():
            if _section_of(tp) is not None:
                out |= _all_fields(tp, seen)
            else:
                out.add((_owner(c, name), name))
    return out


def test_every_schema_key_is_in_the_yaml():
    """Each field of each section class is written in some YAML file (a variant's fields in that variant's file)."""
    written = set().union(*(_candidates(k) for k in yaml_keys() if declared(k)))
    optional = {(_owner(General, "num_threads"), "num_threads")}
    missing = sorted(f"{c.__name__}.{name}" for c, name in _all_fields() - written - optional)
    assert not missing, f"schema keys no YAML file defines: {missing}"


# (primary config, overrides, section, schema class of that section for these choices)
CANONICAL = [
    ("config", [], "general"),
    ("config", [], "paths"),
    ("config", [], "logging"),
    ("config", [], "metrics"),
    ("config", [], "eval"),
    ("config", [], "distill"),
    ("config", [], "train"),
    ("run_teacher", [], "train"),
    ("run_distill", [], "train"),
    *[("config", [f"student={p.stem}"], "student") for p in sorted((config_dir() / "student").glob("*.yaml"))],
    *[("config", [f"teacher={n}"], "teacher") for n in ("ilora", "sasrec", "ensemble")],
    *[("config", [f"active={p.stem}"], "active") for p in sorted((config_dir() / "active").glob("*.yaml"))],
    *[("config", [f"dataset={p.stem}"], "dataset") for p in sorted((config_dir() / "dataset").glob("*.yaml"))],
]


def _defaults(section: Section) -> dict:
    """The schema's default of every field that has one (nested sections as dicts)."""
    out = {}
    for field in dataclasses.fields(section):
        if field.default is not dataclasses.MISSING:
            out[field.name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            value = field.default_factory()
            out[field.name] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
    return out


@pytest.mark.parametrize(("name", "overrides", "section"), CANONICAL, ids=lambda v: str(v))
def test_schema_defaults_are_the_yaml_defaults(name, overrides, section, monkeypatch):
    from ilora_dllm2rec.core.schema_stages import validate_config

    monkeypatch.delenv("ILORA_MODEL_CACHE", raising=False)
    with initialize_config_dir(version_base="1.3", config_dir=str(config_dir())):
        cfg = compose(config_name=name, overrides=overrides)
    typed = getattr(validate_config(cfg), section)
    yaml_values = OmegaConf.to_container(cfg[section], resolve=True)
    differ = {
        k: (v, yaml_values.get(k))
        for k, v in _defaults(typed).items()
        if yaml_values.get(k) != v and f"{section}.{k}" not in OPTIONAL
    }
    assert not differ, f"{section} ({type(typed).__name__}): schema default != YAML {differ}"
