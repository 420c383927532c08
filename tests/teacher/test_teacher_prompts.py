"""Prompt templates, special tokens, truncation (most recent items, whole titles) and left padding."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from teacher_helpers import NUM_ITEMS, TITLES
from transformers import AutoTokenizer

from ilora_dllm2rec.core.errors import ConfigError
from ilora_dllm2rec.teacher.prompts import (
    PROMPT_TEMPLATES,
    SPECIAL_TOKENS,
    PromptBuilder,
    add_special_tokens,
    resolve_template,
)


@pytest.fixture
def tok(tiny_llm_dir: Path):
    return AutoTokenizer.from_pretrained(tiny_llm_dir)


def test_resolve_template_by_name_literal_and_error() -> None:
    assert resolve_template("movies") == PROMPT_TEMPLATES["movies"]
    assert resolve_template("mine", {"mine": "I saw [HistoryHere]."}) == "I saw [HistoryHere]."
    assert resolve_template("Seen: [HistoryHere]. Next?") == "Seen: [HistoryHere]. Next?"
    with pytest.raises(ConfigError, match=r"teacher.prompt_template.*\[HistoryHere\]"):
        resolve_template("This user watched movies. Predict the next one.")


def test_special_tokens_added_once_and_embeddings_resized(tiny_llm_dir: Path, tok) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llm_dir)
    before = len(tok)
    ids = add_special_tokens(tok, model)
    assert len(tok) == before + len(SPECIAL_TOKENS) and set(ids) == set(SPECIAL_TOKENS)
    assert model.get_input_embeddings().num_embeddings == len(tok)
    assert add_special_tokens(tok, model) == ids and len(tok) == before + len(SPECIAL_TOKENS)  # idempotent
    assert tok("a [HistoryEmb] b", add_special_tokens=False)["input_ids"].count(ids["[HistoryEmb]"]) == 1


def test_prompt_equals_full_string_tokenisation(tok) -> None:
    pb = PromptBuilder(tok, TITLES, resolve_template("movies"))
    ids, owner = pb.prompt_ids([0, 10])
    text = (
        f"This user has watched {TITLES[0]}[HistoryEmb], {TITLES[10]}[HistoryEmb] in the previous. "
        "Please predict the next movie this user will watch."
    )
    assert ids == tok(text)["input_ids"]
    hist = [o for i, o in zip(ids, owner) if i == pb.hist_token]
    assert hist == [0, 10] and sum(o != NUM_ITEMS for o in owner) == 2


def test_build_left_padded_batch(tok, batch) -> None:
    seq, len_seq = batch
    pb = PromptBuilder(tok, TITLES, resolve_template("movies"))
    out = pb.build(seq, len_seq)
    B, T = seq.shape[0], out["input_ids"].shape[1]
    assert all(v.shape == (B, T) for v in out.values())
    assert out["attention_mask"][:, -1].eq(1).all()  # last position = last prompt token of every row
    assert out["attention_mask"][2, 0] == 0  # the empty history is the shortest row: padded on the left
    # attention is a contiguous block at the right end
    assert torch.equal(out["attention_mask"].flip(1).cummin(1).values, out["attention_mask"].flip(1))
    for b in range(B):
        items = out["hist_item_ids"][b][out["hist_mask"][b]].tolist()
        assert items == seq[b, : len_seq[b]].tolist()
    assert out["hist_item_ids"][~out["hist_mask"]].eq(NUM_ITEMS).all()
    assert out["input_ids"][out["attention_mask"] == 0].eq(tok.pad_token_id).all()


def test_pad_to_multiple_rounds_the_width_up_with_left_padding(tok, batch) -> None:
    seq, len_seq = batch
    pb = PromptBuilder(tok, TITLES, resolve_template("movies"))
    plain, padded = pb.build(seq, len_seq), pb.build(seq, len_seq, pad_to_multiple_of=8)
    width = plain["input_ids"].shape[1]
    assert padded["input_ids"].shape[1] == -(-width // 8) * 8 and padded["input_ids"].shape[1] % 8 == 0
    for key in plain:  # the extra columns are on the left; the prompts themselves are unchanged
        assert torch.equal(padded[key][:, -width:], plain[key])
    assert padded["attention_mask"][:, :-width].eq(0).all()
    assert torch.equal(pb.build(seq, len_seq, pad_to_multiple_of=1)["input_ids"], plain["input_ids"])
    with pytest.raises(ConfigError, match="teacher.pad_to_multiple_of"):
        pb.build(seq, len_seq, pad_to_multiple_of=0)


def test_truncation_keeps_most_recent_whole_titles(tok) -> None:
    template = resolve_template("movies")
    full = PromptBuilder(tok, TITLES, template, max_prompt_tokens=10_000, max_history_items=100)
    history = list(range(NUM_ITEMS))
    n_full = len(full.prompt_ids(history)[0])
    for limit in (n_full - 1, n_full - 25, n_full // 2, len(full.prefix_ids) + len(full.suffix_ids) + 12):
        pb = PromptBuilder(tok, TITLES, template, max_prompt_tokens=limit, max_history_items=100)
        ids, owner = pb.prompt_ids(history)
        kept = [o for o in owner if o != NUM_ITEMS]
        assert len(ids) <= limit
        assert kept == history[len(history) - len(kept) :]  # a suffix: the most recent items
        assert 0 < len(kept) < len(history)
        # maximal: one more (older) item would not fit; and the kept part equals the untruncated prompt of it
        one_more = history[len(history) - len(kept) - 1 :]
        assert len(full.prompt_ids(one_more)[0]) > limit
        assert ids == full.prompt_ids(kept)[0]  # no title cut in half


def test_max_history_items_cap_and_no_room_error(tok) -> None:
    pb = PromptBuilder(tok, TITLES, resolve_template("games"), max_history_items=3)
    assert pb.select_history(list(range(8))) == [5, 6, 7]
    with pytest.raises(ConfigError, match="max_prompt_tokens"):
        PromptBuilder(tok, TITLES, resolve_template("games"), max_prompt_tokens=5)


def test_build_titles_masks_title_tokens(tok) -> None:
    pb = PromptBuilder(tok, TITLES, resolve_template("music"))
    out = pb.build_titles([0, 11])
    for row, i in enumerate([0, 11]):
        title_ids = out["input_ids"][row][out["title_mask"][row]].tolist()
        assert title_ids == tok(TITLES[i], add_special_tokens=False)["input_ids"]
