"""A tiny RANDOM Llama-architecture causal LM + fast tokenizer, built offline in well under a second.

Tests and end-to-end smoke runs use it instead of a real LLM: same code path (Transformers
``LlamaForCausalLM`` + a ``tokenizers`` fast tokenizer saved with ``save_pretrained``), a few
hundred KB on disk, no network. Its outputs are meaningless; only shapes and plumbing are real.

Select it from config with ``teacher.llm_path=tiny:/some/dir`` (built on first use, see
:func:`ilora_dllm2rec.teacher.llm.load_llm`) or call :func:`build_tiny_llm` and pass the folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"
TINY_MARKER = "tiny_llm.json"

# A small default corpus so the BPE has merges for the words prompts use.
_DEFAULT_CORPUS = [
    "This user has watched in the previous. Please predict the next movie this user will watch.",
    "This user has played in the previous. Please predict the next game this user will play.",
    "This user has listened to in the previous. Please predict the next song this user will listen to.",
    "This user has interacted with in the previous. Please predict the next item this user will interact with.",
    "Toy Story (1995), Jumanji (1995), Heat (1995), item 0, item 1, item 2, the a of and",
]


def _train_tokenizer(corpus: list[str], vocab_size: int) -> Tokenizer:
    """Byte-level BPE: every string is encodable (no <unk> in practice), deterministic for a fixed corpus."""
    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[UNK, BOS, EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    bos_id = tok.token_to_id(BOS)
    # prepend BOS like Llama tokenizers do, so the "skip BOS" code paths are exercised
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    return tok


def build_tiny_llm(
    out_dir: Path,
    vocab_words: Iterable[str] | None = None,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    *,
    vocab_size: int = 600,
    seed: int = 0,
) -> Path:
    """Write a random tiny ``LlamaForCausalLM`` + fast tokenizer into ``out_dir`` and return it.

    ``vocab_words``: extra strings (e.g. item titles) added to the BPE training corpus.
    The same arguments always give the same files (fixed seed, deterministic BPE).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    corpus = list(_DEFAULT_CORPUS) + [str(w) for w in (vocab_words or [])]
    raw = _train_tokenizer(corpus, vocab_size)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK
    )
    tokenizer.save_pretrained(out_dir)

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng(devices=[]):  # do not disturb the caller's RNG state
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.save_pretrained(out_dir)
    marker = {"hidden_size": hidden_size, "num_layers": num_layers, "num_heads": num_heads, "seed": seed}
    (out_dir / TINY_MARKER).write_text(json.dumps(marker) + "\n")
    return out_dir
