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


@pytest.mark.parametrize("native_bf16", [True, False])
@pytest.mark.parametrize(("asked", "expected"), [("bf16-mixed", "bf16-mixed"), ("16-mixed", "32-true"),
                                                 ("32-true", "32-true"), (None, "32-true")])  # fmt: skip
def test_precision_on_a_cpu(monkeypatch, asked, expected, native_bf16):
    monkeypatch.setattr("ilora_dllm2rec.core.trainer.cpu_has_native_bf16", lambda: native_bf16)
    if asked == "bf16-mixed" and not native_bf16:
        expected = "32-true"  # emulated bf16 runs several times slower than fp32
    assert resolve_precision(asked) == expected


X86 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_vnni{extra}\nbugs\t\t: spectre_v1\n"


@pytest.mark.parametrize(
    ("cpuinfo", "native"),
    [
        (X86.format(extra=""), False),  # AVX-512 without BF16: oneDNN emulates it
        (X86.format(extra=" avx512_bf16"), True),
        (X86.format(extra=" amx_bf16 amx_tile"), True),
        ("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n", True),  # Arm with the bf16 extension
        ("processor\t: 0\nFeatures\t: fp asimd\n", False),
        ("no flags line here\n", True),  # unknown format: keep what the user asked for
    ],
)
def test_native_bf16_is_read_from_the_cpu_flags(monkeypatch, cpuinfo, native):
    from ilora_dllm2rec.core.runtime import cpu_has_native_bf16

    monkeypatch.delenv("ILORA_CPU_BF16")
    assert cpu_has_native_bf16(cpuinfo) is native
    monkeypatch.setenv("ILORA_CPU_BF16", "1")  # the user's override wins over the flags
    assert cpu_has_native_bf16(cpuinfo) is True
    monkeypatch.setenv("ILORA_CPU_BF16", "0")
    assert cpu_has_native_bf16(cpuinfo) is False


@pytest.mark.parametrize("value", ["yes", "true", "2", "bf16"])
def test_cpu_bf16_variable_other_than_0_or_1_is_an_error(monkeypatch, value):
    from ilora_dllm2rec.core.errors import ConfigError
    from ilora_dllm2rec.core.runtime import cpu_bf16_override, cpu_has_native_bf16

    monkeypatch.setenv("ILORA_CPU_BF16", value)
    with pytest.raises(ConfigError, match=f"ILORA_CPU_BF16='{value}': use 1"):
        cpu_has_native_bf16("flags\t: avx512_bf16\n")
    monkeypatch.setenv("ILORA_CPU_BF16", " ")  # blank = unset
    assert cpu_bf16_override() is None


def test_llm_weights_fall_back_to_fp32_on_a_cpu_that_emulates_bf16(monkeypatch):
    from ilora_dllm2rec.teacher import llm

    monkeypatch.setattr(llm, "cpu_has_native_bf16", lambda: False)
    assert llm.resolve_dtype("bf16") == torch.float32
    assert llm.resolve_dtype("fp16") == torch.float16
    monkeypatch.setattr(llm, "cpu_has_native_bf16", lambda: True)
    assert llm.resolve_dtype("bf16") == torch.bfloat16
    fake_cuda(monkeypatch, bf16_native=True)
    monkeypatch.setattr(llm, "cpu_has_native_bf16", lambda: False)
    assert llm.resolve_dtype("bf16") == torch.bfloat16  # the GPU computes it


def test_ddp_strategies_do_not_rebroadcast_buffers():
    """The distillation's teacher tables are buffers of [num_train, K]: DDP must not re-send them every step."""
    from lightning.pytorch.strategies import DDPStrategy

    for name, start_method in (("ddp", "popen"), ("ddp_spawn", "spawn")):
        strategy = training_strategy(name)
        assert isinstance(strategy, DDPStrategy) and strategy._ddp_kwargs == {"broadcast_buffers": False}
        assert strategy._start_method == start_method
    assert training_strategy("auto") == "auto" and training_strategy("fsdp") == "fsdp"
