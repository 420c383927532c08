"""Reference-style training loops, written for the benchmarks so speed-ups are ratios measured in one run.
A helper module of bench_students.py and bench_distill.py (no command of its own).

- :func:`plain_loop_throughput`: the minimal hand loop of common public SASRec implementations: a
  per-sample ``Dataset`` (one ``__getitem__`` per row), ``DataLoader(batch_size=256, shuffle=True)`` with
  the default collate, then forward, cross-entropy, backward, Adam. Used with the platform's own model
  (same maths, so the ratio isolates the training machinery) and with :class:`TextbookSASRec`.
- :class:`TextbookSASRec`: a straightforward SASRec as public code writes it (``nn.MultiheadAttention``
  over the whole padded [B, L, d] grid with a causal mask, ``nn.Dropout``, Conv1d point-wise FFN).
- :func:`reference_distill_throughput`: the public DLLM2Rec reference loop's data handling, re-implemented
  from its description: every batch is resampled from a pandas DataFrame (``df.sample(n=B).to_dict()``),
  the sequences are parsed from their CSV strings, negatives are drawn per sample in Python, teacher rows are
  looked up by the sampled DataFrame index, and the ranking-distillation loss loops over the K candidates in
  Python (weights and the DRO term recomputed per candidate). Parsing uses ``json.loads`` (faster than the
  ``eval`` such code often uses), so the measured speed-up is, if anything, understated.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from bench_common import autocast_context
from ilora_dllm2rec.data import SampleSet


class PerSampleDataset(Dataset):
    """One training sample per ``__getitem__``: the pattern the common public implementations use."""

    def __init__(self, samples: SampleSet) -> None:
        self.seq, self.len_seq, self.target = samples.seq, samples.len_seq, samples.target

    def __len__(self) -> int:
        return len(self.target)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return torch.tensor(self.seq[i]), torch.tensor(self.len_seq[i]), torch.tensor(self.target[i])


def plain_loop_throughput(
    model: nn.Module,
    samples: SampleSet,
    *,
    batch_size: int,
    lr: float,
    warmup: int,
    steps: int,
    precision: str = "32-true",
) -> dict:
    """Samples/s of the hand loop over ``steps`` batches after ``warmup`` (data loading included)."""
    loader = DataLoader(PerSampleDataset(samples), batch_size=batch_size, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    done, seen, start = 0, 0, 0.0
    while done < warmup + steps:
        for seq, len_seq, target in loader:
            if done == warmup:
                start, seen = time.perf_counter(), 0
            with autocast_context(precision):
                scores = model(seq, len_seq)
            loss = F.cross_entropy(scores.float(), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seen += int(target.shape[0])
            done += 1
            if done == warmup + steps:
                break
    elapsed = time.perf_counter() - start
    return {"samples_per_s": seen / elapsed, "steps": steps, "seconds": elapsed}


class _PointWiseFFN(nn.Module):
    def __init__(self, d: int, dropout: float) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv1d(d, d, 1), nn.Conv1d(d, d, 1)
        self.drop1, self.drop2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop2(self.conv2(torch.relu(self.drop1(self.conv1(x.transpose(-1, -2))))))
        return h.transpose(-1, -2) + x


class TextbookSASRec(nn.Module):
    """SASRec as public code writes it; right-padded input (padding id = N), tied output head."""

    def __init__(
        self, num_items: int, d: int = 64, max_len: int = 50, blocks: int = 2, heads: int = 1, dropout: float = 0.2
    ) -> None:
        super().__init__()
        self.num_items = num_items
        self.item_emb = nn.Embedding(num_items + 1, d, padding_idx=num_items)
        self.pos_emb = nn.Embedding(max_len, d)
        self.emb_drop = nn.Dropout(dropout)
        self.attn_norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(blocks))
        self.attns = nn.ModuleList(nn.MultiheadAttention(d, heads, dropout=dropout) for _ in range(blocks))
        self.ffn_norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(blocks))
        self.ffns = nn.ModuleList(_PointWiseFFN(d, dropout) for _ in range(blocks))
        self.last_norm = nn.LayerNorm(d)
        self.llm_emb: torch.Tensor | None = None  # collaborative embedding distillation input (optional)
        self.llm_proj: nn.Linear | None = None
        self.ed_weight = 0.0

    def set_llm_item_embeddings(self, embeddings: torch.Tensor, ed_weight: float) -> None:
        """``e_i + ed_weight * Linear(E_llm[i])`` at the input, as DLLM2Rec's students do."""
        pad = torch.zeros(1, embeddings.shape[1])
        self.llm_emb = torch.cat([embeddings.float(), pad])  # row N = padding: adds Linear bias only, masked later
        self.llm_proj = nn.Linear(embeddings.shape[1], self.item_emb.embedding_dim)
        self.ed_weight = float(ed_weight)

    def forward(self, seq: torch.Tensor, len_seq: torch.Tensor) -> torch.Tensor:
        b, length = seq.shape
        x = self.item_emb(seq)
        if self.llm_proj is not None:
            x = x + self.ed_weight * self.llm_proj(self.llm_emb[seq])
        x = x * self.item_emb.embedding_dim**0.5
        x = self.emb_drop(x + self.pos_emb(torch.arange(length).expand(b, -1)))
        keep = (seq != self.num_items).unsqueeze(-1)
        x = x * keep
        causal = ~torch.tril(torch.ones(length, length, dtype=torch.bool))
        for norm, attn, ffn_norm, ffn in zip(self.attn_norms, self.attns, self.ffn_norms, self.ffns):
            x = x.transpose(0, 1)
            q = norm(x)
            out, _ = attn(q, x, x, attn_mask=causal)
            x = (q + out).transpose(0, 1)
            x = ffn(ffn_norm(x)) * keep
        h = self.last_norm(x)[torch.arange(b), (len_seq - 1).clamp(min=0)]
        return h @ self.item_emb.weight[: self.num_items].T


