"""The iLoRA teacher's frozen recommender (``teacher.rec_model_checkpoint_path``) may be a SASRec, GRU4Rec or
Caser baseline, as in LLaRA: its type is read from the checkpoint, logged and recorded; ``teacher.rec_model_type``
requires one type (a checkpoint of another type is one clear error; discovery picks the newest of that type)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from omegaconf import DictConfig, open_dict
from tests.conftest import TINY_OVERRIDES, compose_config

from ilora_dllm2rec.core.errors import ConfigError
from ilora_dllm2rec.core.run_logging import RunDir
from ilora_dllm2rec.data import prepare_data
from ilora_dllm2rec.exp import stages
from ilora_dllm2rec.student.caser import Caser
from ilora_dllm2rec.student.gru4rec import GRU4Rec
from ilora_dllm2rec.student.sasrec import SASRec
from ilora_dllm2rec.teacher.train import load_teacher_checkpoint

TYPES = {"caser": Caser, "gru4rec": GRU4Rec, "sasrec": SASRec}


def _cfg(root: Path, config_name: str, extra: list[str]) -> DictConfig:
    cfg = compose_config(config_name, [*TINY_OVERRIDES, "student.num_epochs=1", *extra])
    with open_dict(cfg):
        cfg.paths.data_dir = str(root / "data")
        cfg.paths.result_root = str(root / "result")
        cfg.paths.cache_dir = str(root / "data" / "processed")
    return cfg


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """One tiny baseline of each type on the same synthetic data, oldest caser, newest sasrec."""
    root = tmp_path_factory.mktemp("rec_types")
    checkpoints = {}
    for i, name in enumerate(TYPES):  # dict order: caser, gru4rec, sasrec
        cfg = _cfg(root, "config", [f"student={name}"])
        data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
        run = RunDir(root / "result" / f"result_2000010{i + 1}_000000")
        checkpoints[name] = Path(stages.baseline(cfg, run, data)["best_checkpoint"])
    return root, checkpoints


def _teacher_cfg(root: Path, extra: list[str]) -> DictConfig:
    return _cfg(
        root,
        "run_teacher",
        [
            f"teacher.llm_path=tiny:{root / 'tinyllm'}",
            "teacher.num_epochs=1",
            "teacher.max_train_samples=16",
            "teacher.max_eval_samples=8",
            "teacher.max_prompt_tokens=48",
            *extra,
        ],
    )


@pytest.mark.parametrize("name", ["gru4rec", "caser", "sasrec"])
def test_teacher_runs_on_each_recommender_type(workspace, tmp_path, caplog, name):
    root, checkpoints = workspace
    # the config's student section says sasrec: the checkpoint's own type is used, and said so
    cfg = _teacher_cfg(root, [f"teacher.rec_model_checkpoint_path={checkpoints[name]}"])
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    run = RunDir(tmp_path / "result_teacher")
    with caplog.at_level(logging.INFO):
        result = stages.teacher(cfg, run, data, [])
    assert result["rec_model_type"] == name
    manifest = json.loads((run.root / "models" / "teacher" / "manifest.json").read_text())
    assert manifest["rec_model_type"] == name and manifest["student_checkpoint"] == str(checkpoints[name])
    assert json.loads(run.metrics("eval_teacher.json").read_text())["rec_model_type"] == name
    assert f"rec model {name}" in caplog.text
    if name != "sasrec":
        assert "student.name=sasrec is not used for it" in caplog.text
    teacher, meta = load_teacher_checkpoint(run.root / "models" / "teacher", data, cfg.paths.model_cache_dir)
    assert type(teacher.student) is TYPES[name] and meta["rec_model_type"] == name


def test_rec_model_type_refuses_a_checkpoint_of_another_type(workspace, tmp_path):
    root, checkpoints = workspace
    cfg = _teacher_cfg(
        root, ["teacher.rec_model_type=sasrec", f"teacher.rec_model_checkpoint_path={checkpoints['gru4rec']}"]
    )
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    with pytest.raises(ConfigError) as info:
        stages.teacher(cfg, RunDir(tmp_path / "r"), data, [])
    message = str(info.value)
    assert "teacher.rec_model_type=sasrec" in message and "gru4rec" in message and "\n" not in message
    assert not (tmp_path / "r" / "models" / "teacher" / "manifest.json").exists()


def test_rec_model_type_picks_the_newest_baseline_of_that_type(workspace, tmp_path):
    root, checkpoints = workspace
    cfg = _teacher_cfg(root, ["teacher.rec_model_type=gru4rec"])  # the newest baseline is a sasrec
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    result = stages.teacher(cfg, RunDir(tmp_path / "r"), data, [])
    assert result["rec_model_type"] == "gru4rec"
    manifest = json.loads((tmp_path / "r" / "models" / "teacher" / "manifest.json").read_text())
    assert manifest["student_checkpoint"] == str(checkpoints["gru4rec"])


def test_rec_model_type_without_such_a_baseline_trains_one_of_that_type_only(workspace, tmp_path):
    root, checkpoints = workspace
    only_sasrec = tmp_path / "result"
    shutil.copytree(checkpoints["sasrec"].parents[2], only_sasrec / checkpoints["sasrec"].parents[2].name)
    cfg = _teacher_cfg(root, ["teacher.rec_model_type=gru4rec"])
    with open_dict(cfg):
        cfg.paths.result_root = str(only_sasrec)  # no gru4rec baseline: one would be trained with student=sasrec
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    with pytest.raises(ConfigError, match=r"teacher.rec_model_type=gru4rec.*student=gru4rec"):
        stages.teacher(cfg, RunDir(tmp_path / "r"), data, [])
    assert not (tmp_path / "r" / "models" / "baseline" / "manifest.json").exists()
    with open_dict(cfg):
        cfg.student = _cfg(root, "config", ["student=gru4rec"]).student
    result = stages.teacher(cfg, RunDir(tmp_path / "r"), data, [])  # trains a gru4rec, not the newer sasrec
    assert result["rec_model_type"] == "gru4rec"
    assert json.loads((tmp_path / "r" / "models" / "baseline" / "manifest.json").read_text())["model"] == "gru4rec"


def test_unknown_rec_model_type_is_a_config_error(workspace, tmp_path):
    root, checkpoints = workspace
    cfg = _teacher_cfg(root, ["teacher.rec_model_type=bert4rec"])
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    with pytest.raises(
        ConfigError, match=r"teacher.rec_model_type must be null or one of sasrec \| gru4rec \| caser, got 'bert4rec'"
    ):
        stages.teacher(cfg, RunDir(tmp_path / "r"), data, [])
