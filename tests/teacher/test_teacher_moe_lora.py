"""MoE-LoRA layer: identity at init, the gated formula, injection errors, whole-model equality at init."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from transformers import AutoModelForCausalLM

from ilora_dllm2rec.core.errors import ConfigError
from ilora_dllm2rec.teacher.moe_lora import GateContext, MoELoRALinear, inject_moelora, moelora_layers


def _layer(seed: int = 0, **kw) -> MoELoRALinear:
    torch.manual_seed(seed)
    return MoELoRALinear(nn.Linear(6, 5), **{"num_experts": 4, "r": 8, "alpha": 32, "dropout": 0.0, **kw})


def test_equals_base_at_init_and_without_gate() -> None:
    layer = _layer()
    x = torch.randn(3, 7, 6)
    gate = torch.softmax(torch.randn(3, 4), -1)
    with layer.context.use(gate):
        assert torch.equal(layer(x), layer.base(x))  # B = 0
    nn.init.normal_(layer.lora_B)
    assert torch.equal(layer(x), layer.base(x))  # gate None = adapters off


def test_matches_per_expert_formula() -> None:
    layer = _layer(alpha=16)
    nn.init.normal_(layer.lora_B)
    x = torch.randn(2, 3, 6)
    gate = torch.softmax(torch.randn(2, 4), -1)
    rank = 2  # r / E
    expected = layer.base(x).clone()
    for b in range(2):
        for e in range(4):
            A_e = layer.lora_A[e * rank : (e + 1) * rank]  # [rank, in]
            B_e = layer.lora_B[:, e * rank : (e + 1) * rank]  # [out, rank]
            expected[b] += (16 / 8) * gate[b, e] * (x[b] @ A_e.T @ B_e.T)
    with layer.context.use(gate):
        assert torch.allclose(layer(x), expected, atol=1e-5)


def test_base_frozen_adapters_trainable_and_init() -> None:
    layer = _layer()
    assert not layer.base.weight.requires_grad and layer.lora_A.requires_grad and layer.lora_B.requires_grad
    assert layer.lora_A.shape == (8, 6) and layer.lora_B.shape == (5, 8) and layer.lora_B.abs().sum() == 0


def test_num_experts_must_divide_rank() -> None:
    with pytest.raises(ConfigError, match=r"teacher.num_experts=3.*teacher.lora_r=8"):
        _layer(num_experts=3)


def test_inject_unknown_target_lists_available_names(tiny_llm_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_llm_dir)
    with pytest.raises(ConfigError, match=r"\['query'\].*q_proj.*v_proj") as err:
        inject_moelora(model, ["q_proj", "query"])
    assert "'q_proj'" in str(err.value) and "'down_proj'" in str(err.value)
    assert str(err.value).count("'q_proj'") == 1  # deduplicated suffixes, not one per layer


def test_whole_model_hidden_states_equal_base_at_init(tiny_llm_dir: Path) -> None:
    base = AutoModelForCausalLM.from_pretrained(tiny_llm_dir)
    adapted = AutoModelForCausalLM.from_pretrained(tiny_llm_dir)
    ctx = GateContext()
    names = inject_moelora(adapted, ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj"], context=ctx)
    assert len(names) == 2 * 5 and len(moelora_layers(adapted)) == 10  # 2 layers x 5 targets, lm_head untouched
    ids = torch.randint(0, 100, (2, 9))
    with ctx.use(torch.softmax(torch.randn(2, 4), -1)):
        h_adapted = adapted.model(input_ids=ids).last_hidden_state
    h_base = base.model(input_ids=ids).last_hidden_state
    assert torch.allclose(h_adapted, h_base, atol=1e-6)
    # and the gate actually reaches every layer once B is non-zero
    for layer in moelora_layers(adapted):
        nn.init.normal_(layer.lora_B, std=0.1)
    with ctx.use(torch.softmax(torch.randn(2, 4), -1)):
        assert not torch.allclose(adapted.model(input_ids=ids).last_hidden_state, h_base, atol=1e-4)
