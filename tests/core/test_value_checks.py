"""Numeric training settings out of range are refused at start, with the key named."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir

from ilora_dllm2rec.core.config import config_dir
from ilora_dllm2rec.core.errors import ConfigError
from ilora_dllm2rec.core.value_checks import RULES, check_value_ranges

ENTRY_CONFIGS = ["config", "run_teacher", "run_distill", "run_eval_all", "run_pipeline"]
PRESETS = [p.stem for p in (config_dir() / "experiment").glob("*.yaml")]


def composed(overrides: list[str], name: str = "run_pipeline"):
    with initialize_config_dir(version_base="1.3", config_dir=str(config_dir())):
        return compose(config_name=name, overrides=overrides)


@pytest.mark.parametrize("name", ENTRY_CONFIGS)
def test_every_entry_config_passes(name):
    check_value_ranges(composed([], name))


@pytest.mark.parametrize("preset", PRESETS)
def test_every_experiment_preset_passes(preset):
    check_value_ranges(composed([f"experiment={preset}"]))


@pytest.mark.parametrize("teacher", ["ilora", "sasrec", "ensemble", "ilora_qwen", "ilora_llama2"])
def test_every_teacher_config_passes(teacher):
    check_value_ranges(composed([f"teacher={teacher}"], "run_teacher"))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.batch_size=0", "train.batch_size must be an integer >= 1, got 0"),
        ("student.lr=-1", "student.lr must be a number > 0, got -1"),
        ("student.lr=0", "student.lr must be a number > 0, got 0"),
        ("train.lr=nan", "train.lr must be a number > 0, got nan"),
        ("distill.weight_decay=-0.1", "distill.weight_decay must be a number >= 0, got -0.1"),
        ("teacher.lora_dropout=1.0", "teacher.lora_dropout must be a number in [0, 1), got 1.0"),
        ("teacher.max_history_items=0", "teacher.max_history_items must be an integer >= 1, got 0"),
        ("teacher.export.top_n=0", "teacher.export.top_n must be an integer >= 1, got 0"),
        ("active.budget_ratio=0", "active.budget_ratio must be a number in (0, 1], got 0"),
        ("active.budget_ratio=1.5", "active.budget_ratio must be a number in (0, 1], got 1.5"),
        ("train.accumulate_grad_batches=0", "train.accumulate_grad_batches must be an integer >= 1, got 0"),
        ("train.gradient_clip_val=-1", "train.gradient_clip_val must be null or a number > 0, got -1"),
        ("train.patience=-1", "train.patience must be an integer >= 0, got -1"),
        ("metrics.ks=[5,0]", "metrics.ks must be a non-empty list of integers >= 1, got [5, 0]"),
        ("metrics.ks=[]", "metrics.ks must be a non-empty list of integers >= 1, got []"),
        ("general.num_threads=0", "general.num_threads must be auto or an integer >= 1, got 0"),
        ("general.num_threads=many", "general.num_threads must be auto or an integer >= 1, got 'many'"),
        ("general.num_threads=1.5", "general.num_threads must be auto or an integer >= 1, got 1.5"),
        ("general.thread_wait=busy", "general.thread_wait must be one of passive | spin, got 'busy'"),
        (
            "teacher.rec_model_type=bert4rec",
            "teacher.rec_model_type must be null or one of sasrec | gru4rec | caser, got 'bert4rec'",
        ),
    ],
)
def test_out_of_range_value_is_refused_with_the_key_named(override, message):
    with pytest.raises(ConfigError) as err:
        check_value_ranges(composed([override]))
    assert str(err.value) == message


@pytest.mark.parametrize(
    "override",
    ["student.lr=3e-4", "train.gradient_clip_val=null", "train.patience=0", "active.budget_ratio=1",
     "teacher.lora_dropout=0", "teacher.head_lr_scale=0", "metrics.ks=[1]", "general.num_threads=1",
     "general.num_threads=auto", "general.thread_wait=spin", "teacher.rec_model_type=GRU4Rec",
     "teacher.rec_model_type=null"],
)  # fmt: skip
def test_boundary_values_in_range_pass(override):
    check_value_ranges(composed([override]))


def test_every_rule_names_a_key_the_configs_define():
    """A rule for a renamed or misspelled key would silently check nothing."""
    defined = set()
    configs = (([], "run_teacher"), (["teacher=sasrec"], "run_pipeline"), (["teacher=ensemble"], "config"))
    for overrides, name in configs:
        cfg = composed(overrides, name)
        defined |= {key for key in RULES if _select(cfg, key)}
    assert defined == set(RULES)


def _select(cfg, key: str) -> bool:
    from omegaconf import OmegaConf

    marker = object()
    return OmegaConf.select(cfg, key, default=marker) is not marker


def test_rec_model_types_are_the_teacher_stages():
    """The light copy the start-up check uses is the list the teacher stage supports."""
    from ilora_dllm2rec.core.value_checks import REC_MODEL_TYPES
    from ilora_dllm2rec.teacher.train import REC_MODEL_TYPES as STAGE_TYPES

    assert REC_MODEL_TYPES == STAGE_TYPES
