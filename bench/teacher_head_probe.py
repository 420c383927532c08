"""Can a trained iLoRA teacher's LLM state add anything to its frozen SASRec? A head refitted on cached states.

    PYTHONPATH=src python bench/teacher_head_probe.py --teacher-checkpoint RUN/models/teacher/best.ckpt \
        [--train-samples 6000] [--epochs 60] [--data-dir ../shared/data/ml-100k] [--override experiment=ml100k_cpu]

The teacher stage trains the residual head ``q_u = z_u + P(h_u)`` for one pass over its training subset while
the adapters move under it. Here the LLM states ``h_u`` of the TRAINED teacher (adapters, projector and gate as
trained) are computed once (inference) for N training samples and for every validation and test user; then a
fresh zero-initialised ``P`` is fitted on them for many epochs with the stage's loss (CE over all items through
the frozen student's output layer and history bias), keeping the epoch with the best validation NDCG@10. If
even this head does not lift validation NDCG@10 above the frozen student, the states carry no usable signal
beyond ``z_u`` at this scale, whatever the head's training budget. Printed: frozen student, the stage's own head,
the refitted head (validation and test, the shared evaluator).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from bench_common import base_overrides, command_line, compose_cfg, default_data_dir, markdown_table


def cache_states(model, samples, batch_size: int) -> dict[str, torch.Tensor]:
    """h_u [M, D] and z_u [M, d] of the trained teacher for every row of ``samples`` (inference, in order)."""
    from ilora_dllm2rec.data.dataloader import SampleTensors

    rows = SampleTensors(samples)
    h, z = [], []
    with torch.inference_mode():
        for start in range(0, len(samples), batch_size):
            batch = rows[torch.arange(start, min(start + batch_size, len(samples)))]
            out = model(batch["seq"], batch["len_seq"])
            h.append(out["h_u"].float())
            z.append(out["z_u"].float())
    return {"h": torch.cat(h), "z": torch.cat(z)}


def head_scores(student, head, cache: dict, samples) -> torch.Tensor:
    """[M, N] scores of ``z_u + head(h_u)`` through the frozen student's output layer and history bias."""
    seq = torch.from_numpy(np.asarray(samples.seq, dtype=np.int64))
    len_seq = torch.from_numpy(np.asarray(samples.len_seq, dtype=np.int64))
    q = cache["z"] if head is None else cache["z"] + head(cache["h"])
    return student.add_history_bias(student.score(q), seq, len_seq)


def metrics(student, head, cache: dict, samples, ks: list[int]) -> dict[str, float]:
    from ilora_dllm2rec.student.evaluator import evaluate

    with torch.no_grad():
        scores = head_scores(student, head, cache, samples)
    # one batch holding every row: the score function ignores the batch and returns the precomputed scores
    return evaluate(lambda b: scores, samples, batch_size=len(samples), ks=ks)


@torch.no_grad()
def base_scores(student, samples) -> torch.Tensor:
    """[M, N] the student's full scores (history bias included)."""
    seq = torch.from_numpy(np.asarray(samples.seq, dtype=np.int64))
    len_seq = torch.from_numpy(np.asarray(samples.len_seq, dtype=np.int64))
    return torch.cat([student(seq[i : i + 2048], len_seq[i : i + 2048]) for i in range(0, len(samples), 2048)])


def residual_scores(student, head, h: torch.Tensor) -> torch.Tensor:
    """``score(z + P(h)) - score(z)`` = the output layer's linear part applied to ``P(h)`` (its bias, if any,
    is already in the base scores), so the residual adds to any SASRec's base scores."""
    p = head(h)
    return student.score(p) - student.score(torch.zeros_like(p[:1]))


def per_sample(scores: torch.Tensor, samples, ks) -> dict[str, np.ndarray]:
    from ilora_dllm2rec.student.evaluator import evaluate_per_sample

    return evaluate_per_sample(lambda b: scores, samples, batch_size=len(samples), ks=ks)


