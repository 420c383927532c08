"""Range checks of the numeric training settings, run at the start of every entry point.

Without them ``train.lr=-1`` or ``teacher.batch_size=0`` reach torch or a data loader deep inside a stage and
end in a traceback that names no config key, sometimes after a baseline has already been trained. One table
of rules, checked on the composed config before any work: the first violation stops the run with one line
naming the key. The group values (``student.lr``, ``teacher.batch_size`` ...) come before the ``train.*``
preset that defaults to them, so the message names the key the user set. Keys a config does not define are
skipped, so the same table serves every entry point.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from omegaconf import DictConfig, OmegaConf

from .errors import ConfigError


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _int_at_least(low: int) -> tuple[Callable[[object], bool], str]:
    return (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low), f"an integer >= {low}"


POSITIVE_INT = _int_at_least(1)
NON_NEGATIVE_INT = _int_at_least(0)
POSITIVE = (lambda v: _number(v) and v > 0), "a number > 0"
NON_NEGATIVE = (lambda v: _number(v) and v >= 0), "a number >= 0"
HALF_OPEN_UNIT = (lambda v: _number(v) and 0 <= v < 1), "a number in [0, 1)"
FRACTION = (lambda v: _number(v) and 0 < v <= 1), "a number in (0, 1]"
POSITIVE_OR_NULL = (lambda v: v is None or (_number(v) and v > 0)), "null or a number > 0"
POSITIVE_INT_OR_NULL = (lambda v: v is None or POSITIVE_INT[0](v)), "null or an integer >= 1"


def _one_of(*choices: str) -> tuple[Callable[[object], bool], str]:
    return (lambda v: v in choices), "one of " + " | ".join(choices)


# iLoRA's frozen recommender: the students that implement encode / score / item_embedding (teacher/train.py's
# REC_MODEL_TYPES, which imports torch; a test keeps the two equal). Checked here so that run-pipeline refuses a
# bad value before the baseline trains, not when the teacher stage starts.
REC_MODEL_TYPES = ("sasrec", "gru4rec", "caser")
REC_MODEL_TYPE = (
    (lambda v: v is None or str(v).lower() in REC_MODEL_TYPES),
    "null or one of " + " | ".join(REC_MODEL_TYPES),
)


RULES: dict[str, tuple[Callable[[object], bool], str]] = {
    "general.num_threads": ((lambda v: v == "auto" or POSITIVE_INT[0](v)), "auto or an integer >= 1"),
    "general.thread_wait": _one_of("passive", "spin"),
    # the group values the train presets default to (checked first: they are what users set)
    "student.batch_size": POSITIVE_INT,
    "student.num_epochs": POSITIVE_INT,
    "student.lr": POSITIVE,
    "student.weight_decay": NON_NEGATIVE,
    "teacher.batch_size": POSITIVE_INT,
    "teacher.rec_model_type": REC_MODEL_TYPE,
    "teacher.eval_batch_size": POSITIVE_INT,
    "teacher.num_epochs": POSITIVE_INT,
    "teacher.patience": NON_NEGATIVE_INT,
    "teacher.lr": POSITIVE,
    "teacher.lora_alpha": POSITIVE,
    "teacher.lora_dropout": HALF_OPEN_UNIT,
    "teacher.gate_lr_scale": NON_NEGATIVE,
    "teacher.head_lr_scale": NON_NEGATIVE,
    "teacher.max_history_items": POSITIVE_INT,
    "teacher.pad_to_multiple_of": POSITIVE_INT,
    "teacher.save_interval": POSITIVE_INT,
    "teacher.contrastive_temperature": POSITIVE,
    "teacher.distill_lambda": NON_NEGATIVE,
    "teacher.distill_min_lambda": NON_NEGATIVE,
    "teacher.head_refit.samples": NON_NEGATIVE_INT,
    "teacher.head_refit.epochs": POSITIVE_INT,
    "teacher.head_refit.patience": NON_NEGATIVE_INT,
    "teacher.head_refit.lr": POSITIVE,
    "teacher.head_refit.weight_decay": NON_NEGATIVE,
    "teacher.head_refit.batch_size": POSITIVE_INT,
    "teacher.export.top_n": POSITIVE_INT,
    "teacher.export.batch_size": POSITIVE_INT,
    "distill.batch_size": POSITIVE_INT,
    "distill.num_epochs": POSITIVE_INT,
    "distill.lr": POSITIVE,
    "distill.weight_decay": NON_NEGATIVE,
    "distill.candidate_topk": POSITIVE_INT,
    "distill.rd_form": _one_of("auto", "bce", "softmax"),
    "distill.rd_temperature": POSITIVE,
    "distill.listwise_weight": NON_NEGATIVE,
    "distill.listwise_temperature": POSITIVE,
    "distill.listwise_normaliser": _one_of("bucket", "topn"),
    "distill.listwise_topn": POSITIVE_INT_OR_NULL,
    "active.budget_ratio": FRACTION,
    # the train preset of this entry point (and of each pipeline stage: the same keys)
    "train.batch_size": POSITIVE_INT,
    "train.eval_batch_size": POSITIVE_INT,
    "train.max_epochs": POSITIVE_INT,
    "train.patience": NON_NEGATIVE_INT,
    "train.lr": POSITIVE,
    "train.weight_decay": NON_NEGATIVE,
    "train.accumulate_grad_batches": POSITIVE_INT,
    "train.log_every_n_steps": POSITIVE_INT,
    "train.num_workers": NON_NEGATIVE_INT,
    "train.gradient_clip_val": POSITIVE_OR_NULL,
    "train.warmup_ratio": HALF_OPEN_UNIT,
}

_MISSING = object()


def check_value_ranges(cfg: DictConfig) -> None:
    """ConfigError naming the first key of :data:`RULES` (then ``metrics.ks``) whose value is out of range."""
    for key, (ok, expected) in RULES.items():
        value = OmegaConf.select(cfg, key, default=_MISSING)
        if value is _MISSING or ok(value):
            continue
        raise ConfigError(f"{key} must be {expected}, got {value!r}")
    ks = OmegaConf.select(cfg, "metrics.ks", default=_MISSING)
    if ks is not _MISSING:
        values = list(ks) if OmegaConf.is_list(ks) else [ks]
        if not values or not all(POSITIVE_INT[0](k) for k in values):
            raise ConfigError(f"metrics.ks must be a non-empty list of integers >= 1, got {values!r}")
