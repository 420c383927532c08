"""Config helpers shared by stages: the conf/ folder and per-stage ``train`` presets."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from .errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[3] / "conf"


def config_dir() -> Path:
    """The repository's conf/ folder (the package is installed in editable mode, as the README says)."""
    if not CONFIG_DIR.is_dir():  # pragma: no cover - non-editable installs
        raise ConfigError(f"config folder {CONFIG_DIR} not found: install the project with pip install -e .")
    return CONFIG_DIR


def with_train_preset(cfg: DictConfig, preset: str, overrides: Sequence[str] = ()) -> DictConfig:
    """A copy of ``cfg`` whose ``train`` node is the ``train/<preset>`` preset, composed again with the
    run's command-line ``overrides`` (minus any ``train=`` choice), so that experiment presets and
    ``train.*=value`` overrides reach every stage of the pipeline exactly as they reach a single stage.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if not (config_dir() / "train" / f"{preset}.yaml").is_file():
        raise ConfigError(f"train preset {preset!r} not found in {config_dir() / 'train'}")
    kept = [o for o in overrides if not o.lstrip("+~").startswith(("train=", "hydra.", "hydra/"))]
    kept.append(f"train={preset}")
    try:
        if GlobalHydra.instance().is_initialized():
            composed = compose(config_name="config", overrides=kept)
        else:
            with initialize_config_dir(version_base="1.3", config_dir=str(config_dir())):
                composed = compose(config_name="config", overrides=kept)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"cannot compose the {preset} train preset with overrides {kept}: {exc}") from exc
    new = copy.deepcopy(cfg)
    with open_dict(new):
        new.train = composed.train
    OmegaConf.set_struct(new, True)
    return new


# YAML 1.1 booleans that OmegaConf (YAML 1.2 rules) keeps as STRINGS: `distill.use_dros=no` would be the
# string "no", and bool("no") is True. Refused everywhere, with the key named.
_BOOL_LOOKALIKES = {"yes", "no", "on", "off", "y", "n"}
_AUTO_SWITCHES = {"use_dros"}  # switches that also accept "auto" (resolved by their consumer)


def check_switch_values(cfg: DictConfig) -> None:
    """ConfigError for a switch given as yes/no/on/off, or a ``use_*`` key that is not true/false."""

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{path}.{key}" if path else str(key))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")
        else:
            name = path.rsplit(".", 1)[-1]
            if isinstance(node, str) and node.strip().lower() in _BOOL_LOOKALIKES:
                raise ConfigError(f"{path}={node!r} is ambiguous: write true or false")
            if name.startswith("use_") and node is not None and not isinstance(node, bool):
                if name in _AUTO_SWITCHES and node == "auto":
                    return
                allowed = "true, false or auto" if name in _AUTO_SWITCHES else "true or false"
                raise ConfigError(f"{path}={node!r} must be {allowed}")

    container = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    container.pop("hydra", None)
    walk(container, "")


def _type_error(key: str, value: object, default: object) -> str | None:
    """Why ``value`` cannot replace ``default`` at ``key`` (None when it can): numbers stay numbers, switches
    stay booleans. Strings, lists, mappings and null defaults take any value (their consumers check them)."""
    if isinstance(default, (dict, DictConfig)) and not isinstance(value, (dict, DictConfig)) and value is not None:
        return f"{key}={value!r} would replace a group of settings: set its keys instead ({key}.<name>=...)"
    if default is None or isinstance(default, (str, list, dict, DictConfig, ListConfig)) or value is None:
        return None
    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, kind = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(default, float):
        ok, kind = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    else:
        return None
    return None if ok else f"{key}={value!r} must be {kind} (default: {default!r})"


def check_override_types(cfg: DictConfig, overrides: Sequence[str], config_name: str) -> None:
    """ConfigError for a command-line override whose value has the wrong type for its key.

    ``teacher.head_lr_scale=abc`` would otherwise reach ``float(...)`` deep inside a stage and end in a
    traceback after minutes of work. The reference is the same config composed with the run's config-group
    choices (``experiment=``, ``teacher=`` ...) but none of its value overrides, so a preset's values count
    as defaults."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    groups = {p.name for p in config_dir().iterdir() if p.is_dir()}
    values, choices = [], []
    for override in overrides:
        key, sep, _ = override.partition("=")
        if not sep or key.startswith(("~", "+", "hydra")):
            continue  # deletions, additions and Hydra's own settings have no default to compare with
        key = key.lstrip("+")
        (choices if key.split("/")[0] in groups and "." not in key else values).append((key, override))
    if not values:
        return
    choice_overrides = [o for _, o in choices]
    if GlobalHydra.instance().is_initialized():
        reference = compose(config_name=config_name, overrides=choice_overrides)
    else:
        with initialize_config_dir(version_base="1.3", config_dir=str(config_dir())):
            reference = compose(config_name=config_name, overrides=choice_overrides)
    missing = object()
    for key, _ in values:
        default = OmegaConf.select(reference, key, default=missing)
        if default is missing:
            continue  # a key the group choices do not define: struct mode has already judged it
        problem = _type_error(key, OmegaConf.select(cfg, key), default)
        if problem:
            raise ConfigError(problem)
