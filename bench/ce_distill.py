"""Distilled CE students vs. their own CE baselines on MovieLens-100K, over seeds, paired and pooled.

    PYTHONPATH=src:bench python bench/ce_distill.py --data-dir ../shared/data/ml-100k \
        --work-dir result/bench/ce_distill \
        [--seeds 42,0,1] [--students sasrec,gru4rec,caser] [--arms ensemble,self,bce] [--jobs 2 --threads 1] \
        [--arm-override ensemble=distill.listwise_weight=2 ...] [--teacher-override mixed=teacher.export.top_n=300 ...]
        [--mixed-seeds 42,0,1] [--ilora-export DIR]

Every row is a real entry-point run (``run-student-baseline``, ``run-teacher``, ``run-distill``) in its own
folder under ``--work-dir`` (rows already complete are reused; an ``--arm-override`` variant gets rows of its
own, e.g. ``distill-mixed__listwise_weight_3-sasrec-42``, a ``--teacher-override`` variant a teacher row of its own;
a complete row that ran with other overrides than planned stops the bench instead of being reused; a row being
trained by another bench command on the same work dir is waited for, not trained twice), ``--jobs`` at a time:

- teacher members: ``--members`` SASRecs (CE, the student's own configuration) with seeds ``--teacher-seed + 1 ..``;
- one baseline per (student, seed); the student's seed is also its distilled run's seed;
- teachers (export only, every training row, ``teacher=ensemble`` with the members as checkpoints,
  ``combine=log_softmax``): ``ensemble`` (all members), ``self`` (the first member alone: a same-size SASRec
  with another seed, the born-again control), ``ensemble_with_baseline`` (the members plus the student's own
  SASRec baseline of that seed), ``mixed`` (the members plus the CE baselines of the other two architectures of
  every ``--mixed-seeds`` seed: a teacher that differs from its student in kind, never containing the student's
  own baseline); ``kinds`` (per student seed, six models: two SASRec members and two CE baselines each of
  GRU4Rec and Caser of the other ``--mixed-seeds``, rotated so each seed gets another instance: what
  ``teacher.num_members=6 teacher.member_models=[sasrec,gru4rec,caser]`` trains in one run); ``trio`` (per
  student seed, three models: one SASRec member, one GRU4Rec and one Caser baseline of the other
  ``--mixed-seeds``, rotated likewise: what ``teacher.num_members=3`` with those member models trains);
- arms: a teacher plus distillation settings. ``ensemble``, ``self``, ``ensemble_with_baseline``, ``mixed``,
  ``kinds``, ``trio`` use the settings of ``experiment=ml100k_ce_distill`` at listwise weight 1 (``TEACHER_BASE``,
  ``ARM_BASE``; the preset itself is ``trio`` at weight 3); ``bce`` is the ensemble teacher with
  DLLM2Rec's BCE form of ranking distillation (``distill.rd_form=bce``, the listwise term off) as the comparison
  row; ``ilora`` needs ``--ilora-export`` (an existing every-row iLoRA export of this data set).

Then every model is scored per user on validation and test (the shared evaluator), and each arm is compared
with its student's baseline: per seed and pooled over seeds (each user's values averaged over the seeds), with
the paired bootstrap interval and sign-flip p-value of ``run-eval-all`` (core/significance.py). Model
selection inside every run is on validation only. Prints a Markdown table and writes ``summary.json``.
``--step-cost`` times the distillation step per loss form against the public reference step instead.
Feeds docs/BENCHMARKS.md "Distillation for the CE student (experiment=ml100k_ce_distill)".
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench_common import ROOT, check_data_dir, command_line, default_data_dir, markdown_table

PRESET = "experiment=ml100k_ce_distill"
# Pinned where the preset has moved on since the arms were measured (commit 4a2eb66 gave it a teacher of one model
# of each kind and listwise weight 3): the bench's teachers combine checkpoints (no trained members) and its arms
# distil at weight 1 unless --arm-override says otherwise, as the tables of docs/BENCHMARKS.md were measured.
# The preset's own setting is --arms trio --arm-override trio=distill.listwise_weight=3.
TEACHER_BASE = ["teacher.member_models=[]"]
ARM_BASE = ["distill.listwise_weight=1.0"]
TEACHER_ARMS = {
    "ensemble": "ensemble",
    "self": "self",
    "ensemble_with_baseline": "ensemble_with_baseline",
    "mixed": "mixed",
    "kinds": "kinds",
    "trio": "trio",
}
ARMS = ("ensemble", "self", "ensemble_with_baseline", "mixed", "kinds", "trio", "bce", "ilora")
STUDENTS = ("sasrec", "gru4rec", "caser")
ARM_SETTINGS = {"bce": ["distill.rd_form=bce", "distill.listwise_weight=0"]}


@dataclass
class Row:
    name: str
    argv: list[str]
    folder: Path
    done_file: str
    deps: list[str] = field(default_factory=list)

    def done(self) -> bool:
        return (self.folder / self.done_file).is_file()


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, default=default_data_dir(), help="MovieLens-100K folder")
    p.add_argument("--work-dir", type=Path, required=True, help="run folders (reused when complete)")
    p.add_argument("--seeds", default="42,0,1", help="student seeds")
    p.add_argument("--students", default="sasrec,gru4rec,caser")
    p.add_argument("--arms", default="ensemble,self,bce", help=f"comma list of {', '.join(ARMS)}")
    p.add_argument(
        "--mixed-seeds",
        default=None,
        help="seeds of the other kinds' baselines in the mixed teacher (default: --seeds); keep 42,0,1 to reuse "
        "that teacher for more student seeds",
    )
    p.add_argument("--members", type=int, default=3, help="SASRec members of the ensemble teacher")
    p.add_argument("--teacher-seed", type=int, default=100, help="members get seeds teacher-seed + 1 ..")
    p.add_argument("--arm-override", action="append", default=[], help="ARM=key=value: extra distillation override")
    p.add_argument(
        "--teacher-override",
        action="append",
        default=[],
        help="TEACHER=key=value: extra run-teacher override for one teacher kind (ensemble, self, "
        "ensemble_with_baseline, mixed), e.g. mixed=teacher.export.top_n=300; its teacher and distilled rows "
        "get names of their own",
    )
    p.add_argument("--override", action="append", default=[], help="Hydra override for every run")
    p.add_argument("--ilora-export", type=Path, default=None, help="teacher_outputs folder of an iLoRA export")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--max-epochs", type=int, default=None, help="cap every run's epochs (smoke tests)")
    p.add_argument("--report-only", action="store_true", help="no training: compare what is complete")
    p.add_argument(
        "--checkpoint",
        choices=("best", "last"),
        default="best",
        help="report each run's best (validation-selected, the product's choice) or last epoch: the last "
        "epoch shows how much of a validation gain is the selection itself",
    )
    p.add_argument(
        "--step-cost",
        action="store_true",
        help="no training: time the distillation step per loss form against the public reference step "
        "(needs the complete teacher-ensemble row)",
    )
    p.add_argument(
        "--ensemble-table",
        action="store_true",
        help="no training: val/test NDCG@10 of teachers combined from the complete member and baseline rows "
        "(more members against more kinds); needs the rows of --arms mixed",
    )
    p.add_argument("--steps", type=int, default=200, help="--step-cost: timed steps per measurement")
    p.add_argument("--rounds", type=int, default=3, help="--step-cost: interleaved rounds (best kept)")
    args = p.parse_args()
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.mixed_seeds = [int(s) for s in args.mixed_seeds.split(",") if s.strip()] if args.mixed_seeds else None
    args.students = [s.strip() for s in args.students.split(",") if s.strip()]
    args.arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = sorted(set(args.arms) - set(ARMS))
    if unknown:
        p.error(f"--arms: unknown {unknown}; choose from {list(ARMS)}")
    if "ilora" in args.arms and args.ilora_export is None:
        p.error("--arms ilora needs --ilora-export DIR (an every-row iLoRA teacher_outputs folder)")
    args.data_dir = check_data_dir(args.data_dir.resolve())
    args.work_dir = args.work_dir.resolve()
    return args


def common(args: argparse.Namespace) -> list[str]:
    cap = args.max_epochs
    extra = [f"student.num_epochs={cap}", f"distill.num_epochs={cap}"] if cap else []
    return [
        PRESET,
        f"dataset.data_dir={args.data_dir}",
        f"paths.result_root={args.work_dir / 'result'}",
        f"paths.cache_dir={args.work_dir / 'cache'}",
        "logging.progress_bar=false",
        *extra,
        *args.override,
    ]


def plan(args: argparse.Namespace) -> dict[str, Row]:
    w = args.work_dir
    rows: dict[str, Row] = {}

    def add(name: str, entry: str, folder: Path, done_file: str, overrides: list[str], deps=()) -> None:
        argv = [str(Path(sys.executable).parent / entry), *common(args), *overrides, f"hydra.run.dir={folder}"]
        rows[name] = Row(name, argv, folder, done_file, list(deps))

    members = []
    for i in range(1, args.members + 1):
        name = f"member{i}"
        folder = w / name
        add(
            name,
            "run-student-baseline",
            folder,
            "models/baseline/manifest.json",
            ["student=sasrec", f"general.seed={args.teacher_seed + i}"],
        )
        members.append(name)
    needs = {TEACHER_ARMS.get(a, "ensemble") for a in args.arms if a != "ilora"}
    mixed_seeds = args.mixed_seeds or args.seeds
    baselines = [(student, seed) for student in args.students for seed in args.seeds]
    if needs & {"mixed", "kinds", "trio"}:
        baselines += [(other, seed) for other in STUDENTS for seed in mixed_seeds]
    for student, seed in dict.fromkeys(baselines):
        name = f"baseline-{student}-{seed}"
        add(
            name,
            "run-student-baseline",
            w / name,
            "models/baseline/manifest.json",
            [f"student={student}", f"general.seed={seed}"],
        )

    teacher_extra = overrides_by_key(args.teacher_override)

    def teacher(kind: str, name: str, member_rows: list[str]) -> str:
        name = variant_name(name, teacher_extra.get(kind, []))
        if name in rows:
            return name
        paths = ",".join(str(rows[m].folder / "models" / "baseline") for m in member_rows)
        add(
            name,
            "run-teacher",
            w / name,
            "teacher_outputs/manifest.json",
            [
                "teacher=ensemble",
                "teacher.num_members=0",
                *TEACHER_BASE,
                f"teacher.checkpoints=[{paths}]",
                *teacher_extra.get(kind, []),
            ],
            member_rows,
        )
        return name

    teachers: dict[tuple[str, int], str] = {}
    for student in args.students if "mixed" in needs else ():
        others = [f"baseline-{o}-{s}" for o in STUDENTS if o != student for s in mixed_seeds]
        teachers[("mixed", student)] = teacher("mixed", f"teacher-mixed-{student}", [*members, *others])
    compositions = ensemble_compositions(mixed_seeds, args.members)
    for j, seed in enumerate(args.seeds):
        for kind, composition in (("kinds", KINDS_TEACHER), ("trio", TRIO_TEACHER)):
            if kind in needs:
                instances = compositions[composition]
                teachers[(kind, seed)] = teacher(kind, f"teacher-{kind}-{seed}", instances[j % len(instances)])
        if "ensemble" in needs:
            teachers[("ensemble", seed)] = teacher("ensemble", "teacher-ensemble", members)
        if "self" in needs:
            teachers[("self", seed)] = teacher("self", "teacher-self", members[:1])
        if "ensemble_with_baseline" in needs:
            teachers[("ensemble_with_baseline", seed)] = teacher(
                "ensemble_with_baseline",
                f"teacher-ensemble-with-baseline-{seed}",
                [*members, f"baseline-sasrec-{seed}"],
            )
    arm_extra = arm_overrides(args)
    for arm in args.arms:
        for student in args.students:
            for seed in args.seeds:
                if arm == "ilora":
                    outputs, deps = args.ilora_export, []
                else:
                    kind = TEACHER_ARMS.get(arm, "ensemble")
                    t = teachers[(kind, student if kind == "mixed" else seed)]
                    outputs, deps = rows[t].folder / "teacher_outputs", [t]
                name = f"distill-{arm_label(arm, arm_extra, teacher_extra)}-{student}-{seed}"
                add(
                    name,
                    "run-distill",
                    w / name,
                    "models/distill/manifest.json",
                    [
                        f"student={student}",
                        f"general.seed={seed}",
                        f"distill.teacher_outputs_dir={outputs}",
                        *ARM_BASE,
                        *ARM_SETTINGS.get(arm, []),
                        *arm_extra.get(arm, []),
                    ],
                    deps,
                )
    return rows


def overrides_by_key(texts: list[str]) -> dict[str, list[str]]:
    """``["mixed=distill.x=3", ...]`` -> ``{"mixed": ["distill.x=3"], ...}``."""
    extra: dict[str, list[str]] = {}
    for text in texts:
        arm, _, override = text.partition("=")
        extra.setdefault(arm, []).append(override)
    return extra


def arm_overrides(args: argparse.Namespace) -> dict[str, list[str]]:
    return overrides_by_key(args.arm_override)


def variant_name(name: str, overrides: list[str]) -> str:
    """``name`` plus its overrides (``mixed__listwise_weight_3``), so a variant never reuses the complete rows of
    the plain row or of another variant."""
    parts = [o.removeprefix("distill.").removeprefix("teacher.") for o in overrides]
    return "__".join([name, *("".join(c if c.isalnum() else "_" for c in p) for p in parts)])


def arm_label(arm: str, extra: dict[str, list[str]], teacher_extra: dict[str, list[str]] | None = None) -> str:
    """The arm's name in row folders and tables: its teacher's overrides (``--teacher-override`` of the arm's
    teacher kind) and then its own (``--arm-override``)."""
    kind = TEACHER_ARMS.get(arm, "ensemble") if arm != "ilora" else None
    teacher_parts = (teacher_extra or {}).get(kind, []) if kind else []
    return variant_name(arm, [*teacher_parts, *extra.get(arm, [])])


def claim(row: Row) -> bool:
    """Take the row's lock file (``{folder}.lock``, created atomically) unless another live runner holds it:
    two bench commands sharing a work dir then never train the same row twice; a stale lock (its process
    gone) is taken over."""
    lock = Path(f"{row.folder}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)  # a new work dir
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                os.kill(int(lock.read_text() or 0), 0)
                return False  # held by a live runner
            except (ProcessLookupError, ValueError):
                lock.unlink(missing_ok=True)
                continue
            except PermissionError:
                return False
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return True
    return False


def check_reused(rows: dict[str, Row]) -> None:
    """A complete row is reused only when it ran with exactly the overrides planned for it now (its
    ``.hydra/overrides.yaml``): a row of other settings under the same name (another ``--override``, other
    ``--mixed-seeds``, a moved work dir) would otherwise be reported as this plan's."""
    import yaml

    for row in rows.values():
        recorded = row.folder / ".hydra" / "overrides.yaml"
        if not row.done() or not recorded.is_file():
            continue
        planned = [a for a in row.argv[1:] if not a.startswith("hydra.run.dir=")]
        ran = [str(a) for a in yaml.safe_load(recorded.read_text()) or []]
        if ran != planned:
            differ = sorted({a.split("=", 1)[0] for a in set(ran) ^ set(planned)})
            sys.exit(
                f"error: {row.folder} is a complete run of other settings ({', '.join(differ)} differ): use another "
                "--work-dir, or remove that folder to rerun it"
            )


