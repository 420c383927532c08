"""Instance-wise mixture-of-experts LoRA (iLoRA), written by hand, plus the other adapter modes.

Why by hand: PEFT's LoRA (and its MoE variants) has no way to feed an EXTERNAL per-instance gate (one vector
per user, computed from the frozen student's sequence representation, shared by all tokens and all layers).
Here every adapted layer reads the gate from a shared :class:`GateContext` that the iLoRA model sets before
calling the LLM:

    y = W x + (alpha / r) * sum_e g_e(u) * B_e A_e dropout(x),   E experts of rank r/E each (total rank r)

computed as two batched matmuls: ``dropout(x) @ A_cat^T`` -> [B, T, r], scale each expert's block of r/E
columns by its gate, ``@ B_cat^T`` -> [B, T, out]. ``B`` starts at zero, so the adapted model starts equal
to the base model. Adapter weights are kept in fp32 (stable optimizer updates) and cast to the activation
dtype for the two small matmuls (bf16 LLMs: no casts of the large activations).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from ..core.errors import ConfigError

ADAPTER_MODES = ("moelora", "lora", "freeze", "full")


class GateContext:
    """Holds the current gate [B, E] for every MoE-LoRA layer of one model; None = adapters off."""

    def __init__(self) -> None:
        self.gate: torch.Tensor | None = None

    @contextmanager
    def use(self, gate: torch.Tensor | None) -> Iterator[None]:
        previous, self.gate = self.gate, gate
        try:
            yield
        finally:
            self.gate = previous

    def checkpoint_context_fn(self) -> tuple[AbstractContextManager, AbstractContextManager]:
        """For torch.utils.checkpoint(context_fn=...): the recomputation in backward runs with the gate of the
        original forward (the ``use`` block has exited by then, and other forwards may have run meanwhile)."""
        return nullcontext(), self.use(self.gate)


def check_expert_rank(num_experts: int, r: int) -> int:
    """Rank per expert; ConfigError unless num_experts divides lora_r."""
    if num_experts <= 0 or r <= 0 or r % num_experts != 0:
        raise ConfigError(
            f"teacher.num_experts={num_experts} must be > 0 and divide teacher.lora_r={r} "
            "(each expert has rank lora_r / num_experts): e.g. num_experts=4, lora_r=8"
        )
    return r // num_experts


class MoELoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus E gated LoRA experts (see the module docstring)."""

    def __init__(
        self,
        base: nn.Linear,
        num_experts: int = 4,
        r: int = 8,
        alpha: float = 32.0,
        dropout: float = 0.1,
        context: GateContext | None = None,
    ) -> None:
        super().__init__()
        self.rank = check_expert_rank(num_experts, r)
        self.base = base
        base.requires_grad_(False)
        self.num_experts = num_experts
        self.r = r
        self.scaling = alpha / r
        self.context = context if context is not None else GateContext()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        device = base.weight.device
        # experts stacked along the rank dim: rows e*rank:(e+1)*rank of A (cols of B) belong to expert e
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, device=device, dtype=torch.float32))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, device=device, dtype=torch.float32))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as nn.Linear / PEFT

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    @property
    def weight(self) -> torch.Tensor:  # some model code peeks at .weight (dtype/device checks)
        return self.base.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        gate = self.context.gate
        if gate is None:
            return out
        if gate.shape[0] != x.shape[0] or gate.shape[-1] != self.num_experts:
            raise ValueError(
                f"gate shape {tuple(gate.shape)} does not match input {tuple(x.shape)} / E={self.num_experts}"
            )
        dtype = x.dtype  # fp32 master weights, matmuls in the activation dtype (no casts of the big tensors)
        h = self.dropout(x) @ self.lora_A.to(dtype).T  # [B, ..., r]
        scale = (self.scaling * gate).to(dtype).repeat_interleave(self.rank, dim=-1)  # [B, r]
        scale = scale.view(scale.shape[0], *([1] * (h.dim() - 2)), self.r)
        return out + ((h * scale) @ self.lora_B.to(dtype).T).to(out.dtype)  # [B, ..., out]

    def extra_repr(self) -> str:
        return f"experts={self.num_experts}, rank_per_expert={self.rank}, scaling={self.scaling:g}"


def _is_projection(module: nn.Module) -> bool:
    """nn.Linear, or transformers' Conv1D (GPT-2 style: a linear layer with its weight stored transposed)."""
    return isinstance(module, (nn.Linear, Conv1D))


def _adaptable(name: str, module: nn.Module) -> bool:
    # the LM head never runs here (the teacher reads hidden states), so adapting it would train nothing
    return bool(name) and _is_projection(module) and name.rsplit(".", 1)[-1] != "lm_head"


