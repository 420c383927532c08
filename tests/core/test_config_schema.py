"""The typed schema checks a composed config once: the key named, its type, its range, rules across keys, and
the keys that were removed named with what replaced them (core/schema*.py)."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir

from ilora_dllm2rec.core.config import config_dir
from ilora_dllm2rec.core.errors import ConfigError
from ilora_dllm2rec.core.override_check import composition_error
from ilora_dllm2rec.core.schema_stages import validate_config

ENTRY_CONFIGS = ["config", "run_teacher", "run_distill", "run_eval_all", "run_pipeline"]
PRESETS = sorted(p.stem for p in (config_dir() / "experiment").glob("*.yaml"))
GROUP_OPTIONS = [
    f"{group}={p.stem}"
    for group in ("dataset", "student", "teacher", "active")
    for p in sorted((config_dir() / group).glob("*.yaml"))
]


def composed(overrides: list[str], name: str = "run_pipeline"):
    with initialize_config_dir(version_base="1.3", config_dir=str(config_dir())):
        return compose(config_name=name, overrides=overrides)


def refusal(overrides: list[str], name: str = "run_pipeline") -> str:
    with pytest.raises(ConfigError) as err:
        validate_config(composed(overrides, name), pipeline=name == "run_pipeline")
    return str(err.value)


@pytest.mark.parametrize("name", ENTRY_CONFIGS)
def test_every_entry_config_passes(name):
    validate_config(composed([], name), pipeline=name == "run_pipeline")


@pytest.mark.parametrize("override", [f"experiment={p}" for p in PRESETS] + GROUP_OPTIONS)
def test_every_preset_and_group_option_passes(override):
    validate_config(composed([override]), pipeline=True)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("teacher.head_lr_scale=abc", "teacher.head_lr_scale='abc' must be a number"),
        ("train.patience=2.5", "train.patience=2.5 must be an integer"),
        ("teacher.batch_size=eight", "teacher.batch_size='eight' must be an integer"),
        ("general.tune_malloc=1", "general.tune_malloc=1 must be true or false"),
        ("distill.use_ranking_distill=yes", "distill.use_ranking_distill='yes' must be true or false"),
        ("distill.use_dros=maybe", "distill.use_dros='maybe' must be true, false or auto"),
        ("distill.rd_form=listwise", "distill.rd_form must be one of auto | bce | softmax, got 'listwise'"),
        ("student.positions=relative", "student.positions must be one of recency | absolute, got 'relative'"),
        ("teacher.export=3", "teacher.export=3 would replace a group of settings"),
    ],
)
def test_wrong_type_is_refused_with_the_key_named(override, message):
    assert refusal([override]).startswith(message)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.batch_size=0", "train.batch_size must be an integer >= 1, got 0"),
        ("student.lr=-1", "student.lr must be a number > 0, got -1"),  # not train.lr, which defaults to it
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
        ("dataset.limit_data_rows=0", "dataset.limit_data_rows must be a positive integer, -1 or null, got 0"),
        ("general.num_threads=0", "general.num_threads must be an integer >= 1 or auto, got 0"),
        ("general.thread_wait=busy", "general.thread_wait must be one of short | passive | spin, got 'busy'"),
        (
            "train.precision=bf17",
            "train.precision must be a Lightning precision (32-true | bf16-mixed | 16-mixed | ...), got 'bf17'",
        ),
        (
            "teacher.precision=fp32",
            "teacher.precision must be a Lightning precision (32-true | bf16-mixed | 16-mixed | ...), got 'fp32'",
        ),
        (
            "teacher.rec_model_type=bert4rec",
            "teacher.rec_model_type must be null or one of sasrec | gru4rec | caser, got 'bert4rec'",
        ),
    ],
)
def test_out_of_range_value_is_refused_with_the_key_named(override, message):
    assert refusal([override]) == message


@pytest.mark.parametrize(
    "override",
    ["student.lr=3e-4", "train.gradient_clip_val=null", "train.patience=0", "active.budget_ratio=1",
     "teacher.lora_dropout=0", "teacher.head_lr_scale=0", "metrics.ks=[1]", "dataset.limit_data_rows=-1",
     "distill.use_dros=false", "teacher.distill_decay_steps=100", "general.num_threads=1",
     "general.num_threads=auto", "general.thread_wait=spin", "teacher.rec_model_type=null", "train.precision=16",
     "teacher.precision=32-true"],
)  # fmt: skip
def test_boundary_values_in_range_pass(override):
    validate_config(composed([override]), pipeline=True)


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["student.num_heads=3"], "student.num_heads (3) must divide hidden_size (64)"),
        (["student.emb_size=32"], "sasrec needs student.emb_size == hidden_size"),
        (["teacher.num_experts=3"], "teacher.num_experts=3 must be > 0 and divide teacher.lora_r=8"),
        (["student=caser", "student.filter_heights=[2,60]"], "student.filter_heights must be non-empty integers"),
        (["teacher=ensemble", "teacher.num_members=0"], "teacher.num_members=0 and no teacher.checkpoints"),
        (["dataset.synthetic.max_len=390"], "dataset.synthetic needs min_len <= max_len <= num_items"),
        (["distill.candidate_topk=30"], "distill.candidate_topk=30 exceeds teacher.export.top_n=20"),
        (["distill.listwise_topn=21"], "distill.listwise_topn=21 exceeds teacher.export.top_n=20"),
        (["eval.collect=all", "eval.runs=[result/x]"], "eval.runs and eval.collect=all both choose the runs"),
        (["dataset=ml-100k", "dataset.data_dir=null"], "dataset.data_dir must be set for dataset.format=ml-100k"),
    ],
)
def test_rules_across_keys(overrides, needle):
    assert needle in refusal(overrides)


def test_top_k_against_the_export_is_a_pipeline_rule_only():
    """run-distill may read another run's export (its own top_n), so only the pipeline compares the two."""
    validate_config(composed(["distill.candidate_topk=30"], "run_distill"))


