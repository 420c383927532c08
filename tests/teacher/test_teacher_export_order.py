"""Export batching order: LLM prompts sorted by token count, other teachers by history length."""

from __future__ import annotations

import numpy as np

from ilora_dllm2rec.data import SampleSet
from ilora_dllm2rec.teacher.export import length_order


class _Prompts:
    """Prompt of an item list: one token per unit of item id (so a few long 'titles' beat many short ones)."""

    def prompt_ids(self, items: list[int]) -> tuple[list[int], list[int]]:
        ids = [0] * (2 + sum(items))
        return ids, ids


class _LLMTeacher:
    prompts = _Prompts()


def _samples() -> SampleSet:
    pad = 99
    seq = np.array([[1, 1, 1, pad], [9, pad, pad, pad], [2, 2, pad, pad], [1, 2, 3, 4]])
    lens = np.array([3, 1, 2, 4])
    return SampleSet(seq=seq, len_seq=lens, target=np.zeros(4, dtype=np.int64), user=np.arange(4))


def test_llm_prompts_are_sorted_by_token_count_not_history_length() -> None:
    # token counts: 2+3=5, 2+9=11, 2+4=6, 2+10=12 -> rows 0, 2, 1, 3 (history length alone: 1, 2, 0, 3)
    assert length_order(_LLMTeacher(), _samples()).tolist() == [0, 2, 1, 3]


def test_ties_break_by_history_length_and_other_teachers_use_it() -> None:
    s = _samples()
    s.seq[1] = [1, 1, 1, 99]  # same token count as row 0 (5) but a longer history (4 > 3)
    s.len_seq[1] = 3
    s.seq[0], s.len_seq[0] = np.array([3, 99, 99, 99]), 1
    assert length_order(_LLMTeacher(), s).tolist() == [0, 1, 2, 3]
    assert length_order(object(), _samples()).tolist() == [1, 2, 0, 3]


def test_export_progress_line_reports_rows_rate_and_time_left() -> None:
    from ilora_dllm2rec.teacher.export import progress_line

    assert progress_line(12_000, 97_171, 30.0) == "export: 12,000/97,171 rows (12%), 400 rows/s, 3 min 32 s left"
    assert progress_line(500, 500, 2.0) == "export: 500/500 rows (100%), 250 rows/s, done"
