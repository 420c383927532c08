"""Command-line overrides keep their key's type: a number stays a number, a switch a boolean."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir

from ilora_dllm2rec.core.config import check_override_types, config_dir
from ilora_dllm2rec.core.errors import ConfigError


def check(overrides: list[str], name: str = "run_teacher") -> None:
    with initialize_config_dir(version_base="1.3", config_dir=str(config_dir())):
        cfg = compose(config_name=name, overrides=overrides)
        check_override_types(cfg, overrides, name)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("teacher.head_lr_scale=abc", "teacher.head_lr_scale='abc' must be a number (default: 1.0)"),
        ("train.patience=2.5", "train.patience=2.5 must be an integer"),
        ("teacher.batch_size=eight", "teacher.batch_size='eight' must be an integer"),
        ("general.tune_malloc=1", "general.tune_malloc=1 must be true or false"),
    ],
)
def test_wrong_type_is_refused_with_the_key_named(override, message):
    with pytest.raises(ConfigError) as err:
        check([override])
    assert message in str(err.value)


def test_values_of_the_right_type_pass():
    check(["train.lr=1", "train.lr=3e-4", "student.loss=bce", "teacher.rec_model_checkpoint_path=/x/best.ckpt"])
    check(["dataset.min_rating=null", "metrics.ks=[5,10]", "general.tune_malloc=false"])


def test_a_preset_value_counts_as_the_default():
    """experiment=ml100k_cpu sets teacher.max_train_samples; overriding it with an integer is fine, with a
    string is not, and the group choice itself is not a value override."""
    check(["experiment=ml100k_cpu", "teacher.max_train_samples=100"])
    with pytest.raises(ConfigError, match="teacher.max_train_samples='all'"):
        check(["experiment=ml100k_cpu", "teacher.max_train_samples=all"])


def test_config_group_choices_and_additions_are_not_checked():
    check(["teacher=sasrec", "student=gru4rec", "+extra_note=hello"])
