"""Teacher stage: export order and sharding, and the teacher's bad-input errors (in-process, fast)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from omegaconf import open_dict

from ilora_dllm2rec.core.config import with_train_preset
from ilora_dllm2rec.core.errors import ArtifactError, ConfigError
from ilora_dllm2rec.core.run_logging import RunDir
from ilora_dllm2rec.data import prepare_data
from ilora_dllm2rec.exp import stages
from ilora_dllm2rec.handoff.outputs_reader import load_teacher_outputs
from ilora_dllm2rec.teacher.export import predict_top_n
from ilora_dllm2rec.teacher.id_teacher import load_id_teacher


@pytest.fixture
def baseline_run(tiny_cfg, tmp_path):
    cfg = tiny_cfg()
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    run = RunDir(tmp_path / "result" / "result_19990101_000000")
    result = stages.baseline(cfg, run, data)
    return cfg, data, run, result


def load_teacher(cfg, data, path):
    """The iLoRA teacher at ``path`` as a stage of ``cfg`` loads it (this run's teacher.pad_to_multiple_of wins)."""
    from ilora_dllm2rec.teacher.train import load_teacher_checkpoint

    return load_teacher_checkpoint(path, data, cfg.paths.model_cache_dir, cfg.teacher.pad_to_multiple_of)


def teacher_cfg(tiny_cfg, tmp_path, extra=()):
    cfg = tiny_cfg(
        "run_teacher",
        [
            f"teacher.llm_path=tiny:{tmp_path / 'tinyllm'}",
            "teacher.num_epochs=1",
            "teacher.max_train_samples=16",
            "teacher.max_eval_samples=8",
            "teacher.max_prompt_tokens=48",
            *extra,
        ],
    )
    return cfg


def test_export_rows_follow_training_order_and_manifest(tiny_cfg, tmp_path, baseline_run):
    _, data, _, _ = baseline_run
    cfg = tiny_cfg(
        "run_teacher",
        [
            "teacher=sasrec",
            "teacher.num_epochs=1",
            "teacher.model.hidden_size=16",
            "train.precision=32-true",
            "teacher.model.emb_size=16",
        ],
    )
    run = RunDir(tmp_path / "result" / "result_20000101_000000")
    stages.teacher(cfg, run, data)
    manifest = stages.export(cfg, run, data)
    assert manifest["train_order_fingerprint"] == data.train.order_fingerprint()
    assert manifest["num_rows"] == len(data.train) and manifest["top_n"] == 20
    outputs = load_teacher_outputs(
        run.teacher_outputs,
        num_items=data.num_items,
        train_samples=data.train,
        data_fingerprint=data.fingerprint,
        candidate_topk=20,
    )
    teacher = load_id_teacher(run.root / "models" / "teacher" / "best.ckpt")
    with torch.no_grad():
        scores = teacher.score(torch.from_numpy(data.train.seq).long(), torch.from_numpy(data.train.len_seq).long())
    expected_top1 = scores.argmax(dim=1)
    assert torch.equal(outputs.ranks[:, 0], expected_top1)
    expected_dist = -torch.log_softmax(scores, dim=1).gather(1, expected_top1[:, None]).squeeze(1)
    assert torch.allclose(outputs.confidences[:, 0], expected_dist, atol=1e-4)
    assert torch.all(outputs.confidences[:, 1:] >= outputs.confidences[:, :-1] - 1e-6)  # best first
    assert outputs.item_embeddings.shape == (data.num_items, 16)
    assert json.loads((run.time_json).read_text())["distill_teacher_export_time"] > 0
    assert manifest["distance"] == "neg_log_softmax"  # what the listwise KD term's tail bucket relies on
    rows = f"{len(data.train):,}"
    assert f"export: {rows}/{rows} rows (100%)" in (run.root / "logs" / "train_teacher.log").read_text()


def test_export_sharded_over_two_processes_matches_single(tiny_cfg, tmp_path, baseline_run):
    """Lightning ddp_spawn with 2 CPU processes: rows are sharded, then merged back in order."""
    cfg, data, run, result = baseline_run
    teacher = load_id_teacher(result["best_checkpoint"])
    single = predict_top_n(
        teacher, data.train, top_n=10, batch_size=64, train_cfg=cfg.train, shard_dir=tmp_path / "shards1"
    )
    ddp_cfg = cfg.train.copy()
    with open_dict(ddp_cfg):
        ddp_cfg.accelerator, ddp_cfg.devices, ddp_cfg.strategy = "cpu", 2, "ddp_spawn"
    sharded = predict_top_n(
        teacher, data.train, top_n=10, batch_size=64, train_cfg=ddp_cfg, shard_dir=tmp_path / "shards2"
    )
    assert np.array_equal(single[0], sharded[0])
    assert np.allclose(single[1], sharded[1], atol=1e-5)


def test_teacher_trains_its_own_baseline_and_exports(tiny_cfg, tmp_path, monkeypatch):
    from ilora_dllm2rec.teacher import train as teacher_train

    cfg = teacher_cfg(tiny_cfg, tmp_path)
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    run = RunDir(tmp_path / "result" / "result_20000101_000000")
    loaders = []
    build = teacher_train.build_dataloader
    monkeypatch.setattr(teacher_train, "build_dataloader", lambda *a, **k: loaders.append(k) or build(*a, **k))
    result = stages.teacher(cfg, run, data, [])
    lengths = loaders[0]["lengths"]  # teacher.group_by_length (default): training batches grouped by prompt length
    assert loaders[0]["shuffle"] and len(lengths) == 16 and lengths.min() > 0 and lengths.max() <= 48
    assert all(k.get("lengths") is None for k in loaders[1:])  # validation keeps its order
    assert (run.root / "models" / "baseline" / "manifest.json").is_file()  # trained first: none existed
    assert result["parameters"]["trainable"] < result["parameters"]["total"]
    ckpt = torch.load(run.root / "models" / "teacher" / "best.ckpt", map_location="cpu", weights_only=False)
    assert all(k.startswith("model.") for k in ckpt["state_dict"])
    assert not any(".base_layer." in k or "embed_tokens" in k for k in ckpt["state_dict"])  # adapters only
    assert ckpt["teacher_meta"]["num_items"] == data.num_items
    manifest = stages.export(cfg, run, data)
    assert manifest["num_rows"] == len(data.train)
    assert manifest["hidden_size"] == 32  # D of the tiny LLM, read from the model
    with open_dict(cfg):  # an inference-only knob: the loading run's value wins over the checkpoint's
        cfg.teacher.pad_to_multiple_of = 3
    teacher, _ = load_teacher(cfg, data, run.root / "models" / "teacher")
    assert teacher.pad_to_multiple_of == 3 and not teacher.training
    with open_dict(cfg):
        cfg.teacher.pad_to_multiple_of = 0
    with pytest.raises(ConfigError, match="teacher.pad_to_multiple_of"):
        load_teacher(cfg, data, run.root / "models" / "teacher")


def test_missing_student_checkpoint(tiny_cfg, tmp_path):
    cfg = teacher_cfg(tiny_cfg, tmp_path, [f"teacher.rec_model_checkpoint_path={tmp_path / 'none.ckpt'}"])
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    with pytest.raises(ArtifactError, match="not found"):
        stages.teacher(cfg, RunDir(tmp_path / "r"), data, [])


def test_mismatched_student_checkpoint(tiny_cfg, tmp_path, baseline_run):
    _, _, _, result = baseline_run
    cfg = teacher_cfg(
        tiny_cfg,
        tmp_path,
        [f"teacher.rec_model_checkpoint_path={result['best_checkpoint']}", "dataset.synthetic.num_items=38"],
    )
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    with pytest.raises(ArtifactError, match="num_items"):
        stages.teacher(cfg, RunDir(tmp_path / "r"), data, [])


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["teacher.num_experts=3"], "num_experts"),
        (["teacher.target_modules=[q_proj,not_a_layer]"], "q_proj"),
        (["teacher.llm_path=/no/such/model/folder"], "/no/such/model/folder"),
        (["teacher.distill_loss_type=bogus"], "distill_loss_type"),
        (["teacher.pad_to_multiple_of=0"], "pad_to_multiple_of"),
    ],
)
def test_teacher_config_errors(tiny_cfg, tmp_path, baseline_run, extra, match):
    _, _, _, result = baseline_run
    cfg = teacher_cfg(tiny_cfg, tmp_path, [f"teacher.rec_model_checkpoint_path={result['best_checkpoint']}", *extra])
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    with pytest.raises((ConfigError, ArtifactError), match=match):
        stages.teacher(cfg, RunDir(tmp_path / "r"), data, [])