def execute(rows: dict[str, Row], jobs: int, threads: int) -> None:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    pending = [r for r in rows.values() if not r.done()]
    running: dict[str, tuple[subprocess.Popen, float]] = {}
    while pending or running:
        for name, (proc, start) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[name]
            Path(f"{rows[name].folder}.lock").unlink(missing_ok=True)
            status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode}; see {rows[name].folder}.log)"
            print(f"[{time.strftime('%H:%M:%S')}] {name}: {status}, {time.time() - start:.0f} s", flush=True)
            if proc.returncode != 0:
                sys.exit(f"error: row {name} failed; fix it and rerun (complete rows are reused)")
        for row in [r for r in pending if r.done()]:  # finished by another runner sharing the work dir
            pending.remove(row)
        ready = [r for r in pending if all(rows[d].done() for d in r.deps)]
        while ready and len(running) < jobs:
            row = ready.pop(0)
            if not claim(row):
                continue  # another runner trains it; wait for its done file
            pending.remove(row)
            log = open(f"{row.folder}.log", "w")  # noqa: SIM115 (closed with the process)
            running[row.name] = (
                subprocess.Popen(row.argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT),
                time.time(),
            )
            print(f"[{time.strftime('%H:%M:%S')}] start {row.name}", flush=True)
        time.sleep(2)


