"""The ensemble teacher (teacher=ensemble): scores against the direct formula, its stage, export and errors."""

from __future__ import annotations

import json

import pytest
import torch

from ilora_dllm2rec.core.errors import ArtifactError, ConfigError
from ilora_dllm2rec.core.run_logging import RunDir
from ilora_dllm2rec.data import prepare_data
from ilora_dllm2rec.exp import stages
from ilora_dllm2rec.handoff.outputs_reader import load_teacher_outputs
from ilora_dllm2rec.student.factory import build_student
from ilora_dllm2rec.student.train import load_student_checkpoint
from ilora_dllm2rec.teacher.ensemble_teacher import EnsembleTeacher, load_ensemble_teacher

from .helpers import run_entry, tiny_overrides

STUDENT = {"name": "sasrec", "emb_size": 8, "hidden_size": 8, "max_seq_len": 6, "num_blocks": 1, "num_heads": 1}


def tiny_members(num_items: int = 12, count: int = 2) -> list:
    torch.manual_seed(0)
    members = [build_student(dict(STUDENT), num_items).eval() for _ in range(count)]
    for i, m in enumerate(members):  # different score scales, so the z-scoring matters
        with torch.no_grad():
            m.item_embedding.weight.mul_(1 + 3 * i)
    return members


def test_scores_are_the_mean_of_standardised_member_scores():
    members = tiny_members()
    seq = torch.tensor([[3, 5, 1, 12, 12, 12], [7, 2, 9, 4, 0, 11]])
    len_seq = torch.tensor([3, 6])
    with torch.no_grad():
        got_z = EnsembleTeacher(members, "zscore").score(seq, len_seq)
        got_lp = EnsembleTeacher(members, "log_softmax").score(seq, len_seq)
        raw = [m(seq, len_seq) for m in members]
    for b in range(2):  # direct formula, one user and one member at a time
        z = [(r[b] - r[b].mean()) / r[b].std() for r in raw]
        lp = [r[b] - torch.logsumexp(r[b], 0) for r in raw]
        assert torch.allclose(got_z[b], (z[0] + z[1]) / 2, atol=1e-5)
        assert torch.allclose(got_lp[b], (lp[0] + lp[1]) / 2, atol=1e-5)
    single = EnsembleTeacher(members[:1]).score(seq, len_seq)
    assert torch.equal(single.argsort(1), raw[0].argsort(1))  # one member: the member's ranking
    emb = EnsembleTeacher(members).item_embeddings()
    assert emb.shape == (12, 16) and torch.equal(emb[:, 8:], members[1].item_embedding.weight[:12])


def test_constructor_errors():
    with pytest.raises(ConfigError, match="teacher.combine"):
        EnsembleTeacher(tiny_members(), "median")
    with pytest.raises(ConfigError, match="no members"):
        EnsembleTeacher([])
    with pytest.raises(ArtifactError, match="item counts"):
        EnsembleTeacher(tiny_members(12, 1) + tiny_members(13, 1))


def test_malformed_or_missing_ensemble_file(tmp_path):
    with pytest.raises(ArtifactError, match="not found"):
        load_ensemble_teacher(tmp_path / "ensemble.json")
    for text in ("{not json", '{"combine": "zscore"}'):
        (tmp_path / "ensemble.json").write_text(text)
        with pytest.raises(ArtifactError, match="ensemble.json is malformed"):
            load_ensemble_teacher(tmp_path / "ensemble.json")


@pytest.fixture
def baseline(tiny_cfg, tmp_path):
    cfg = tiny_cfg()
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    result = stages.baseline(cfg, RunDir(tmp_path / "result" / "result_19990101_000000"), data)
    return data, result


def ensemble_cfg(tiny_cfg, extra=()):
    return tiny_cfg(
        "run_teacher",
        [
            "teacher=ensemble",
            "teacher.num_epochs=1",
            "teacher.model.hidden_size=16",
            "teacher.model.emb_size=16",
            "train.precision=32-true",
            *extra,
        ],
    )


def test_stage_trains_members_adds_checkpoints_and_exports(tiny_cfg, tmp_path, baseline):
    data, base = baseline
    cfg = ensemble_cfg(tiny_cfg, ["teacher.num_members=2", f"teacher.checkpoints=[{base['best_checkpoint']}]"])
    run = RunDir(tmp_path / "result" / "result_20000101_000000")
    payload = stages.teacher(cfg, run, data)
    folder = run.root / "models" / "teacher"
    spec = json.loads((folder / "ensemble.json").read_text())
    assert spec["members"][:2] == ["member_0/best.ckpt", "member_1/best.ckpt"] and len(spec["members"]) == 3
    seeds = [load_student_checkpoint(folder / m)[1]["seed"] for m in spec["members"][:2]]
    assert seeds == [int(cfg.general.seed) + 1, int(cfg.general.seed) + 2]
    assert len(payload["members"]) == 3 and 0 <= payload["test"]["ndcg@10"] <= 1
    assert json.loads((folder / "manifest.json").read_text())["backend"] == "ensemble"

    manifest = stages.export(cfg, run, data)
    outputs = load_teacher_outputs(
        run.teacher_outputs, num_items=data.num_items, train_samples=data.train,
        data_fingerprint=data.fingerprint, candidate_topk=20,
    )  # fmt: skip
    teacher = load_ensemble_teacher(folder / "ensemble.json")
    with torch.no_grad():
        scores = teacher.score(torch.from_numpy(data.train.seq).long(), torch.from_numpy(data.train.len_seq).long())
    assert torch.equal(outputs.ranks[:, 0], scores.argmax(1))
    assert manifest["teacher_backend"] == "ensemble"
    assert outputs.item_embeddings.shape == (data.num_items, 16 + 16 + 16)


