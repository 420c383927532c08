"""Device and precision choices (CUDA simulated by patching torch.cuda: this machine has no GPU)."""

from __future__ import annotations

import pytest
import torch

from ilora_dllm2rec.core.trainer import inference_device, resolve_precision, training_strategy


def fake_cuda(monkeypatch, *, bf16_native: bool) -> list[bool]:
    """torch.cuda as on a GPU machine; records the ``including_emulation`` argument of each bf16 query."""
    asked: list[bool] = []

    def is_bf16_supported(including_emulation: bool = True) -> bool:
        asked.append(including_emulation)
        return bf16_native or including_emulation  # a T4: bf16 only by emulation

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    return asked


def test_inference_device_follows_the_trainer(monkeypatch):
    assert inference_device("auto") == torch.device("cpu")  # no GPU here
    fake_cuda(monkeypatch, bf16_native=True)
    for accelerator in ("auto", "gpu", "cuda"):
        assert inference_device(accelerator) == torch.device("cuda", 1)
    assert inference_device("cpu") == torch.device("cpu")


def test_bf16_falls_back_on_a_gpu_that_only_emulates_it(monkeypatch):
    asked = fake_cuda(monkeypatch, bf16_native=False)
    assert resolve_precision("bf16-mixed") == "32-true"
    assert asked == [False]  # emulated bf16 does not count
    fake_cuda(monkeypatch, bf16_native=True)
    assert resolve_precision("bf16-mixed") == "bf16-mixed"


@pytest.mark.parametrize(("asked", "expected"), [("bf16-mixed", "bf16-mixed"), ("16-mixed", "32-true"),
                                                 ("32-true", "32-true"), (None, "32-true")])  # fmt: skip
def test_precision_on_this_cpu(asked, expected):
    assert resolve_precision(asked) == expected


def test_ddp_strategies_do_not_rebroadcast_buffers():
    """The distillation's teacher tables are buffers of [num_train, K]: DDP must not re-send them every step."""
    from lightning.pytorch.strategies import DDPStrategy

    for name, start_method in (("ddp", "popen"), ("ddp_spawn", "spawn")):
        strategy = training_strategy(name)
        assert isinstance(strategy, DDPStrategy) and strategy._ddp_kwargs == {"broadcast_buffers": False}
        assert strategy._start_method == start_method
    assert training_strategy("auto") == "auto" and training_strategy("fsdp") == "fsdp"
