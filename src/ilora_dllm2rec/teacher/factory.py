"""Build the iLoRA teacher from a ``teacher`` config node (conf/teacher/ilora.yaml); no global config."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from ..student.base import SequentialRecommender
from .ilora_model import DEFAULT_TARGETS, ILoRAModel
from .imitation import IMITATION_LOSSES, LambdaSchedule
from .llm import load_llm, resolve_attn_implementation
from .moe_lora import ADAPTER_MODES, check_expert_rank

log = logging.getLogger(__name__)


def resolve_llm_path(cfg: Mapping[str, Any]) -> str:
    """``teacher.llm_model_name`` (older key kept for users' configs) wins when set; else ``teacher.llm_path``."""
    alias, path = cfg.get("llm_model_name"), cfg.get("llm_path")
    if alias:
        if path and str(path) != str(alias):
            log.info("teacher.llm_model_name=%s overrides teacher.llm_path=%s", alias, path)
        return str(alias)
    if not path:
        raise ConfigError("teacher.llm_path is not set: use embedded:smollm2-135m-instruct, a model folder or a HF id")
    return str(path)


def validate_teacher_config(cfg: Mapping[str, Any]) -> None:
    """Cheap checks that must fail before an LLM is loaded."""
    adapter = cfg.get("adapter", "moelora")
    if adapter not in ADAPTER_MODES:
        raise ConfigError(f"teacher.adapter={adapter!r} is not supported: use one of {list(ADAPTER_MODES)}")
    if adapter == "moelora":
        check_expert_rank(int(cfg.get("num_experts", 4)), int(cfg.get("lora_r", 8)))
    train_attn = cfg.get("train_attn_implementation")
    if train_attn is not None:
        resolve_attn_implementation(str(train_attn))
    if int(cfg.get("pad_to_multiple_of", 1)) < 1:
        raise ConfigError(f"teacher.pad_to_multiple_of must be >= 1, got {cfg.get('pad_to_multiple_of')}")
    loss = cfg.get("distill_loss_type", "mse")
    if loss not in IMITATION_LOSSES:
        raise ConfigError(f"teacher.distill_loss_type={loss!r} is not supported: use one of {list(IMITATION_LOSSES)}")


def build_ilora_model(
    cfg: Mapping[str, Any],
    student: SequentialRecommender,
    item_titles: Sequence[str],
    *,
    model_cache_dir: str | Path,
) -> ILoRAModel:
    """Load the LLM named by the config and wrap it with the frozen ``student`` into an :class:`ILoRAModel`."""
    validate_teacher_config(cfg)
    export = cfg.get("export") or {}
    llm, tokenizer = load_llm(
        resolve_llm_path(cfg),
        dtype=cfg.get("dtype", "bf16"),
        attn_implementation=cfg.get("attn_implementation", "sdpa"),
        trust_remote_code=bool(cfg.get("trust_remote_code", False)),
        model_cache_dir=model_cache_dir,
        gradient_checkpointing=bool(cfg.get("gradient_checkpointing", False)),
        allow_download=cfg.get("allow_download"),
    )
    model = ILoRAModel(
        llm,
        tokenizer,
        student,
        item_titles,
        prompt_template=str(cfg.get("prompt_template", "generic")),
        prompt_templates=dict(cfg.get("prompt_templates") or {}),
        max_prompt_tokens=int(cfg.get("max_prompt_tokens", 256)),
        max_history_items=int(cfg.get("max_history_items", 20)),
        adapter=cfg.get("adapter", "moelora"),
        num_experts=int(cfg.get("num_experts", 4)),
        lora_r=int(cfg.get("lora_r", 8)),
        lora_alpha=float(cfg.get("lora_alpha", 32)),
        lora_dropout=float(cfg.get("lora_dropout", 0.1)),
        target_modules=list(cfg.get("target_modules") or DEFAULT_TARGETS),
        use_item_embeddings_head=bool(cfg.get("use_item_embeddings_head", True)),
        head_residual=bool(cfg.get("head_residual", True)),
        item_embedding_adapters=bool(export.get("item_embedding_adapters", False)),
        train_attn_implementation=cfg.get("train_attn_implementation"),
        compile_backbone=bool(cfg.get("compile", False)),
        pad_to_multiple_of=int(cfg.get("pad_to_multiple_of", 1)),
    )
    hidden = cfg.get("hidden_size")
    if hidden is not None and int(hidden) != model.hidden_size:
        log.warning("teacher.hidden_size=%s ignored: the LLM's hidden size D=%d is used", hidden, model.hidden_size)
    report = model.trainable_parameter_report()
    log.info(
        "iLoRA teacher: D=%d, trainable %d / %d parameters %s",
        model.hidden_size,
        report["trainable"],
        report["total"],
        report["by_group"],
    )
    return model


def build_lambda_schedule(cfg: Mapping[str, Any], total_steps: int | None) -> LambdaSchedule:
    """lam(t) from teacher.distill_lambda / distill_min_lambda / distill_decay_type / distill_decay_steps."""
    return LambdaSchedule(
        float(cfg.get("distill_lambda", 1.0)),
        float(cfg.get("distill_min_lambda", 0.0)),
        str(cfg.get("distill_decay_type", "linear")),
        cfg.get("distill_decay_steps"),
        total_steps,
    )
