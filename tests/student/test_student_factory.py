"""build_student: every conf/student/*.yaml builds; config mistakes are one-line ConfigErrors."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from ilora_dllm2rec.core.errors import ConfigError
from ilora_dllm2rec.student.caser import Caser
from ilora_dllm2rec.student.factory import build_student
from ilora_dllm2rec.student.gru4rec import GRU4Rec
from ilora_dllm2rec.student.sasrec import SASRec

CONF = Path(__file__).resolve().parents[2] / "conf" / "student"


@pytest.mark.parametrize(("name", "cls"), [("sasrec", SASRec), ("gru4rec", GRU4Rec), ("caser", Caser)])
def test_builds_from_the_shipped_yaml(name: str, cls: type) -> None:
    root = OmegaConf.create({"dataset": {"max_seq_len": 10}, "student": OmegaConf.load(CONF / f"{name}.yaml")})
    model = build_student(root.student, num_items=50)  # max_seq_len interpolates ${dataset.max_seq_len}
    assert isinstance(model, cls)
    assert model.max_seq_len == 10 and model.num_items == 50


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match="sasrec, gru4rec, caser"):
        build_student({"name": "bert4rec", "max_seq_len": 5}, 10)


@pytest.mark.parametrize("bad", [0, -1, None])
def test_bad_max_seq_len(bad) -> None:
    with pytest.raises(ConfigError, match=r"student\.max_seq_len.*dataset\.max_seq_len"):
        build_student({"name": "sasrec", "max_seq_len": bad}, 10)


def test_sasrec_and_caser_need_equal_sizes() -> None:
    for name in ("sasrec", "caser"):
        with pytest.raises(ConfigError, match="emb_size"):
            build_student({"name": name, "max_seq_len": 5, "emb_size": 32, "hidden_size": 64}, 10)
    gru = build_student({"name": "gru4rec", "max_seq_len": 5, "emb_size": 32, "hidden_size": 64}, 10)
    assert gru.projection is not None  # GRU4Rec projects its hidden state back to emb_size


def test_other_config_errors() -> None:
    with pytest.raises(ConfigError, match="student.head"):
        build_student({"name": "sasrec", "max_seq_len": 5, "head": "mlp"}, 10)
    with pytest.raises(ConfigError, match="num_heads"):
        build_student({"name": "sasrec", "max_seq_len": 5, "hidden_size": 64, "emb_size": 64, "num_heads": 3}, 10)
    with pytest.raises(ConfigError, match="filter_heights"):
        build_student({"name": "caser", "max_seq_len": 3, "filter_heights": [2, 4]}, 10)
    with pytest.raises(ConfigError, match="dropout"):
        build_student({"name": "gru4rec", "max_seq_len": 3, "dropout": 1.0}, 10)
