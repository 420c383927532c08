"""End-to-end pipeline (one run folder), with the ID teacher and with a tiny random LLM; resume."""

from __future__ import annotations

import json

import pytest

from ilora_dllm2rec.data import prepare_data
from ilora_dllm2rec.student.evaluator import evaluate
from ilora_dllm2rec.student.train import load_student_checkpoint
from ilora_dllm2rec.teacher.train import subset

from .helpers import run_entry, tiny_overrides

STAGE_FILES = (
    "models/baseline/manifest.json",
    "models/teacher/manifest.json",
    "models/distill/manifest.json",
    "teacher_outputs/manifest.json",
    "teacher_outputs/myrank_train.txt",
    "teacher_outputs/confidence_train.txt",
    "teacher_outputs/all_embeddings.pt",
    "metrics/eval_baseline.json",
    "metrics/eval_teacher.json",
    "metrics/eval_distill.json",
    "metrics/time.json",
    "all_evaluation_results.json",
    "report.md",
    "metrics/eval_all.png",
    "metrics/eval_all.md",
    "logs/train_teacher.log",
    "logs/train_distill.log",
    "logs/train_student_baseline.log",
    "manifest.json",
    "git_info.txt",
)
TIME_KEYS = {
    "student_baseline_train_time",
    "teacher_train_time_total",
    "distill_teacher_export_time",
    "distill_student_train_time",
}


def tiny_llm_overrides(tmp_path):
    return [
        f"teacher.llm_path=tiny:{tmp_path / 'tinyllm'}",
        "teacher.max_train_samples=48",
        "teacher.max_eval_samples=20",
        "teacher.num_epochs=1",
        "teacher.batch_size=8",
        "teacher.max_prompt_tokens=64",
        "teacher.export.batch_size=64",
        "distill.num_epochs=2",
    ]


def check_run(run):
    for rel in STAGE_FILES:
        assert (run / rel).is_file(), rel
    assert TIME_KEYS <= set(json.loads((run / "metrics" / "time.json").read_text()))
    results = json.loads((run / "all_evaluation_results.json").read_text())
    assert set(results["models"]) == {"baseline", "teacher", "distill"}
    stages = json.loads((run / "manifest.json").read_text())["completed_stages"]
    assert {"baseline", "teacher", "export", "distill", "eval"} <= set(stages)
    for name in ("baseline", "teacher", "distill"):
        assert any((run / "tb" / name).iterdir()), name