def per_user_values(
    folder: Path, stage: str, data, ks: list[int], checkpoint: str = "best"
) -> dict[str, dict[str, np.ndarray]]:
    from ilora_dllm2rec.core.artifacts import read_manifest
    from ilora_dllm2rec.student.evaluator import evaluate_per_sample
    from ilora_dllm2rec.student.train import load_student_checkpoint

    models = folder / "models" / stage
    manifest = read_manifest(models)
    key = f"{checkpoint}_checkpoint"
    if key not in manifest:  # a run written before manifests recorded last.ckpt
        sys.exit(f"error: {models / 'manifest.json'} has no {key}; rerun that row or report --checkpoint best")
    model, _ = load_student_checkpoint(models / manifest[key])
    model.eval()
    return {
        split: evaluate_per_sample(lambda b: model(b["seq"], b["len_seq"]), getattr(data, split), batch_size=512, ks=ks)
        for split in ("val", "test")
    }


def pooled_cell(pooled: dict) -> str:
    """``+4.9% (-1.1% .. +11.2%)``, the gain in bold only when its 95% interval excludes zero (the tables'
    convention in docs/BENCHMARKS.md)."""
    gain = f"{pooled['gain']:+.1%}"
    if pooled["gain_ci_low"] > 0 or pooled["gain_ci_high"] < 0:
        gain = f"**{gain}**"
    return f"{gain} ({pooled['gain_ci_low']:+.1%} .. {pooled['gain_ci_high']:+.1%})"


