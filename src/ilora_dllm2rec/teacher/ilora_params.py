"""The iLoRA teacher's parameter bookkeeping: which tensors train, their optimiser groups, their checkpoint state.

A base class of :class:`~.ilora_model.ILoRAModel` (the forward pass and scoring live there); it holds no
parameters of its own, so the model's state keys are unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ..core.errors import ArtifactError


class ILoRAParameters(nn.Module):
    """Groups the trainable parameters by name: ``adapter`` (LoRA / MoE-LoRA), ``projector``, ``gate``,
    ``head``, else ``llm`` (the LLM's own weights, trainable in full mode only)."""

    adapter: str  # set by the model; named in the checkpoint mismatch error

    def _group_of(self, name: str) -> str:
        if "lora_" in name:
            return "adapter"
        for group in ("projector", "gate", "head"):
            if name.startswith(group + "."):
                return group
        return "llm"

    def trainable_parameter_report(self) -> dict:
        """dict(trainable, total, by_group={adapter, projector, gate, head, llm: trainable counts})."""
        by_group: dict[str, int] = {}
        trainable = total = 0
        seen: set[int] = set()
        for name, p in self.named_parameters(remove_duplicate=False):
            if id(p) in seen:  # tied weights count once
                continue
            seen.add(id(p))
            total += p.numel()
            if p.requires_grad:
                trainable += p.numel()
                group = self._group_of(name)
                by_group[group] = by_group.get(group, 0) + p.numel()
        return {"trainable": trainable, "total": total, "by_group": by_group}

    def parameter_groups(
        self, lr: float, gate_lr_scale: float = 0.3, weight_decay: float = 0.0, head_lr_scale: float = 1.0
    ) -> list[dict]:
        """Optimizer groups: everything trainable at ``lr``, the gate at ``gate_lr_scale * lr`` (iLoRA authors),
        the ranking head at ``head_lr_scale * lr`` (a fresh layer, unlike the adapters' low-rank updates)."""
        scales = {"gate": gate_lr_scale, "head": head_lr_scale}
        members: dict[str, list[nn.Parameter]] = {"main": [], "gate": [], "head": []}
        for name, p in self.named_parameters():
            if p.requires_grad:
                group = self._group_of(name)
                members[group if group in scales else "main"].append(p)
        return [
            {"name": group, "params": params, "lr": lr * scales.get(group, 1.0), "weight_decay": weight_decay}
            for group, params in members.items()
            if params or group == "main"
        ]

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Only the trained tensors (adapters, projector, gate, head; the LLM too in full mode), detached on CPU."""
        return {n: p.detach().cpu().clone() for n, p in self.named_parameters() if p.requires_grad}

    def load_trainable_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Load what :meth:`trainable_state_dict` saved; ArtifactError when the keys do not match this model."""
        expected = {n for n, p in self.named_parameters() if p.requires_grad}
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unexpected:
            raise ArtifactError(
                f"teacher checkpoint does not match this model (adapter={self.adapter}): missing {missing[:5]}, "
                f"unexpected {unexpected[:5]}: use a checkpoint trained with the same teacher config"
            )
        params = dict(self.named_parameters())
        with torch.no_grad():
            for name, value in state.items():
                if params[name].shape != value.shape:
                    raise ArtifactError(
                        f"teacher checkpoint: {name} has shape {tuple(value.shape)}, "
                        f"model expects {tuple(params[name].shape)}: same config needed"
                    )
                params[name].copy_(value)
