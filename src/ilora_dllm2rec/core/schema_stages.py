"""Schema of the teacher and distill groups, the whole config, and :func:`validate_config`, the one check of a
composed config that every entry point runs before a run folder exists."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from omegaconf import DictConfig, OmegaConf

from .errors import ConfigError
from .schema import (
    DROPOUT,
    FRACTION,
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    Range,
    Section,
    check,
    frozen,
    hints,
    key,
)
from .schema_data import Dataset, SasrecModel, Student, StudentModel
from .schema_groups import Active, Eval, General, Logging, Metrics, Paths, Train

# StudentModel keys every member of a teacher=ensemble shares with teacher.model, whatever its kind; dropout and
# the architecture's own keys keep that kind's defaults (GRU4Rec's dropout is 0.1, the others' 0.2).
SHARED_MODEL_KEYS = ("emb_size", "hidden_size", "max_seq_len", "head", "history_bias", "loss", "n_neg", "dros_alpha",
                     "dros_beta")  # fmt: skip


@frozen
class Export(Section):
    top_n: int = key(20, POSITIVE_INT)
    batch_size: int = key(1024, POSITIVE_INT)


@frozen
class LlmExport(Export):
    batch_size: int = key(32, POSITIVE_INT)
    item_embedding_adapters: bool = key(False)


@frozen
class HeadRefit(Section):
    samples: int = key(0, NON_NEGATIVE)
    epochs: int = key(20, POSITIVE_INT)
    patience: int = key(3, POSITIVE_INT)  # epochs without a better validation NDCG@10 (0 would stop at once)
    lr: float = key(1e-3, POSITIVE)
    weight_decay: float = key(0.0, NON_NEGATIVE)
    batch_size: int = key(256, POSITIVE_INT)


@frozen
class Teacher(Section):
    """Keys of every backend (``teacher.backend`` chooses): the trainer's values and the export."""

    backend: Literal["ilora", "sasrec", "ensemble"] = key()
    rec_model_checkpoint_path: str | None = key(None)
    batch_size: int = key(256, POSITIVE_INT)
    eval_batch_size: int = key(1024, POSITIVE_INT)
    lr: float = key(1e-3, POSITIVE)
    num_epochs: int = key(200, POSITIVE_INT)
    patience: int = key(10, NON_NEGATIVE)
    export: Export = key(Export)
    variant_key = "backend"
    removed = {"name": "the teacher is chosen by teacher=<option>; its implementation is teacher.backend"}


PROMPT_TEMPLATES = {
    "movies": "This user has watched [HistoryHere] in the previous. "
    "Please predict the next movie this user will watch.",
    "games": "This user has played [HistoryHere] in the previous. Please predict the next game this user will play.",
    "music": "This user has listened to [HistoryHere] in the previous. "
    "Please predict the next song this user will listen to.",
    "generic": "This user has interacted with [HistoryHere] in the previous. "
    "Please predict the next item this user will interact with.",
}
ID_MODEL = SasrecModel(name="sasrec", emb_size=128, hidden_size=128, num_blocks=2, num_heads=2)


@frozen
class IdTeacher(Teacher):
    """A larger ID-based recommender (teacher=sasrec)."""

    model: StudentModel = key(ID_MODEL)
    removed = {**Teacher.removed, "llm_path": "the ID teachers have no LLM (teacher=ilora has)"}


@frozen
class EnsembleTeacher(IdTeacher):
    """``num_members`` models of ``model`` trained here plus existing checkpoints (teacher=ensemble)."""

    model: StudentModel = key(SasrecModel(name="sasrec", num_blocks=2))
    num_members: int = key(3, NON_NEGATIVE)
    member_models: list[Literal["sasrec", "gru4rec", "caser"]] = key([])
    checkpoints: list[str] = key([])
    combine: Literal["zscore", "log_softmax"] = key("zscore")

    def member_model(self, index: int) -> StudentModel:
        """The model of trained member ``index``: kind ``member_models[index % len]`` (``model.name`` when the list
        is empty); ``model`` itself for its own kind, else that kind's defaults (conf/student/<kind>.yaml) with
        ``model``'s shared keys (sizes, sequence length, head, history bias, loss)."""
        kinds = self.member_models or [self.model.name]
        kind = kinds[index % len(kinds)]
        if kind == self.model.name:
            return self.model
        shared = {name: getattr(self.model, name) for name in SHARED_MODEL_KEYS}
        return check(StudentModel, {"name": kind, **shared}, f"teacher.member_models[{index % len(kinds)}]")

    def rules(self) -> Iterator[tuple[str, str]]:
        if self.num_members + len(self.checkpoints) < 1:
            yield "num_members", "{key}=0 and no teacher.checkpoints: the ensemble needs at least one member"
        if self.member_models and not self.num_members:
            yield "member_models", "{key} is set but teacher.num_members=0 trains no member: set num_members"
        for index in range(min(self.num_members, len(self.member_models))):
            try:
                self.member_model(index)
            except ConfigError as exc:
                yield "member_models", str(exc)


