"""Every experiment preset composes with every entry point's primary config (unknown keys would fail)."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir

from ilora_dllm2rec.core.config import config_dir

PRESETS = sorted(p.stem for p in (config_dir() / "experiment").glob("*.yaml"))
PRIMARY = ["config", "run_teacher", "run_distill", "run_eval_all", "run_pipeline"]


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("primary", PRIMARY)
def test_preset_composes(preset: str, primary: str) -> None:
    with initialize_config_dir(str(config_dir()), version_base=None):
        cfg = compose(primary, overrides=[f"experiment={preset}"])
    assert cfg.dataset.name and cfg.student.name  # every preset leaves a complete config


def test_ml100k_cpu_preset_values() -> None:
    with initialize_config_dir(str(config_dir()), version_base=None):
        cfg = compose("run_pipeline", overrides=["experiment=ml100k_cpu", "teacher.num_epochs=2"])
    assert cfg.dataset.name == "ml-100k" and cfg.active.strategy == "uncertainty"
    assert cfg.teacher.max_history_items == 10 and cfg.teacher.num_epochs == 2  # CLI beats the preset
    assert cfg.distill.use_embedding_distill is False  # measured: SmolLM2 title states hurt as input embeddings
    with initialize_config_dir(str(config_dir()), version_base=None):
        on = compose("run_pipeline", overrides=["experiment=ml100k_cpu", "distill.use_embedding_distill=true"])
    assert on.distill.use_embedding_distill is True


@pytest.mark.parametrize(("backend", "patience"), [("ilora", 3), ("sasrec", 10)])
def test_teacher_preset_patience_follows_the_backend(backend: str, patience: int) -> None:
    with initialize_config_dir(str(config_dir()), version_base=None):
        cfg = compose("run_teacher", overrides=[f"teacher={backend}"])
        overridden = compose("run_teacher", overrides=[f"teacher={backend}", "teacher.patience=4"])
    assert cfg.train.patience == patience and overridden.train.patience == 4


def test_ml100k_dllm2rec_preset_values() -> None:
    """DLLM2Rec's setting: bce + DROS students, the ID teacher, every row distilled, ranking distillation only."""
    with initialize_config_dir(str(config_dir()), version_base=None):
        cfg = compose("run_pipeline", overrides=["experiment=ml100k_dllm2rec"])
        ilora = compose("run_pipeline", overrides=["experiment=ml100k_dllm2rec", "teacher=ilora"])
    assert cfg.dataset.name == "ml-100k" and cfg.student.loss == "dros"
    assert cfg.teacher.backend == "sasrec" and cfg.active.strategy == "all"
    assert cfg.distill.use_embedding_distill is False and cfg.distill.use_ranking_distill is True
    assert ilora.teacher.backend == "ilora" and ilora.student.loss == "dros"  # the teacher stays swappable


def test_ml100k_ce_distill_preset_values() -> None:
    """The CE student's distillation: ensemble teacher, softmax ranking distillation + listwise term, every row."""
    with initialize_config_dir(str(config_dir()), version_base=None):
        cfg = compose("run_pipeline", overrides=["experiment=ml100k_ce_distill"])
    assert cfg.dataset.name == "ml-100k" and cfg.student.loss == "ce" and cfg.active.strategy == "all"
    assert cfg.teacher.backend == "ensemble" and cfg.teacher.combine == "log_softmax"
    assert cfg.teacher.export.top_n >= cfg.distill.candidate_topk
    assert cfg.distill.rd_form in ("auto", "softmax") and cfg.distill.listwise_weight > 0
    assert cfg.distill.use_embedding_distill is False
    # one member of each kind (a trained member's kind follows member_models), listwise weight 3
    assert cfg.teacher.num_members == 3 and list(cfg.teacher.member_models) == ["sasrec", "gru4rec", "caser"]
    assert cfg.distill.listwise_weight == 3.0 and cfg.train.precision == "32-true"


def test_ml100k_ce_distill_mixed_preset_values() -> None:
    """The strongest measured teacher for the CE SASRec: the CE preset with nine members of three kinds."""
    with initialize_config_dir(str(config_dir()), version_base=None):
        base = compose("run_pipeline", overrides=["experiment=ml100k_ce_distill"])
        cfg = compose("run_pipeline", overrides=["experiment=ml100k_ce_distill_mixed"])
        cli = compose("run_pipeline", overrides=["experiment=ml100k_ce_distill_mixed", "teacher.num_members=3"])
    assert cfg.teacher.num_members == 9 and list(cfg.teacher.member_models) == ["sasrec", "gru4rec", "caser"]
    assert cfg.distill.listwise_weight == base.distill.listwise_weight == 3.0
    assert cfg.teacher.combine == base.teacher.combine and cfg.teacher.export == base.teacher.export
    assert cfg.distill.use_embedding_distill is False and cfg.teacher.model.num_blocks == 1  # the rest: the preset's
    assert cli.teacher.num_members == 3  # the command line beats the preset
    assert base.teacher.num_members == 3
