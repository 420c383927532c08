"""Rank-0-only writes under DDP (core/distributed.py); the multi-process run is in tests/exp/test_pipeline.py."""

from __future__ import annotations

import pytest
from lightning.pytorch.utilities import rank_zero_only

from ilora_dllm2rec.core import distributed
from ilora_dllm2rec.core.artifacts import update_json, write_manifest
from ilora_dllm2rec.core.report import print_metrics_table
from ilora_dllm2rec.core.run_logging import RunDir, stage_log_file


@pytest.fixture
def rank_one(monkeypatch):
    """This process as Lightning's second rank before it joins the process group."""
    monkeypatch.setattr(rank_zero_only, "rank", 1)


def test_rank_comes_from_lightning_before_the_group_exists(rank_one):
    assert distributed.global_rank() == 1 and not distributed.is_rank_zero()
    distributed.barrier()  # no process group: a no-op, not a hang
    with distributed.rank_zero_first():
        pass
    assert distributed.leave_other_ranks() is False


def test_other_ranks_write_nothing(rank_one, tmp_path, capsys):
    write_manifest(tmp_path / "stage", {"a": 1})
    update_json(tmp_path / "time.json", {"t": 1.0})
    print_metrics_table("title", {"row": {"ndcg@10": 0.5}})
    run = RunDir(tmp_path / "run")
    with stage_log_file(run, "baseline") as slog:
        slog.info("hello")
    assert not (tmp_path / "stage" / "manifest.json").exists() and not (tmp_path / "time.json").exists()
    assert not run.log_file("baseline").exists()
    assert "title" not in capsys.readouterr().out


def test_rank_zero_writes(tmp_path, capsys):
    assert distributed.is_rank_zero()
    write_manifest(tmp_path / "stage", {"a": 1})
    print_metrics_table("title", {"row": {"ndcg@10": 0.5}})
    assert (tmp_path / "stage" / "manifest.json").is_file() and "title" in capsys.readouterr().out


def test_rank_from_the_launchers_environment_without_torch_loaded():
    """Entry points check rank before torch or Lightning load (so config errors stay fast)."""
    import os
    import subprocess
    import sys

    code = (
        "import sys; from ilora_dllm2rec.core.distributed import global_rank; "
        "assert 'torch' not in sys.modules; print(global_rank())"
    )
    env = {**os.environ, "LOCAL_RANK": "1"}
    env.pop("RANK", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
