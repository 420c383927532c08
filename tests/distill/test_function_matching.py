"""Function matching (distill/function_matching.py): the appended input, the sampled item, the loss against its
direct formula, and the module's step (the teacher frozen, outside the trained and saved parameters)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from ilora_dllm2rec.core.errors import ConfigError
from ilora_dllm2rec.distill.function_matching import (
    append_item,
    check_online_backend,
    function_matching_loss,
    sample_from_teacher,
)
from ilora_dllm2rec.distill.lit_module import DistillLitModule
from ilora_dllm2rec.student.factory import build_student
from ilora_dllm2rec.teacher.ensemble_teacher import EnsembleTeacher

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
PAD = 9


def test_append_item_by_hand():
    seq = torch.tensor([[1, 2, PAD, PAD], [3, 4, 5, 6], [PAD, PAD, PAD, PAD]])
    len_seq = torch.tensor([2, 4, 0])
    out, new_len = append_item(seq, len_seq, torch.tensor([7, 8, 0]))
    assert out.tolist() == [[1, 2, 7, PAD], [4, 5, 6, 8], [0, PAD, PAD, PAD]]
    assert new_len.tolist() == [3, 4, 1]
    assert seq[1].tolist() == [3, 4, 5, 6]  # the batch itself is untouched


def test_sample_from_teacher_follows_the_renormalised_top_n():
    cand_ids = torch.tensor([[5, 2, 7]]).repeat(30_000, 1)
    probs = np.array([0.5, 0.2, 0.1])  # a top-3 of a larger catalogue: 0.8 in all
    cand_dist = torch.tensor(-np.log(probs), dtype=torch.float32).repeat(30_000, 1)
    items = sample_from_teacher(cand_ids, cand_dist, torch.Generator().manual_seed(0))
    freq = [(items == i).float().mean().item() for i in (5, 2, 7)]
    np.testing.assert_allclose(freq, probs / probs.sum(), atol=0.01)


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_loss_equals_the_direct_formula(temperature):
    gen = torch.Generator().manual_seed(1)
    student, teacher = torch.randn(3, 6, generator=gen), torch.randn(3, 6, generator=gen)
    expected = 0.0
    for s, t in zip(student.tolist(), teacher.tolist(), strict=True):
        zq = sum(math.exp(v / temperature) for v in t)
        zr = sum(math.exp(v / temperature) for v in s)
        for a, b in zip(s, t, strict=True):
            q, r = math.exp(b / temperature) / zq, math.exp(a / temperature) / zr
            expected += q * math.log(q / r)
    got = function_matching_loss(student, teacher, temperature=temperature, batch_rows=5)
    assert got.item() == pytest.approx(expected * temperature**2 / 5, rel=1e-5)
    assert function_matching_loss(teacher, teacher, batch_rows=3).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="teacher must rank the student's catalogue"):
        function_matching_loss(student, teacher[:, :5], batch_rows=3)


def test_only_id_teachers_are_queried_online():
    check_online_backend("ensemble", "m.json")
    with pytest.raises(ConfigError, match="m.json comes from a 'ilora' teacher.*function_matching_weight=0"):
        check_online_backend("ilora", "m.json")


def test_step_trains_the_student_only_and_saves_no_teacher():
    torch.manual_seed(0)
    distill = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "distill" / "dllm2rec.yaml"), resolve=False)
    distill |= {"function_matching_weight": 1.0, "rd_weight": 0.0, "listwise_weight": 0.0}
    student_cfg = {"name": "sasrec", "emb_size": 8, "hidden_size": 8, "max_seq_len": 4, "num_blocks": 1}
    module = DistillLitModule(student_cfg | {"num_heads": 1, "loss": "ce"}, PAD, lr=1e-3, distill_cfg=distill)
    teacher = EnsembleTeacher([build_student(student_cfg | {"num_heads": 1}, PAD)], "log_softmax")
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    module.set_teacher_knowledge(
        torch.tensor([[1, 2, 3], [4, 5, 6]]),
        torch.tensor([[0.5, 1.0, 2.0], [0.3, 1.5, 2.5]]),
        torch.ones(2, dtype=torch.bool),
    )
    module.set_function_matching_teacher(teacher)
    batch = {
        "seq": torch.tensor([[1, 2, PAD, PAD], [3, 4, 5, 6]]),
        "len_seq": torch.tensor([2, 4]),
        "target": torch.tensor([3, 7]),
        "index": torch.tensor([0, 1]),
    }
    module.log = lambda *a, **k: None  # no trainer attached
    base = DistillLitModule(student_cfg | {"num_heads": 1, "loss": "ce"}, PAD, lr=1e-3, distill_cfg=distill)
    base.load_state_dict(module.state_dict())
    base.log = module.log
    module.eval(), base.eval()  # no dropout: the two steps differ by L_FM alone
    loss = module.training_step(batch, 0)
    assert loss.item() > base.training_step(batch, 0).item() + 1e-4  # L_FM > 0 on a random student and teacher
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.model.parameters())
    assert not any(p is q for p in module.parameters() for q in teacher.parameters())
    assert set(module.state_dict()) == set(base.state_dict())
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, before[key]), key