def report(args: argparse.Namespace, rows: dict[str, Row]) -> None:
    from bench_common import compose_cfg
    from ilora_dllm2rec.core.significance import paired_comparison
    from ilora_dllm2rec.data import prepare_data

    cfg = compose_cfg([f"dataset.data_dir={args.data_dir}", PRESET, f"paths.cache_dir={args.work_dir / 'cache'}"])
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    ks = list(cfg.metrics.ks)
    values = {}
    for name, row in rows.items():
        if row.done() and not name.startswith("teacher"):
            stage = "distill" if name.startswith("distill") else "baseline"
            values[name] = per_user_values(row.folder, stage, data, ks, args.checkpoint)
    table, summary = [], {}
    extra, teacher_extra = arm_overrides(args), overrides_by_key(args.teacher_override)
    for student in args.students:
        for arm in ["baseline", *(arm_label(a, extra, teacher_extra) for a in args.arms)]:
            seeds = [
                s
                for s in args.seeds
                if f"baseline-{student}-{s}" in values
                and (arm == "baseline" or f"distill-{arm}-{student}-{s}" in values)
            ]
            if not seeds:
                continue
            cells = [student, arm, str(len(seeds))]
            entry = {}
            for split in ("test", "val"):
                base = [values[f"baseline-{student}-{s}"][split]["ndcg@10"] for s in seeds]
                if arm == "baseline":
                    cells += [" / ".join(f"{b.mean():.4f}" for b in base), "", "", ""]
                    entry[split] = [float(b.mean()) for b in base]
                    continue
                other = [values[f"distill-{arm}-{student}-{s}"][split]["ndcg@10"] for s in seeds]
                per_seed = [paired_comparison(b, o, resamples=1)["gain"] for b, o in zip(base, other, strict=True)]
                pooled = paired_comparison(np.mean(base, axis=0), np.mean(other, axis=0), resamples=2000)
                cells += [
                    " / ".join(f"{o.mean():.4f}" for o in other),
                    " / ".join(f"{g:+.1%}" for g in per_seed),
                    pooled_cell(pooled),
                    f"{pooled['p_value']:.3f}",
                ]
                entry[split] = {"per_seed": [float(o.mean()) for o in other], "gains": per_seed, "pooled": pooled}
            table.append(cells)
            summary[f"{student}/{arm}"] = entry
    print(command_line())
    print(
        f"seeds {args.seeds}; {args.checkpoint} checkpoint of every run; NDCG@10 per seed; gains paired on the "
        "same users, pooled over seeds\n"
    )
    headers = [
        "student",
        "arm",
        "seeds",
        "test NDCG@10 per seed",
        "test gain per seed",
        "test pooled gain (95%)",
        "test p",
        "val NDCG@10 per seed",
        "val gain per seed",
        "val pooled gain (95%)",
        "val p",
    ]
    print(markdown_table(headers, table))
    teachers = []
    for name, row in rows.items():
        metrics = row.folder / "metrics" / "eval_teacher.json"
        if name.startswith("teacher") and row.done() and metrics.is_file():
            result = json.loads(metrics.read_text())
            teachers.append([name, f"{result['val']['ndcg@10']:.4f}", f"{result['test']['ndcg@10']:.4f}"])
            summary[name] = {split: result[split]["ndcg@10"] for split in ("val", "test")}
    if teachers:
        print("\nteachers (their own NDCG@10, members at their best epochs)\n")
        print(markdown_table(["teacher", "val NDCG@10", "test NDCG@10"], teachers))
    members = [
        [name, f"{values[name]['val']['ndcg@10'].mean():.4f}", f"{values[name]['test']['ndcg@10'].mean():.4f}"]
        for name in rows
        if name.startswith("member") and name in values
    ]
    if members:
        print(f"\nteacher members ({args.checkpoint} checkpoint)\n")
        print(markdown_table(["member", "val NDCG@10", "test NDCG@10"], members))
        summary["members"] = {row[0]: {"val": float(row[1]), "test": float(row[2])} for row in members}
    (args.work_dir / "summary.json").write_text(json.dumps(summary, indent=1))