@frozen
class IloraTeacher(Teacher):
    """The LLM teacher (teacher=ilora and its variants); names follow the users' run guide."""

    llm_path: str = key("embedded:smollm2-135m-instruct")
    allow_download: bool | None = key(None)
    trust_remote_code: bool = key(False)
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2"] = key("sdpa")
    train_attn_implementation: Literal["sdpa", "eager", "flash_attention_2"] | None = key(None)
    compile: bool = key(False)
    dtype: Literal["bf16", "fp32", "fp16"] = key("bf16")
    gradient_checkpointing: bool = key(False)
    adapter: Literal["moelora", "lora", "freeze", "full"] = key("moelora")
    num_experts: int = key(4, POSITIVE_INT)
    lora_r: int = key(8, POSITIVE_INT)
    lora_alpha: float = key(32, POSITIVE)
    lora_dropout: float = key(0.1, DROPOUT)
    target_modules: list[str] = key(
        ["q_proj", "k_proj", "v_proj", "o_proj"], Range(bool, "a non-empty list of strings")
    )
    gate_lr_scale: float = key(0.3, NON_NEGATIVE)
    head_lr_scale: float = key(1.0, NON_NEGATIVE)
    prompt_template: str = key("movies")
    prompt_templates: dict[str, str] = key(PROMPT_TEMPLATES)
    max_prompt_tokens: int = key(256, POSITIVE_INT)
    max_history_items: int = key(20, POSITIVE_INT)
    pad_to_multiple_of: int = key(1, POSITIVE_INT)
    rec_model_type: Literal["sasrec", "gru4rec", "caser"] | None = key(None)
    use_item_embeddings_head: bool = key(True)
    head_residual: bool = key(True)
    distill_loss_type: Literal["mse", "cosine", "l1", "huber", "contrastive"] = key("mse")
    distill_lambda: float = key(1.0, NON_NEGATIVE)
    distill_decay_type: Literal["none", "linear", "cosine", "exponential"] = key("linear")
    distill_min_lambda: float = key(0.0, NON_NEGATIVE)
    distill_decay_steps: int | None = key(None, POSITIVE_INT)
    contrastive_temperature: float = key(0.1, POSITIVE)
    batch_size: int = key(8, POSITIVE_INT)
    group_by_length: bool = key(True)
    eval_batch_size: int = key(32, POSITIVE_INT)
    lr: float = key(1e-4, POSITIVE)
    num_epochs: int = key(2, POSITIVE_INT)
    patience: int = key(3, NON_NEGATIVE)
    max_train_samples: int | None = key(None, POSITIVE_INT)
    train_sample_ratio: float | None = key(None, FRACTION)
    max_eval_samples: int | None = key(None, POSITIVE_INT)
    head_refit: HeadRefit = key(HeadRefit)
    export: LlmExport = key(LlmExport)
    removed = {
        **Teacher.removed,
        "llm_model_name": "use teacher.llm_path",
        "save_interval": "every epoch is checkpointed (best.ckpt and last.ckpt)",
        "hidden_size": "the LLM's hidden size is read from the model",
    }

    def rules(self) -> Iterator[tuple[str, str]]:
        if not self.llm_path:
            yield "llm_path", "{key} is not set: use embedded:smollm2-135m-instruct, a model folder or a HF id"
        if self.adapter == "moelora" and self.lora_r % self.num_experts:
            yield (
                "num_experts",
                (
                    f"teacher.num_experts={self.num_experts} must be > 0 and divide teacher.lora_r={self.lora_r} "
                    "(each expert has rank lora_r / num_experts): e.g. num_experts=4, lora_r=8"
                ),
            )


Teacher.variants = {"ilora": IloraTeacher, "sasrec": IdTeacher, "ensemble": EnsembleTeacher}


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
