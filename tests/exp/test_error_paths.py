"""Refusals as a user meets them: one `error:` line printed once, exit 2, no run folder for a run that never
started, an unwritable result folder named, a bad checkpoint named, a NaN loss that says which checkpoint exists."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from types import SimpleNamespace

import pytest
import torch

from .helpers import run_entry, tiny_overrides


def error_lines(proc) -> list[str]:
    """Every line of stdout AND stderr that carries an `error:` message (a terminal shows both streams)."""
    return [line for line in (proc.stdout + proc.stderr).splitlines() if "error: " in line]


def assert_one_refusal(proc, *needles: str) -> str:
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = error_lines(proc)
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and lines[0] in proc.stderr.splitlines()
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def assert_empty(folder: Path) -> None:
    assert not folder.exists() or not any(folder.iterdir()), sorted(folder.rglob("*"))


# -- item 7/8: a run that never started leaves no run folder ----------------------------------------------------
REFUSALS = [
    (["train.lr=-1"], "train.lr"),  # value range (the config schema)
    (["train.lr=abc"], "train.lr"),  # type (core/config.py)
    (["distill.use_dros=maybe"], "distill.use_dros"),  # switch value
    (["student.not_a_key=1"], "student.not_a_key"),  # unknown key (core/override_check.py)
    (["student=no_such_model"], "no_such_model"),  # unknown group option
    (["studnt=sasrec"], "(did you mean student?)"),  # misspelled config group
    (["general.num_threads=0"], "general.num_threads must be an integer >= 1 or auto"),  # thread setting
]


@pytest.mark.parametrize(("extra", "needle"), REFUSALS, ids=[r[0][0] for r in REFUSALS])
def test_a_refused_run_leaves_no_run_folder(tmp_path, extra, needle):
    proc = run_entry("run_student_baseline", tiny_overrides(tmp_path) + extra, tmp_path, timeout=120)
    assert_one_refusal(proc, needle)
    assert_empty(tmp_path / "result")


def test_a_refused_resume_leaves_the_existing_folder_as_it_was(tmp_path):
    run = tmp_path / "result" / "result_old"
    (run / "logs").mkdir(parents=True)
    (run / "manifest.json").write_text("{}")
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    proc = run_entry("run_pipeline", tiny_overrides(tmp_path, "old") + ["resume=true", "train.lr=-1"], tmp_path)
    assert_one_refusal(proc, "train.lr")
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before


def test_an_error_inside_a_run_is_printed_once_and_kept_in_the_log(tmp_path):
    """On a terminal the logger (stdout) and the error line (stderr) both showed: now stderr only, and the run's
    log file still records it."""
    overrides = [o for o in tiny_overrides(tmp_path) if not o.startswith("dataset.synthetic")]
    overrides += ["dataset=ml-100k", f"dataset.data_dir={tmp_path / 'missing'}"]
    proc = run_entry("run_student_baseline", overrides, tmp_path, timeout=120)
    line = assert_one_refusal(proc, str(tmp_path / "missing"))
    log = (tmp_path / "result" / "result_run" / "run_student_baseline.log").read_text()
    assert line in log


# -- item 5: a result folder that cannot be written ----------------------------------------------------------------
def _without(overrides: list[str], *prefixes: str) -> list[str]:
    return [o for o in overrides if not o.startswith(prefixes)]


@pytest.mark.parametrize("where", ["etc_passwd", "run_dir", "result_root"])
def test_a_result_folder_under_a_regular_file(tmp_path, where):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    overrides = _without(tiny_overrides(tmp_path), "hydra.run.dir=", "paths.result_root=")
    if where == "etc_passwd":
        if not Path("/etc/passwd").is_file():
            pytest.skip("no /etc/passwd here")
        overrides += [f"paths.result_root={tmp_path / 'result'}", "hydra.run.dir=/etc/passwd/x"]
        named = "/etc/passwd/x"
    elif where == "run_dir":
        overrides += [f"paths.result_root={tmp_path / 'result'}", f"hydra.run.dir={a_file / 'run'}"]
        named = str(a_file / "run")
    else:  # the default run folder result_root/result_<time>
        overrides += [f"paths.result_root={a_file}"]
        named = str(a_file / "result_")
    proc = run_entry("run_student_baseline", overrides, tmp_path, timeout=120)
    assert_one_refusal(proc, named, "is a file")
    assert a_file.read_text() == "not a folder"


def test_resume_into_a_run_folder_that_cannot_take_its_config(tmp_path):
    """An existing run folder whose .hydra is a file: Hydra cannot save the config there (root too)."""
    run = tmp_path / "result" / "result_old"
    run.mkdir(parents=True)
    (run / ".hydra").write_text("x")
    proc = run_entry("run_pipeline", tiny_overrides(tmp_path, "old") + ["resume=true"], tmp_path, timeout=120)
    assert_one_refusal(proc, str(run / ".hydra"))


@pytest.mark.skipif(
    os.geteuid() == 0,
    reason="root writes into a chmod 0555 folder anyway (only a read-only mount stops it, and tests cannot mount "
    "one): test_a_read_only_folder_is_named covers that case by answering os.access as a read-only mount does",
)
def test_resume_into_a_read_only_run_folder(tmp_path):
    run = tmp_path / "result" / "result_old"
    (run / "logs").mkdir(parents=True)
    run.chmod(0o555)
    try:
        proc = run_entry("run_pipeline", tiny_overrides(tmp_path, "old") + ["resume=true"], tmp_path, timeout=120)
    finally:
        run.chmod(0o755)
    assert_one_refusal(proc, str(run), "read-only")


def test_a_read_only_folder_is_named(tmp_path, monkeypatch):
    from ilora_dllm2rec.core.run_logging import run_dir_problem

    run = tmp_path / "result" / "result_x"
    assert run_dir_problem(run) is None
    # what access(2) answers on a read-only mount (EROFS), even to root
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)
    message = run_dir_problem(run)
    assert message is not None and str(tmp_path) in message and "read-only" in message and "\n" not in message
    run.mkdir(parents=True)  # resume=true into an existing read-only run folder
    assert f"{run} is read-only" in run_dir_problem(run)


# -- item 4: a file that is not a checkpoint ---------------------------------------------------------------------
def test_an_ensemble_member_that_is_no_checkpoint(tmp_path):
    bad = tmp_path / "member.ckpt"
    torch.save({"state_dict": PurePosixPath("x")}, bad)  # a pickled object: never unpickled
    overrides = tiny_overrides(tmp_path) + ["teacher=ensemble", "teacher.num_members=0", f"teacher.checkpoints=[{bad}]"]
    line = assert_one_refusal(run_entry("run_teacher", overrides, tmp_path, timeout=180), str(bad), "not a")
    assert "weights_only" not in line and len(line) < 400


def test_a_teacher_checkpoint_of_garbage(tmp_path):
    bad = tmp_path / "teacher.ckpt"
    bad.write_bytes(b"\x00garbage" * 20)
    overrides = tiny_overrides(tmp_path) + ["eval.models=[teacher]", f"eval.teacher_checkpoint={bad}"]
    line = assert_one_refusal(run_entry("run_eval_all", overrides, tmp_path, timeout=180), str(bad))
    assert "is not a teacher checkpoint" in line


# -- item 6: a NaN loss says which checkpoint exists --------------------------------------------------------------
def _student_module():
    from omegaconf import OmegaConf

    from ilora_dllm2rec.student.lit_module import StudentLitModule
    from tests.conftest import TINY_OVERRIDES, compose_config

    cfg = compose_config("config", TINY_OVERRIDES)
    return StudentLitModule(OmegaConf.to_container(cfg.student, resolve=True), 40, lr=1e-3)


def _trainer_with(last_model_path: str) -> SimpleNamespace:
    """The parts of a Trainer the module reads: epoch, step and the checkpoint callback's paths."""
    callback = SimpleNamespace(last_model_path=last_model_path, best_model_path="")
    return SimpleNamespace(current_epoch=1, global_step=7, checkpoint_callback=callback)