KINDS_TEACHER = "2 of each kind"
TRIO_TEACHER = "1 SASRec + 1 GRU4Rec + 1 Caser"


def ensemble_compositions(seeds: list[int], members: int) -> dict[str, list[list[str]]]:
    """Teachers of the complete member and baseline rows, by composition: each entry's lists are its instances
    (the triples rotate the seeds so no instance holds two models of one seed)."""
    sasrec = [f"member{i}" for i in range(1, members + 1)]
    kind = {k: [f"baseline-{k}-{s}" for s in seeds] for k in STUDENTS}
    n = min(len(seeds), members)

    def rotate(k: str, j: int, shift: int) -> str:
        return kind[k][(j + shift) % n]

    return {
        f"{n} SASRecs (the ensemble arm)": [sasrec[:n]],
        TRIO_TEACHER: [[sasrec[j], rotate("gru4rec", j, 1), rotate("caser", j, 2)] for j in range(n)],
        KINDS_TEACHER: [
            [
                sasrec[j],
                sasrec[(j + 1) % n],
                rotate("gru4rec", j, 1),
                rotate("gru4rec", j, 2),
                rotate("caser", j, 1),
                rotate("caser", j, 2),
            ]
            for j in range(n)
        ],  # fmt: skip
        f"{n} GRU4Recs + {n} Casers": [kind["gru4rec"][:n] + kind["caser"][:n]],
        f"{3 * n} models, 3 kinds (the mixed teacher)": [sasrec[:n] + kind["gru4rec"][:n] + kind["caser"][:n]],
        f"{4 * n} models (also the SASRec baselines)": [
            sasrec[:n] + kind["sasrec"][:n] + kind["gru4rec"][:n] + kind["caser"][:n]
        ],
    }


