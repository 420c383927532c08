"""Function matching: the teacher queried during training on inputs the export does not hold.

After Beyer et al. 2022 ("Knowledge distillation: a good teacher is patient and consistent"): a student matches
its teacher best when it sees the teacher's output on many more inputs than the labelled ones. Why here: a CE
student distilled from the exported top-N reaches its teacher on validation but stays below it on test, where the
newest history item is one no model saw in that user's context (docs/BENCHMARKS.md "Distillation for the CE
student"). The export labels the training inputs only. Each step
here also shows the student every selected input with one more item appended, drawn from the teacher's own
exported distribution for that input (a plausible next item, new in this user's context: the situation of every
test input), and fits the teacher's full-catalogue distribution on it:

    L_FM = tau^2 * mean_u KL(softmax(t(x'_u) / tau) || softmax(s(x'_u) / tau)),   x'_u = x_u + [i_u],
    i_u ~ the teacher's exported top-N for x_u (renormalised).

On ml-100k with the default CE preset's teacher it made the student worse (docs/BENCHMARKS.md "Another CPU
kind"), so it is off by default (``distill.function_matching_weight: 0``). Only ID teachers (``sasrec``,
``ensemble``) are queried: their forward pass costs about a student's, an LLM's hundreds of times more. Written
by hand: no library offers online distillation from a frozen sequential
recommender with this augmentation.
"""

from __future__ import annotations

import torch

from ..core.errors import ConfigError

ONLINE_BACKENDS = ("sasrec", "ensemble")


def check_online_backend(backend: str | None, where: str) -> None:
    """Function matching queries the teacher every step: only an ID teacher is fast enough."""
    if backend not in ONLINE_BACKENDS:
        raise ConfigError(
            f"distill.function_matching_weight > 0 queries the teacher at every step, but {where} comes from a "
            f"{backend!r} teacher: use an export of an ID teacher ({' or '.join(ONLINE_BACKENDS)}), or set "
            "distill.function_matching_weight=0"
        )


def append_item(seq: torch.Tensor, len_seq: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded histories ``seq`` [B, L] (lengths ``len_seq`` [B]) with ``items`` [B] appended as the newest
    item; a full row (length L) drops its oldest item, as the data loader truncates to the newest L."""
    width = seq.shape[1]
    full = len_seq >= width
    out = seq.clone()
    if bool(full.any()):
        out[full] = torch.cat([seq[full, 1:], items[full, None]], dim=1)
    rows = torch.nonzero(~full).squeeze(1)
    out[rows, len_seq[rows]] = items[rows]
    return out, torch.clamp(len_seq + 1, max=width)


def sample_from_teacher(
    cand_ids: torch.Tensor, cand_dist: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One item per row [B] from the teacher's exported top-N, with probability ``exp(-d)`` renormalised within
    the top-N (``d``: the export's distances, ``-log p`` for the platform's exports)."""
    probs = torch.softmax(-cand_dist.float(), dim=1)
    pick = torch.multinomial(probs, 1, generator=generator)
    return cand_ids.gather(1, pick).squeeze(1)


def function_matching_loss(
    student_scores: torch.Tensor, teacher_scores: torch.Tensor, *, temperature: float = 1.0, batch_rows: int
) -> torch.Tensor:
    """``tau^2 * sum_u KL(softmax(t_u / tau) || softmax(s_u / tau)) / batch_rows`` over the full catalogue
    (``batch_rows``: the whole batch's size, so unselected rows count as zeros, as ``distill.rd_mean=batch``)."""
    if student_scores.shape != teacher_scores.shape:
        raise ValueError(
            f"student scores {tuple(student_scores.shape)} and teacher scores {tuple(teacher_scores.shape)} differ: "
            "the teacher must rank the student's catalogue"
        )
    q_log = torch.log_softmax(teacher_scores.detach().float() / temperature, dim=1)
    r_log = torch.log_softmax(student_scores.float() / temperature, dim=1)
    per_row = (q_log.exp() * (q_log - r_log)).sum(dim=1)
    return per_row.sum() * temperature**2 / batch_rows
