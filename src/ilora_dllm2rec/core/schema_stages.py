"""Schema of the distill group, the whole config, and :func:`validate_config`, the one check of a composed config
that every entry point runs before a run folder exists (the teacher group: core/schema_teacher.py)."""

from __future__ import annotations

from typing import Literal

from omegaconf import DictConfig, OmegaConf

from .errors import ConfigError
from .schema import (
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    Section,
    check,
    frozen,
    hints,
    key,
)
from .schema_data import Dataset, Student
from .schema_groups import Active, Eval, General, Logging, Metrics, Paths, Train
from .schema_teacher import Teacher


@frozen
class Distill(Section):
    """DLLM2Rec distillation and the softmax students' forms (docs/ALGORITHMS.md)."""

    alpha: float = key(0.5, NON_NEGATIVE)
    beta: float = key(1.0, POSITIVE)
    use_dros: bool | Literal["auto"] = key("auto")
    ed_weight: float = key(0.3, NON_NEGATIVE)
    ed_standardize: bool = key(False)
    rd_weight: float = key(0.7, NON_NEGATIVE)
    candidate_topk: int = key(10, POSITIVE_INT)
    gamma_position: float = key(0.3, NON_NEGATIVE)
    gamma_confidence: float = key(0.5, NON_NEGATIVE)
    gamma_consistency: float = key(0.1, NON_NEGATIVE)
    lam_position: float = key(1.0, POSITIVE)
    n_neg: int = key(1, POSITIVE_INT)
    reference_compat: bool = key(False)
    rd_mean: Literal["batch", "selected"] = key("batch")
    use_ranking_distill: bool = key(True)
    use_embedding_distill: bool = key(True)
    init_from_baseline: bool = key(False)
    teacher_outputs_dir: str | None = key(None)
    teacher_checkpoint_path: str | None = key(None)
    baseline_checkpoint_path: str | None = key(None)
    batch_size: int = key(256, POSITIVE_INT)
    lr: float = key(1e-3, POSITIVE)
    weight_decay: float = key(0.0, NON_NEGATIVE)
    num_epochs: int = key(200, POSITIVE_INT)
    rd_form: Literal["auto", "bce", "softmax"] = key("auto")
    rd_temperature: float = key(1.0, POSITIVE)
    listwise_weight: float = key(0.0, NON_NEGATIVE)
    listwise_temperature: float = key(1.0, POSITIVE)
    listwise_normaliser: Literal["bucket", "topn"] = key("bucket")
    listwise_topn: int | None = key(None, POSITIVE_INT)
    function_matching_weight: float = key(0.0, NON_NEGATIVE)
    function_matching_temperature: float = key(1.0, POSITIVE)
    removed = {
        "lam": "use distill.rd_weight (the weight of the ranking-distillation loss L_RD)",
        "lambda": "use distill.rd_weight (the weight of the ranking-distillation loss L_RD)",
        "name": "distill has one option (dllm2rec); nothing read its name",
    }


@frozen
class Config(Section):
    """The whole composed config (without Hydra's own ``hydra`` node)."""

    general: General = key(General)
    resume: bool = key(False)
    dataset: Dataset = key()
    student: Student = key()
    teacher: Teacher = key()
    distill: Distill = key(Distill)
    active: Active = key(Active)
    eval: Eval = key(Eval)
    metrics: Metrics = key(Metrics)
    paths: Paths = key(Paths)
    logging: Logging = key(Logging)
    train: Train = key()  # last: its values default to the groups', whose keys the messages should name


def removed_key_message(dotted: str) -> str | None:
    """``<key> was removed: <what replaced it>`` for a key an earlier version had (None for any other key)."""
    cls: type[Section] = Config
    *parents, leaf = dotted.split(".")
    for part in parents:
        found = [hints(c).get(part) for c in (cls, *cls.variants.values())]
        sections = [t for t in found if isinstance(t, type) and issubclass(t, Section)]
        if not sections:
            return None
        cls = sections[0]
    for c in (cls, *cls.variants.values()):
        if leaf in c.removed:
            return f"{dotted} was removed: {c.removed[leaf]}"
    return None


# keys a config may lack: general.num_threads arrives in conf/config.yaml with its reader (core/runtime.py)
OPTIONAL = frozenset({"general.num_threads"})


STAGES = ", ".join(Train.variants)


def check_train_stage(cfg: DictConfig) -> None:
    """conf/train.yaml reads a stage's own values as ``${${train.name}.<key>}``: a ``train.name`` that names no stage,
    or that was set without ``train=<stage>`` (which also brings the stage's other values), is refused here with the
    option to use instead (resolving the config would otherwise fail with OmegaConf's multi-line error)."""
    from omegaconf.errors import OmegaConfBaseException

    train = cfg.get("train") if isinstance(cfg, DictConfig) else None
    if not isinstance(train, DictConfig) or train._get_node("name") is None:
        return  # check() names the missing section or key
    name = OmegaConf.select(cfg, "train.name", throw_on_missing=False)
    if name is None:
        raise ConfigError(f"train.name is not set: choose the stage with train=<stage> ({STAGES})")
    if name not in Train.variants:
        raise ConfigError(f"train.name={name!r} is unknown; valid: {STAGES} (choose the stage with train=<stage>)")
    for field in train:
        node = train._get_node(field)
        if "${train.name}" not in str(node._value() if node is not None else ""):
            continue
        try:
            OmegaConf.select(cfg, f"train.{field}")
        except OmegaConfBaseException:
            raise ConfigError(
                f"train.name={name} without the stage's other trainer values: choose the stage with train={name}"
            ) from None


def validate_config(cfg: DictConfig, pipeline: bool = False) -> Config:
    """The typed config, or ConfigError naming the first key that is unknown, missing, of the wrong type or out of
    range, or breaks a rule across keys. ``pipeline``: the run exports its own teacher top-N, which must then hold
    the distillation's top-K."""
    check_train_stage(cfg)
    container = OmegaConf.to_container(cfg, resolve=True)
    if not isinstance(container, dict):
        raise ConfigError(f"the config must be a mapping, got {type(container).__name__}")
    container.pop("hydra", None)
    config = check(Config, container, "", strict=True, optional=OPTIONAL)
    if pipeline:
        top_n, distill = config.teacher.export.top_n, config.distill
        for name, value in (("candidate_topk", distill.candidate_topk), ("listwise_topn", distill.listwise_topn)):
            if value is not None and value > top_n:
                raise ConfigError(
                    f"distill.{name}={value} exceeds teacher.export.top_n={top_n}: the pipeline's own export must "
                    f"hold it (raise teacher.export.top_n or lower distill.{name})"
                )
    return config
