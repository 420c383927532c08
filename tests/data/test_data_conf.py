"""conf/dataset/*.yaml: every file validates, and the real synthetic node (with interpolations) prepares."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from ilora_dllm2rec.data import prepare_data
from ilora_dllm2rec.data.options import FORMATS, dataset_options

CONF = Path(__file__).resolve().parents[2] / "conf" / "dataset"


def _node(name: str, data_dir: Path):
    return OmegaConf.create({"paths": {"data_dir": str(data_dir)}, "dataset": OmegaConf.load(CONF / name)}).dataset


@pytest.mark.parametrize("name", sorted(p.name for p in CONF.glob("*.yaml")))
def test_every_dataset_config_validates(name, tmp_path):
    opts = dataset_options(_node(name, tmp_path))
    assert opts.format in FORMATS and opts.max_seq_len >= 1
    assert opts.data_dir is not None and str(opts.data_dir).startswith(str(tmp_path))


def test_synthetic_yaml_prepares_and_caches(tmp_path):
    node = _node("synthetic.yaml", tmp_path)
    node.synthetic.num_users = 50
    split = prepare_data(node, tmp_path / "processed")
    assert split.name == "synthetic" and len(split.test) == 50 and split.max_seq_len == 50
    assert (tmp_path / "processed" / f"synthetic_{split.fingerprint}" / "meta.json").is_file()
