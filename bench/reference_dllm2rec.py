"""The public DLLM2Rec reference training step, ported operation for operation: the distillation speed ratio of
docs/BENCHMARKS.md "Distillation speed against the public DLLM2Rec reference". A helper module of
bench_distill.py (no command of its own).

``bench/reference_loops.py`` re-implements the reference loop's data handling around the platform's own losses
and understates its cost on purpose (``json.loads`` parsing, one Python-drawn negative, gathered LLM rows).
This module follows the public code (``main.py`` / ``utility.py`` / ``SASRecModules_ori.py`` of the DLLM2Rec
repository, written anew from reading it) step by step, so "5x the reference implementation" is measured
against what its users actually run:

- every batch: ``DataFrame.sample(n=B)`` + ``to_dict()``; sequences parsed with ``ast.literal_eval``;
- negatives: a dense [B, N+1] "seen" mask filled by index assignment, then ``torch.multinomial`` on ``1 - mask``;
- embedding distillation: a dense zero [B, L, D_llm] tensor filled with the teacher rows per batch, projected
  by ``Linear(D_llm, d)`` at every position (padding included);
- the model: its one-block SASRec (attention over the whole padded grid with ``torch.where`` masks built from
  ``ones_like`` tensors, query masking, Conv1d feed-forward, LayerNorms, a per-sample Python loop to pick the
  last position, a ``Linear(d, N)`` head);
- base loss BCE on (target, negative) + ``alpha`` x the DRO term with a float64 propensity (NumPy's dtype);
- ranking distillation: weights built per batch (position, confidence, consistency via ``argsort`` of the
  full score matrix), then a Python loop over the K candidates that recomputes the DRO sum over all items for
  every candidate. The reference multiplies a [B, 1] weight by a [B] DRO vector there (a [B, B] broadcast);
  that is kept, since it is what the code computes and costs.

Only two constants are adapted so the code runs on these settings at all: the hard-coded history length 10 in
the mask assignment becomes the data's ``max_seq_len`` and the hard-coded LLM width 4096 becomes the export's.
"""

from __future__ import annotations

import ast
import time

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn


