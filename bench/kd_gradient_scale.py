"""How large is each distillation loss term's gradient on a trained student's scores, next to the base loss?

    PYTHONPATH=src python bench/kd_gradient_scale.py --student-checkpoint RUN/models/baseline/best.ckpt \
        --teacher-outputs RUN/teacher_outputs [--data-dir ../shared/data/ml-100k] [--work-dir /tmp/kdg]

Takes 256 training samples spread over the training set, scores them with the student, and prints, per loss
term, its value and the mean L2 norm of its gradient with respect to one sample's score row (x B, so the
numbers compare per-sample contributions). This is what motivated ``distill.use_dros: auto`` (docs/DESIGN.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from bench_common import base_overrides, command_line, compose_cfg, default_data_dir, markdown_table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, default=default_data_dir())
    p.add_argument("--student-checkpoint", type=Path, required=True)
    p.add_argument("--teacher-outputs", type=Path, required=True)
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/kd_gradient_scale"), help="data cache folder")
    p.add_argument("--lam", type=float, default=0.7)
    p.add_argument("--alpha", type=float, default=0.5)
    args = p.parse_args()

    from ilora_dllm2rec.data import prepare_data
    from ilora_dllm2rec.data.dataloader import SampleTensors
    from ilora_dllm2rec.distill.data_bridge import load_teacher_outputs, to_dense
    from ilora_dllm2rec.distill.kd_losses import kd_negatives, ranking_distillation_loss
    from ilora_dllm2rec.student.losses import item_propensity
    from ilora_dllm2rec.student.train import load_student_checkpoint

    cfg = compose_cfg(base_overrides(args.data_dir, args.work_dir))
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    model, _ = load_student_checkpoint(args.student_checkpoint)
    outputs = load_teacher_outputs(
        args.teacher_outputs, num_items=data.num_items, train_samples=data.train,
        data_fingerprint=data.fingerprint, candidate_topk=10, load_embeddings=False,
    )  # fmt: skip
    cand_all, dist_all, _ = to_dense(outputs, len(data.train))
    rows = torch.arange(0, len(data.train), max(1, len(data.train) // 256))[:256]
    batch = SampleTensors(data.train)[rows]
    seq, len_seq, target = batch["seq"], batch["len_seq"], batch["target"]
    cand, dist = cand_all[rows], dist_all[rows]
    prop = item_propensity(torch.from_numpy(data.train_target_counts()).float())
    torch.manual_seed(0)
    neg = kd_negatives(seq, target, cand, data.num_items, 1)
    with torch.no_grad():
        scores = model.eval()(seq, len_seq).float()
    terms = {
        "base loss: ce": lambda s: F.cross_entropy(s, target),
        f"lam * L_RD, BCE part only (lam {args.lam})": lambda s: (
            args.lam * ranking_distillation_loss(s, cand, dist, neg, use_dros=False)
        ),
        f"lam * L_RD with the DRO term (alpha {args.alpha})": lambda s: (
            args.lam * ranking_distillation_loss(s, cand, dist, neg, use_dros=True, propensity=prop, alpha=args.alpha)
        ),
    }
    table = []
    for name, fn in terms.items():
        x = scores.clone().requires_grad_(True)
        loss = fn(x)
        loss.backward()
        table.append([name, f"{loss.item():.3f}", f"{x.grad.norm(dim=1).mean().item() * len(rows):.3f}"])
    print(command_line())
    print(
        f"student scores: mean {scores.mean():.2f}, sd {scores.std():.2f}, "
        f"per-user max {scores.max(1).values.mean():.2f} / min {scores.min(1).values.mean():.2f}"
    )
    print(markdown_table(["term", "value", "gradient norm per sample"], table))


if __name__ == "__main__":
    main()