def test_pipeline_with_id_teacher(tmp_path):
    overrides = tiny_overrides(tmp_path) + [
        "teacher=sasrec",
        "teacher.num_epochs=2",
        "teacher.model.hidden_size=16",
        "teacher.model.emb_size=16",
        "distill.num_epochs=2",
    ]
    proc = run_entry("run_pipeline", overrides, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_run(tmp_path / "result" / "result_run")
    results = json.loads((tmp_path / "result" / "result_run" / "all_evaluation_results.json").read_text())
    assert "same_users" not in results  # every model scored on every user: one table is enough
    sig = results["significance"]
    assert sig["reference"] == "baseline" and set(sig["models"]) == {"teacher", "distill"}
    for name in ("teacher", "distill"):
        c = sig["models"][name]["ndcg@10"]
        assert c["num_users"] == 60 and 0 < c["p_value"] <= 1 and c["gain_ci_low"] <= c["gain_ci_high"]
        assert c["mean"] == pytest.approx(results["models"][name]["test"]["ndcg@10"])
        assert c["reference_mean"] == pytest.approx(results["models"]["baseline"]["test"]["ndcg@10"])


def test_pipeline_with_tiny_llm(tmp_path, tiny_cfg):
    proc = run_entry("run_pipeline", tiny_overrides(tmp_path) + tiny_llm_overrides(tmp_path), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "result" / "result_run"
    check_run(run)
    teacher = json.loads((run / "metrics" / "eval_teacher.json").read_text())
    assert teacher["parameters"]["trainable"] < teacher["parameters"]["total"]
    assert set(teacher["parameters"]["by_group"]) == {"adapter", "projector", "gate", "head"}
    check_same_users_table(run, tiny_cfg("run_pipeline", tiny_llm_overrides(tmp_path)))


def check_same_users_table(run, cfg):
    """The LLM teacher is scored on teacher.max_eval_samples=20 of the 60 test users, the ID models on all 60:
    eval-all adds every model on the teacher's 20 users, the same 20 (checked against a direct evaluation)."""
    results = json.loads((run / "all_evaluation_results.json").read_text())
    models = results["models"]
    assert models["teacher"]["test"]["num_samples"] == 20 and models["baseline"]["test"]["num_samples"] == 60
    same = results["same_users"]
    assert (same["split"], same["num_samples"], same["of"]) == ("test", 20, 60)
    assert same["models"]["teacher"] == models["teacher"]["test"]
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    users = subset(data.test, cfg.teacher.max_eval_samples, None, int(cfg.general.seed))
    model, _ = load_student_checkpoint(models["baseline"]["checkpoint"])
    direct = evaluate(lambda b: model(b["seq"], b["len_seq"]), users, batch_size=64, ks=list(cfg.metrics.ks))
    for key, value in direct.items():
        assert same["models"]["baseline"][key] == pytest.approx(value, abs=1e-6), key
    frozen = json.loads((run / "metrics" / "eval_teacher.json").read_text())["frozen_student"]["test"]
    assert frozen["num_samples"] == 20  # the teacher stage's own comparison: its frozen student = this baseline
    for key, value in frozen.items():
        assert same["models"]["baseline"][key] == pytest.approx(value, abs=1e-6), key
    sig = results["significance"]["models"]  # paired: the teacher on its 20 users, distill on all 60
    assert sig["teacher"]["ndcg@10"]["num_users"] == 20 and sig["distill"]["hr@10"]["num_users"] == 60
    assert sig["teacher"]["ndcg@10"]["reference_mean"] == pytest.approx(same["models"]["baseline"]["ndcg@10"])
    assert sig["teacher"]["ndcg@10"]["mean"] == pytest.approx(models["teacher"]["test"]["ndcg@10"])
    assert sig["distill"]["hr@10"]["reference_mean"] == pytest.approx(models["baseline"]["test"]["hr@10"])
    report = (run / "report.md").read_text()
    assert "Against `baseline` on the same users" in report and "| teacher | ndcg@10 |" in report
    assert "On the LLM teacher's 20 of 60 test users" in report and "Teacher vs baseline:" in report
    assert "Users evaluated: baseline 60, teacher 20, distill 60." in report


def test_pipeline_and_distill_under_ddp_with_two_cpu_processes(tmp_path):
    """train.strategy=ddp re-runs the entry point once per extra device (Lightning's subprocess launcher), so
    every stage runs on both ranks: rank 0 builds the tiny LLM first and writes every artifact, the export is
    sharded and merged, the ranks wait for each other between stages, and rank 0 evaluates alone. Then
    run-distill exports from a teacher checkpoint and distils, and run-teacher trains and exports."""
    ddp = ["train.strategy=ddp", "train.devices=2", "train.accelerator=cpu"]
    proc = run_entry("run_pipeline", tiny_overrides(tmp_path) + tiny_llm_overrides(tmp_path) + ddp, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "result" / "result_run"
    check_run(run)
    assert (run / "train_ddp_process_1.log").is_file()  # the second rank ran the stages too
    assert proc.stdout.count("report:") == 1 and proc.stdout.count("baseline sasrec on") == 1  # printed once
    assert (run / "logs" / "train_student_baseline.log").read_text().count("baseline done") == 1  # logged once
    export = json.loads((run / "teacher_outputs" / "manifest.json").read_text())
    assert export["num_rows"] == export["num_train"]  # both shards merged
    ckpt = run / "models" / "teacher" / "best.ckpt"
    distill = tiny_overrides(tmp_path, "distill") + tiny_llm_overrides(tmp_path) + ddp
    proc = run_entry("run_distill", [*distill, f"distill.teacher_checkpoint_path={ckpt}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "result" / "result_distill"
    assert (out / "teacher_outputs" / "manifest.json").is_file() and (out / "metrics" / "eval_distill.json").is_file()
    stages = json.loads((out / "manifest.json").read_text())["completed_stages"]
    assert {"teacher", "student"} <= set(stages["export"]["config_key"])  # resume can check the export too
    teacher = tiny_overrides(tmp_path, "teacher") + tiny_llm_overrides(tmp_path) + ddp
    proc = run_entry("run_teacher", [*teacher, f"teacher.rec_model_checkpoint_path={run}/models/baseline"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "result" / "result_teacher" / "teacher_outputs" / "manifest.json").is_file()


def test_resume_skips_completed_stages(tmp_path):
    """A run stopped at the distillation stage (a missing teacher_outputs_dir: one clear error, exit 2) continues in
    place with resume=true: baseline, teacher and export are not repeated."""
    base = tiny_overrides(tmp_path) + [
        "teacher=sasrec",
        "teacher.num_epochs=1",
        "teacher.model.hidden_size=16",
        "teacher.model.emb_size=16",
        "distill.num_epochs=1",
    ]
    first = run_entry("run_pipeline", base + [f"distill.teacher_outputs_dir={tmp_path / 'no_export'}"], tmp_path)
    assert first.returncode == 2, first.stderr[-3000:]
    assert "teacher_outputs_dir" in first.stderr
    run = tmp_path / "result" / "result_run"
    assert not (run / "models" / "distill" / "manifest.json").exists()
    stamps = {
        rel: (run / rel).stat().st_mtime_ns
        for rel in ("models/baseline/best.ckpt", "models/teacher/best.ckpt", "teacher_outputs/myrank_train.txt")
    }
    times = json.loads((run / "metrics" / "time.json").read_text())
    second = run_entry("run_pipeline", base + ["resume=true"], tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    for rel, stamp in stamps.items():
        assert (run / rel).stat().st_mtime_ns == stamp, f"{rel} was rewritten"
    after = json.loads((run / "metrics" / "time.json").read_text())
    for key in ("student_baseline_train_time", "teacher_train_time_total", "distill_teacher_export_time"):
        assert after[key] == times[key]
    assert "distill_student_train_time" in after
    assert "skipping the stage" in (run / "run_pipeline.log").read_text()
    check_run(run)
    # a changed teacher config redoes the teacher and everything after it, and keeps the baseline
    outputs = run / "teacher_outputs" / "myrank_train.txt"
    later = {rel: (run / rel).stat().st_mtime_ns for rel in ("models/teacher/best.ckpt", "models/distill/best.ckpt")}
    later["teacher_outputs/myrank_train.txt"] = outputs.stat().st_mtime_ns
    third = run_entry("run_pipeline", base + ["resume=true", "teacher.lr=0.003"], tmp_path)
    assert third.returncode == 0, third.stderr[-3000:]
    assert (run / "models/baseline/best.ckpt").stat().st_mtime_ns == stamps["models/baseline/best.ckpt"]
    for rel, stamp in later.items():
        assert (run / rel).stat().st_mtime_ns != stamp, f"{rel} was not redone"
    assert "config changed since it ran: teacher, train" in (run / "run_pipeline.log").read_text()
    check_run(run)


def test_eval_all_rejects_a_missing_checkpoint(tmp_path):
    name = "teacher"
    overrides = tiny_overrides(tmp_path) + [f"eval.{name}_checkpoint={tmp_path / 'nope' / 'best.ckpt'}"]
    proc = run_entry("run_eval_all", overrides, tmp_path)
    assert proc.returncode == 2
    assert f"eval.{name}_checkpoint" in proc.stderr


def test_significance_settings_are_checked_and_can_be_turned_off():
    import numpy as np

    from ilora_dllm2rec.core.errors import ConfigError
    from ilora_dllm2rec.core.schema_groups import Significance
    from ilora_dllm2rec.report.eval_all import compare_with_reference

    values = {m: {"ndcg@10": np.linspace(0, 1, 8), "hr@10": np.ones(8)} for m in ("baseline", "distill")}
    results = {m: {"test": {"num_samples": 8}} for m in values}

    def cfg(**spec):
        base = {"enabled": True, "reference": "baseline", "metrics": ["ndcg@10"], "resamples": 50, "seed": 0}
        return Significance(**{**base, **spec})

    out = compare_with_reference(cfg(), results, "test", values, None)
    assert out["models"]["distill"]["ndcg@10"]["p_value"] == 1.0  # identical values
    assert compare_with_reference(cfg(enabled=False), results, "test", values, None) is None
    assert compare_with_reference(cfg(reference="teacher"), results, "test", values, None) is None
    with pytest.raises(ConfigError, match="eval.significance.metrics"):
        compare_with_reference(cfg(metrics=["ndcg@11"]), results, "test", values, None)
