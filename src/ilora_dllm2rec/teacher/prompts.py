"""Prompt templates and the fast, batched prompt builder of the iLoRA teacher.

A template contains ``[HistoryHere]``, which expands to ``title_1 [HistoryEmb], title_2 [HistoryEmb], ...``
(oldest first, most recent last). The input embedding at every ``[HistoryEmb]`` position is later replaced by
the projected student embedding of that item (:class:`~ilora_dllm2rec.teacher.ilora_model.ILoRAModel`).

Speed: every title is tokenised ONCE (two batched tokenizer calls over the catalogue); ``build`` only
concatenates id lists per sample. Token pieces are cut out of tokenisations done in context (after the
template prefix, or after a ``[HistoryEmb]`` token), so they match a full-string tokenisation of the prompt up
to the whitespace next to special tokens (the space written before ``[HistoryEmb]`` is not tokenised).

Truncation keeps the MOST RECENT items: at most ``max_history_items``, and as many whole titles as fit in
``max_prompt_tokens`` (oldest dropped first; a title is never cut).

Output layout: LEFT padding, so position ``-1`` is the last prompt token of every row (``h_u`` is read there).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..core.errors import ConfigError
from ..core.schema_teacher import PROMPT_TEMPLATES as TEACHER_PROMPT_TEMPLATES

log = logging.getLogger(__name__)

HISTORY_HERE = "[HistoryHere]"
HISTORY_EMB = "[HistoryEmb]"
SPECIAL_TOKENS = ("[HistoryEmb]", "[CansEmb]", "[ItemEmb]", "[PH]")

PROMPT_TEMPLATES = TEACHER_PROMPT_TEMPLATES  # the built-ins: teacher.prompt_templates' defaults (the schema's)


def resolve_template(template: str, templates: Mapping[str, str] | None = None) -> str:
    """A template name (looked up in ``templates``, then the built-ins) or a literal template text."""
    table = {**PROMPT_TEMPLATES, **dict(templates or {})}
    text = table.get(template, template)
    if HISTORY_HERE not in text:
        raise ConfigError(
            f"teacher.prompt_template={template!r} is neither a known template ({sorted(table)}) "
            f"nor a text containing {HISTORY_HERE}: add {HISTORY_HERE} where the history goes"
        )
    if text.count(HISTORY_HERE) > 1:
        raise ConfigError(f"teacher.prompt_template={template!r} contains {HISTORY_HERE} more than once")
    return text


def add_special_tokens(tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel | None = None) -> dict[str, int]:
    """Add [HistoryEmb], [CansEmb], [ItemEmb], [PH] (idempotent) and grow the model's embeddings to fit."""
    missing = [t for t in SPECIAL_TOKENS if t not in tokenizer.get_vocab()]
    if missing:
        # transformers 5 renamed additional_special_tokens -> extra_special_tokens
        params = inspect.signature(tokenizer.add_special_tokens).parameters
        key = "extra_special_tokens" if "replace_extra_special_tokens" in params else "additional_special_tokens"
        tokenizer.add_special_tokens({key: missing}, **{f"replace_{key}": False})
    if model is not None and model.get_input_embeddings().num_embeddings < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)  # new rows unused or replaced
    return {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}


