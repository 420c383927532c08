"""bench/ce_distill.py plans its rows from the arms: the mixed teacher never contains its student's own kind."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture()
def ce_distill(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import ce_distill

    yield ce_distill
    sys.modules.pop("ce_distill", None)


def _args(tmp_path: Path, students: list[str], arms: list[str]) -> argparse.Namespace:
    return argparse.Namespace(
        data_dir=tmp_path / "ml-100k",
        work_dir=tmp_path / "w",
        seeds=[42, 0],
        students=students,
        arms=arms,
        members=3,
        teacher_seed=100,
        arm_override=[],
        teacher_override=[],
        mixed_seeds=None,
        override=[],
        ilora_export=None,
        max_epochs=None,
    )


def _members(row) -> list[str]:
    (checkpoints,) = [a for a in row.argv if a.startswith("teacher.checkpoints=")]
    return [Path(p).parent.parent.name for p in checkpoints.split("=", 1)[1].strip("[]").split(",")]


def test_mixed_teacher_holds_the_members_and_the_other_kinds_baselines(ce_distill, tmp_path) -> None:
    rows = ce_distill.plan(_args(tmp_path, ["sasrec"], ["mixed"]))
    teacher = rows["teacher-mixed-sasrec"]
    assert _members(teacher) == [
        "member1",
        "member2",
        "member3",
        "baseline-gru4rec-42",
        "baseline-gru4rec-0",
        "baseline-caser-42",
        "baseline-caser-0",
    ]
    assert set(teacher.deps) == set(_members(teacher))
    for seed in (42, 0):
        distill = rows[f"distill-mixed-sasrec-{seed}"]
        assert f"distill.teacher_outputs_dir={teacher.folder / 'teacher_outputs'}" in distill.argv
        assert distill.deps == ["teacher-mixed-sasrec"]


def test_each_student_gets_its_own_mixed_teacher(ce_distill, tmp_path) -> None:
    rows = ce_distill.plan(_args(tmp_path, ["gru4rec", "caser"], ["mixed", "ensemble"]))
    assert not any(m.startswith("baseline-gru4rec") for m in _members(rows["teacher-mixed-gru4rec"]))
    assert not any(m.startswith("baseline-caser") for m in _members(rows["teacher-mixed-caser"]))
    assert _members(rows["teacher-ensemble"]) == ["member1", "member2", "member3"]
    assert "teacher-ensemble" in rows["distill-ensemble-caser-0"].deps


def test_an_arm_override_variant_gets_its_own_rows(ce_distill, tmp_path) -> None:
    """A variant must not reuse the plain arm's complete rows (it would report the preset's numbers as its own)."""
    args = _args(tmp_path, ["sasrec"], ["mixed", "bce"])
    args.arm_override = ["mixed=distill.listwise_weight=3", "mixed=distill.listwise_temperature=2"]
    rows = ce_distill.plan(args)
    variant = rows["distill-mixed__listwise_weight_3__listwise_temperature_2-sasrec-42"]
    assert variant.argv[-3:-1] == ["distill.listwise_weight=3", "distill.listwise_temperature=2"]
    assert "distill-mixed-sasrec-42" not in rows
    assert "distill-bce-sasrec-42" in rows  # arms without overrides keep their names


def test_a_teacher_override_gives_the_teacher_and_its_students_rows_of_their_own(ce_distill, tmp_path) -> None:
    args = _args(tmp_path, ["sasrec"], ["mixed", "ensemble"])
    args.teacher_override = ["mixed=teacher.export.top_n=300"]
    args.arm_override = ["mixed=distill.listwise_weight=3"]
    rows = ce_distill.plan(args)
    teacher = rows["teacher-mixed-sasrec__export_top_n_300"]
    assert "teacher.export.top_n=300" in teacher.argv
    assert "teacher-mixed-sasrec" not in rows
    distill = rows["distill-mixed__export_top_n_300__listwise_weight_3-sasrec-42"]
    assert distill.deps == [teacher.name]
    assert f"distill.teacher_outputs_dir={teacher.folder / 'teacher_outputs'}" in distill.argv
    assert "teacher.export.top_n=300" not in rows["teacher-ensemble"].argv  # other kinds keep theirs
    assert "distill-ensemble-sasrec-0" in rows


def test_more_student_seeds_can_share_the_mixed_teacher_of_fewer(ce_distill, tmp_path) -> None:
    args = _args(tmp_path, ["sasrec"], ["mixed"])
    args.seeds, args.mixed_seeds = [42, 0, 2], [42, 0]
    rows = ce_distill.plan(args)
    assert _members(rows["teacher-mixed-sasrec"])[3:] == [
        "baseline-gru4rec-42", "baseline-gru4rec-0", "baseline-caser-42", "baseline-caser-0",
    ]  # fmt: skip
    assert "baseline-sasrec-2" in rows and "baseline-gru4rec-2" not in rows
    assert rows["distill-mixed-sasrec-2"].deps == ["teacher-mixed-sasrec"]


def test_a_complete_row_of_other_settings_is_not_reused(ce_distill, tmp_path) -> None:
    """A complete row whose recorded overrides differ from the plan stops the bench, naming the folder and keys."""
    rows = ce_distill.plan(_args(tmp_path, ["sasrec"], ["mixed"]))
    teacher = rows["teacher-mixed-sasrec"]
    (teacher.folder / "teacher_outputs").mkdir(parents=True)
    (teacher.folder / "teacher_outputs" / "manifest.json").write_text("{}")
    (teacher.folder / ".hydra").mkdir()
    planned = [a for a in teacher.argv[1:] if not a.startswith("hydra.run.dir=")]
    (teacher.folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {a}\n" for a in planned))
    ce_distill.check_reused(rows)  # the same settings: reused
    args = _args(tmp_path, ["sasrec"], ["mixed"])
    args.seeds = [42, 0, 1]  # another mixed teacher under the same name
    with pytest.raises(
        SystemExit, match=r"teacher-mixed-sasrec is a complete run of other settings \(teacher.checkpoints differ\)"
    ):
        ce_distill.check_reused(ce_distill.plan(args))


def test_ensemble_compositions_never_repeat_a_seed_inside_a_triple(ce_distill) -> None:
    compositions = ce_distill.ensemble_compositions([42, 0, 1], 3)
    triples = compositions["1 SASRec + 1 GRU4Rec + 1 Caser"]
    assert triples[0] == ["member1", "baseline-gru4rec-0", "baseline-caser-1"]
    for names in triples:
        seeds = [n.rsplit("-", 1)[1] for n in names[1:]]
        assert len(set(seeds)) == 2
    assert all(len(set(names)) == 6 for names in compositions["2 of each kind"])
    (mixed,) = compositions["9 models, 3 kinds (the mixed teacher)"]
    assert len(set(mixed)) == 9 and not any(n.startswith("baseline-sasrec") for n in mixed)


def test_the_kinds_arm_gives_each_seed_six_models_of_three_kinds(ce_distill, tmp_path) -> None:
    args = _args(tmp_path, ["sasrec"], ["kinds"])
    args.seeds = [42, 0, 1]
    rows = ce_distill.plan(args)
    assert _members(rows["teacher-kinds-42"]) == [
        "member1", "member2", "baseline-gru4rec-0", "baseline-gru4rec-1", "baseline-caser-0", "baseline-caser-1",
    ]  # fmt: skip
    assert _members(rows["teacher-kinds-1"])[:3] == ["member3", "member1", "baseline-gru4rec-42"]
    assert rows["distill-kinds-sasrec-0"].deps == ["teacher-kinds-0"]


def test_the_ensemble_table_names_the_missing_rows_before_loading_anything(ce_distill, tmp_path) -> None:
    args = _args(tmp_path, ["sasrec"], ["mixed"])
    args.seeds = [42, 0, 1]
    with pytest.raises(SystemExit, match=r"--ensemble-table needs the complete rows \[.*'member1'.*run the mixed arm"):
        ce_distill.ensemble_table(args, ce_distill.plan(args))  # the data dir does not even exist


def test_a_row_claimed_by_a_live_runner_is_left_to_it(ce_distill, tmp_path) -> None:
    import os
    import subprocess

    row = ce_distill.Row("r", [], tmp_path / "r", "done")
    assert ce_distill.claim(row)
    assert Path(f"{row.folder}.lock").read_text() == str(os.getpid())
    assert not ce_distill.claim(row)  # held by a live process (this one)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    Path(f"{row.folder}.lock").write_text(gone.stdout.strip())
    assert ce_distill.claim(row)  # its runner is gone: the stale lock is taken over


def test_the_first_claim_in_a_new_work_dir_creates_it(ce_distill, tmp_path) -> None:
    row = ce_distill.Row("member1", [], tmp_path / "new-work-dir" / "member1", "done")
    assert ce_distill.claim(row)
    assert Path(f"{row.folder}.lock").is_file()


@pytest.mark.parametrize(("checkpoint", "expected"), [("best", "epoch=3.ckpt"), ("last", "last.ckpt")])
def test_report_reads_the_chosen_checkpoint(ce_distill, tmp_path, monkeypatch, checkpoint, expected) -> None:
    import json

    import torch

    from ilora_dllm2rec.student import evaluator, train

    models = tmp_path / "run" / "models" / "distill"
    models.mkdir(parents=True)
    (models / "manifest.json").write_text(
        json.dumps({"best_checkpoint": "epoch=3.ckpt", "last_checkpoint": "last.ckpt"})
    )
    loaded = []

    class Model(torch.nn.Module):
        def forward(self, seq, len_seq):
            return torch.zeros(len(seq), 3)

    def fake_load(path: Path):
        loaded.append(path.name)
        return Model(), {}

    monkeypatch.setattr(train, "load_student_checkpoint", fake_load)
    monkeypatch.setattr(evaluator, "evaluate_per_sample", lambda fn, samples, **kw: {"ndcg@10": samples})
    data = argparse.Namespace(val="v", test="t")
    values = ce_distill.per_user_values(tmp_path / "run", "distill", data, [10], checkpoint)
    assert loaded == [expected]
    assert values == {"val": {"ndcg@10": "v"}, "test": {"ndcg@10": "t"}}


def test_a_manifest_without_the_last_checkpoint_is_named(ce_distill, tmp_path) -> None:
    import json

    models = tmp_path / "run" / "models" / "distill"
    models.mkdir(parents=True)
    (models / "manifest.json").write_text(json.dumps({"best_checkpoint": "epoch=3.ckpt"}))
    data = argparse.Namespace(val="v", test="t")
    with pytest.raises(SystemExit, match=r"manifest\.json has no last_checkpoint"):
        ce_distill.per_user_values(tmp_path / "run", "distill", data, [10], "last")


def test_the_trio_arm_gives_each_seed_one_model_of_each_kind(ce_distill, tmp_path) -> None:
    args = _args(tmp_path, ["sasrec"], ["trio"])
    args.seeds = [42, 0, 1]
    rows = ce_distill.plan(args)
    assert _members(rows["teacher-trio-42"]) == ["member1", "baseline-gru4rec-0", "baseline-caser-1"]
    assert _members(rows["teacher-trio-0"]) == ["member2", "baseline-gru4rec-1", "baseline-caser-42"]
    assert not any(m.startswith("baseline-sasrec") for s in (42, 0, 1) for m in _members(rows[f"teacher-trio-{s}"]))
    assert rows["distill-trio-sasrec-1"].deps == ["teacher-trio-1"]


def test_the_arms_keep_the_settings_they_were_measured_with(ce_distill, tmp_path) -> None:
    """The preset trains one member of each kind at weight 3; the bench's teachers combine checkpoints (a preset
    member_models with num_members=0 would be refused) and its plain arms distil at weight 1."""
    args = _args(tmp_path, ["sasrec"], ["ensemble", "trio"])
    args.arm_override = ["trio=distill.listwise_weight=3"]
    rows = ce_distill.plan(args)
    assert "teacher.member_models=[]" in rows["teacher-ensemble"].argv
    plain, weighted = rows["distill-ensemble-sasrec-42"].argv, rows["distill-trio__listwise_weight_3-sasrec-42"].argv
    assert "distill.listwise_weight=1.0" in plain
    assert weighted.index("distill.listwise_weight=3") > weighted.index("distill.listwise_weight=1.0")  # last wins


def test_a_pooled_gain_is_bold_only_when_its_interval_excludes_zero(ce_distill) -> None:
    significant = {"gain": 0.074, "gain_ci_low": 0.016, "gain_ci_high": 0.136}
    assert ce_distill.pooled_cell(significant) == "**+7.4%** (+1.6% .. +13.6%)"
    not_significant = {"gain": 0.032, "gain_ci_low": -0.019, "gain_ci_high": 0.087}
    assert ce_distill.pooled_cell(not_significant) == "+3.2% (-1.9% .. +8.7%)"
    assert ce_distill.pooled_cell({"gain": -0.09, "gain_ci_low": -0.15, "gain_ci_high": -0.02}).startswith("**-9.0%**")