def test_nan_before_any_checkpoint_says_none_was_written(tmp_path):
    from ilora_dllm2rec.core.errors import TrainingError

    module = _student_module()
    with pytest.raises(TrainingError) as exc:
        module.check_finite(torch.tensor(float("nan")))
    assert "no checkpoint was written yet" in str(exc.value) and "kept" not in str(exc.value)
    # attached to a trainer whose checkpoint callback has saved nothing yet
    module.trainer = _trainer_with(last_model_path="")
    with pytest.raises(TrainingError, match="no checkpoint was written yet"):
        module.check_finite(torch.tensor(float("inf")))


def test_nan_after_a_checkpoint_names_it(tmp_path):
    from ilora_dllm2rec.core.errors import TrainingError

    last = tmp_path / "last.ckpt"
    last.write_bytes(b"x")
    module = _student_module()
    module.trainer = _trainer_with(last_model_path=str(last))
    with pytest.raises(TrainingError, match=f"the last good checkpoint is {last}"):
        module.check_finite(torch.tensor(float("nan")))


def test_nan_at_the_first_steps_of_a_run(tmp_path):
    proc = run_entry("run_student_baseline", tiny_overrides(tmp_path) + ["student.lr=1e30"], tmp_path)
    assert_one_refusal(proc, "loss became", "no checkpoint was written yet")


