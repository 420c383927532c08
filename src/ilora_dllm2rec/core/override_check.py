"""Command-line overrides that cannot compose: one line naming the key, a suggestion, exit status 2.

Hydra reports a misspelled key (``teacher.top_n=5``) over several lines and advises ``+teacher.top_n=5``,
which would ADD a key nothing reads: the run would then ignore the setting silently. Before Hydra runs, the
entry points compose the same overrides once through Hydra's compose API; when that fails, the failure becomes
one ``error:`` line with the closest real key (``teacher.export.top_n``). A ``--multirun`` command line is
checked job by job (:func:`multirun_jobs`); command lines with other flags (``--cfg``, ``-cn`` ...) are left to
Hydra.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Sequence

from omegaconf import DictConfig

_UNKNOWN_KEY = re.compile(r"Could not override '([^']+)'")


def leaf_keys(node: object, prefix: str = "") -> list[str]:
    """Dotted paths of every value in a config (mappings walked, lists and values are leaves)."""
    if isinstance(node, DictConfig):
        keys = []
        for key in node.keys():
            path = f"{prefix}.{key}" if prefix else str(key)
            child = node._get_node(key)
            keys += leaf_keys(child, path) if isinstance(child, DictConfig) else [path]
        return keys
    return [prefix] if prefix else []


def closest_key(key: str, keys: Sequence[str], names: Sequence[str] = ()) -> str | None:
    """The group's spelling fixed (``distil.lr`` -> ``distill.lr``; a group choice ``studnt=sasrec`` -> ``student``,
    also among the extra top-level ``names``, e.g. config groups with no value such as ``experiment``), else a key
    with the same last name (``teacher.top_n`` -> ``teacher.export.top_n``), else the closest spelling within the
    same group (``student.hiden_size`` -> ``student.hidden_size``), else None."""
    group, _, rest = key.partition(".")
    groups = {k.partition(".")[0] for k in keys}
    if not rest:  # a top-level name: most often a misspelled config group choice (studnt=sasrec)
        close_name = difflib.get_close_matches(key, sorted(groups | set(names)), n=1, cutoff=0.75)
        if close_name:
            return close_name[0]
    if group not in groups and rest:  # a misspelled group: distil.lr -> distill.lr
        close_group = difflib.get_close_matches(group, sorted(groups), n=1, cutoff=0.75)
        if close_group and f"{close_group[0]}.{rest}" in keys:
            return f"{close_group[0]}.{rest}"
        group = close_group[0] if close_group else group
    leaf = key.rsplit(".", 1)[-1]
    same_leaf = sorted(
        (k for k in keys if k.rsplit(".", 1)[-1] == leaf), key=lambda k: (not k.startswith(group + "."), len(k))
    )
    if same_leaf:
        return same_leaf[0]
    in_group = {k.partition(".")[2]: k for k in keys if k.startswith(group + ".")}
    close = difflib.get_close_matches(rest, list(in_group), n=1, cutoff=0.75)
    return in_group[close[0]] if close else None


def composition_error(config_name: str, overrides: Sequence[str]) -> str | None:
    """The one-line error for ``overrides`` that do not compose with ``config_name`` (None when they do)."""
    return compose_command_line(config_name, overrides)[1]


def compose_command_line(config_name: str, overrides: Sequence[str]) -> tuple[DictConfig | None, str | None]:
    """``(config, None)``: the config the run would get, with its ``hydra`` node (the run folder); or
    ``(None, error)``: the one-line error for ``overrides`` that do not compose with ``config_name``."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from .config import config_dir
    from .schema_stages import removed_key_message

    with initialize_config_dir(version_base="1.3", config_dir=str(config_dir())):
        try:
            return compose(config_name=config_name, overrides=list(overrides), return_hydra_config=True), None
        except (HydraException, OmegaConfBaseException) as exc:
            message = " ".join(str(exc).split())
            unknown = _UNKNOWN_KEY.search(message)
            if unknown is None:
                return None, message.split(" Config search path:")[0]
            key = unknown.group(1)
            removed = removed_key_message(key)
            if removed:
                return None, removed
            groups = [o for o in overrides if "=" in o and "." not in o.split("=", 1)[0] and not o.startswith("+")]
            try:
                reference = compose(config_name=config_name, overrides=groups)
            except (HydraException, OmegaConfBaseException):
                reference = compose(config_name=config_name)
    config_groups = [p.name for p in config_dir().iterdir() if p.is_dir()]
    suggestion = closest_key(key, leaf_keys(reference), config_groups)
    hint = f" (did you mean {suggestion}?)" if suggestion else ""
    return None, f"{key} is not a config key{hint}; add --cfg job to a command to print every key and its value"


def check_command_line(config_name: str, argv: Sequence[str] | None = None) -> DictConfig | None:
    """Exit 2 with one ``error:`` line when the command line's overrides do not compose; else the composed config
    (with its ``hydra`` node), or None for a command line with flags, which is left to Hydra."""
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a.startswith("-") for a in args):
        return None
    composed, error = compose_command_line(config_name, args)
    if error is not None:
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(2)
    return composed


MULTIRUN_FLAGS = ("-m", "--multirun")


def multirun_jobs(args: Sequence[str]) -> list[list[str]] | None:
    """The overrides of each job a ``--multirun`` command line starts, its sweeps (``student=sasrec,gru4rec``,
    ``range(1,4)``) expanded as Hydra's basic sweeper expands them; None for a command line that is not a multirun
    with overrides only, or whose sweeps only Hydra's own run can expand (Hydra then reports them itself)."""
    flags = [a for a in args if a.startswith("-")]
    if not flags or any(f not in MULTIRUN_FLAGS for f in flags):
        return None
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    overrides = [a for a in args if a not in MULTIRUN_FLAGS]
    if any(o.startswith(("hydra/sweeper", "hydra/launcher")) for o in overrides):
        return None  # another sweeper or launcher expands the sweeps its own way
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
        (jobs,) = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    except HydraException:  # a malformed sweep: Hydra prints its own message for it
        return None
    return [list(job) for job in jobs]
