"""Shared fixtures: compose the REAL Hydra config and shrink it (lightning-hydra-template style)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = str(ROOT / "conf")
ML100K_DIR = Path(os.environ.get("ML100K_DIR", ROOT.parent / "shared" / "data" / "ml-100k"))

# small, fast settings every end-to-end test starts from
TINY_OVERRIDES = [
    "dataset=synthetic",
    "dataset.synthetic.num_users=60",
    "dataset.synthetic.num_items=40",
    "dataset.synthetic.min_len=8",
    "dataset.synthetic.max_len=16",
    "dataset.max_seq_len=10",
    "student.hidden_size=16",
    "student.emb_size=16",
    "student.num_epochs=2",
    "train.patience=0",
    "logging.progress_bar=false",
    "logging.tensorboard=true",
]


def compose_config(config_name: str = "config", overrides: list[str] | None = None) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONF_DIR):
        cfg = compose(config_name=config_name, overrides=overrides or [], return_hydra_config=False)
    return cfg


@pytest.fixture
def tiny_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """Factory: the real config shrunk, with every path inside tmp_path."""

    def make(config_name: str = "config", extra: list[str] | None = None) -> DictConfig:
        cfg = compose_config(config_name, TINY_OVERRIDES + (extra or []))
        with open_dict(cfg):
            cfg.paths.data_dir = str(tmp_path / "data")
            cfg.paths.result_root = str(tmp_path / "result")
            cfg.paths.cache_dir = str(tmp_path / "data" / "processed")
        return cfg

    return make


@pytest.fixture
def ml100k_dir() -> Path:
    if not (ML100K_DIR / "u.data").is_file():
        pytest.skip(f"real MovieLens-100K not found at {ML100K_DIR} (set ML100K_DIR)")
    return ML100K_DIR


@pytest.fixture(autouse=True)
def _bf16_as_on_a_native_cpu(monkeypatch):
    """Tests see the same precision on every machine: bf16 kept as asked (core/runtime.py: cpu_has_native_bf16,
    whose CPU-flag reading and fallback have their own tests)."""
    monkeypatch.setenv("ILORA_CPU_BF16", "1")
