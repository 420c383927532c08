"""The iLoRA teacher network (ALGORITHMS.md section 6): LLM + MoE-LoRA gated by a frozen student.

The frozen student (LLaRA's "rec model") is any :class:`SequentialRecommender`: a SASRec, GRU4Rec or Caser
baseline (teacher.rec_model_type); only ``encode``, ``score``, ``item_embedding`` and ``add_history_bias`` are used.

Flow for a batch of histories ``(seq, len_seq)``:

1. ``z_u = student.encode(seq, len_seq)`` (frozen); gate ``g(u) = softmax(W_g z_u)`` (moelora mode);
2. prompt tokens (left-padded) -> input embeddings, where every ``[HistoryEmb]`` position gets
   ``projector(e_i)`` of its item (``torch.where`` over the batch, no loop);
3. the LLM's decoder stack only (hidden states; the 49k-word LM head is never computed), with the gate set
   for every MoE-LoRA layer; ``h_u`` = last layer hidden state at the last position;
4. head: ``scores = Linear(D -> N)(h_u)``, or ``q_u = z_u + P(h_u)`` (``head_residual``, default; ``P``
   zero-initialised) or ``q_u = P(h_u)``, and ``scores = student.score(q_u)`` (``q_u @ E_student[:N]^T`` for the
   usual tied student); either head then adds the frozen student's history bias (``student.history_bias``).
   The residual form is this platform's (docs/ALGORITHMS.md section 6, docs/DESIGN.md): iLoRA's head is
   ``q_u = P(h_u)``, but then the teacher starts from random scores far below the frozen student it is built
   on; with the residual the teacher's initial ranking IS the student's and training only learns what the LLM
   adds, like LoRA's B = 0 start.

Dtypes: LLM weights in the configured dtype (bf16 by default, also on CPU); projector, gate, head and adapter
weights in fp32, cast at the boundaries (projector output -> LLM dtype, ``h_u`` -> fp32).

Parameter groups, the trainable-parameter report and the checkpoint state: teacher/ilora_params.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..core.errors import ConfigError
from ..student.base import SequentialRecommender
from .ilora_params import ILoRAParameters
from .interfaces import TeacherRecommender
from .llm import (
    backbone_of,
    compile_decoder_layers,
    enable_checkpointing,
    is_checkpointing,
    resolve_attn_implementation,
    set_attention,
)
from .moe_lora import GateContext, configure_adapter
from .prompts import PromptBuilder, add_special_tokens, resolve_template

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


class ILoRAModel(ILoRAParameters, TeacherRecommender):
    """LLM teacher with instance-wise MoE-LoRA; see the module docstring."""

    def __init__(
        self,
        llm: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        student: SequentialRecommender,
        item_titles: Sequence[str],
        *,
        prompt_template: str = "movies",
        prompt_templates: Mapping[str, str] | None = None,
        max_prompt_tokens: int = 256,
        max_history_items: int = 20,
        adapter: str = "moelora",
        num_experts: int = 4,
        lora_r: int = 8,
        lora_alpha: float = 32.0,
        lora_dropout: float = 0.1,
        target_modules: Sequence[str] = DEFAULT_TARGETS,
        use_item_embeddings_head: bool = True,
        item_embedding_adapters: bool = False,
        head_residual: bool = True,
        train_attn_implementation: str | None = None,
        compile_backbone: bool = False,
        pad_to_multiple_of: int = 1,
    ) -> None:
        super().__init__()
        self.pad_to_multiple_of = pad_to_multiple_of  # validated by the property's setter
        if student.num_items != len(item_titles):
            raise ConfigError(
                f"teacher.rec_model_checkpoint_path: the student has {student.num_items} items but the data set has "
                f"{len(item_titles)}: use a student trained on this data set"
            )
        self.num_items = student.num_items
        self.adapter = adapter
        self.use_item_embeddings_head = bool(use_item_embeddings_head)
        self.item_embedding_adapters = bool(item_embedding_adapters)
        self.prompts = PromptBuilder(
            tokenizer,
            item_titles,
            resolve_template(prompt_template, prompt_templates),
            max_prompt_tokens=max_prompt_tokens,
            max_history_items=max_history_items,
        )
        add_special_tokens(tokenizer, llm)  # before adapters: resizes the (frozen) embedding table
        self.gate_context = GateContext()
        self.num_experts = num_experts if adapter == "moelora" else 0
        self.llm = configure_adapter(
            llm, adapter, target_modules, num_experts=num_experts, r=lora_r, alpha=lora_alpha,
            dropout=lora_dropout, context=self.gate_context,
        )  # fmt: skip
        if adapter == "moelora" and is_checkpointing(self.llm):
            enable_checkpointing(self.llm, context_fn=self.gate_context.checkpoint_context_fn)
        self.hidden_size = int(self.llm.get_input_embeddings().embedding_dim)  # D, read from the LLM
        # attention for training vs scoring (None: the one the LLM was loaded with, for both)
        train_attn = resolve_attn_implementation(train_attn_implementation) if train_attn_implementation else None
        self.attn_implementations = {False: llm.config._attn_implementation, True: train_attn}
        if compile_backbone:
            compile_decoder_layers(self.llm)  # per decoder layer, in place: seconds to compile, keys unchanged

        self.student = student
        student.requires_grad_(False)
        student.eval()
        d, big_d = student.hidden_size, self.hidden_size
        self.projector = nn.Sequential(nn.Linear(d, big_d), nn.GELU(), nn.Linear(big_d, big_d))
        self.gate = nn.Linear(d, num_experts) if adapter == "moelora" else None
        self.head = nn.Linear(big_d, d) if self.use_item_embeddings_head else nn.Linear(big_d, self.num_items)
        self.head_residual = bool(head_residual) and self.use_item_embeddings_head
        if self.head_residual:  # q_u = z_u + P(h_u) with P = 0: the teacher starts as the student
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    @property
    def pad_to_multiple_of(self) -> int:
        """Scoring / export prompt batches only (aligned shapes for GPU tensor cores); on the CPU neither export
        nor training got faster with it (docs/BENCHMARKS.md), so training batches stay unpadded."""
        return self._pad_to_multiple_of

    @pad_to_multiple_of.setter
    def pad_to_multiple_of(self, value: int) -> None:
        if int(value) < 1:
            raise ConfigError(f"teacher.pad_to_multiple_of must be >= 1, got {value}")
        self._pad_to_multiple_of = int(value)

    # -- modes ------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> ILoRAModel:
        super().train(mode)
        self.student.eval()  # frozen: never dropout in the student, whatever the trainer does
        return self

    @property
    def backbone(self) -> nn.Module:
        """The LLM's decoder stack (a property, not a submodule: registering it twice would duplicate state keys)."""
        return backbone_of(self.llm)

    @property
    def llm_dtype(self) -> torch.dtype:
        return self.llm.get_input_embeddings().weight.dtype

    @contextmanager
    def _adapters_for_items(self) -> Iterator[None]:
        """Adapters off for item embeddings unless item_embedding_adapters (then moelora uses a uniform gate)."""
        if self.adapter == "lora" and not self.item_embedding_adapters:
            with self.llm.disable_adapter():
                yield
        else:
            yield  # moelora: the gate context is set (or left None = off) by the caller

    # -- core -------------------------------------------------------------------------------
    def _hidden(self, attention_mask: torch.Tensor, inputs_embeds: torch.Tensor) -> torch.Tensor:
        # explicit positions: with left padding the first real token is position 0, whatever the batch
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        if self.attn_implementations[True] is not None:
            # chosen per call from self.training: Lightning restores train/eval flags without calling .train()
            set_attention(self.llm, self.attn_implementations[self.training])
        out = self.backbone(
            inputs_embeds=inputs_embeds, attention_mask=attention_mask, position_ids=position_ids, use_cache=False
        )
        return out.last_hidden_state

    def prompt_embeddings(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Token embeddings with every [HistoryEmb] position replaced by projector(student item embedding)."""
        tok = self.llm.get_input_embeddings()(batch["input_ids"])
        with torch.no_grad():
            item_emb = self.student.item_embedding(batch["hist_item_ids"]).float()
        proj = self.projector(item_emb).to(tok.dtype)
        return torch.where(batch["hist_mask"].unsqueeze(-1), proj, tok)

    def user_gate(self, z_u: torch.Tensor) -> torch.Tensor | None:
        return None if self.gate is None else torch.softmax(self.gate(z_u.float()), dim=-1)

    def forward(self, seq: torch.Tensor, len_seq: torch.Tensor) -> dict[str, torch.Tensor | None]:
        """-> dict(scores [B, N], h_u [B, D], q_u [B, d] or None, z_u [B, d], gate [B, E] or None)."""
        device = seq.device
        multiple = 1 if self.training else self.pad_to_multiple_of
        batch = {k: v.to(device) for k, v in self.prompts.build(seq, len_seq, multiple).items()}
        with torch.no_grad():
            z_u = self.student.encode(seq, len_seq).float()
        gate = self.user_gate(z_u)
        embeds = self.prompt_embeddings(batch)
        with self.gate_context.use(gate):
            hidden = self._hidden(batch["attention_mask"], embeds)
        h_u = hidden[:, -1, :].float()  # left padding: the last prompt token of every row
        q_u, scores = self.head_scores(h_u, z_u, seq, len_seq)
        return {"scores": scores, "h_u": h_u, "q_u": q_u, "z_u": z_u, "gate": gate}

    def head_scores(
        self, h_u: torch.Tensor, z_u: torch.Tensor, seq: torch.Tensor, len_seq: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``(q_u, scores [B, N])`` from the LLM state and the student state (also used on cached states)."""
        head_out = self.head(h_u)
        if self.use_item_embeddings_head:
            q_u = z_u + head_out if self.head_residual else head_out
            scores = self.student.score(q_u)  # the frozen student's output layer (tied: q_u @ E[:N]^T)
        else:
            q_u, scores = None, head_out
        # the frozen student's learned history bias (student.history_bias; a no-op without it): the
        # teacher keeps what the student knows about re-consumption, and still starts equal to it
        return q_u, self.student.add_history_bias(scores, seq, len_seq)

    def encode(self, seq: torch.Tensor, len_seq: torch.Tensor) -> torch.Tensor:
        return self.forward(seq, len_seq)["h_u"]

    def score(self, seq: torch.Tensor, len_seq: torch.Tensor) -> torch.Tensor:
        return self.forward(seq, len_seq)["scores"]

    @torch.no_grad()
    def item_semantic_embeddings(self, batch_size: int = 32) -> torch.Tensor:
        """[N, D] fp32: mean of the last hidden layer over each title's tokens (adapters off unless configured)."""
        was_training = self.training
        self.eval()
        device = self.llm.get_input_embeddings().weight.device
        rows = []
        try:
            with self._adapters_for_items():
                for start in range(0, self.num_items, batch_size):
                    ids = list(range(start, min(start + batch_size, self.num_items)))
                    b = {k: v.to(device) for k, v in self.prompts.build_titles(ids).items()}
                    gate = None
                    if self.adapter == "moelora" and self.item_embedding_adapters:  # no user: uniform gate
                        gate = torch.full((len(ids), self.num_experts), 1.0 / self.num_experts, device=device)
                    with self.gate_context.use(gate):
                        emb = self.llm.get_input_embeddings()(b["input_ids"])
                        hidden = self._hidden(b["attention_mask"], emb).float()
                    mask = b["title_mask"]
                    mask = torch.where(mask.any(-1, keepdim=True), mask, b["attention_mask"].bool())  # empty title
                    m = mask.unsqueeze(-1).float()
                    rows.append((hidden * m).sum(1) / m.sum(1).clamp(min=1.0))
        finally:
            self.train(was_training)
        return torch.cat(rows, 0)

    def item_embeddings(self, batch_size: int = 32) -> torch.Tensor:
        return self.item_semantic_embeddings(batch_size)
