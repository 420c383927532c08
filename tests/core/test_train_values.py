"""The trainer values each stage runs with, for every entry point's primary config, every experiment preset and the
command lines users type (``train=<stage>``, ``train.*=``, the stage groups' own ``teacher.batch_size=`` ...).

``composed``: the ``train`` section an entry point's stage function reads from the composed config (a single-stage
run); ``student``/``teacher``/``distill``: the section :func:`with_train_preset` gives that stage of run-pipeline
(and run-distill's export, and run-teacher's own baseline), or the reason it is refused. The expected values
(train_values.json) were recorded from the three training presets conf/train/{student,teacher,distill}.yaml
before they became one section (conf/train.yaml): the refactor changed where the values are written, not a single
resolved value. Regenerate the file only for a change of trainer values that is meant, and review its diff:
``PYTHONPATH=src python tests/core/test_train_values.py --write``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from ilora_dllm2rec.core.config import config_dir, with_train_preset
from ilora_dllm2rec.core.errors import ConfigError
from ilora_dllm2rec.core.schema_stages import validate_config

EXPECTED_FILE = Path(__file__).with_name("train_values.json")
ENTRY_CONFIGS = ["config", "run_teacher", "run_distill", "run_eval_all", "run_pipeline"]
# the entry points that switch a stage's trainer values: run-pipeline (every stage), run-teacher (its own baseline when
# none is found), run-distill (the teacher's export); run-student-baseline (config) and run-eval-all read `composed`
SWITCHING = ["run_teacher", "run_distill", "run_pipeline"]
STAGES = ["student", "teacher", "distill"]
PRESETS = sorted(p.stem for p in (config_dir() / "experiment").glob("*.yaml"))
COMMAND_LINES = [
    [],
    *[[f"experiment={p}"] for p in PRESETS],
    *[[f"teacher={p.stem}"] for p in sorted((config_dir() / "teacher").glob("*.yaml"))],
    *[[f"student={p.stem}"] for p in sorted((config_dir() / "student").glob("*.yaml"))],
    *[[f"train={stage}"] for stage in STAGES],  # the run guide's option, as users type it
    ["train=teacher", "experiment=a100"],
    ["train=distill", "experiment=quickstart"],
    ["train.batch_size=64", "train.precision=32-true", "train.patience=2", "train.gradient_clip_val=0.5"],
    ["train.max_epochs=3", "train.lr=0.01", "train.weight_decay=0.001", "train.eval_batch_size=128"],
    ["train.accelerator=cpu", "train.devices=1", "train.log_every_n_steps=7", "train.limit_train_batches=0.5"],
    ["teacher.batch_size=4", "teacher.eval_batch_size=8", "teacher.patience=4", "teacher.lr=0.0002"],
    ["student.batch_size=32", "student.lr=0.01", "student.weight_decay=0.1", "student.num_epochs=3"],
    ["distill.batch_size=16", "distill.lr=0.02", "distill.weight_decay=0.2", "distill.num_epochs=4"],
    ["experiment=quickstart", "train.log_every_n_steps=7", "teacher.patience=2"],
    ["experiment=ml100k_cpu", "teacher=ilora_qwen", "student=gru4rec"],
    ["train=teacher", "train.warmup_ratio=0.1"],  # a teacher-only key: the other stages' sections refuse it
    ["experiment=ml100k_dllm2rec", "teacher=ensemble", "train.deterministic=true"],
]
CASES = [(entry, line) for entry in ENTRY_CONFIGS for line in COMMAND_LINES]


def case_id(entry: str, line: list[str]) -> str:
    return " ".join([entry, *line])


def effective(entry: str, line: list[str]) -> dict[str, dict]:
    """The resolved ``train`` section of the composed config and of each pipeline stage."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(config_dir())):
        cfg = compose(config_name=entry, overrides=line)
        validate_config(cfg, pipeline=entry == "run_pipeline")  # every case is a config a run accepts
        out = {"composed": OmegaConf.to_container(cfg.train, resolve=True)}
        for stage in STAGES if entry in SWITCHING else ():
            try:
                out[stage] = OmegaConf.to_container(with_train_preset(cfg, stage, line).train, resolve=True)
            except ConfigError as exc:  # recorded as the reason Hydra gives
                out[stage] = {"refused": str(exc).split(": ", 1)[-1].split(".\n")[0].split(". ")[0]}
    return out


def expected() -> dict[str, dict[str, dict]]:
    return json.loads(EXPECTED_FILE.read_text())


@pytest.fixture(autouse=True)
def _no_model_cache_env(monkeypatch):
    monkeypatch.delenv("ILORA_MODEL_CACHE", raising=False)


@pytest.mark.parametrize(("entry", "line"), CASES, ids=[case_id(*c) for c in CASES])
def test_trainer_values_per_stage_are_unchanged(entry, line):
    want = expected()[case_id(entry, line)]
    got = effective(entry, line)
    assert list(got) == list(want)
    for part in got:
        assert got[part] == want[part], f"{case_id(entry, line)}: {part}"


def test_every_case_is_recorded():
    assert set(expected()) == {case_id(*c) for c in CASES}


@pytest.mark.parametrize(
    ("line", "precision", "clip"),
    [
        (["teacher=ilora"], "bf16-mixed", 1.0),
        (["teacher=sasrec"], "bf16-mixed", 1.0),
        (["teacher=ensemble"], "32-true", None),  # the members train as the students do
        (["experiment=ml100k_ce_distill_mixed"], "32-true", None),
        (["teacher=ensemble", "teacher.precision=bf16-mixed", "teacher.gradient_clip_val=2.0"], "bf16-mixed", 2.0),
        (["teacher=ensemble", "train.precision=bf16-mixed"], "bf16-mixed", None),  # train.* wins in every stage
    ],
)
def test_the_teacher_stage_takes_precision_and_clipping_from_its_backend(line, precision, clip):
    teacher = effective("run_pipeline", line)["teacher"]
    assert (teacher["precision"], teacher["gradient_clip_val"]) == (precision, clip)


def test_a_stage_file_repeats_no_value_of_the_train_section():
    """conf/train.yaml holds every value the stages share; conf/train/<stage>.yaml only what differs."""
    shared = yaml.safe_load((config_dir() / "train.yaml").read_text())["train"]
    for stage in STAGES:
        own = yaml.safe_load((config_dir() / "train" / f"{stage}.yaml").read_text())
        assert own["name"] == stage
        same = {k: v for k, v in own.items() if k in shared and shared[k] == v}
        assert not same, f"conf/train/{stage}.yaml repeats conf/train.yaml: {same}"


def write() -> None:
    """Record the current values (one line per stage, so a diff shows which stage of which case changed)."""
    lines = ["{"]
    for i, (entry, line) in enumerate(CASES):
        values = effective(entry, line)
        parts = [f"    {json.dumps(part)}: {json.dumps(values[part], sort_keys=True)}" for part in values]
        lines.append(f"  {json.dumps(case_id(entry, line))}: {{\n" + ",\n".join(parts) + "\n  }")
        lines[-1] += "," if i < len(CASES) - 1 else ""
    lines.append("}")
    EXPECTED_FILE.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/core/test_train_values.py --write")
    write()
