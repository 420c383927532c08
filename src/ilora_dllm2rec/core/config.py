"""Config helpers shared by stages: the conf/ folder and each stage's ``train`` section.

One trainer section (conf/train.yaml) serves every stage: a stage's batch size, learning rate, weight decay and
epochs are its own group's (``student.*``, ``teacher.*``, ``distill.*``), and conf/train/<stage>.yaml holds the
values a stage trains with otherwise (only the teacher has any). ``train=<stage>`` chooses the stage of a
single-stage run; :func:`with_train_preset` gives run-pipeline's (and run-distill's, run-teacher's) other stages
theirs.
"""

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


def with_train_preset(cfg: DictConfig, stage: str, overrides: Sequence[str] = ()) -> DictConfig:
    """A copy of ``cfg`` whose ``train`` section is stage ``stage``'s (``train=<stage>``), composed again with the
    run's command-line ``overrides`` (minus any ``train=`` choice), so that experiment presets and
    ``train.*=value`` overrides reach every stage of the pipeline exactly as they reach a single stage.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if not (config_dir() / "train" / f"{stage}.yaml").is_file():
        raise ConfigError(f"train={stage}: no such stage in {config_dir() / 'train'}")
    kept = [o for o in overrides if not o.lstrip("+~").startswith(("train=", "hydra.", "hydra/"))]
    kept.append(f"train={stage}")
    try:
        if GlobalHydra.instance().is_initialized():
            composed = compose(config_name="config", overrides=kept)
        else:
            with initialize_config_dir(version_base="1.3", config_dir=str(config_dir())):
                composed = compose(config_name="config", overrides=kept)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"cannot compose the {stage} stage's train section with overrides {kept}: {exc}") from exc
    new = copy.deepcopy(cfg)
    with open_dict(new):
        new.train = composed.train
    OmegaConf.set_struct(new, True)
    return new
