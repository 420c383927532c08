"""The typed configuration schema's machinery: one declaration per key, checked once.

Every config group is a frozen dataclass (core/schema_groups.py, schema_data.py, schema_teacher.py,
schema_stages.py): a field per key with its type (``int``, ``float``, ``bool``, ``str``, ``None``, ``Literal[...]``,
unions, ``list[...]``, ``dict[str, ...]``, nested sections), its default (equal to the YAML's,
tests/core/test_config_schema.py) and its range; cross-field rules are the section's ``rules`` method. :func:`check`
reads a mapping against a section class: ``strict`` (the composed config at an entry point) refuses unknown and
missing keys; otherwise (library code handed a stored or partial mapping) unknown keys are ignored and missing ones
take the schema's default. Both name the key in one line."""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin

from .errors import ConfigError

T = TypeVar("T", bound="Section")


@dataclasses.dataclass(frozen=True)
class Range:
    """A value rule: ``ok(value)`` and the words that complete "must be <type> ..." (``>= 1``, ``in [0, 1)``);
    words starting with "a"/"an" replace the type's description (``a non-empty list of integers >= 1``)."""

    ok: Callable[[Any], bool]
    words: str


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def at_least(low: float) -> Range:
    return Range(lambda v: _finite(v) and v >= low, f">= {low}")


def above(low: float) -> Range:
    return Range(lambda v: _finite(v) and v > low, f"> {low}")


def between(low: float, high: float, low_open: bool = False, high_open: bool = False) -> Range:
    def ok(v: Any) -> bool:
        return _finite(v) and (v > low if low_open else v >= low) and (v < high if high_open else v <= high)

    return Range(ok, f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}")


def key(default: Any = dataclasses.MISSING, rule: Range | None = None) -> Any:
    """A field: its default (a list, dict or section class is copied per instance) and its range."""
    meta = {"rule": rule}
    if isinstance(default, type) and dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=default, metadata=meta)
    if isinstance(default, Section):  # a nested section with other defaults than its class's
        return dataclasses.field(default_factory=lambda: default, metadata=meta)
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Section:
    """Base of every config section. ``variant_key``/``variants``: the concrete class is chosen by the value
    of one key (``student.name``, ``teacher.backend``, ``dataset.format`` ...)."""

    variant_key: ClassVar[str | None] = None
    variants: ClassVar[dict[str, type[Section]]] = {}
    # keys that used to exist: the message names what replaced them (checked before "not a config key")
    removed: ClassVar[dict[str, str]] = {}

    def rules(self) -> Iterator[tuple[str, str]]:
        """Cross-field rules: ``(key, message)`` per violation (the key relative to this section)."""
        return iter(())


frozen = dataclasses.dataclass(frozen=True, kw_only=True)
POSITIVE_INT = at_least(1)
NON_NEGATIVE = at_least(0)
POSITIVE = above(0)
DROPOUT = between(0, 1, high_open=True)
FRACTION = between(0, 1, low_open=True)