def linear_layer_names(model: nn.Module) -> list[str]:
    """Deduplicated last-name components of the model's adaptable linear layers (q_proj, k_proj, ...)."""
    return sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules() if _adaptable(name, m)})


def as_linear(layer: nn.Module) -> nn.Linear:
    """``layer`` itself, or an equivalent nn.Linear for a Conv1D (``y = x W + b`` with W [in, out])."""
    if isinstance(layer, nn.Linear):
        return layer
    weight = layer.weight  # Conv1D: [in_features, out_features]
    linear = nn.Linear(weight.shape[0], weight.shape[1], device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        linear.weight.copy_(weight.T)
        linear.bias.copy_(layer.bias)
    linear.requires_grad_(weight.requires_grad)
    return linear


def _matches(name: str, target: str) -> bool:
    return name == target or name.endswith("." + target)


def inject_moelora(
    model: nn.Module,
    target_modules: Sequence[str],
    *,
    num_experts: int = 4,
    r: int = 8,
    alpha: float = 32.0,
    dropout: float = 0.1,
    context: GateContext | None = None,
) -> list[str]:
    """Replace every linear layer (nn.Linear, or a GPT-2 Conv1D turned into its nn.Linear) whose name ends with a
    target by a MoELoRALinear; return the replaced names.

    All replaced layers share ``context`` (one gate per instance for every layer). Unknown targets -> ConfigError.
    """
    check_expert_rank(num_experts, r)
    targets = list(target_modules)
    if not targets:
        raise ConfigError("teacher.target_modules is empty: list linear layers to adapt, e.g. [q_proj, v_proj]")
    context = context if context is not None else GateContext()
    found = {
        name: m for name, m in model.named_modules() if _adaptable(name, m) and any(_matches(name, t) for t in targets)
    }
    unknown = [t for t in targets if not any(_matches(n, t) for n in found)]
    if unknown:
        raise ConfigError(
            f"teacher.target_modules {unknown} match no linear layer of this LLM: "
            f"available names are {linear_layer_names(model)}"
        )
    for name, linear in found.items():
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, MoELoRALinear(as_linear(linear), num_experts, r, alpha, dropout, context))
    return sorted(found)


def moelora_layers(model: nn.Module) -> list[MoELoRALinear]:
    return [m for m in model.modules() if isinstance(m, MoELoRALinear)]


def apply_peft_lora(
    model: nn.Module, target_modules: Sequence[str], *, r: int = 8, alpha: float = 32.0, dropout: float = 0.1
) -> nn.Module:
    """Plain LoRA through PEFT (the ``lora`` mode); returns the PeftModel (base weights frozen by PEFT)."""
    from peft import LoraConfig, get_peft_model

    targets = list(target_modules)
    available = linear_layer_names(model)
    unknown = [t for t in targets if t not in available]
    if unknown or not targets:
        raise ConfigError(
            f"teacher.target_modules {unknown or targets} match no linear layer of this LLM: "
            f"available names are {available}"
        )
    # GPT-2 style Conv1D layers store W transposed: PEFT needs fan_in_fan_out for them
    conv1d = any(isinstance(m, Conv1D) and any(_matches(n, t) for t in targets) for n, m in model.named_modules())
    config = LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, bias="none", fan_in_fan_out=conv1d
    )
    return get_peft_model(model, config)


def configure_adapter(
    llm: nn.Module,
    adapter: str,
    target_modules: Sequence[str],
    *,
    num_experts: int = 4,
    r: int = 8,
    alpha: float = 32.0,
    dropout: float = 0.1,
    context: GateContext | None = None,
) -> nn.Module:
    """Set up ``adapter`` mode on ``llm`` (moelora | lora | freeze | full); return the (possibly wrapped) LLM."""
    if adapter not in ADAPTER_MODES:
        raise ConfigError(f"teacher.adapter={adapter!r} is not supported: use one of {list(ADAPTER_MODES)}")
    llm.requires_grad_(adapter == "full")
    if adapter == "moelora":
        inject_moelora(llm, target_modules, num_experts=num_experts, r=r, alpha=alpha, dropout=dropout, context=context)
    elif adapter == "lora":
        llm = apply_peft_lora(llm, target_modules, r=r, alpha=alpha, dropout=dropout)
    elif adapter == "full":
        out_emb, in_emb = llm.get_output_embeddings(), llm.get_input_embeddings()
        if out_emb is not None and out_emb.weight is not in_emb.weight:
            out_emb.requires_grad_(False)  # the LM head is never used (hidden states only): do not train it
    return llm