@pytest.mark.parametrize(
    ("key", "replacement"),
    [
        ("distill.lam", "use distill.rd_weight"),
        ("distill.lambda", "use distill.rd_weight"),
        ("teacher.llm_model_name", "use teacher.llm_path"),
        ("general.device", "use train.accelerator"),
        ("general.experiment_name", "nothing read it"),
        ("teacher.save_interval", "every epoch is checkpointed"),
        ("teacher.hidden_size", "read from the model"),
        ("paths.teacher_outputs_dir", "use distill.teacher_outputs_dir"),
    ],
)
def test_a_removed_key_is_refused_naming_what_replaced_it(key, replacement):
    """On the command line (exit 2 before a run folder, core/override_check.py) and added with +."""
    message = composition_error("run_pipeline", [f"{key}=1"])
    assert message is not None and message.startswith(f"{key} was removed: ") and replacement in message
    assert refusal([f"+{key}=1"]) == message


def test_an_added_key_nothing_reads_is_refused_with_a_suggestion():
    message = "distill.rd_weigth is not a config key (did you mean distill.rd_weight?)"
    assert refusal(["+distill.rd_weigth=1"]) == message
    assert refusal(["+note=tagged"]).startswith("note is not a config key")


def test_a_deleted_key_is_refused():
    assert refusal(["~student.num_blocks"]) == "student.num_blocks is missing: the config must define it"


def test_an_unknown_variant_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="student.name='bert4rec' is unknown; valid: sasrec, gru4rec, caser"):
        validate_config(composed(["student.name=bert4rec"]))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.name=bert4rec"], "train.name='bert4rec' is unknown; valid: student, teacher, distill"),
        (["train.name=teacher"], "train.name=teacher without the stage's other trainer values: choose the stage "),
        (["~train"], "train.name is not set: choose the stage with train=<stage> (student, teacher, distill)"),
    ],
)
def test_the_training_stage_is_chosen_with_train_equals_stage(overrides, message):
    """conf/train.yaml takes a stage's own values through train.name: a name set by hand is refused naming the
    train=<stage> option that sets it with the stage's other values."""
    for name in ("config", "run_pipeline"):
        assert refusal(overrides, name).startswith(message)
