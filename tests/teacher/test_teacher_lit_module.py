"""TeacherLitModule: a NaN loss stops with the step named and says which checkpoint exists; checkpoints hold only
trained tensors."""

from __future__ import annotations

from types import SimpleNamespace

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


def _nan_step(model, module, batch) -> str:
    seq, len_seq = batch
    with torch.no_grad():
        model.projector[0].weight.fill_(float("nan"))
    target = torch.zeros(seq.shape[0], dtype=torch.long)
    with pytest.raises(TrainingError) as exc:
        module.training_step({"seq": seq, "len_seq": len_seq, "target": target}, 0)
    return str(exc.value)


def test_nan_before_any_checkpoint_says_none_was_written(make_model, batch):
    """A NaN at the first steps: no checkpoint exists, so the message must not promise one."""
    model = make_model()
    message = _nan_step(model, make_module(model), batch)
    assert "no checkpoint was written yet" in message and "kept" not in message


def test_nan_after_a_checkpoint_names_it(make_model, batch, tmp_path):
    last = tmp_path / "last.ckpt"
    last.write_bytes(b"x")
    model = make_model()
    module = make_module(model)
    callback = SimpleNamespace(last_model_path=str(last), best_model_path="")
    module.trainer = SimpleNamespace(current_epoch=1, global_step=7, checkpoint_callbacks=[callback])
    assert f"the last good checkpoint is {last}" in _nan_step(model, module, batch)


def test_checkpoint_keeps_only_trained_tensors(make_model):
    module = make_module(make_model())
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    trained = {f"model.{n}" for n, p in module.model.named_parameters() if p.requires_grad}
    assert set(checkpoint["state_dict"]) == trained
    assert checkpoint["teacher_meta"] == {"num_items": 1}
