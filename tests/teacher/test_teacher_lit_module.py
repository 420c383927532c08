"""TeacherLitModule: a NaN loss stops with the step named; checkpoints hold only trained tensors."""

from __future__ import annotations

import pytest
import torch

from ilora_dllm2rec.core.errors import TrainingError
from ilora_dllm2rec.teacher.imitation import LambdaSchedule
from ilora_dllm2rec.teacher.lit_module import TeacherLitModule


def make_module(model) -> TeacherLitModule:
    module = TeacherLitModule(
        model,
        lr=1e-3,
        gate_lr_scale=0.3,
        weight_decay=0.0,
        warmup_ratio=0.0,
        loss_type="mse",
        temperature=0.1,
        schedule_factory=lambda total: LambdaSchedule(1.0, 0.0, "linear", None, total),
        meta={"num_items": 1},
    )
    module.schedule = module.schedule_factory(10)
    return module


def test_nan_loss_names_the_step(make_model, batch):
    model = make_model()
    module = make_module(model)
    seq, len_seq = batch
    with torch.no_grad():
        model.projector[0].weight.fill_(float("nan"))
    target = torch.zeros(seq.shape[0], dtype=torch.long)
    with pytest.raises(TrainingError, match="at step 0"):
        module.training_step({"seq": seq, "len_seq": len_seq, "target": target}, 0)


def test_checkpoint_keeps_only_trained_tensors(make_model):
    module = make_module(make_model())
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    trained = {f"model.{n}" for n, p in module.model.named_parameters() if p.requires_grad}
    assert set(checkpoint["state_dict"]) == trained
    assert checkpoint["teacher_meta"] == {"num_items": 1}
