"""conf/distill/dllm2rec.yaml: the key names users' configs use exist and drive the loss."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from ilora_dllm2rec.distill.kd_losses import ranking_loss_kwargs

CONF = Path(__file__).resolve().parents[2] / "conf"


def test_dllm2rec_defaults():
    cfg = OmegaConf.create({"distill": OmegaConf.load(CONF / "distill" / "dllm2rec.yaml")}).distill
    assert (cfg.alpha, cfg.ed_weight, cfg.rd_weight) == (0.5, 0.3, 0.7)
    assert (cfg.candidate_topk, cfg.gamma_position, cfg.gamma_confidence, cfg.gamma_consistency) == (10, 0.3, 0.5, 0.1)
    assert (cfg.batch_size, cfg.lr, cfg.weight_decay, cfg.num_epochs) == (256, 1e-3, 0.0, 200)
    for key in ("teacher_outputs_dir", "teacher_checkpoint_path", "baseline_checkpoint_path"):
        assert cfg[key] is None
    assert cfg.use_dros == "auto" and cfg.use_ranking_distill and cfg.use_embedding_distill and not cfg.reference_compat
    assert ranking_loss_kwargs(cfg)["alpha"] == 0.5


def test_the_old_names_of_rd_weight_are_refused_with_the_new_one():
    from ilora_dllm2rec.core.override_check import composition_error

    for old in ("distill.lam", "distill.lambda"):
        assert composition_error("run_distill", [f"{old}=0.2"]) == f"{old} was removed: use distill.rd_weight " + (
            "(the weight of the ranking-distillation loss L_RD)"
        )