# -- teacher.rec_model_type: run-pipeline refuses before any stage ----------------------------------------------
@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["teacher.rec_model_type=bert4rec"], ["teacher.rec_model_type must be null or one of sasrec | gru4rec"]),
        # the pipeline's teacher would get this run's sasrec baseline: refused before that baseline trains
        (["teacher.rec_model_type=gru4rec"], ["teacher.rec_model_type=gru4rec", "student=gru4rec"]),
    ],
    ids=["unknown", "not the pipeline's student"],
)
def test_pipeline_refuses_a_rec_model_type_before_any_stage(tmp_path, extra, needles):
    proc = run_entry("run_pipeline", tiny_overrides(tmp_path) + extra, tmp_path, timeout=120)
    assert_one_refusal(proc, *needles)
    assert_empty(tmp_path / "result")


def test_pipeline_accepts_a_rec_model_type_that_matches():
    from omegaconf import OmegaConf

    from ilora_dllm2rec.exp.run_pipeline import check_rec_model_type

    def cfg(**teacher):
        return OmegaConf.create({"student": {"name": "sasrec"}, "teacher": {"backend": "ilora", **teacher}})

    check_rec_model_type(cfg(rec_model_type="SASRec"))
    check_rec_model_type(cfg(rec_model_type=None))
    check_rec_model_type(cfg(rec_model_type="caser", rec_model_checkpoint_path="x/best.ckpt"))  # checked on load


# -- Hydra multirun: every job is checked before the first one starts -------------------------------------------
def test_multirun_jobs_expand_the_sweeps():
    from ilora_dllm2rec.core.override_check import multirun_jobs

    assert multirun_jobs(["-m", "general.seed=1,2", "student=sasrec,gru4rec", "train.lr=0.01"]) == [
        ["general.seed=1", "student=sasrec", "train.lr=0.01"],
        ["general.seed=1", "student=gru4rec", "train.lr=0.01"],
        ["general.seed=2", "student=sasrec", "train.lr=0.01"],
        ["general.seed=2", "student=gru4rec", "train.lr=0.01"],
    ]
    assert multirun_jobs(["general.seed=1"]) is None  # not a multirun
    assert multirun_jobs(["-m", "--cfg", "job"]) is None  # other flags: Hydra's
    assert multirun_jobs(["--multirun", "general.seed=range(1,3)"]) == [["general.seed=1"], ["general.seed=2"]]


@pytest.mark.parametrize(
    ("sweep", "needle"),
    [("train.lr=0.001,-1", "train.lr must be a number > 0, got -1"), ("student=sasrec,nope", "nope")],
    ids=["a bad value in a sweep", "a bad group option in a sweep"],
)
def test_a_multirun_with_one_bad_job_starts_none(tmp_path, sweep, needle):
    overrides = _without(tiny_overrides(tmp_path), "hydra.run.dir=")
    proc = run_entry("run_student_baseline", ["-m", *overrides, sweep], tmp_path, timeout=120)
    assert_one_refusal(proc, needle)
    assert_empty(tmp_path / "result")


def test_a_good_multirun_passes_the_checks(tmp_path):
    from ilora_dllm2rec.exp.common import check_before_start

    overrides = _without(tiny_overrides(tmp_path), "hydra.run.dir=")
    check_before_start("config", ["-m", *overrides, "general.seed=1,2", "student=sasrec,caser"])  # no exit
