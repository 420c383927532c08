"""The one interface every recommender implements (students and the teacher's ranking head).

``encode(seq, seq_len) -> [B, d]`` is the user state after the last real item;
``score(state) -> [B, N]`` are logits over all items (padding excluded).
Evaluation and distillation only ever call these two (RecBole-style).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SequentialRecommender(nn.Module):
    """Base class for ID-based sequential recommenders.

    Subclasses build ``self.item_embedding = nn.Embedding(N + 1, d, padding_idx=N)``
    and implement ``encode``. Heads: ``tied`` (dot product with the item embedding
    table, padding row excluded) or ``linear`` (a separate ``Linear(d, N)``, as DLLM2Rec).

    Optional LLM item embeddings (collaborative embedding distillation): after
    :meth:`set_llm_item_embeddings`, the input embedding of item ``i`` becomes
    ``e_i + w_ed * Linear_{D->d}(E_llm[i])``; padding positions get nothing added.

    Optional history bias (``student.history_bias``, :meth:`enable_history_bias`): one learned scalar
    ``b`` added to the scores of the items in the input history, ``s_i + b * [i in seq]``. ``b`` starts
    at 0 (the plain model) and learns the data set's repeat behaviour: negative where users never
    re-consume an item (MovieLens: a dot-product head otherwise ranks the history's own items near
    the top), positive where they do. Written by hand: it is one scatter over the [B, N] scores.
    """

    def __init__(self, num_items: int, hidden_size: int, max_seq_len: int, head: str = "tied") -> None:
        super().__init__()
        self.num_items = num_items
        self.hidden_size = hidden_size
        self.max_seq_len = max_seq_len
        self.head_type = head
        self.item_embedding = nn.Embedding(num_items + 1, hidden_size, padding_idx=num_items)
        self.output_layer = nn.Linear(hidden_size, num_items) if head == "linear" else None
        # collaborative embedding distillation (section 5); absent unless configured
        self.register_buffer("llm_item_embeddings", None, persistent=True)
        self.llm_projection: nn.Linear | None = None
        self.ed_weight = 0.0
        self.history_bias: nn.Parameter | None = None

    def enable_history_bias(self) -> None:
        """Add the learned history bias (starts at 0, so the scores are unchanged until it trains)."""
        self.history_bias = nn.Parameter(torch.zeros((), device=self.item_embedding.weight.device))

    def add_history_bias(self, scores: torch.Tensor, seq: torch.Tensor, seq_len: torch.Tensor) -> torch.Tensor:
        """[B, N] scores + ``history_bias`` at the real items of ``seq`` ([B, L]; positions >= len_seq ignored)."""
        if self.history_bias is None:
            return scores
        real = real_positions(seq_len.clamp(max=seq.shape[1]), seq.shape[1])
        items = torch.where(real, seq, self.pad_id)  # padding slots may hold any id, as for encode
        seen = scores.new_zeros(scores.shape[0], self.num_items + 1).scatter_(1, items, 1.0)[:, : self.num_items]
        return scores + self.history_bias.to(scores.dtype) * seen

    @property
    def pad_id(self) -> int:
        return self.num_items

    # -- LLM item embeddings -------------------------------------------------
    def set_llm_item_embeddings(self, embeddings: torch.Tensor, ed_weight: float) -> None:
        """Attach the teacher's item embeddings ``E_llm`` ([N, D], frozen) and a learned D->d projection."""
        if embeddings.dim() != 2 or embeddings.shape[0] != self.num_items:
            raise ValueError(
                f"LLM item embeddings must have shape [num_items={self.num_items}, D], got {tuple(embeddings.shape)}"
            )
        # follow the model's device, so a GPU model gets its projection on the GPU
        device = self.item_embedding.weight.device
        self.llm_item_embeddings = embeddings.detach().to(device=device, dtype=torch.float32).clone()
        self.llm_projection = nn.Linear(embeddings.shape[1], self.hidden_size, device=device)
        self.ed_weight = float(ed_weight)

    def embed_items(self, seq: torch.Tensor) -> torch.Tensor:
        """ids of any shape ([B, L] or packed [n]) -> [..., d] input embeddings (+ projected LLM ones)."""
        emb = self.item_embedding(seq)
        if self.llm_item_embeddings is not None and self.llm_projection is not None:
            is_item = seq != self.pad_id
            safe = seq.clamp(max=self.num_items - 1)
            if self.num_items <= seq.numel():
                # project the [N, D] table once, then gather: avoids a [B, L, D] gather (D may be 4096).
                # F.embedding, not table[ids]: indexing's backward sums repeated items' gradients in a
                # thread-dependent order on CPU, so runs differed between processes (docs/DESIGN.md)
                llm = F.embedding(safe, self.llm_projection(self.llm_item_embeddings))
            else:
                llm = self.llm_projection(self.llm_item_embeddings[safe])
            emb = emb + self.ed_weight * llm * is_item.unsqueeze(-1).to(llm.dtype)
        return emb

    # -- the interface ---------------------------------------------------------
    def encode(self, seq: torch.Tensor, seq_len: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def score(self, state: torch.Tensor) -> torch.Tensor:
        if self.output_layer is not None:
            return self.output_layer(state)
        return state @ self.item_embedding.weight[: self.num_items].T

    def forward(self, seq: torch.Tensor, seq_len: torch.Tensor) -> torch.Tensor:
        return self.add_history_bias(self.score(self.encode(seq, seq_len)), seq, seq_len)


def gather_last(hidden: torch.Tensor, seq_len: torch.Tensor) -> torch.Tensor:
    """[B, T, d] per-position outputs -> [B, d] output at position ``len_seq - 1``.

    ``len_seq == 0`` (first row of a sequence-format user) reads position 0, i.e. the
    output of a padding-only input: finite, and the same for every such row.
    """
    idx = (seq_len.clamp(min=1, max=hidden.shape[1]) - 1).view(-1, 1, 1).expand(-1, 1, hidden.shape[2])
    return hidden.gather(1, idx).squeeze(1)


def trim_padding(seq: torch.Tensor, seq_len: torch.Tensor) -> torch.Tensor:
    """Drop the all-padding tail columns: ``seq[:, :max(len_seq)]`` (at least one column).

    Histories are right-padded and the encoders are causal, so columns at or after the
    longest history can never influence a state read at ``len_seq - 1``.
    """
    longest = int(seq_len.max()) if seq_len.numel() else 1
    if longest > seq.shape[1]:
        raise ValueError(f"len_seq ({longest}) exceeds the history width ({seq.shape[1]})")
    return seq[:, : max(longest, 1)]


def real_positions(seq_len: torch.Tensor, width: int) -> torch.Tensor:
    """[B, width] bool, True at positions ``< len_seq`` (the real items of a right-padded history)."""
    return torch.arange(width, device=seq_len.device).view(1, -1) < seq_len.view(-1, 1)
