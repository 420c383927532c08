"""Config helpers shared by stages: the conf/ folder and per-stage ``train`` presets."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from .errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[3] / "conf"


def config_dir() -> Path:
    """The repository's conf/ folder (the package is installed in editable mode, as the README says)."""
    if not CONFIG_DIR.is_dir():  # pragma: no cover - non-editable installs
        raise ConfigError(f"config folder {CONFIG_DIR} not found: install the project with pip install -e .")
    return CONFIG_DIR


def with_train_preset(cfg: DictConfig, preset: str, overrides: Sequence[str] = ()) -> DictConfig:
    """A copy of ``cfg`` whose ``train`` node is the ``train/<preset>.yaml`` preset.

    ``overrides`` are the command line's ``train.*=value`` overrides, re-applied on top so that e.g.
    ``train.accelerator=cpu`` reaches every stage of the pipeline.
    """
    path = config_dir() / "train" / f"{preset}.yaml"
    if not path.is_file():
        raise ConfigError(f"train preset {preset!r} not found ({path})")
    new = copy.deepcopy(cfg)
    preset_cfg = OmegaConf.load(path)
    train_overrides = [o for o in overrides if o.startswith("train.") and "=" in o]
    if train_overrides:
        dotlist = OmegaConf.from_dotlist([o[len("train."):] for o in train_overrides])
        unknown = [k for k in dotlist if k not in preset_cfg]
        if unknown:
            raise ConfigError(f"unknown key(s) train.{', train.'.join(unknown)} for the {preset} preset")
        preset_cfg = OmegaConf.merge(preset_cfg, dotlist)
    with open_dict(new):
        new.train = preset_cfg
    OmegaConf.set_struct(new, True)
    return new