def test_train_preset_switch_keeps_command_line_train_overrides(tiny_cfg):
    cfg = tiny_cfg()
    teacher = with_train_preset(cfg, "teacher", ["train.accelerator=cpu", "student.hidden_size=8"])
    assert teacher.train.name == "teacher" and teacher.train.accelerator == "cpu"
    assert teacher.train.batch_size == cfg.teacher.batch_size
    with pytest.raises(ConfigError, match="train.bogus"):
        with_train_preset(cfg, "teacher", ["train.bogus=1"])


def test_train_preset_switch_keeps_experiment_values(tiny_cfg):
    cfg = tiny_cfg(extra=["experiment=quickstart"])
    distill = with_train_preset(cfg, "distill", ["experiment=quickstart", "train.log_every_n_steps=7"])
    assert distill.train.name == "distill" and distill.train.patience == 5 and distill.train.log_every_n_steps == 7


def test_export_selection_reads_the_teachers_explicit_student(tiny_cfg, tmp_path, baseline_run):
    """active=uncertainty in a run without its own baseline and no baseline run under paths.result_root:
    the iLoRA teacher's teacher.rec_model_checkpoint_path is the baseline the policy reads."""
    from ilora_dllm2rec.teacher.stages import select_export_samples

    _, data, _, result = baseline_run

    def cfg_with(extra):
        cfg = teacher_cfg(tiny_cfg, tmp_path, ["active=uncertainty", "active.budget_ratio=0.25", *extra])
        with open_dict(cfg):
            cfg.paths.result_root = str(tmp_path / "elsewhere")  # no baseline run to discover here
        return cfg

    run = RunDir(tmp_path / "elsewhere" / "result_20000101_000000")
    ids = select_export_samples(
        stages.export_stage(cfg_with([f"teacher.rec_model_checkpoint_path={result['best_checkpoint']}"])), data, run
    )
    expected = select_export_samples(
        stages.export_stage(cfg_with([f"distill.baseline_checkpoint_path={result['best_checkpoint']}"])), data, run
    )
    assert abs(len(ids) - 0.25 * len(data.train)) <= 1 and np.array_equal(ids, expected)
    with pytest.raises(ArtifactError, match="no complete baseline run"):
        select_export_samples(stages.export_stage(cfg_with([])), data, run)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["active=uncertainty"], "no complete baseline run"),  # the export's policy would find no baseline
        (["teacher.export.top_n=100000"], "teacher.export.top_n=100000"),
        (["teacher.export.top_n=0"], "teacher.export.top_n must be an integer >= 1, got 0"),  # the config schema
    ],
)
def test_run_teacher_fails_before_training_on_export_inputs(tmp_path, extra, message):
    from tests.exp.helpers import run_entry, tiny_overrides

    proc = run_entry("run_teacher", [*tiny_overrides(tmp_path), "teacher=sasrec", *extra], tmp_path)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "result" / "result_run" / "models" / "teacher").exists()  # nothing trained


