"""Building the teacher from the real conf/teacher configs; option precedence; early config errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf, open_dict
from teacher_helpers import TITLES

from ilora_dllm2rec.core.errors import ConfigError
from ilora_dllm2rec.teacher.factory import build_ilora_model, build_lambda_schedule, teacher_spec

CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")
REQUIRED_KEYS = """backend llm_path trust_remote_code attn_implementation dtype
gradient_checkpointing adapter num_experts lora_r lora_alpha lora_dropout target_modules gate_lr_scale
prompt_template prompt_templates max_prompt_tokens max_history_items rec_model_checkpoint_path
use_item_embeddings_head distill_loss_type distill_lambda distill_decay_type distill_min_lambda distill_decay_steps
contrastive_temperature batch_size eval_batch_size lr num_epochs max_train_samples train_sample_ratio
max_eval_samples export""".split()


def _teacher_cfg(name: str = "ilora", extra: list[str] | None = None):
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONF_DIR):
        return compose("config", overrides=[f"teacher={name}", *(extra or [])]).teacher


def test_config_has_every_user_facing_key() -> None:
    cfg = _teacher_cfg()
    assert set(REQUIRED_KEYS) <= set(cfg.keys())
    assert set(cfg.export.keys()) == {"top_n", "batch_size", "item_embedding_adapters"}
    assert set(cfg.prompt_templates.keys()) == {"movies", "games", "music", "generic"}
    assert cfg.llm_path == "embedded:smollm2-135m-instruct" and cfg.prompt_template == "movies"


@pytest.mark.parametrize(
    ("name", "path"), [("ilora_llama2", "meta-llama/Llama-2-7b-hf"), ("ilora_qwen", "Qwen/Qwen2.5-0.5B-Instruct")]
)
def test_variants_only_override(name: str, path: str) -> None:
    base, cfg = _teacher_cfg(), _teacher_cfg(name, ["teacher.lora_r=16"])
    assert cfg.llm_path == path and cfg.lora_r == 16 and cfg.num_experts == base.num_experts
    if name == "ilora_llama2":
        assert cfg.gradient_checkpointing and cfg.attn_implementation == "flash_attention_2"


def test_llm_path_is_the_one_name_of_the_llm() -> None:
    assert teacher_spec({"llm_path": "a/b"}).llm_path == "a/b"
    with pytest.raises(ConfigError, match="teacher.llm_path"):
        teacher_spec({"llm_path": None})
    with pytest.raises(ConfigError, match="teacher.llm_path"):
        teacher_spec({"llm_path": ""})


def test_build_from_config_with_tiny_llm(tiny_llm_dir: Path, make_student, tmp_path: Path, batch) -> None:
    cfg = _teacher_cfg(extra=["teacher.dtype=fp32", "teacher.num_experts=2", "teacher.max_prompt_tokens=64"])
    with open_dict(cfg):
        cfg.llm_path = f"tiny:{tiny_llm_dir}"
    model = build_ilora_model(cfg, make_student(), TITLES, model_cache_dir=tmp_path)
    assert model.num_experts == 2 and model.prompts.max_prompt_tokens == 64
    assert model(*batch)["gate"].shape == (3, 2)
    sched = build_lambda_schedule(cfg, total_steps=10)
    assert sched(0) == cfg.distill_lambda and sched(10) == cfg.distill_min_lambda


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("num_experts", 3, "teacher.num_experts=3"),
        ("adapter", "prefix", "teacher.adapter"),
        ("distill_loss_type", "kl", "distill_loss_type"),
    ],
)
def test_config_errors_before_loading(key: str, value, match: str, make_student, tmp_path: Path) -> None:
    cfg = OmegaConf.create({"llm_path": str(tmp_path / "never-loaded"), key: value})
    with pytest.raises(ConfigError, match=match):
        build_ilora_model(cfg, make_student(), TITLES, model_cache_dir=tmp_path)