def fit_residual(student, h, base, target, val_h, val_base, val, args, ks):
    """Fresh zero-initialised ``P``; Adam, CE of ``base + residual(P(h))``; the epoch with the best validation
    NDCG@10 is kept (epoch 0 = the frozen student). Returns (head, best epoch, val NDCG@10 per epoch from 0)."""
    head = torch.nn.Linear(h.shape[1], student.hidden_size)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    opt = torch.optim.Adam(head.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    gen = torch.Generator().manual_seed(0)

    def val_ndcg() -> float:
        with torch.no_grad():
            return float(per_sample(val_base + residual_scores(student, head, val_h), val, ks)["ndcg@10"].mean())

    history = [val_ndcg()]
    best = (history[0], 0, {k: v.clone() for k, v in head.state_dict().items()})
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(len(target), generator=gen)
        for first in range(0, len(order), args.batch_size):
            idx = order[first : first + args.batch_size]
            loss = torch.nn.functional.cross_entropy(base[idx] + residual_scores(student, head, h[idx]), target[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        history.append(val_ndcg())
        if history[-1] > best[0]:
            best = (history[-1], epoch, {k: v.clone() for k, v in head.state_dict().items()})
        elif epoch - best[1] >= args.patience:
            break
    head.load_state_dict(best[2])
    return head, best[1], history


def parse_probe_args(doc: str, *, train_samples: int, epochs: int, extra=None) -> argparse.Namespace:
    """The options every head probe shares (``extra(parser)`` adds a probe's own)."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, default=default_data_dir())
    p.add_argument("--teacher-checkpoint", type=Path, required=True, help="an iLoRA teacher's best.ckpt")
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/teacher_head_probe"), help="data cache folder")
    p.add_argument("--override", action="append", default=["experiment=ml100k_cpu"], help="config override")
    p.add_argument("--train-samples", type=int, default=train_samples, help="training rows whose states are used")
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--llm-batch-size", type=int, default=32)
    if extra is not None:
        extra(p)
    args = p.parse_args()
    if not args.teacher_checkpoint.is_file():
        p.error(f"--teacher-checkpoint: {args.teacher_checkpoint} is not a file (a run's models/teacher/best.ckpt)")
    return args


def load_probe_inputs(args: argparse.Namespace):
    """(cfg, data, the trained teacher in eval mode, the ``--train-samples`` training rows whose states are used;
    seeded, and not the stage's own subset)."""
    from ilora_dllm2rec.data import prepare_data
    from ilora_dllm2rec.teacher.train import load_teacher_checkpoint, subset

    cfg = compose_cfg(base_overrides(args.data_dir, args.work_dir) + args.override)
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    model, _ = load_teacher_checkpoint(args.teacher_checkpoint, data, cfg)
    model.eval()
    train = subset(data.train, args.train_samples, None, int(cfg.general.seed) + 1)
    return cfg, data, model, train


def load_or_cache_states(args: argparse.Namespace, model, train, data) -> dict[str, dict[str, torch.Tensor]]:
    """States of ``train``, validation and test; saved under ``--work-dir`` (keyed by the checkpoint's mtime and
    the row count) so a second refit (other lr, epochs, another probe) skips the LLM passes."""
    states_file = args.work_dir / f"states_{args.teacher_checkpoint.stat().st_mtime_ns}_{len(train)}.pt"
    if states_file.is_file():
        return torch.load(states_file, weights_only=True)
    caches = {name: cache_states(model, s, args.llm_batch_size) for name, s in
              (("train", train), ("val", data.val), ("test", data.test))}  # fmt: skip
    torch.save(caches, states_file)
    return caches


def main() -> None:
    args = parse_probe_args(__doc__, train_samples=6000, epochs=60)

    cfg, data, model, train = load_probe_inputs(args)
    student = model.student
    ks = list(cfg.metrics.ks)
    start = time.perf_counter()
    caches = load_or_cache_states(args, model, train, data)
    cache_s = time.perf_counter() - start
    target = torch.from_numpy(np.asarray(train.target, dtype=np.int64))
    head, best_epoch, history = fit_residual(
        student, caches["train"]["h"], base_scores(student, train), target,
        caches["val"]["h"], base_scores(student, data.val), data.val, args, ks,
    )  # fmt: skip
    rows = []
    for label, h in (("frozen student (z_u)", None), ("teacher, the stage's head", model.head),
                     (f"teacher, head refitted on {len(train):,} cached states", head)):  # fmt: skip
        val = metrics(student, h, caches["val"], data.val, ks)
        test = metrics(student, h, caches["test"], data.test, ks)
        rows.append([label, f"{val['ndcg@10']:.4f}", f"{test['ndcg@10']:.4f}", f"{test['hr@10']:.4f}"])
    print(command_line())
    print(
        f"states cached for {len(train) + len(data.val) + len(data.test):,} samples in {cache_s:.0f} s; "
        f"refit: best epoch {best_epoch} of {len(history) - 1}, val NDCG@10 per epoch (from 0) "
        + ", ".join(f"{v:.4f}" for v in history)
    )
    print(markdown_table(["head", "val NDCG@10", "test NDCG@10", "test HR@10"], rows))


if __name__ == "__main__":
    main()