class PromptBuilder:
    """Turns item-id histories into left-padded token batches (see the module docstring)."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        item_titles: Sequence[str],
        template: str,
        *,
        max_prompt_tokens: int = 256,
        max_history_items: int = 20,
    ) -> None:
        if max_history_items < 0 or max_prompt_tokens <= 0:
            raise ConfigError("teacher.max_prompt_tokens must be > 0 and teacher.max_history_items >= 0")
        self.tokenizer = tokenizer
        self.num_items = len(item_titles)
        self.pad_item = self.num_items  # padding id convention (data/types.py)
        self.max_prompt_tokens = int(max_prompt_tokens)
        self.max_history_items = int(max_history_items)
        self.item_titles = [str(t) for t in item_titles]
        self.hist_token = add_special_tokens(tokenizer)[HISTORY_EMB]
        self.pad_token = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        prefix, suffix = template.split(HISTORY_HERE)
        prefix = prefix.rstrip()
        self.prefix_ids = self._ids(prefix, special=True)
        self.suffix_ids = self._after_hist(suffix)
        self.budget = self.max_prompt_tokens - len(self.prefix_ids) - len(self.suffix_ids)
        if self.budget <= 0:
            raise ConfigError(
                f"teacher.max_prompt_tokens={max_prompt_tokens} leaves no room for history after the template "
                f"({len(self.prefix_ids) + len(self.suffix_ids)} tokens): increase it"
            )
        # first item follows the prefix text; later items follow "[HistoryEmb]" and start with ", "
        self.first_pieces = self._pieces_after_prefix(prefix)
        self.next_pieces = self._pieces_after_hist([", " + t for t in self.item_titles])
        self._title_ids: list[list[int]] | None = None
        self._warned_empty = False

    # -- pre-tokenisation ---------------------------------------------------------------
    def _ids(self, text: str, special: bool = False) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=special)["input_ids"])

    def _strip_context(self, full: list[list[int]], context: list[int], texts: list[str]) -> list[list[int]]:
        out = []
        n = len(context)
        for ids, text in zip(full, texts):
            if ids[:n] == context:
                out.append(ids[n:])
            else:  # the context merged with the text (rare): tokenise the text alone
                out.append(self._ids(text))
        return out

    def _after_hist(self, text: str) -> list[int]:
        return self._pieces_after_hist([text])[0]

    def _pieces_after_hist(self, texts: list[str]) -> list[list[int]]:
        full = self.tokenizer([HISTORY_EMB + t for t in texts], add_special_tokens=False)["input_ids"]
        return self._strip_context([list(x) for x in full], [self.hist_token], texts)

    def _pieces_after_prefix(self, prefix: str) -> list[list[int]]:
        texts = [" " + t for t in self.item_titles]
        full = self.tokenizer([prefix + t for t in texts], add_special_tokens=True)["input_ids"]
        return self._strip_context([list(x) for x in full], self.prefix_ids, texts)

    # -- building -------------------------------------------------------------------
    def select_history(self, items: Sequence[int]) -> list[int]:
        """The most recent items that fit (chronological order); never cuts a title."""
        items = list(items)[-self.max_history_items :] if self.max_history_items > 0 else []
        kept: list[int] = []
        used = 0  # tokens of the kept (newer) items, each written as ", title [HistoryEmb]"
        for item in reversed(items):
            first_cost = len(self.first_pieces[item]) + 1
            if used + first_cost > self.budget:
                break
            kept.append(item)
            used += len(self.next_pieces[item]) + 1
        kept.reverse()
        return kept

    def prompt_ids(self, items: Sequence[int]) -> tuple[list[int], list[int]]:
        """(token ids, item id per token: the item at [HistoryEmb] positions, pad elsewhere)."""
        kept = self.select_history(items)
        if items and not kept and not self._warned_empty:
            log.warning(
                "a history title does not fit in teacher.max_prompt_tokens=%d: prompt without history",
                self.max_prompt_tokens,
            )
            self._warned_empty = True
        ids = list(self.prefix_ids)
        owner = [self.pad_item] * len(ids)
        for k, item in enumerate(kept):
            piece = self.first_pieces[item] if k == 0 else self.next_pieces[item]
            ids.extend(piece)
            ids.append(self.hist_token)
            owner.extend([self.pad_item] * len(piece))
            owner.append(item)
        ids.extend(self.suffix_ids)
        owner.extend([self.pad_item] * len(self.suffix_ids))
        return ids, owner

    def _left_pad(
        self, rows: list[list[int]], owners: list[list[int]], fill: int, multiple: int = 1
    ) -> dict[str, torch.Tensor]:
        if multiple < 1:
            raise ConfigError(f"teacher.pad_to_multiple_of must be >= 1, got {multiple}")
        width = -(-max(len(r) for r in rows) // multiple) * multiple  # rounded up to a multiple
        input_ids = torch.full((len(rows), width), self.pad_token, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        item_ids = torch.full((len(rows), width), fill, dtype=torch.long)
        for b, (ids, own) in enumerate(zip(rows, owners)):
            n = len(ids)
            input_ids[b, width - n :] = torch.tensor(ids, dtype=torch.long)
            item_ids[b, width - n :] = torch.tensor(own, dtype=torch.long)
            attention[b, width - n :] = 1
        return {"input_ids": input_ids, "attention_mask": attention, "hist_item_ids": item_ids}

    def build(self, seq: torch.Tensor, len_seq: torch.Tensor, pad_to_multiple_of: int = 1) -> dict[str, torch.Tensor]:
        """seq [B, L] right-padded item ids, len_seq [B] -> left-padded batch (CPU tensors), its width rounded up
        to a multiple of ``pad_to_multiple_of`` (extra columns are padding: masked out, outputs unchanged).

        Keys: input_ids [B, T], attention_mask [B, T], hist_mask [B, T] bool (the [HistoryEmb] positions),
        hist_item_ids [B, T] (item at each [HistoryEmb] position, padding id N elsewhere).
        """
        seqs = seq.detach().cpu().tolist()
        lens = len_seq.detach().cpu().tolist()
        rows, owners = [], []
        for s, n in zip(seqs, lens):
            ids, own = self.prompt_ids(s[: int(n)])
            rows.append(ids)
            owners.append(own)
        out = self._left_pad(rows, owners, self.pad_item, pad_to_multiple_of)
        out["hist_mask"] = out["input_ids"] == self.hist_token
        return out

    def build_titles(self, item_ids: Sequence[int]) -> dict[str, torch.Tensor]:
        """Each item's title alone (tokenised with the tokenizer's specials), left-padded.

        Keys: input_ids, attention_mask, title_mask (the title's own tokens: BOS/EOS excluded).
        """
        if self._title_ids is None:
            self._title_ids = [list(x) for x in self.tokenizer(self.item_titles, add_special_tokens=True)["input_ids"]]
        rows = [self._title_ids[i] for i in item_ids]
        specials = set(self.tokenizer.all_special_ids)
        owners = [[0 if t in specials else 1 for t in r] for r in rows]
        out = self._left_pad(rows, owners, fill=0)
        out["title_mask"] = out.pop("hist_item_ids").bool()
        return out


def prompt_token_counts(prompts: PromptBuilder, seq: np.ndarray, len_seq: np.ndarray) -> np.ndarray:
    """Prompt token count of every row (right-padded ``seq`` [M, L], ``len_seq`` [M]): for batching by length."""
    return np.fromiter(
        (len(prompts.prompt_ids(row[:n].tolist())[0]) for row, n in zip(seq, len_seq)), dtype=np.int64, count=len(seq)
    )