def test_members_of_several_kinds(tiny_cfg, tmp_path, baseline):
    """teacher.member_models: the kinds in turn; another kind keeps teacher.model's sizes and its own defaults."""
    data, _ = baseline
    cfg = ensemble_cfg(tiny_cfg, ["teacher.num_members=3", "teacher.member_models=[gru4rec,sasrec]"])
    run = RunDir(tmp_path / "result" / "result_20000101_000000")
    payload = stages.teacher(cfg, run, data)
    folder = run.root / "models" / "teacher"
    members = [load_student_checkpoint(folder / f"member_{i}" / "best.ckpt") for i in range(3)]
    kinds = [hparams["student_cfg"]["name"] for _, hparams in members]
    assert kinds == ["gru4rec", "sasrec", "gru4rec"]
    gru = members[0][1]["student_cfg"]
    assert (gru["emb_size"], gru["hidden_size"], gru["dropout"]) == (16, 16, 0.1)  # teacher.model's sizes
    assert gru["max_seq_len"] == int(cfg.teacher.model.max_seq_len)
    assert members[1][1]["student_cfg"]["num_blocks"] == int(cfg.teacher.model.num_blocks)  # its own kind: model
    assert [m["model"] for m in payload["members"].values()] == ["GRU4Rec", "SASRec", "GRU4Rec"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["teacher.member_models=[caser]", "teacher.model.max_seq_len=3"],
         r"teacher.member_models\[0\].filter_heights"),
        (["teacher.member_models=[gru4rec]", "teacher.num_members=0", "teacher.checkpoints=[x]"],
         "teacher.member_models is set but teacher.num_members=0"),
        (["teacher.member_models=[bert4rec]"], r"teacher.member_models.*bert4rec"),
    ],
)  # fmt: skip
def test_member_models_errors_name_the_key(tiny_cfg, tmp_path, baseline, extra, message):
    data, _ = baseline
    run = RunDir(tmp_path / "result" / "result_20000101_000000")
    with pytest.raises(ConfigError, match=message):
        stages.teacher(ensemble_cfg(tiny_cfg, extra), run, data)
    assert not (run.root / "models" / "teacher").exists()


def test_stage_errors_before_training(tiny_cfg, tmp_path, baseline):
    data, _ = baseline
    run = RunDir(tmp_path / "result" / "result_20000101_000000")
    with pytest.raises(ArtifactError, match=r"teacher.checkpoints\[0\]=.*nowhere"):
        stages.teacher(ensemble_cfg(tiny_cfg, [f"teacher.checkpoints=[{tmp_path / 'nowhere'}]"]), run, data)
    with pytest.raises(ConfigError, match="at least one member"):
        stages.teacher(ensemble_cfg(tiny_cfg, ["teacher.num_members=0"]), run, data)
    with pytest.raises(ConfigError, match="teacher.combine"):
        stages.teacher(ensemble_cfg(tiny_cfg, ["teacher.combine=vote"]), run, data)
    assert not (run.root / "models" / "teacher" / "member_0").exists()  # nothing trained


def test_member_from_another_data_set_is_rejected(tiny_cfg, tmp_path, baseline):
    _, base = baseline
    cfg = ensemble_cfg(tiny_cfg, ["dataset.synthetic.num_items=50", "teacher.num_members=0",
                                  f"teacher.checkpoints=[{base['best_checkpoint']}]"])  # fmt: skip
    other = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    with pytest.raises(ArtifactError, match="trained on other data"):
        stages.teacher(cfg, RunDir(tmp_path / "result" / "result_20000101_000000"), other)


def test_pipeline_with_ensemble_teacher(tmp_path):
    overrides = tiny_overrides(tmp_path) + [
        "teacher=ensemble",
        "teacher.num_members=2",
        "teacher.num_epochs=2",
        "teacher.model.hidden_size=16",
        "teacher.model.emb_size=16",
        "distill.num_epochs=2",
    ]
    proc = run_entry("run_pipeline", overrides, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "result" / "result_run"
    results = json.loads((run / "all_evaluation_results.json").read_text())["models"]
    teacher_eval = json.loads((run / "metrics" / "eval_teacher.json").read_text())
    assert results["teacher"]["test"]["ndcg@10"] == pytest.approx(teacher_eval["test"]["ndcg@10"], abs=1e-6)
