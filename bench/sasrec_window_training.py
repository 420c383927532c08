"""Probe: SASRec trained on per-user windows with CE at EVERY position (pmixer / "SASRec+" style), against the
platform's prefix samples (ALGORITHMS section 1: one sample per target, the state at its last position).

    PYTHONPATH=src python bench/sasrec_window_training.py [--data-dir DIR] [--seed 0] [--stride 50] [--dropout 0.2]

Each user's training sequence x_0..x_{n-3} is cut from its end into windows of up to L=50 inputs, ``--stride``
apart (50: every training target is predicted exactly once per epoch, as with the prefix samples, but targets
early in a window see only the window's items, not their full last-50 history). The platform's SASRec
(same blocks, recency positions, tied head) runs all its blocks on every token; the loss is the mean CE over
all real positions. Validation NDCG@10 every ``--eval-every`` epochs selects the model (patience
``--patience`` evaluations); test at the selected epoch with the platform's evaluator. A hand-written loop on
purpose: it answers "would this objective be worth building into the platform?" (it was not, see
docs/BENCHMARKS.md). Not part of the test run.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from bench_common import base_overrides, check_data_dir, command_line, compose_cfg, default_data_dir, worker_setup


def user_windows(train, window: int, stride: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(inputs [W, L], targets [W, L], lengths [W]) right-padded, from the prefix samples of each user."""
    sequences: dict[int, list[int]] = {}
    for i in range(len(train)):  # samples of a user are consecutive, in time order, the first with len_seq 1
        user = int(train.user[i])
        if user not in sequences:
            if int(train.len_seq[i]) != 1:
                raise SystemExit("error: training samples are not in per-user time order; this probe needs them so")
            sequences[user] = [int(train.seq[i, 0])]
        sequences[user].append(int(train.target[i]))
    inputs, targets, lengths = [], [], []
    for seq in sequences.values():
        end = len(seq) - 1  # index of the window's last target
        while end >= 1:
            start = max(0, end - window)
            x, y = seq[start:end], seq[start + 1 : end + 1]
            inputs.append(x + [pad_id] * (window - len(x)))
            targets.append(y + [pad_id] * (window - len(y)))
            lengths.append(len(x))
            end -= stride
    return torch.tensor(inputs), torch.tensor(targets), torch.tensor(lengths)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=default_data_dir(), help="MovieLens-100K folder")
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/sasrec_window_training"), help="data cache folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stride", type=int, default=50, help="distance between window ends (50 = no overlap)")
    p.add_argument("--batch", type=int, default=128, help="windows per batch")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--epochs", type=int, default=400)
    p.add_argument("--eval-every", type=int, default=5)
    p.add_argument("--patience", type=int, default=10, help="evaluations without a better val NDCG@10")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    worker_setup(args.threads)

    from ilora_dllm2rec.data import prepare_data
    from ilora_dllm2rec.student.base import trim_padding
    from ilora_dllm2rec.student.evaluator import evaluate_model
    from ilora_dllm2rec.student.sasrec import SASRec, _Packed

    cfg = compose_cfg(base_overrides(check_data_dir(args.data_dir), args.work_dir))
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    inputs, targets, lengths = user_windows(data.train, data.max_seq_len, args.stride, data.pad_id)
    positions = int(lengths.sum())
    print(f"{len(lengths)} windows, {positions} target positions ({len(data.train)} prefix samples)", flush=True)
    torch.manual_seed(args.seed)
    model = SASRec(
        data.num_items,
        hidden_size=64,
        max_seq_len=data.max_seq_len,
        num_blocks=2,
        num_heads=1,
        dropout=args.dropout,
        head="tied",
        positions="recency",
    )

    def encode_all(seq: torch.Tensor, seq_len: torch.Tensor) -> tuple[torch.Tensor, _Packed]:
        """SASRec.encode, but every block on every real token: [n, d] states of the packed tokens."""
        seq = trim_padding(seq, seq_len)
        width = seq.shape[1]
        packed = _Packed(seq_len, width)
        col = packed.rows % width
        row_len = seq_len.index_select(0, packed.rows // width)
        x = model.embed_items(seq.reshape(-1).index_select(0, packed.rows)) * model.emb_scale
        x = model.emb_dropout(x + model.position_embedding((row_len - 1 - col).clamp(min=0)))
        for block in model.blocks:
            x = block(x, packed)
        return model.final_norm(x), packed

    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    generator = torch.Generator().manual_seed(args.seed)
    best, best_state, best_epoch, stale, train_seconds, epoch = -1.0, None, 0, 0, 0.0, 0
    for epoch in range(1, args.epochs + 1):
        model.train()
        start = time.perf_counter()
        for rows in torch.randperm(len(lengths), generator=generator).split(args.batch):
            states, packed = encode_all(inputs[rows], lengths[rows])
            y = trim_padding(targets[rows], lengths[rows]).reshape(-1).index_select(0, packed.rows)
            loss = F.cross_entropy(model.score(states), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        train_seconds += time.perf_counter() - start
        if epoch % args.eval_every == 0:
            val = evaluate_model(model, data.val, batch_size=1024)["ndcg@10"]
            if val > best:
                best, best_state, best_epoch, stale = val, copy.deepcopy(model.state_dict()), epoch, 0
            else:
                stale += 1
            if stale >= args.patience:
                break
    model.load_state_dict(best_state)
    test = evaluate_model(model, data.test, batch_size=1024)
    print(
        f"seed {args.seed}, stride {args.stride}, dropout {args.dropout}: best epoch {best_epoch} of {epoch}; "
        f"val NDCG@10 {best:.4f}; test NDCG@10 {test['ndcg@10']:.4f}, HR@10 {test['hr@10']:.4f}, "
        f"cand HR@1 {test['cand_hr@1']:.4f}; training {train_seconds:.0f} s = "
        f"{positions * epoch / train_seconds:,.0f} target positions/s, {len(lengths) * epoch / train_seconds:,.0f} "
        f"windows/s"
    )
    print(f"\n{command_line()}")


if __name__ == "__main__":
    main()
