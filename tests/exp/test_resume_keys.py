"""resume=true compares each stage's config key (exp/common.py): which sections count, and the decision."""

from __future__ import annotations

import json
import logging

from omegaconf import open_dict

from ilora_dllm2rec.core.artifacts import write_manifest
from ilora_dllm2rec.core.run_logging import RunDir
from ilora_dllm2rec.exp.common import mark_stage_complete, stage_config_key, stage_done


def test_teacher_key_ignores_export_options_the_export_key_does_not(tiny_cfg):
    cfg = tiny_cfg("run_teacher")
    other = tiny_cfg("run_teacher", ["teacher.export.top_n=5"])
    assert stage_config_key(cfg, "teacher") == stage_config_key(other, "teacher")
    changed = stage_config_key(other, "export")
    assert [s for s in changed if changed[s] != stage_config_key(cfg, "export")[s]] == ["teacher"]


def test_key_names_the_changed_sections(tiny_cfg):
    old = stage_config_key(tiny_cfg("run_teacher"), "teacher")
    new = stage_config_key(tiny_cfg("run_teacher", ["teacher.lr=0.5"]), "teacher")
    assert sorted(s for s in old if old[s] != new[s]) == ["teacher", "train"]  # train.lr follows teacher.lr
    seed = stage_config_key(tiny_cfg("config", ["general.seed=7"]), "baseline")
    assert seed["general.seed"] != stage_config_key(tiny_cfg("config"), "baseline")["general.seed"]


def _complete_stage(cfg, run: RunDir, record: bool = True) -> None:
    write_manifest(run.models("baseline"), {"data_fingerprint": "fp"})
    if record:
        mark_stage_complete(run, "baseline", {"test_ndcg@10": 0.1}, cfg)


def test_stage_done_requires_the_same_config(tiny_cfg, tmp_path, caplog):
    run = RunDir(tmp_path / "run")
    cfg = tiny_cfg("config", ["resume=true"])
    _complete_stage(cfg, run)
    assert stage_done(cfg, run, "baseline", "models/baseline", "fp")
    assert not stage_done(cfg, run, "baseline", "models/baseline", "other-data")
    changed = tiny_cfg("config", ["resume=true", "student.dropout=0.5"])
    with caplog.at_level(logging.WARNING):
        assert not stage_done(changed, run, "baseline", "models/baseline", "fp")
    assert "config changed since it ran: student" in caplog.text
    with open_dict(cfg):
        cfg.resume = False
    assert not stage_done(cfg, run, "baseline", "models/baseline", "fp")  # without resume every stage runs


def test_stage_done_redoes_a_stage_the_run_manifest_does_not_record(tiny_cfg, tmp_path):
    """Killed between the stage's manifest and the run manifest's entry: the stage is redone."""
    run = RunDir(tmp_path / "run")
    cfg = tiny_cfg("config", ["resume=true"])
    _complete_stage(cfg, run, record=False)
    assert not stage_done(cfg, run, "baseline", "models/baseline", "fp")


def test_stage_done_accepts_a_folder_from_before_config_keys(tiny_cfg, tmp_path, caplog):
    run = RunDir(tmp_path / "run")
    cfg = tiny_cfg("config", ["resume=true"])
    _complete_stage(cfg, run, record=False)
    (run.root / "manifest.json").write_text(json.dumps({"completed_stages": {"baseline": {}}}))
    with caplog.at_level(logging.WARNING):
        assert stage_done(cfg, run, "baseline", "models/baseline", "fp")
    assert "older version" in caplog.text


def test_a_malformed_run_manifest_is_a_clear_error(tiny_cfg, tmp_path):
    import pytest

    from ilora_dllm2rec.core.errors import ArtifactError

    run = RunDir(tmp_path / "run")
    cfg = tiny_cfg("config", ["resume=true"])
    _complete_stage(cfg, run)
    (run.root / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="manifest.json is not valid JSON"):
        stage_done(cfg, run, "baseline", "models/baseline", "fp")