def ensemble_table(args: argparse.Namespace, rows: dict[str, Row]) -> None:
    """Val / test NDCG@10 of teachers combined (``log_softmax``, the preset's) from complete rows, by composition:
    how much a teacher gains from more members against more kinds. No training."""
    from bench_common import compose_cfg
    from ilora_dllm2rec.core.artifacts import checkpoint_in
    from ilora_dllm2rec.data import prepare_data
    from ilora_dllm2rec.student.evaluator import evaluate
    from ilora_dllm2rec.student.train import load_student_checkpoint
    from ilora_dllm2rec.teacher.ensemble_teacher import EnsembleTeacher

    compositions = ensemble_compositions(args.seeds, args.members)
    needed = sorted({name for instances in compositions.values() for names in instances for name in names})
    missing = [n for n in needed if n not in rows or not rows[n].done()]
    if missing:
        sys.exit(f"error: --ensemble-table needs the complete rows {missing}: run the mixed arm first")
    cfg = compose_cfg([f"dataset.data_dir={args.data_dir}", PRESET, f"paths.cache_dir={args.work_dir / 'cache'}"])
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    models = {n: load_student_checkpoint(checkpoint_in(rows[n].folder / "models" / "baseline"))[0] for n in needed}
    table = []
    for label, instances in compositions.items():
        scores = {"val": [], "test": []}
        for names in instances:
            teacher = EnsembleTeacher([models[n] for n in names], "log_softmax").eval()
            for split in scores:
                result = evaluate(
                    lambda b, t=teacher: t.score(b["seq"], b["len_seq"]), getattr(data, split), batch_size=512, ks=[10]
                )
                scores[split].append(result["ndcg@10"])
        table.append(
            [label, str(len(instances))]
            + [" / ".join(f"{v:.4f}" for v in scores[s]) + f" (mean {np.mean(scores[s]):.4f})" for s in scores]
        )
    print(command_line())
    print(f"\nteachers from the complete rows, log-probabilities averaged; seeds {args.seeds}\n")
    print(markdown_table(["teacher", "instances", "val NDCG@10", "test NDCG@10"], table))


