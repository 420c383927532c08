"""Schema of the teacher group: the keys every backend shares, and those of the iLoRA, ID and ensemble teachers
(``teacher.backend`` chooses the section)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

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
    key,
)
from .schema_data import SasrecModel, StudentModel
from .schema_groups import PRECISION

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
    precision: str | int = key(
        "bf16-mixed", PRECISION
    )  # train.precision of the teacher stage (conf/train/teacher.yaml)
    gradient_clip_val: float | None = key(1.0, POSITIVE)  # and its train.gradient_clip_val
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
    precision: str | int = key(
        "32-true", PRECISION
    )  # the members train as the students do (conf/teacher/ensemble.yaml)
    gradient_clip_val: float | None = key(None, POSITIVE)

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
