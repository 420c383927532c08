"""A command line that does not compose: one line, the key named, the closest real key suggested."""

from __future__ import annotations

import pytest

from ilora_dllm2rec.core.override_check import check_command_line, closest_key, composition_error

KEYS = ["student.hidden_size", "student.lr", "teacher.export.top_n", "teacher.lr", "distill.lr", "train.lr"]


@pytest.mark.parametrize(
    ("typo", "expected"),
    [
        ("teacher.top_n", "teacher.export.top_n"),  # same last name, deeper
        ("student.hiden_size", "student.hidden_size"),  # spelling, same group
        ("distil.lr", "distill.lr"),  # misspelled group
        ("student.not_a_key", None),  # nothing close: no guess
        ("teacher.learning_rate", None),
    ],
)
def test_closest_key(typo, expected):
    assert closest_key(typo, KEYS) == expected


def test_unknown_key_gets_one_line_with_the_real_key():
    message = composition_error("run_teacher", ["teacher.top_n=5"])
    assert message == (
        "teacher.top_n is not a config key (did you mean teacher.export.top_n?); "
        "add --cfg job to a command to print every key and its value"
    )


def test_unknown_key_under_a_group_choice_is_looked_up_in_that_choice():
    """teacher=sasrec has no LoRA settings: the suggestion comes from the chosen config, not the default."""
    assert "did you mean" not in composition_error("run_teacher", ["teacher=sasrec", "teacher.lora_r=4"])
    assert "(did you mean teacher.lora_r?)" in composition_error("run_teacher", ["teacher.lora_rr=4"])


def test_other_composition_errors_become_one_line():
    message = composition_error("config", ["dataset=no_such_dataset"])
    assert "no_such_dataset" in message and "ml-100k" in message and "\n" not in message
    assert "Config search path" not in message
    assert "--multirun" in composition_error("config", ["general.seed=1,2"])


def test_composable_command_lines_pass():
    assert composition_error("run_pipeline", ["experiment=quickstart", "train.lr=0.01", "+note=tagged"]) is None
    assert composition_error("config", ["hydra.run.dir=/tmp/x"]) is None


def test_check_command_line_exits_2_and_leaves_flags_to_hydra(capsys):
    with pytest.raises(SystemExit) as exit_info:
        check_command_line("config", ["student.hiden_size=8"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and err[0].startswith("error: student.hiden_size is not a config key")
    check_command_line("config", ["--cfg", "job", "student.hiden_size=8"])  # Hydra's own handling
    check_command_line("config", [])