# -- types ----------------------------------------------------------------------------------------------
def _args(tp: Any) -> tuple[Any, ...]:
    return get_args(tp)


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def type_ok(value: Any, tp: Any) -> bool:
    """Whether ``value`` (plain Python: a resolved config) has type ``tp``."""
    origin = get_origin(tp)
    if tp is Any:
        return True
    if _is_union(tp):
        return any(type_ok(value, arg) for arg in _args(tp))
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in _args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin is list:
        return isinstance(value, list) and all(type_ok(v, _args(tp)[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            isinstance(k, str) and type_ok(v, _args(tp)[1]) for k, v in value.items()
        )
    if isinstance(tp, type) and issubclass(tp, Section):
        return isinstance(value, dict)
    raise TypeError(f"unsupported schema type {tp!r}")  # pragma: no cover - a schema declaration error


def describe(tp: Any) -> str:
    """The words for a type: ``an integer``, ``true, false or auto``, ``null or a number`` ..."""
    if _is_union(tp):
        parts = list(_args(tp))
        choices = [c for p in parts for c in _choices(p)] if all(_choices(p) for p in parts) else None
        if choices:
            return _join(choices)
        words = [describe(p) for p in parts if p is not type(None)]
        return ("null or " if type(None) in parts else "") + " or ".join(words)
    if _choices(tp):
        if tp is bool or len(_choices(tp)) == 1:
            return _join(_choices(tp))
        return "one of " + " | ".join(_choices(tp))
    if get_origin(tp) is list:
        return f"a list of {_plural(describe(_args(tp)[0]))}"
    if get_origin(tp) is dict:
        return f"a mapping of names to {_plural(describe(_args(tp)[1]))}"
    return {int: "an integer", float: "a number", str: "a string", type(None): "null"}.get(tp, "a group of settings")


def _choices(tp: Any) -> list[str]:
    if tp is bool:
        return ["true", "false"]
    if get_origin(tp) is Literal:
        return [str(a) for a in _args(tp)]
    return []


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _plural(words: str) -> str:
    return {"an integer": "integers", "a number": "numbers", "a string": "strings"}.get(words, words)


# -- checking --------------------------------------------------------------------------------------------
def hints(cls: type) -> dict[str, Any]:
    """The type of each field of a section class (class-level settings such as ``variants`` excluded)."""
    types_ = typing.get_type_hints(cls)
    return {f.name: types_[f.name] for f in dataclasses.fields(cls)}


def variant(cls: type[T], mapping: Mapping[str, Any], path: str) -> type[T]:
    """The concrete section class for ``mapping`` (``cls`` itself when it has no variants)."""
    if cls.variant_key is None or not cls.variants:
        return cls
    value = mapping.get(cls.variant_key)
    if value not in cls.variants:
        where = f"{path}.{cls.variant_key}" if path else cls.variant_key
        raise ConfigError(f"{where}={value!r} is unknown; valid: {', '.join(cls.variants)}")
    return cls.variants[value]  # type: ignore[return-value]


def unknown_key_message(path: str, name: str, known: list[str], removed: Mapping[str, str]) -> str:
    full = f"{path}.{name}" if path else name
    if name in removed:
        return f"{full} was removed: {removed[name]}"
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    hint = f" (did you mean {path + '.' if path else ''}{close[0]}?)" if close else ""
    return f"{full} is not a config key{hint}"


def check(cls: type[T], mapping: Any, path: str, *, strict: bool = False, optional: frozenset[str] = frozenset()) -> T:
    """``mapping`` (a dict or DictConfig) read as a ``cls`` section at ``path``; ConfigError naming the first
    bad key. ``optional``: dotted keys (from the root) that a strict check lets be absent (default used). A
    ``cls`` section (a stage's typed section) was checked when it was read and is returned as it is."""
    if isinstance(mapping, cls):
        return mapping
    if not isinstance(mapping, Mapping):
        mapping = _plain(mapping)
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{path}={mapping!r} must be a group of settings ({path}.<name>=...)")
    cls = variant(cls, mapping, path)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    types_ = hints(cls)
    if strict:
        for name in mapping:
            if name not in fields:
                raise ConfigError(unknown_key_message(path, str(name), list(fields), cls.removed))
    values: dict[str, Any] = {}
    for name, field in fields.items():
        full = f"{path}.{name}" if path else name
        if name not in mapping:
            required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
            if required or (strict and full not in optional):
                raise ConfigError(f"{full} is missing: the config must define it")
            continue  # the dataclass default
        values[name] = _value(mapping[name], types_[name], field.metadata.get("rule"), full, strict, optional)
    section = cls(**values)
    for rel, message in section.rules():
        raise ConfigError(message.replace("{key}", f"{path}.{rel}" if path else rel))
    return section


def _value(value: Any, tp: Any, rule: Range | None, full: str, strict: bool, optional: frozenset[str]) -> Any:
    value = _plain(value)
    sections = [a for a in (_args(tp) if _is_union(tp) else (tp,)) if isinstance(a, type) and issubclass(a, Section)]
    if sections and isinstance(value, dict):
        return check(sections[0], value, full, strict=strict, optional=optional)
    if not type_ok(value, tp):
        parts = [a for a in (_args(tp) if _is_union(tp) else (tp,)) if a is not type(None)]
        choice = all(get_origin(a) is Literal for a in parts)  # one of a few names (null too, maybe)
        if choice or (rule is not None and rule.words.startswith(("a ", "an "))):
            raise ConfigError(f"{full} must be {_expected(tp, rule)}, got {value!r}")
        if sections:
            raise ConfigError(
                f"{full}={value!r} would replace a group of settings: set its keys instead ({full}.<name>=...)"
            )
        raise ConfigError(f"{full}={value!r} must be {describe(tp)}")
    if rule is not None and value is not None and not _is_choice(value, tp) and not rule.ok(value):
        raise ConfigError(f"{full} must be {_expected(tp, rule)}, got {value!r}")
    return value


def _is_choice(value: Any, tp: Any) -> bool:
    """A Literal member (``auto`` of ``int | Literal["auto"]``): ranges do not apply to it."""
    parts = _args(tp) if _is_union(tp) else (tp,)
    return any(get_origin(p) is Literal and type_ok(value, p) for p in parts)


def _expected(tp: Any, rule: Range | None) -> str:
    if rule is None:
        return describe(tp)
    if rule.words.startswith(("a ", "an ")):
        return rule.words
    nullable = _is_union(tp) and type(None) in _args(tp)
    core = [a for a in _args(tp) if a is not type(None)] if _is_union(tp) else [tp]
    if len(core) == 1:
        return ("null or " if nullable else "") + f"{describe(core[0])} {rule.words}"
    # the range belongs to the numeric alternative: "an integer >= 1 or auto"
    words = " or ".join(f"{describe(a)} {rule.words}" if a in (int, float) else describe(a) for a in core)
    return ("null or " if nullable else "") + words


def _plain(value: Any) -> Any:
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value
