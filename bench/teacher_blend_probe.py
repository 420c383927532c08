"""Do the iLoRA teacher's LLM states rank items on their own, and does blending that ranker with SASRec help?

    PYTHONPATH=src:bench python bench/teacher_blend_probe.py --teacher-checkpoint RUN/models/teacher/best.ckpt \
        --work-dir /tmp/s13/probe --weight-decay 0.05 [--train-samples 24000] [--epochs 30] \
        [--data-dir ../shared/data/ml-100k]

The other probes fit a RESIDUAL on top of the frozen SASRec, which can only learn where the SASRec errs on
training rows it has seen. Here the LLM states ``h_u`` (standardised) get a ranker of their own, trained with
no SASRec scores at all: ``Linear(D -> N)`` plus the frozen SASRec's learned history bias, CE over all items,
AdamW (``--weight-decay`` is decoupled here). Its log-probabilities are then added to the SASRec's,
``log p_sasrec + w log p_llm``, with the epoch
and ``w`` picked together on validation NDCG@10 (stacking, as an ensemble of two recommenders would be).
Printed: the LLM-only ranker's NDCG@10 per epoch, and the blend on validation and test with the paired gain
over the frozen SASRec. States come from the same cache as bench/teacher_head_probe.py (``--work-dir``).
"""

from __future__ import annotations

import numpy as np
import torch

from bench_common import command_line, markdown_table
from teacher_head_probe import base_scores, load_or_cache_states, load_probe_inputs, parse_probe_args, per_sample

BLEND_WEIGHTS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)


def with_history_bias(student, scores: torch.Tensor, samples) -> torch.Tensor:
    seq = torch.from_numpy(np.asarray(samples.seq, dtype=np.int64))
    len_seq = torch.from_numpy(np.asarray(samples.len_seq, dtype=np.int64))
    return student.add_history_bias(scores, seq, len_seq)


def blend(base: torch.Tensor, llm: torch.Tensor, weight: float) -> torch.Tensor:
    return torch.log_softmax(base, 1) + weight * torch.log_softmax(llm, 1)


def main() -> None:
    args = parse_probe_args(__doc__, train_samples=24000, epochs=30)
    from ilora_dllm2rec.core.significance import paired_comparison

    cfg, data, model, rows = load_probe_inputs(args)
    student = model.student
    ks = list(cfg.metrics.ks)
    caches = load_or_cache_states(args, model, rows, data)
    mean, std = caches["train"]["h"].mean(0), caches["train"]["h"].std(0) + 1e-5
    states = {split: (caches[split]["h"] - mean) / std for split in ("train", "val", "test")}
    target = torch.from_numpy(np.asarray(rows.target, dtype=np.int64))
    num_items = student.score(torch.zeros(1, student.hidden_size)).shape[1]

    torch.manual_seed(int(cfg.general.seed))
    ranker = torch.nn.Linear(states["train"].shape[1], num_items)
    opt = torch.optim.AdamW(ranker.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    gen = torch.Generator().manual_seed(0)
    val_base, test_base = base_scores(student, data.val), base_scores(student, data.test)

    def llm_scores(split: str, samples) -> torch.Tensor:
        with torch.no_grad():
            return with_history_bias(student, ranker(states[split]), samples)

    best: tuple[float, float, dict, int] = (-1.0, 0.0, {}, 0)
    history = []
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(len(target), generator=gen)
        for first in range(0, len(order), args.batch_size):
            idx = order[first : first + args.batch_size]
            logits = with_history_bias(student, ranker(states["train"][idx]), rows.subset(idx.numpy()))
            loss = torch.nn.functional.cross_entropy(logits, target[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        val_llm = llm_scores("val", data.val)
        alone = float(per_sample(val_llm, data.val, ks)["ndcg@10"].mean())
        by_weight = {w: float(per_sample(blend(val_base, val_llm, w), data.val, ks)["ndcg@10"].mean())
                     for w in BLEND_WEIGHTS}  # fmt: skip
        weight = max(by_weight, key=by_weight.get)
        history.append(f"{epoch}: alone {alone:.4f}, blend {by_weight[weight]:.4f} (w {weight})")
        if by_weight[weight] > best[0]:
            best = (by_weight[weight], weight, {k: v.clone() for k, v in ranker.state_dict().items()}, epoch)
        elif epoch - best[3] >= args.patience:
            break
    ranker.load_state_dict(best[2])
    weight = best[1]

    frozen = {"val": per_sample(val_base, data.val, ks), "test": per_sample(test_base, data.test, ks)}
    llm = {"val": llm_scores("val", data.val), "test": llm_scores("test", data.test)}
    alone = {s: per_sample(llm[s], getattr(data, s), ks) for s in ("val", "test")}
    blended = {s: per_sample(blend(b, llm[s], weight), getattr(data, s), ks)
               for s, b in (("val", val_base), ("test", test_base))}  # fmt: skip
    rows_out = []
    for label, m in (("frozen SASRec", frozen), ("LLM-state ranker alone", alone),
                     (f"blend, w {weight} (epoch {best[3]})", blended)):  # fmt: skip
        cmp = paired_comparison(frozen["test"]["ndcg@10"], m["test"]["ndcg@10"])
        gain = "-" if m is frozen else (
            f"{cmp['gain']:+.1%} ({cmp['gain_ci_low']:+.1%} .. {cmp['gain_ci_high']:+.1%}, p {cmp['p_value']:.3f})")
        rows_out.append([label, f"{m['val']['ndcg@10'].mean():.4f}", f"{m['test']['ndcg@10'].mean():.4f}", gain,
                         f"{m['test']['hr@10'].mean():.4f}"])  # fmt: skip
    print(command_line())
    print(f"{len(rows):,} cached training states; per epoch (validation NDCG@10): " + "; ".join(history))
    print(markdown_table(["scores", "val NDCG@10", "test NDCG@10", "test gain (paired)", "test HR@10"], rows_out))


if __name__ == "__main__":
    main()
