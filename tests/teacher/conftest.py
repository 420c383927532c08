"""Teacher test fixtures: a tiny random Llama (built once per test run) and a tiny frozen student."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from teacher_helpers import NUM_ITEMS, TITLES, MeanStudent

from ilora_dllm2rec.teacher.ilora_model import ILoRAModel
from ilora_dllm2rec.teacher.llm import load_llm
from ilora_dllm2rec.teacher.tiny_llm import build_tiny_llm


@pytest.fixture(scope="session")
def tiny_llm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llm(tmp_path_factory.mktemp("tiny_llm"), vocab_words=TITLES)


@pytest.fixture
def make_student() -> Callable[..., MeanStudent]:
    def make(seed: int = 0, num_items: int = NUM_ITEMS) -> MeanStudent:
        torch.manual_seed(seed)
        return MeanStudent(num_items)

    return make


@pytest.fixture
def make_model(
    tiny_llm_dir: Path, make_student: Callable[..., MeanStudent], tmp_path: Path
) -> Callable[..., ILoRAModel]:
    """Factory: ILoRAModel on the tiny LLM (fp32 unless dtype given); kwargs go to ILoRAModel."""

    def make(
        dtype: str = "fp32", seed: int = 0, student: MeanStudent | None = None, checkpointing: bool = False, **kwargs
    ) -> ILoRAModel:
        llm, tok = load_llm(
            str(tiny_llm_dir), dtype=dtype, model_cache_dir=tmp_path / "models", gradient_checkpointing=checkpointing
        )
        torch.manual_seed(seed)
        kwargs.setdefault("lora_dropout", 0.0)
        return ILoRAModel(llm, tok, student or make_student(), TITLES, **kwargs)

    return make


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Three right-padded histories (pad id = NUM_ITEMS), one empty."""
    p = NUM_ITEMS
    seq = torch.tensor([[0, 1, 2, 3, p, p], [5, 7, p, p, p, p], [p, p, p, p, p, p]])
    return seq, torch.tensor([4, 2, 0])
