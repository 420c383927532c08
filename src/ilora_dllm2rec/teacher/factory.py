"""Build the iLoRA teacher from a ``teacher`` config node (conf/teacher/ilora.yaml); no global config."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..core.schema import check
from ..core.schema_teacher import IloraTeacher
from ..student.base import SequentialRecommender
from .ilora_model import ILoRAModel
from .imitation import LambdaSchedule
from .llm import load_llm

log = logging.getLogger(__name__)


def teacher_spec(cfg: Mapping[str, Any] | IloraTeacher) -> IloraTeacher:
    """The checked ``teacher`` section of the LLM teacher (a stored checkpoint config too: other keys are ignored,
    missing ones take the schema's default); every check runs before an LLM is loaded."""
    if isinstance(cfg, IloraTeacher):
        return cfg
    return check(IloraTeacher, {**dict(cfg), "backend": "ilora"}, "teacher")


def build_ilora_model(
    cfg: Mapping[str, Any] | IloraTeacher,
    student: SequentialRecommender,
    item_titles: Sequence[str],
    *,
    model_cache_dir: str | Path,
) -> ILoRAModel:
    """Load the LLM named by the config and wrap it with the frozen ``student`` into an :class:`ILoRAModel`."""
    spec = teacher_spec(cfg)
    llm, tokenizer = load_llm(
        spec.llm_path,
        dtype=spec.dtype,
        attn_implementation=spec.attn_implementation,
        trust_remote_code=spec.trust_remote_code,
        model_cache_dir=model_cache_dir,
        gradient_checkpointing=spec.gradient_checkpointing,
        allow_download=spec.allow_download,
    )
    model = ILoRAModel(
        llm,
        tokenizer,
        student,
        item_titles,
        prompt_template=spec.prompt_template,
        prompt_templates=dict(spec.prompt_templates),
        max_prompt_tokens=spec.max_prompt_tokens,
        max_history_items=spec.max_history_items,
        adapter=spec.adapter,
        num_experts=spec.num_experts,
        lora_r=spec.lora_r,
        lora_alpha=float(spec.lora_alpha),
        lora_dropout=float(spec.lora_dropout),
        target_modules=list(spec.target_modules),
        use_item_embeddings_head=spec.use_item_embeddings_head,
        head_residual=spec.head_residual,
        item_embedding_adapters=spec.export.item_embedding_adapters,
        train_attn_implementation=spec.train_attn_implementation,
        compile_backbone=spec.compile,
        pad_to_multiple_of=spec.pad_to_multiple_of,
    )
    report = model.trainable_parameter_report()
    log.info(
        "iLoRA teacher: D=%d, trainable %d / %d parameters %s",
        model.hidden_size,
        report["trainable"],
        report["total"],
        report["by_group"],
    )
    return model


def build_lambda_schedule(cfg: Mapping[str, Any] | IloraTeacher, total_steps: int | None) -> LambdaSchedule:
    """lam(t) from teacher.distill_lambda / distill_min_lambda / distill_decay_type / distill_decay_steps."""
    spec = teacher_spec(cfg)
    return LambdaSchedule(
        float(spec.distill_lambda),
        float(spec.distill_min_lambda),
        spec.distill_decay_type,
        spec.distill_decay_steps,
        total_steps,
    )