def test_run_teacher_resume_exports_without_retraining(tmp_path):
    """run-teacher killed during the export (its files are written atomically, the manifest last, so a killed
    export leaves no manifest) continues with resume=true: the teacher is kept, only the export runs; a third
    call repeats nothing."""
    import shutil

    from tests.exp.helpers import run_entry, tiny_overrides

    base = [*tiny_overrides(tmp_path), "teacher=sasrec", "teacher.num_epochs=1"]
    first = run_entry("run_teacher", base, tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    run = tmp_path / "result" / "result_run"
    ckpt = run / "models" / "teacher" / "best.ckpt"
    stamp, train_time = ckpt.stat().st_mtime_ns, json.loads((run / "metrics" / "time.json").read_text())
    shutil.rmtree(run / "teacher_outputs")  # as if killed before the export's manifest was written
    second = run_entry("run_teacher", [*base, "resume=true"], tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    assert ckpt.stat().st_mtime_ns == stamp  # not retrained
    times = json.loads((run / "metrics" / "time.json").read_text())
    assert times["teacher_train_time_total"] == train_time["teacher_train_time_total"]
    ranks = run / "teacher_outputs" / "myrank_train.txt"
    assert (run / "teacher_outputs" / "manifest.json").is_file()
    ranks_stamp = ranks.stat().st_mtime_ns
    completed = json.loads((run / "manifest.json").read_text())["completed_stages"]
    assert completed["export"]["rows"] == completed["export"]["train_samples"] > 0  # active=all: every sample
    third = run_entry("run_teacher", [*base, "resume=true"], tmp_path)
    assert third.returncode == 0 and ranks.stat().st_mtime_ns == ranks_stamp and ckpt.stat().st_mtime_ns == stamp
    assert "skipping the stage" in third.stderr + (run / "run_teacher.log").read_text()
    # an export-only change re-exports with the kept teacher
    fourth = run_entry("run_teacher", [*base, "resume=true", "teacher.export.top_n=3"], tmp_path)
    assert fourth.returncode == 0, fourth.stderr[-2000:]
    assert ckpt.stat().st_mtime_ns == stamp and ranks.stat().st_mtime_ns != ranks_stamp
    assert json.loads((run / "teacher_outputs" / "manifest.json").read_text())["top_n"] == 3


def test_head_refit_saves_its_own_checkpoint_and_export_uses_it(tiny_cfg, tmp_path):

    cfg = teacher_cfg(tiny_cfg, tmp_path, ["teacher.head_refit.samples=24", "teacher.head_refit.epochs=3"])
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    run = RunDir(tmp_path / "result" / "result_20000101_000000")
    result = stages.teacher(cfg, run, data, [])
    folder = run.root / "models" / "teacher"
    refit = result["head_refit"]
    assert refit["num_samples"] == 24 and 2 <= len(refit["val_ndcg@10_per_epoch"]) <= 4
    assert json.loads((folder / "manifest.json").read_text())["best_checkpoint"] == "head_refit.ckpt"
    first = torch.load(folder / "best.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    second = torch.load(folder / "head_refit.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first if not k.startswith("model.head."))
    assert json.loads(run.time_json.read_text())["teacher_head_refit_time"] > 0
    teacher, _ = load_teacher(cfg, data, folder)  # the folder: the manifest's choice
    assert torch.equal(teacher.head.weight, second["model.head.weight"])
    assert stages.export(cfg, run, data)["num_rows"] == len(data.train)
