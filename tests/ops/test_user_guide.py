"""The user guides stay in step with the code: every `group.key=` they show exists in the composed
config, every cmd/ script they name exists (and each one is documented), the option names users type appear."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from .ops_helpers import ROOT

GUIDES = [ROOT / "docs" / "USER_GUIDE.md", ROOT / "docs" / "USER_GUIDE.ja.md"]
GROUPS = (
    "dataset",
    "student",
    "teacher",
    "distill",
    "train",
    "eval",
    "paths",
    "active",
    "logging",
    "metrics",
    "general",
)
# config variants whose keys the guides may use (group options add keys of their own)
VARIANTS = [
    [],
    ["teacher=sasrec"],
    ["teacher=ensemble"],
    ["dataset=csv"],
    ["dataset=sequence_example"],
    ["teacher=ilora_llama2"],
    ["active=uncertainty"],
]
REMOVED_PENDING_GUIDE_UPDATE = {"distill.lam", "distill.lambda", "teacher.llm_model_name"}
USER_FACING_NAMES = [
    "train=student",
    "limit_data_rows",
    "teacher.rec_model_checkpoint_path",
    "distill.teacher_checkpoint_path",
    "distill.teacher_outputs_dir",
    "use_item_embeddings_head",
    "distill_loss_type",
    "distill_decay_type",
    "distill_min_lambda",
    "distill_decay_steps",
    "flash_attention_2",
    "train.strategy=ddp",
    "HF_TOKEN",
    "huggingface-cli login",
]


def keys(node: DictConfig, prefix: str = "") -> set[str]:
    out = set()
    for key in node.keys():
        path = f"{prefix}{key}"
        out.add(path)
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            out |= keys(child, path + ".")
    return out


@pytest.fixture(scope="module")
def config_keys() -> set[str]:
    found: set[str] = set()
    for overrides in VARIANTS:
        GlobalHydra.instance().clear()
        with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "conf")):
            found |= keys(compose(config_name="run_pipeline", overrides=overrides))
    GlobalHydra.instance().clear()
    return found


@pytest.mark.parametrize("guide", GUIDES, ids=lambda p: p.name)
def test_documented_overrides_exist(guide: Path, config_keys: set[str]) -> None:
    groups = "|".join(GROUPS)
    text = guide.read_text()
    # `key=value` anywhere, and a whole `key` in backticks (the option tables)
    shown = set(re.findall(rf"(?<![\w.$/-])((?:{groups})\.[A-Za-z_][\w.]*)=", text))
    shown |= set(re.findall(rf"`((?:{groups})\.[A-Za-z_][\w.]*)`", text))
    shown = {k for k in shown if not re.search(r"\.(csv|txt|json|pt|ckpt|log|md|yaml)$", k)}  # file names
    assert len(shown) > 20
    unknown = {k for k in shown if k not in config_keys}
    # removed by the typed config schema (refused with the new name); the guides' lines are updated separately:
    # this set may only shrink
    assert sorted(unknown - REMOVED_PENDING_GUIDE_UPDATE) == []


@pytest.mark.parametrize("guide", GUIDES, ids=lambda p: p.name)
def test_documented_scripts_exist_and_user_facing_names_appear(guide: Path) -> None:
    text = guide.read_text()
    for rel in set(re.findall(r"cmd/[\w/]+\.sh", text)):
        assert (ROOT / rel).is_file(), rel
    for name in USER_FACING_NAMES:
        assert name in text, name


def test_every_script_is_documented() -> None:
    text = GUIDES[0].read_text()
    for path in sorted((ROOT / "cmd").rglob("*.sh")):
        if path.name != "_common.sh":
            assert path.name in text, path