# -- DLLM2Rec reference-style distillation loop -------------------------------------------------------------


def sequence_frame(samples: SampleSet) -> pd.DataFrame:
    """The sequence-format training CSV as the reference reads it: ``seq`` is the string "[i1, i2, ...]"."""
    seq = [json.dumps(row) for row in samples.seq.tolist()]
    return pd.DataFrame({"seq": seq, "len_seq": samples.len_seq, "next": samples.target})


def reference_distill_throughput(
    model: nn.Module,
    frame: pd.DataFrame,
    teacher_rank: np.ndarray,
    teacher_conf: np.ndarray,
    propensity: torch.Tensor,
    dcfg: dict,
    *,
    batch_size: int,
    lr: float,
    warmup: int,
    steps: int,
    seed: int = 0,
) -> dict:
    """Samples/s of the reference-style loop (base loss ``ce``, as the platform's default student), same model."""
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    k_top = int(dcfg["candidate_topk"])
    lam, alpha, beta = float(dcfg["rd_weight"]), float(dcfg["alpha"]), float(dcfg["beta"])
    g_p, g_c, g_o = float(dcfg["gamma_position"]), float(dcfg["gamma_confidence"]), float(dcfg["gamma_consistency"])
    num_items = int(teacher_rank.max()) + 1 if propensity is None else propensity.shape[0]
    seen, start = 0, 0.0
    for step in range(warmup + steps):
        if step == warmup:
            start, seen = time.perf_counter(), 0
        batch = frame.sample(n=batch_size, random_state=int(rng.integers(2**31))).to_dict()
        index = list(batch["seq"].keys())
        seq = [json.loads(s) for s in batch["seq"].values()]
        len_seq, target = list(batch["len_seq"].values()), list(batch["next"].values())
        negatives = []
        for row, tgt in zip(seq, target):  # one negative per sample, drawn in Python
            banned = set(row) | {tgt}
            neg = int(rng.integers(num_items))
            while neg in banned:
                neg = int(rng.integers(num_items))
            negatives.append(neg)
        seq_t, len_t, target_t = torch.LongTensor(seq), torch.LongTensor(len_seq), torch.LongTensor(target)
        neg_t = torch.LongTensor(negatives).view(-1, 1)
        rank = torch.LongTensor(teacher_rank[index, :k_top])
        conf = torch.FloatTensor(teacher_conf[index, :k_top])

        scores = model(seq_t, len_t)
        loss = F.cross_entropy(scores, target_t)
        # weights, candidate by candidate
        pos_w = [math.exp(-(k + 1)) for k in range(k_top)]
        pos_w = torch.FloatTensor([w / sum(pos_w) for w in pos_w]).expand(len(index), -1)
        conf_w = torch.exp(-conf) / torch.exp(-conf).sum(dim=1, keepdim=True)
        student_top = scores.detach().topk(k_top, dim=1).indices
        cons_w = torch.zeros(len(index), k_top)
        for k in range(k_top):
            cons_w[:, k] = (student_top == rank[:, k : k + 1]).any(dim=1).float() + 1e-8
        weight = g_p * pos_w + g_c * conf_w + g_o * cons_w
        weight = weight / weight.sum(dim=1, keepdim=True)
        neg_scores = scores.gather(1, neg_t)
        loss_rd = 0.0
        for k in range(k_top):
            cand = rank[:, k : k + 1]
            pos_scores = scores.gather(1, cand)
            bce = F.binary_cross_entropy_with_logits(pos_scores, torch.ones_like(pos_scores), reduction="none")
            bce = bce + F.binary_cross_entropy_with_logits(neg_scores, torch.zeros_like(neg_scores), reduction="none")
            a = propensity.view(1, -1) * scores * scores / beta  # the DRO term, recomputed per candidate
            b_t = propensity[cand] * (pos_scores - 1.0) ** 2 / beta
            rest = torch.logsumexp(a.scatter(1, cand, float("-inf")), dim=1, keepdim=True)
            dro = torch.logaddexp(rest, b_t)
            loss_rd = loss_rd + (weight[:, k : k + 1] * (bce + alpha * dro)).mean()
        loss = loss + lam * loss_rd
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen += len(index)
    elapsed = time.perf_counter() - start
    return {"samples_per_s": seen / elapsed, "steps": steps, "seconds": elapsed}