class ReferenceAttention(nn.Module):
    """The reference's multi-head attention (split/concat heads, where-masks, query masking, residual)."""

    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.d, self.heads = d, heads
        self.linear_q, self.linear_k, self.linear_v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        split = self.d // self.heads
        q = torch.cat(torch.split(self.linear_q(queries), split, dim=2), dim=0)
        k = torch.cat(torch.split(self.linear_k(keys), split, dim=2), dim=0)
        v = torch.cat(torch.split(self.linear_v(keys), split, dim=2), dim=0)
        scores = torch.bmm(q, k.transpose(1, 2)) / self.d**0.5
        key_mask = torch.sign(torch.abs(keys.sum(dim=-1))).repeat(self.heads, 1)
        key_mask = key_mask.unsqueeze(1).repeat(1, queries.shape[1], 1)
        scores = torch.where(torch.eq(key_mask, 0), torch.ones_like(scores) * (-(2**32) + 1), scores)
        causal = torch.tril(torch.ones_like(scores[0])).unsqueeze(0).repeat(scores.shape[0], 1, 1)
        scores = torch.where(torch.eq(causal, 0), torch.ones_like(causal) * (-(2**32) + 1), scores)
        weights = torch.softmax(scores, dim=-1)
        query_mask = torch.sign(torch.abs(queries.sum(dim=-1))).repeat(self.heads, 1)
        weights = weights * query_mask.unsqueeze(-1).repeat(1, 1, keys.shape[1])
        out = torch.bmm(self.dropout(weights), v)
        out = torch.cat(torch.split(out, out.shape[0] // self.heads, dim=0), dim=2)
        return out + queries


class ReferenceFeedForward(nn.Module):
    """Conv1d point-wise feed-forward with dropout, residual and its own LayerNorm."""

    def __init__(self, d: int, dropout: float) -> None:
        super().__init__()
        self.w_1, self.w_2 = nn.Conv1d(d, d, 1), nn.Conv1d(d, d, 1)
        self.layer_norm, self.dropout = nn.LayerNorm(d), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.w_2(F.relu(self.w_1(x.transpose(1, 2)))).transpose(1, 2)
        return self.layer_norm(self.dropout(out) + x)


class ReferenceSASRec(nn.Module):
    """The reference's SASRec: one block, right-padded input (padding id = N), ``Linear(d, N)`` head."""

    def __init__(self, num_items: int, d: int, max_len: int, dropout: float, llm_dim: int, ed_weight: float) -> None:
        super().__init__()
        self.num_items, self.max_len, self.ed_weight = num_items, max_len, ed_weight
        self.item_embeddings = nn.Embedding(num_items + 1, d)
        nn.init.normal_(self.item_embeddings.weight, 0, 0.01)
        self.positional_embeddings = nn.Embedding(max_len, d)
        self.emb_dropout = nn.Dropout(dropout)
        self.ln_1, self.ln_2, self.ln_3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.mh_attn = ReferenceAttention(d, 1, dropout)
        self.feed_forward = ReferenceFeedForward(d, dropout)
        self.s_fc = nn.Linear(d, num_items)
        self.fc_llm = nn.Linear(llm_dim, d)

    def forward(self, states: torch.Tensor, len_states: torch.Tensor, llm_emb: torch.Tensor | None) -> torch.Tensor:
        emb = self.item_embeddings(states)
        if llm_emb is not None:
            emb = emb + self.ed_weight * self.fc_llm(llm_emb)
        emb = emb + self.positional_embeddings(torch.arange(self.max_len))
        seq = self.emb_dropout(emb)
        mask = torch.ne(states, self.num_items).float().unsqueeze(-1)
        seq = seq * mask
        out = self.feed_forward(self.ln_2(self.mh_attn(self.ln_1(seq), seq)))
        out = self.ln_3(out * mask)
        last = torch.stack([out[i, len_states[i] - 1, :] for i in range(out.shape[0])], dim=0).unsqueeze(1)
        return self.s_fc(last).squeeze()


def _dro(output: torch.Tensor, ps: torch.Tensor, target: torch.Tensor, beta: float) -> torch.Tensor:
    """The reference's DRO term, as written there: exp sums over all items, float64 via the propensity."""
    pos_dro = torch.squeeze(torch.gather(torch.mul(output * output, ps), 1, target))
    pos_loss = torch.squeeze(torch.gather(torch.mul((output - 1) * (output - 1), ps), 1, target))
    inner = (
        torch.sum(torch.exp(torch.mul(output * output, ps) / beta), 1)
        - torch.exp(pos_dro / beta)
        + torch.exp(pos_loss / beta)
    )
    return torch.log(inner + 1e-24)


def reference_port_throughput(
    model: ReferenceSASRec,
    frame: pd.DataFrame,
    candidates: torch.Tensor,
    confidence: torch.Tensor,
    llm_all_emb: torch.Tensor | None,
    ps: torch.Tensor,
    settings: dict,
    *,
    batch_size: int,
    lr: float,
    warmup: int,
    steps: int,
) -> dict:
    """Samples/s of the ported reference step over ``steps`` batches after ``warmup``.

    ``settings``: ``alpha`` (0 = no DRO anywhere, as the reference does), ``beta``, ``lam``, ``candidate_topk``,
    ``gamma_position``, ``gamma_confidence``, ``gamma_consistency``. ``ps``: float64 propensity [N].
    """
    alpha, beta, lam, k_top = (float(settings[k]) for k in ("alpha", "beta", "lam", "candidate_topk"))
    k_top = int(k_top)
    g_p, g_c, g_o = (float(settings[k]) for k in ("gamma_position", "gamma_confidence", "gamma_consistency"))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, eps=1e-8, weight_decay=0)
    bce_loss = nn.BCEWithLogitsLoss()
    n, length = model.num_items, model.max_len
    model.train()
    seen, start = 0, 0.0
    for step in range(warmup + steps):
        if step == warmup:
            start, seen = time.perf_counter(), 0
        batch = frame.sample(n=batch_size)
        sample = torch.tensor(batch.index.to_numpy())
        batch = batch.to_dict()
        seq = [[int(x) for x in ast.literal_eval(s)] for s in batch["seq"].values()]
        seq = torch.LongTensor(seq)
        len_seq = torch.LongTensor(list(batch["len_seq"].values()))
        target = torch.LongTensor([int(t) for t in batch["next"].values()])
        optimizer.zero_grad()
        seen_mask = torch.zeros((batch_size, n + 1))
        seen_mask[torch.arange(batch_size).unsqueeze(1).repeat(1, length), seq] = 1
        seen_mask[torch.arange(batch_size), target] = 1
        target_neg = torch.multinomial(1 - seen_mask[:, :-1], 1, replacement=True)
        llm_emb = None
        if llm_all_emb is not None:
            llm_emb = torch.zeros(seq.size(0), seq.size(1), llm_all_emb.size(1))
            valid = seq < llm_all_emb.size(0)
            llm_emb[valid] = llm_all_emb[seq[valid]]
        output = model(seq, len_seq, llm_emb)

        target = target.view(batch_size, 1)
        scores = torch.cat((torch.gather(output, 1, target), torch.gather(output, 1, target_neg)), 0)
        labels = torch.cat((torch.ones((batch_size, 1)), torch.zeros((batch_size, 1))), 0)
        loss = bce_loss(scores, labels)
        if alpha != 0:
            loss = loss + alpha * torch.mean(_dro(output, ps, target, beta))

        if lam != 0:
            cand = candidates[sample][:, :k_top]
            w_rank = torch.exp(-torch.arange(1, k_top + 1, dtype=torch.float32)).unsqueeze(0).repeat(batch_size, 1)
            w_rank = w_rank / torch.sum(w_rank, dim=1).unsqueeze(1)
            student_top = (-output).argsort(dim=1)[:, :k_top]
            w_com = (cand.unsqueeze(2) == student_top.unsqueeze(1)).any(dim=2).int() + 1e-8
            w_conf = torch.exp(-confidence[sample][:, :k_top]) + 1e-8
            w_conf = w_conf / torch.sum(w_conf, dim=1).unsqueeze(1)
            weight = g_p * w_rank + g_c * w_conf + g_o * w_com
            weight = weight / torch.sum(weight, dim=1).unsqueeze(1)
            loss_rd = 0
            for i in range(cand.size(1)):
                cand_i = cand[:, i : i + 1]
                pos = torch.gather(output, 1, cand_i)
                neg = torch.gather(output, 1, target_neg)
                bce_rd = -(torch.log(torch.sigmoid(pos)) + torch.log(torch.sigmoid(1 - neg)))
                term = (weight[:, i : i + 1] * bce_rd).mean()
                if alpha != 0:
                    term = term + alpha * (weight[:, i : i + 1] * _dro(output, ps, cand_i, beta)).mean()
                loss_rd = loss_rd + term
            loss = loss + lam * loss_rd
        if torch.isnan(loss).any():
            raise FloatingPointError("reference port: NaN loss")
        loss.backward()
        optimizer.step()
        seen += batch_size
    elapsed = time.perf_counter() - start
    return {"samples_per_s": seen / elapsed, "steps": steps, "seconds": elapsed}
