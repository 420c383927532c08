"""The iLoRA teacher on other decoder architectures: tiny random Qwen2, OPT, Mistral, Gemma, Gemma2, GPT-NeoX, GPT-2.

The suite otherwise only runs the tiny random Llama (teacher/tiny_llm.py). Here each architecture is built
offline the same way (random weights, hidden 32, 2 layers, the tiny Llama's tokenizer files copied next to its
config.json and weights) and goes through the platform's public path: ``build_ilora_model`` (``load_llm`` from
the folder, adapters injected), equality with the base LLM at initialisation, one optimizer step that touches
only the adapter / projector / gate / head parameters, scores, item embeddings and an export batch.

GPT-2's Conv1D projections are adapted as the nn.Linear they equal; Gemma2, which has no sdpa path, falls back to
eager attention with a warning; ``lm_head`` is never an adapter target (it never runs: the teacher reads hidden
states).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import transformers as tf
from omegaconf import OmegaConf
from teacher_helpers import NUM_ITEMS, TITLES

from ilora_dllm2rec.core.errors import ConfigError
from ilora_dllm2rec.teacher.export import TopNPredictor
from ilora_dllm2rec.teacher.factory import build_ilora_model
from ilora_dllm2rec.teacher.ilora_model import DEFAULT_TARGETS, ILoRAModel
from ilora_dllm2rec.teacher.imitation import LambdaSchedule
from ilora_dllm2rec.teacher.lit_module import TeacherLitModule
from ilora_dllm2rec.teacher.llm import backbone_of, load_llm
from ilora_dllm2rec.teacher.moe_lora import moelora_layers

# TeacherLitModule.training_step logs through self.log, which only warns outside a Trainer
pytestmark = pytest.mark.filterwarnings("ignore:You are trying to `self.log")

CONF_TARGETS = list(OmegaConf.load(Path(__file__).resolve().parents[2] / "conf/teacher/ilora.yaml").target_modules)
H, LAYERS, HEADS = 32, 2, 2
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")

# name -> (config class, model class, config kwargs). Every model: hidden 32, 2 layers, 2 heads (~130-290 KB).
_LLAMA_LIKE = {
    "hidden_size": H,
    "intermediate_size": 2 * H,
    "num_hidden_layers": LAYERS,
    "num_attention_heads": HEADS,
    "num_key_value_heads": HEADS,
    "max_position_embeddings": 1024,
}
_OPT = {
    "hidden_size": H,
    "ffn_dim": 2 * H,
    "num_hidden_layers": LAYERS,
    "num_attention_heads": HEADS,
    "max_position_embeddings": 1024,
    "word_embed_proj_dim": H,
}
ARCHS: dict[str, tuple[type, type, dict]] = {
    "llama": (tf.LlamaConfig, tf.LlamaForCausalLM, {**_LLAMA_LIKE, "tie_word_embeddings": True}),  # the control
    "qwen2": (tf.Qwen2Config, tf.Qwen2ForCausalLM, {**_LLAMA_LIKE, "tie_word_embeddings": True}),
    "mistral": (tf.MistralConfig, tf.MistralForCausalLM, {**_LLAMA_LIKE, "sliding_window": 32}),
    "gemma": (tf.GemmaConfig, tf.GemmaForCausalLM, {**_LLAMA_LIKE, "head_dim": H // HEADS}),
    "gemma2": (tf.Gemma2Config, tf.Gemma2ForCausalLM, {**_LLAMA_LIKE, "head_dim": H // HEADS, "sliding_window": 32}),
    "opt": (tf.OPTConfig, tf.OPTForCausalLM, _OPT),
    # OPT-350m's layout: embeddings narrower than the decoder (project_in / project_out), post-layer-norm
    "opt_proj": (
        tf.OPTConfig,
        tf.OPTForCausalLM,
        {**_OPT, "word_embed_proj_dim": H // 2, "do_layer_norm_before": False},
    ),
    "gpt_neox": (
        tf.GPTNeoXConfig,
        tf.GPTNeoXForCausalLM,
        {
            "hidden_size": H,
            "intermediate_size": 2 * H,
            "num_hidden_layers": LAYERS,
            "num_attention_heads": HEADS,
            "max_position_embeddings": 1024,
        },
    ),
    "gpt2": (tf.GPT2Config, tf.GPT2LMHeadModel, {"n_embd": H, "n_layer": LAYERS, "n_head": HEADS, "n_positions": 1024}),
}
# each architecture's own attention / MLP projection names, where they are not Llama's
OWN_TARGETS = {
    "opt": ["q_proj", "k_proj", "v_proj", "out_proj"],
    "opt_proj": ["q_proj", "k_proj", "v_proj", "out_proj"],
    "gpt_neox": ["query_key_value", "dense"],
    "gpt2": ["c_attn", "c_proj"],  # transformers Conv1D layers, not nn.Linear
}

# the teacher's D is the LLM's input-embedding width (OPT-350m layout: narrower than the decoder's hidden size)
EMBED_DIM = {"opt_proj": H // 2}


def _build_arch(out_dir: Path, name: str, tokenizer_dir: Path) -> Path:
    """A random tiny ``name`` model saved with the tiny Llama's tokenizer files (same vocabulary and special tokens).

    AutoTokenizer picks the class from the model type: TokenizersBackend for most, Qwen2Tokenizer for qwen2 (which
    splits some strings, e.g. digits, differently from tokenizer.json's own pre-tokenizer; harmless here)."""
    config_cls, model_cls, kwargs = ARCHS[name]
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in TOKENIZER_FILES:
        shutil.copy(tokenizer_dir / f, out_dir / f)
    tok = tf.AutoTokenizer.from_pretrained(tokenizer_dir)
    ids = {k: getattr(tok, k) for k in ("bos_token_id", "eos_token_id", "pad_token_id")}
    config = config_cls(vocab_size=len(tok), **ids, **kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model_cls(config).save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="module")
def arch_dir(tiny_llm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Factory: the folder of the tiny ``name`` model (built once per module)."""
    root = tmp_path_factory.mktemp("archs")
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = _build_arch(root / name, name, tiny_llm_dir)
        return built[name]

    return get


def _cfg(folder: Path, adapter: str, targets: list[str] | None, attn: str = "sdpa") -> dict:
    cfg = {"llm_path": str(folder), "dtype": "fp32", "adapter": adapter, "lora_dropout": 0.0, "num_experts": 4}
    cfg["attn_implementation"] = attn
    if targets is not None:
        cfg["target_modules"] = targets
    return cfg


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    p = NUM_ITEMS
    seq = torch.tensor([[0, 1, 2, 3, 11, 9, 10, 4], [5, 7, p, p, p, p, p, p], [p] * 8])
    return seq, torch.tensor([8, 2, 0])


def _trainable(model: ILoRAModel) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def _perturb(model: ILoRAModel) -> None:
    """Non-zero lora_B and head (both start at zero), so one step gives every trainable tensor a gradient."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n or n == "head.weight":
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)


def _base_last_state(folder: Path, attn: str, model: ILoRAModel, seq: torch.Tensor, len_seq: torch.Tensor):
    """h_u of a freshly loaded, adapter-free copy of the LLM on the teacher's own prompt embeddings."""
    base, _ = load_llm(str(folder), dtype="fp32", attn_implementation=attn, model_cache_dir=folder.parent / "cache")
    b = model.prompts.build(seq, len_seq)
    with torch.no_grad():
        embeds = model.prompt_embeddings(b)
        position_ids = (b["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        out = backbone_of(base)(inputs_embeds=embeds, attention_mask=b["attention_mask"], position_ids=position_ids)
    return out.last_hidden_state[:, -1].float()


CASES = [  # (architecture, targets (None: conf defaults), requested attention, attention the LLM runs with)
    pytest.param("llama", None, "sdpa", "sdpa", id="llama"),
    pytest.param("qwen2", None, "sdpa", "sdpa", id="qwen2"),
    pytest.param("mistral", None, "sdpa", "sdpa", id="mistral"),
    pytest.param("gemma", None, "sdpa", "sdpa", id="gemma"),
    pytest.param("gemma2", None, "eager", "eager", id="gemma2-eager"),
    pytest.param("gemma2", None, "sdpa", "eager", id="gemma2-sdpa-falls-back-to-eager"),  # no sdpa path in Gemma2
    pytest.param("opt", OWN_TARGETS["opt"], "sdpa", "sdpa", id="opt-own-targets"),
    pytest.param("opt_proj", OWN_TARGETS["opt_proj"], "sdpa", "sdpa", id="opt350m_layout-own-targets"),
    pytest.param("gpt_neox", OWN_TARGETS["gpt_neox"], "sdpa", "sdpa", id="gpt_neox-own-targets"),
    pytest.param("gpt2", OWN_TARGETS["gpt2"], "sdpa", "sdpa", id="gpt2-conv1d-own-targets"),  # Conv1D projections
]
# adapted layers per decoder layer when it differs from the number of targets (GPT-2: attn.c_proj and mlp.c_proj)
PER_LAYER = {"gpt2": 3}


def test_conf_default_targets_are_the_model_defaults() -> None:
    assert CONF_TARGETS == list(DEFAULT_TARGETS) == ["q_proj", "k_proj", "v_proj", "o_proj"]


@pytest.mark.parametrize("adapter", ["moelora", "lora"])
@pytest.mark.parametrize(("arch", "targets", "attn", "loaded_attn"), CASES)
def test_teacher_runs_on_architecture(
    arch: str,
    targets: list[str] | None,
    attn: str,
    loaded_attn: str,
    adapter: str,
    arch_dir,
    make_student,
    tmp_path: Path,
) -> None:
    folder = arch_dir(arch)
    student = make_student()
    # (1)+(2) load through the platform's loader and build the teacher (targets None: the factory's defaults)
    torch.manual_seed(0)
    model = build_ilora_model(_cfg(folder, adapter, targets, attn), student, TITLES, model_cache_dir=tmp_path)
    base_model = model.llm.get_base_model() if adapter == "lora" else model.llm
    d_llm = EMBED_DIM.get(arch, H)
    assert type(base_model) is ARCHS[arch][1] and model.hidden_size == d_llm
    assert base_model.config._attn_implementation == loaded_attn
    n_targets = PER_LAYER.get(arch, len(targets or CONF_TARGETS))
    assert sum("lora_A" in n for n in _trainable(model)) == LAYERS * n_targets  # every layer x every target
    if adapter == "moelora":
        assert len(moelora_layers(model.llm)) == LAYERS * n_targets
    expected_groups = {"adapter", "projector", "head"} | ({"gate"} if adapter == "moelora" else set())
    assert {model._group_of(n) for n in _trainable(model)} == expected_groups

    # (3) at initialisation the adapted LLM IS the base LLM, and the residual head makes the teacher the student
    seq, len_seq = _batch()
    model.eval()
    with torch.no_grad():
        out = model(seq, len_seq)
    ref = _base_last_state(folder, attn, model, seq, len_seq)
    assert torch.allclose(out["h_u"], ref, atol=1e-5)
    assert torch.allclose(out["scores"], student(seq, len_seq), atol=1e-5)
    # left padding: a row scored alone gives the same state as inside the padded batch
    with torch.no_grad():
        alone = model(seq[1:2], len_seq[1:2])["h_u"]
    assert torch.allclose(out["h_u"][1], alone[0], atol=1e-5)
    _perturb(model)
    with torch.no_grad():  # the adapters are really in the forward path (no silent no-adapter)
        assert not torch.allclose(model(seq, len_seq)["h_u"], ref, atol=1e-3)

    # (4) one optimizer step (the Lightning module's loss, the model's parameter groups) changes only trained tensors
    module = TeacherLitModule(
        model, lr=1e-2, gate_lr_scale=0.3, weight_decay=0.0, warmup_ratio=0.0, loss_type="mse", temperature=0.1,
        schedule_factory=lambda total: LambdaSchedule(1.0, 0.0, "linear", None, total), meta={},
    )  # fmt: skip
    module.schedule = module.schedule_factory(10)
    optimizer = torch.optim.AdamW(model.parameter_groups(1e-2, gate_lr_scale=0.3))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train()
    loss = module.training_step({"seq": seq, "len_seq": len_seq, "target": torch.tensor([1, 2, 3])}, 0)
    assert torch.isfinite(loss)
    loss.backward()
    optimizer.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == _trainable(model)  # every trained tensor moved, nothing else (LLM, student) did
    assert {model._group_of(n) for n in changed} == expected_groups

    # (5) shapes: scores, states, item embeddings, one export batch
    model.eval()
    with torch.no_grad():
        out = model(seq, len_seq)
    assert out["scores"].shape == (3, NUM_ITEMS) and out["h_u"].shape == (3, d_llm) and out["q_u"].shape == (3, 16)
    assert out["gate"] is None if adapter == "lora" else out["gate"].shape == (3, 4)
    emb = model.item_semantic_embeddings(batch_size=5)
    assert emb.shape == (NUM_ITEMS, d_llm) and emb.dtype == torch.float32 and torch.isfinite(emb).all()
    assert not torch.allclose(emb[0], emb[1])
    with torch.no_grad():
        pred = TopNPredictor(model, top_n=5).predict_step({"seq": seq, "len_seq": len_seq, "index": torch.arange(3)}, 0)
    assert pred["ids"].shape == pred["dist"].shape == (3, 5)
    assert ((pred["ids"] >= 0) & (pred["ids"] < NUM_ITEMS)).all() and (pred["dist"] >= 0).all()


DEFAULT_TARGET_ERRORS = [
    pytest.param("opt", ["o_proj"], ["out_proj", "fc1", "fc2", "q_proj"], id="opt"),
    pytest.param("gpt_neox", CONF_TARGETS, ["query_key_value", "dense", "dense_h_to_4h"], id="gpt_neox"),
    pytest.param("gpt2", CONF_TARGETS, ["c_attn", "c_fc", "c_proj"], id="gpt2"),
]


@pytest.mark.parametrize("adapter", ["moelora", "lora"])
@pytest.mark.parametrize(("arch", "unknown", "names"), DEFAULT_TARGET_ERRORS)
def test_default_targets_missing_is_a_clear_error(
    arch: str, unknown: list[str], names: list[str], adapter: str, arch_dir, make_student, tmp_path: Path
) -> None:
    """conf/teacher/ilora.yaml's Llama names on a model without them: ConfigError naming the model's layers."""
    with pytest.raises(ConfigError) as err:
        build_ilora_model(_cfg(arch_dir(arch), adapter, CONF_TARGETS), make_student(), TITLES, model_cache_dir=tmp_path)
    msg = str(err.value)
    assert msg.startswith(f"teacher.target_modules {unknown} match no linear layer of this LLM: available names are")
    assert all(f"'{n}'" in msg for n in names), msg


@pytest.mark.parametrize("adapter", ["moelora", "lora"])
def test_lm_head_is_not_a_target(adapter: str, arch_dir, make_student, tmp_path: Path) -> None:
    """The teacher reads hidden states, so LoRA on the LM head would train nothing: refused, and not offered."""
    with pytest.raises(ConfigError) as err:
        build_ilora_model(
            _cfg(arch_dir("llama"), adapter, ["lm_head"]), make_student(), TITLES, model_cache_dir=tmp_path
        )
    assert "['lm_head'] match no linear layer" in str(err.value) and "'lm_head'" not in str(err.value).split("are")[1]
