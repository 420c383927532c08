"""Helpers for the teacher tests (imported as ``teacher_helpers``): item titles and a tiny frozen student."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ilora_dllm2rec.student.base import SequentialRecommender

NUM_ITEMS = 12
TITLES = [f"Movie number {i} ({1990 + i})" for i in range(NUM_ITEMS - 2)] + ["Heat (1995)", "A Much Longer Title Here"]


class MeanStudent(SequentialRecommender):
    """Minimal SASRec-like stand-in: masked mean of item embeddings, then a Linear (histories differ -> z_u differs)."""

    def __init__(self, num_items: int, hidden_size: int = 16, max_seq_len: int = 8) -> None:
        super().__init__(num_items, hidden_size, max_seq_len)
        self.out = nn.Linear(hidden_size, hidden_size)
        self.drop = nn.Dropout(0.5)  # must be inactive inside the teacher (frozen, eval)

    def encode(self, seq: torch.Tensor, seq_len: torch.Tensor) -> torch.Tensor:
        mask = (seq != self.pad_id).unsqueeze(-1).float()
        mean = (self.embed_items(seq) * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.out(self.drop(mean))


def write_tiny_gguf(model_dir: Path, out_file: Path) -> Path:
    """Write the tiny Llama folder as an (unquantised, F32) llama.cpp-style GGUF file, for the conversion tests.

    Mirrors what llama.cpp's converter does: gpt2-style BPE vocabulary, renamed tensors, q/k rows permuted.
    """
    import gguf
    import numpy as np
    from safetensors.torch import load_file

    cfg = json.loads((model_dir / "config.json").read_text())
    tok = json.loads((model_dir / "tokenizer.json").read_text())
    weights = load_file(model_dir / "model.safetensors")
    vocab = sorted(tok["model"]["vocab"].items(), key=lambda kv: kv[1])
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    specials = {t["content"] for t in tok["added_tokens"]}

    w = gguf.GGUFWriter(str(out_file), "llama")
    heads, kv_heads, layers = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["num_hidden_layers"]
    w.add_block_count(layers)
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_freq_base(cfg.get("rope_parameters", {}).get("rope_theta", 10000.0))
    w.add_vocab_size(len(vocab))
    w.add_tokenizer_model("gpt2")
    w.add_token_list([t for t, _ in vocab])
    w.add_token_types([3 if t in specials else 1 for t, _ in vocab])
    w.add_token_merges(merges)
    w.add_bos_token_id(cfg["bos_token_id"])
    w.add_eos_token_id(cfg["eos_token_id"])
    w.add_pad_token_id(cfg["pad_token_id"])
    w.add_unk_token_id(tok["model"]["vocab"]["<unk>"])

    def permute(t: torch.Tensor, n_head: int) -> torch.Tensor:  # llama.cpp's rotary layout
        return t.reshape(n_head, 2, t.shape[0] // n_head // 2, *t.shape[1:]).swapaxes(1, 2).reshape(t.shape)

    names = {"self_attn.o_proj": "attn_output", "self_attn.v_proj": "attn_v", "mlp.gate_proj": "ffn_gate",
             "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm",
             "post_attention_layernorm": "ffn_norm"}  # fmt: skip
    tensors = {
        "token_embd.weight": weights["model.embed_tokens.weight"],
        "output_norm.weight": weights["model.norm.weight"],
    }
    for i in range(layers):
        p = f"model.layers.{i}."
        tensors[f"blk.{i}.attn_q.weight"] = permute(weights[p + "self_attn.q_proj.weight"], heads)
        tensors[f"blk.{i}.attn_k.weight"] = permute(weights[p + "self_attn.k_proj.weight"], kv_heads)
        for hf, gg in names.items():
            tensors[f"blk.{i}.{gg}.weight"] = weights[p + hf + ".weight"]
    for name, t in tensors.items():
        w.add_tensor(name, t.float().numpy().astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out_file