STEP_FORMS = {  # the preset's distillation settings, minus / plus each term (one SASRec, every training row)
    "ce_only": {"use_ranking_distill": False, "listwise_weight": 0.0},
    "bce_form": {"rd_form": "bce", "listwise_weight": 0.0},
    "softmax_form": {"listwise_weight": 0.0},
    "preset (softmax + listwise)": {},
    # the export's teacher (three SASRecs) queried every step on the extended histories
    "preset + function matching": {"function_matching_weight": 3.0},
}


def step_cost(args: argparse.Namespace, rows: dict[str, Row]) -> None:
    """Samples/s of one distillation step (training_step + backward + Adam) per loss form and of the public
    DLLM2Rec reference step (bench/reference_dllm2rec.py, its own BCE form), interleaved in one process."""
    import torch
    from omegaconf import OmegaConf

    from bench_common import compose_cfg, cycle, module_step_fn, time_steps
    from ilora_dllm2rec.core.config import with_train_preset
    from ilora_dllm2rec.data import build_dataloader, prepare_data
    from ilora_dllm2rec.distill.lit_module import DistillLitModule
    from ilora_dllm2rec.distill.train import listwise_columns, online_teacher
    from ilora_dllm2rec.exp.stages import load_id_teacher
    from ilora_dllm2rec.handoff.outputs import to_dense
    from ilora_dllm2rec.handoff.outputs_reader import load_teacher_outputs
    from ilora_dllm2rec.student.losses import item_propensity
    from reference_dllm2rec import ReferenceSASRec, reference_port_throughput
    from reference_loops import sequence_frame

    teacher = rows["teacher-ensemble"]
    if not teacher.done():
        sys.exit(f"error: --step-cost needs the complete teacher-ensemble row in {teacher.folder}: run the bench first")
    torch.set_num_threads(args.threads)
    overrides = [*common(args)[:4], "student=sasrec"]
    cfg = with_train_preset(compose_cfg(overrides, "run_pipeline"), "distill", overrides)
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    folder = teacher.folder / "teacher_outputs"
    dcfg = OmegaConf.to_container(cfg.distill, resolve=True)
    outputs = load_teacher_outputs(
        folder,
        num_items=data.num_items,
        train_samples=data.train,
        data_fingerprint=data.fingerprint,
        candidate_topk=int(dcfg["candidate_topk"]),
        load_embeddings=False,
        listwise_topn=listwise_columns(dcfg["listwise_weight"], dcfg["listwise_topn"]),
    )
    dense = to_dense(outputs, len(data.train))
    student_cfg = OmegaConf.to_container(cfg.student, resolve=True)
    counts = data.train_target_counts()
    bs, lr = int(cfg.train.batch_size), float(cfg.train.lr)
    configs = {}
    for name, change in STEP_FORMS.items():
        torch.manual_seed(0)
        module = DistillLitModule(
            student_cfg,
            data.num_items,
            lr=lr,
            target_counts=counts.tolist(),
            llm_embedding_dim=None,
            ed_weight=0.0,
            distill_cfg={**dcfg, **change},
        )
        module.set_teacher_knowledge(*dense)
        if change.get("function_matching_weight"):
            module.set_function_matching_teacher(online_teacher(outputs, folder, data, load_id_teacher))
        loader = cycle(build_dataloader(data.train, bs, shuffle=True, seed=0))
        configs[name] = (lambda step, it: lambda: time_steps(step, it, 10, args.steps))(
            module_step_fn(module, str(cfg.train.precision)), loader
        )
    s = cfg.student
    port = ReferenceSASRec(data.num_items, int(s.hidden_size), int(s.max_seq_len), float(s.dropout), 1, 0.0)
    rank = torch.from_numpy(np.loadtxt(folder / "myrank_train.txt", dtype=np.int64))
    conf = torch.from_numpy(np.loadtxt(folder / "confidence_train.txt", dtype=np.float32))
    frame, prop = sequence_frame(data.train), item_propensity(torch.from_numpy(counts)).double()
    # no DRO, as the platform's ce student (use_dros: auto)
    settings = {**dcfg, "lam": float(dcfg["rd_weight"]), "alpha": 0.0}
    configs["public reference step (bce form)"] = lambda: reference_port_throughput(
        port, frame, rank, conf, None, prop, settings, batch_size=bs, lr=lr, warmup=5, steps=args.steps
    )
    best = {name: 0.0 for name in configs}
    for _ in range(args.rounds):
        for name, fn in configs.items():
            best[name] = max(best[name], fn()["samples_per_s"])
    ref, ce, preset = best["public reference step (bce form)"], best["ce_only"], best["preset (softmax + listwise)"]
    print(command_line())
    print(
        f"SASRec (experiment=ml100k_ce_distill), batch {bs}, {args.threads} thread(s), best of {args.rounds} "
        f"interleaved rounds of {args.steps} steps; loss share = 1 - (ce_only step time / this step time)\n"
    )
    table = [
        [name, f"{v:,.0f}", f"{v / ref:.1f}x", "-" if name.startswith("public") else f"{1 - v / ce:.0%}"]
        for name, v in best.items()
    ]
    print(markdown_table(["step", "samples/s", "vs reference", "distillation terms' share of the step"], table))
    print(
        f"\npreset step vs reference: {preset / ref:.1f}x; new losses' share of the preset step: {1 - preset / ce:.0%}"
    )


def main() -> None:
    args = parse_args()
    rows = plan(args)
    check_reused(rows)
    if args.step_cost:
        step_cost(args, rows)
        return
    if args.ensemble_table:
        ensemble_table(args, rows)
        return
    if not args.report_only:
        execute(rows, args.jobs, args.threads)
    report(args, rows)


if __name__ == "__main__":
    main()
