"""Distillation stage: discovery of teacher outputs, selection at training time, init from baseline, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ilora_dllm2rec.core.errors import ArtifactError, ConfigError
from ilora_dllm2rec.core.run_logging import RunDir
from ilora_dllm2rec.data import prepare_data
from ilora_dllm2rec.distill.train import init_from_baseline
from ilora_dllm2rec.exp import stages
from ilora_dllm2rec.student.factory import build_student
from ilora_dllm2rec.student.train import load_student_checkpoint

from .helpers import run_entry, tiny_overrides


@pytest.fixture
def exported(tiny_cfg, tmp_path):
    """A baseline run and a teacher run (ID teacher) with its export, like two earlier runs on disk."""
    cfg = tiny_cfg()
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    stages.baseline(cfg, RunDir(tmp_path / "result" / "result_20000101_000000"), data)
    tcfg = tiny_cfg(
        "run_teacher",
        ["teacher=sasrec", "teacher.num_epochs=1", "teacher.model.hidden_size=16", "teacher.model.emb_size=16"],
    )
    trun = RunDir(tmp_path / "result" / "result_20000101_000001")
    stages.teacher(tcfg, trun, data)
    stages.export(tcfg, trun, data)
    return data, trun


def distill_cfg(tiny_cfg, extra=()):
    return tiny_cfg("run_distill", ["distill.num_epochs=2", *extra])


def test_distill_discovers_newest_export(tiny_cfg, tmp_path, exported):
    data, trun = exported
    run = RunDir(tmp_path / "result" / "result_20000101_000002")
    result = stages.distill(distill_cfg(tiny_cfg), run, data)
    assert result["teacher_outputs"] == str(trun.teacher_outputs)
    assert result["kd_samples"] == len(data.train)
    saved = json.loads(run.metrics("eval_distill.json").read_text())
    assert saved["test"] == result["test"]
    assert "distill_student_train_time" in run.timings()


def test_random_policy_limits_kd_rows(tiny_cfg, tmp_path, exported):
    data, _ = exported
    run = RunDir(tmp_path / "result" / "result_20000101_000002")
    result = stages.distill(distill_cfg(tiny_cfg, ["active=random", "active.budget_ratio=0.25"]), run, data)
    assert result["kd_samples"] == int(np.floor(0.25 * len(data.train) + 0.5))


def test_uncertainty_policy_uses_the_baseline(tiny_cfg, tmp_path, exported):
    data, _ = exported
    run = RunDir(tmp_path / "result" / "result_20000101_000002")
    result = stages.distill(distill_cfg(tiny_cfg, ["active=uncertainty", "active.budget_ratio=0.5"]), run, data)
    assert result["kd_samples"] == int(np.floor(0.5 * len(data.train) + 0.5))


@pytest.mark.parametrize("embedding_distill", ["false", "true"])
def test_init_from_baseline(tiny_cfg, tmp_path, exported, embedding_distill):
    data, _ = exported
    run = RunDir(tmp_path / "result" / "result_20000101_000002")
    cfg = distill_cfg(
        tiny_cfg, ["distill.init_from_baseline=true", f"distill.use_embedding_distill={embedding_distill}"]
    )
    result = stages.distill(cfg, run, data)
    assert result["best_epoch"] >= 0
    assert "initialised from baseline" in (run.root / "logs" / "train_distill.log").read_text()


def test_no_export_anywhere_is_a_clear_error(tiny_cfg, tmp_path):
    cfg = distill_cfg(tiny_cfg)
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    with pytest.raises(ArtifactError, match="run run-teacher first"):
        stages.distill(cfg, RunDir(tmp_path / "result" / "result_20000101_000002"), data)


def test_run_distill_rejects_misaligned_teacher_outputs(tmp_path, exported):
    """Teacher rows that do not line up with the training samples: exit 2, both sides named."""
    data, trun = exported
    ranks = trun.teacher_outputs / "myrank_train.txt"
    lines = ranks.read_text().splitlines()
    ranks.write_text("\n".join(lines[:-1]) + "\n")  # one row short
    overrides = tiny_overrides(tmp_path, "20000101_000003") + [f"distill.teacher_outputs_dir={trun.teacher_outputs}"]
    proc = run_entry("run_distill", overrides, tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    line = [x for x in proc.stderr.splitlines() if x.startswith("error:")][0]
    assert str(len(data.train)) in line and str(len(data.train) - 1) in line


def test_same_seed_same_distilled_metrics(tiny_cfg, tmp_path, exported):
    """Two distillation runs from the same export with the same seed give identical metrics."""
    data, _ = exported
    results = [
        stages.distill(distill_cfg(tiny_cfg), RunDir(tmp_path / "result" / f"result_20000101_00001{i}"), data)
        for i in range(2)
    ]
    assert results[0]["val"] == results[1]["val"] and results[0]["test"] == results[1]["test"]


def test_init_from_a_baseline_of_another_shape_is_a_clear_error(tiny_cfg, tmp_path, exported):
    """A two-block baseline must not half-initialise a one-block student (older baselines have two blocks)."""
    data, _ = exported
    run = RunDir(tmp_path / "result" / "result_20000101_000002")
    cfg = distill_cfg(tiny_cfg, ["distill.init_from_baseline=true", "student.num_blocks=2"])
    with pytest.raises(ConfigError, match=r"student\.num_blocks: 1 there, 2 here.*init_from_baseline=false"):
        stages.distill(cfg, run, data)


def test_init_from_baseline_copies_every_baseline_weight(tiny_cfg, tmp_path, exported):
    data, _ = exported
    path = tmp_path / "result" / "result_20000101_000000" / "models" / "baseline" / "best.ckpt"
    baseline, hparams = load_student_checkpoint(path)
    student = build_student(hparams["student_cfg"], data.num_items)
    student.set_llm_item_embeddings(torch.randn(data.num_items, 12), 0.3)  # ED parameters: new, not copied
    init_from_baseline(student, path, dict(hparams["student_cfg"]))
    copied = student.state_dict()
    for key, value in baseline.state_dict().items():
        assert torch.equal(copied[key], value), key


@pytest.mark.parametrize(("student_loss", "form"), [("ce", "softmax"), ("bce", "bce")])
def test_rd_form_auto_and_listwise_term_train_end_to_end(tiny_cfg, tmp_path, exported, student_loss, form):
    data, _ = exported
    run = RunDir(tmp_path / "result" / "result_20000101_000002")
    extra = [
        f"student.loss={student_loss}",
        "distill.listwise_weight=1.0",
        "distill.listwise_topn=15",
        "distill.listwise_temperature=2.0",
        "distill.use_embedding_distill=false",
    ]
    result = stages.distill(distill_cfg(tiny_cfg, extra), run, data)
    assert np.isfinite(result["test"]["ndcg@10"])
    log = (run.root / "logs" / "train_distill.log").read_text()
    assert f"rd_form={form}, K=10" in log and "listwise_weight=1.0 over 15 columns" in log


def test_listwise_topn_above_the_export_is_a_config_error(tiny_cfg, tmp_path, exported):
    data, _ = exported
    run = RunDir(tmp_path / "result" / "result_20000101_000002")
    cfg = distill_cfg(tiny_cfg, ["distill.listwise_weight=1.0", "distill.listwise_topn=500"])
    with pytest.raises(ConfigError, match=r"distill\.listwise_topn=500 exceeds top_n"):
        stages.distill(cfg, run, data)


def test_bucket_normaliser_refuses_distances_that_are_not_log_probabilities(tiny_cfg, tmp_path, exported):
    data, trun = exported
    conf = trun.teacher_outputs / "confidence_train.txt"
    conf.write_text("\n".join(" ".join("0.01" for _ in line.split()) for line in conf.read_text().splitlines()) + "\n")
    run = RunDir(tmp_path / "result" / "result_20000101_000002")
    with pytest.raises(ArtifactError, match="confidence_train.txt: row 0.*listwise_normaliser=topn"):
        stages.distill(distill_cfg(tiny_cfg, ["distill.listwise_weight=1.0"]), run, data)
    topn = distill_cfg(tiny_cfg, ["distill.listwise_weight=1.0", "distill.listwise_normaliser=topn"])
    assert np.isfinite(stages.distill(topn, run, data)["test"]["ndcg@10"])


def test_function_matching_trains_end_to_end_from_the_exports_teacher(tiny_cfg, tmp_path, exported):
    data, _ = exported
    run = RunDir(tmp_path / "result" / "result_20000101_000002")
    extra = ["distill.function_matching_weight=1.0", "distill.function_matching_temperature=2.0"]
    result = stages.distill(distill_cfg(tiny_cfg, extra), run, data)
    assert np.isfinite(result["test"]["ndcg@10"])
    assert "function_matching_weight=1.0" in (run.root / "logs" / "train_distill.log").read_text()
    saved = torch.load(run.models("distill") / "best.ckpt", weights_only=False)["state_dict"]
    assert all(key.startswith("model.") for key in saved), "the online teacher must not be saved with the student"


@pytest.mark.parametrize(
    ("edit", "error", "match"),
    [
        ({"teacher_backend": "ilora"}, ConfigError, r"manifest.json comes from a 'ilora' teacher"),
        ({"teacher_checkpoint": "/nowhere/best.ckpt"}, ArtifactError, r"teacher_checkpoint /nowhere/best.ckpt is not"),
    ],
)
def test_function_matching_needs_the_exports_id_teacher(tiny_cfg, tmp_path, exported, edit, error, match):
    data, trun = exported
    manifest = trun.teacher_outputs / "manifest.json"
    manifest.write_text(json.dumps(json.loads(manifest.read_text()) | edit))
    run = RunDir(tmp_path / "result" / "result_20000101_000002")
    with pytest.raises(error, match=match):
        stages.distill(distill_cfg(tiny_cfg, ["distill.function_matching_weight=1.0"]), run, data)
