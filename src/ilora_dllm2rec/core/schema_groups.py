"""Schema of the run-wide config groups: general, paths, logging, metrics, eval, active, train. One field per
key: type, default (= the YAML's), range (core/schema.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from .schema import (
    FRACTION,
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    Range,
    Section,
    between,
    frozen,
    key,
)

# Lightning's precision values (checked here so a typo stops before a run folder exists, not inside Trainer)
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true", "32", "16", "64", "bf16",
              "transformer-engine", "transformer-engine-float16")  # fmt: skip
PRECISION = Range(lambda v: str(v) in PRECISIONS, "a Lightning precision (32-true | bf16-mixed | 16-mixed | ...)")


@frozen
class General(Section):
    seed: int = key(42, NON_NEGATIVE)
    tune_malloc: bool = key(True)
    num_threads: int | Literal["auto"] = key("auto", POSITIVE_INT)
    thread_wait: Literal["short", "passive", "spin"] = key("short")
    removed = {
        "device": "use train.accelerator (cpu | gpu | auto)",
        "experiment_name": "nothing read it; a run's .hydra/overrides.yaml records the experiment= it ran",
    }


@frozen
class Paths(Section):
    data_dir: str = key("data")
    result_root: str = key("result")
    cache_dir: str | None = key("data/processed")
    model_cache_dir: str = key("data/models")
    removed = {"teacher_outputs_dir": "use distill.teacher_outputs_dir"}


@frozen
class Logging(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = key("INFO")
    tensorboard: bool = key(True)
    progress_bar: bool = key(True)
    removed = {"console_table": "nothing read it; the metric tables are always printed"}


@frozen
class Metrics(Section):
    ks: list[int] = key(
        [1, 5, 10, 20], Range(lambda v: bool(v) and all(k >= 1 for k in v), "a non-empty list of integers >= 1")
    )
    exclude_history: bool = key(False)
    removed = {"candidate_protocol": "nothing read it; HitRatio@1 over the candidates (cand_hr@1) is always reported"}


@frozen
class Significance(Section):
    enabled: bool = key(True)
    reference: str = key("baseline")
    metrics: list[str] = key(["ndcg@10", "hr@10"])
    resamples: int = key(2000, POSITIVE_INT)
    seed: int = key(0, NON_NEGATIVE)


Stage = Literal["baseline", "teacher", "distill"]


@frozen
class Eval(Section):
    models: list[Stage] = key(["baseline", "teacher", "distill"])
    collect: Literal["newest", "all"] = key("newest")
    runs: list[str] = key([])
    baseline_checkpoint: str | None = key(None)
    teacher_checkpoint: str | None = key(None)
    distill_checkpoint: str | None = key(None)
    split: Literal["val", "test"] = key("test")
    significance: Significance = key(Significance)

    def rules(self) -> Iterator[tuple[str, str]]:
        if self.runs and self.collect == "all":
            yield (
                "runs",
                "eval.runs and eval.collect=all both choose the runs: set one of them "
                "(eval.runs=[] or eval.collect=newest)",
            )
        for stage in ("baseline", "teacher", "distill"):
            if (self.runs or self.collect == "all") and getattr(self, f"{stage}_checkpoint"):
                where = "eval.runs" if self.runs else "eval.collect=all"
                yield (
                    f"{stage}_checkpoint",
                    (
                        f"eval.{stage}_checkpoint is set together with {where}: list its run folder in eval.runs "
                        "instead, "
                        f"or set eval.{stage}_checkpoint=null"
                    ),
                )


# -- active (which training rows get the teacher's knowledge) ----------------------------------------------------
@frozen
class Active(Section):
    strategy: Literal["all", "random", "uncertainty", "disagreement", "meta"] = key()
    budget_ratio: float = key(1.0, FRACTION)
    seed: int = key(42, NON_NEGATIVE)
    variant_key = "strategy"
    removed = {"name": "the strategy is active.strategy (active=<option> chooses the preset)"}


@frozen
class TopkActive(Active):
    """The strategies that compare top-K lists."""

    budget_ratio: float = key(0.5, FRACTION)
    topk: int = key(10, POSITIVE_INT)


@frozen
class SubsetActive(Active):
    budget_ratio: float = key(0.5, FRACTION)


Active.variants = {
    "all": Active,
    "random": SubsetActive,
    "uncertainty": SubsetActive,
    "disagreement": TopkActive,
    "meta": TopkActive,
}


# -- train (the Lightning trainer; conf/train.yaml, one section for every stage) -----------------------------------
@frozen
class Train(Section):
    """The trainer as one stage runs it: ``name`` is the stage (``train=<stage>``); batch_size, lr, weight_decay and
    max_epochs are that stage's group's own (conf/train.yaml); the teacher's other values are TeacherTrain's
    (conf/train/teacher.yaml)."""

    name: Literal["student", "teacher", "distill"] = key()
    batch_size: int = key(256, POSITIVE_INT)
    eval_batch_size: int = key(1024, POSITIVE_INT)
    lr: float = key(1e-3, POSITIVE)
    weight_decay: float = key(0.0, NON_NEGATIVE)
    max_epochs: int = key(200, POSITIVE_INT)
    patience: int = key(10, NON_NEGATIVE)
    monitor: str = key("val/ndcg@10", Range(lambda v: v.startswith("val/"), "a validation metric (val/...)"))
    monitor_window: int = key(1, POSITIVE_INT)  # select on the mean of the monitor over the last N epochs
    accelerator: str = key("auto")
    devices: Any = key("auto")
    strategy: str = key("auto")
    precision: str | int = key("32-true", PRECISION)
    num_workers: int = key(0, NON_NEGATIVE)
    gradient_clip_val: float | None = key(None, POSITIVE)
    accumulate_grad_batches: int = key(1, POSITIVE_INT)
    log_every_n_steps: int = key(50, POSITIVE_INT)
    limit_train_batches: int | float | None = key(None, POSITIVE)
    deterministic: bool = key(False)
    variant_key = "name"


@frozen
class TeacherTrain(Train):
    """The teacher's trainer (train=teacher): bf16, gradient clipping, a cosine schedule with warmup."""

    batch_size: int = key(8, POSITIVE_INT)
    eval_batch_size: int = key(32, POSITIVE_INT)
    lr: float = key(1e-4, POSITIVE)
    max_epochs: int = key(2, POSITIVE_INT)
    patience: int = key(3, NON_NEGATIVE)
    precision: str | int = key("bf16-mixed", PRECISION)
    gradient_clip_val: float | None = key(1.0, POSITIVE)
    log_every_n_steps: int = key(10, POSITIVE_INT)
    warmup_ratio: float = key(0.05, between(0, 1, high_open=True))


Train.variants = {"student": Train, "teacher": TeacherTrain, "distill": Train}
