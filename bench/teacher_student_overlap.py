"""How far does a teacher's ranking move away from a student's? Top-K overlap on the exported samples.

    PYTHONPATH=src python bench/teacher_student_overlap.py --student-checkpoint RUN/models/baseline/best.ckpt \
        --teacher-outputs RUN_A/teacher_outputs [RUN_B/teacher_outputs ...] [--data-dir ../shared/data/ml-100k]

For every training sample a teacher exported (``myrank_train.txt``), the student's own top K is recomputed from
its checkpoint; printed per teacher: the mean share of the teacher's top K that is also in the student's, how
often the top 1 is the same item, and how often each puts the sample's target in its top K. An iLoRA teacher
whose residual head starts AS its frozen SASRec shows here how much the LLM changed (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from bench_common import base_overrides, command_line, compose_cfg, default_data_dir, markdown_table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, default=default_data_dir())
    p.add_argument("--student-checkpoint", type=Path, required=True)
    p.add_argument("--teacher-outputs", type=Path, nargs="+", required=True)
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/teacher_student_overlap"), help="data cache folder")
    p.add_argument("--k", type=int, default=10)
    args = p.parse_args()

    from ilora_dllm2rec.data import prepare_data
    from ilora_dllm2rec.data.dataloader import SampleTensors
    from ilora_dllm2rec.distill.data_bridge import load_teacher_outputs
    from ilora_dllm2rec.student.train import load_student_checkpoint

    cfg = compose_cfg(base_overrides(args.data_dir, args.work_dir))
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    student, _ = load_student_checkpoint(args.student_checkpoint)
    student.eval()
    train = SampleTensors(data.train)
    k = args.k
    table = []
    for folder in args.teacher_outputs:
        outputs = load_teacher_outputs(
            folder, num_items=data.num_items, train_samples=data.train,
            data_fingerprint=data.fingerprint, candidate_topk=k, load_embeddings=False,
        )  # fmt: skip
        rows = outputs.sample_ids.long()
        batch = train[rows]
        seq, len_seq, target = batch["seq"], batch["len_seq"], batch["target"]
        with torch.no_grad():
            scores = torch.cat([student(seq[i : i + 1024], len_seq[i : i + 1024]) for i in range(0, len(rows), 1024)])
        student_top = scores.topk(k, dim=1).indices
        teacher_top = outputs.ranks[:, :k].long()
        shared = (teacher_top.unsqueeze(2) == student_top.unsqueeze(1)).any(2).float().mean(1)
        table.append(
            [
                str(folder),
                f"{len(rows):,}",
                f"{shared.mean().item():.1%}",
                f"{(teacher_top[:, 0] == student_top[:, 0]).float().mean().item():.1%}",
                f"{(teacher_top == target[:, None]).any(1).float().mean().item():.1%}",
                f"{(student_top == target[:, None]).any(1).float().mean().item():.1%}",
            ]
        )
    print(command_line())
    headers = ["teacher outputs", "samples", f"top-{k} shared", "same top-1", f"target in teacher top-{k}"]
    print(markdown_table([*headers, f"target in student top-{k}"], table))


if __name__ == "__main__":
    main()
