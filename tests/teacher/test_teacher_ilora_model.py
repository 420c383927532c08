"""ILoRAModel on the tiny Llama: trainable sets, gate, hybrid embeddings, checkpoints, dtypes, heads."""

from __future__ import annotations

import pytest
import torch
from teacher_helpers import NUM_ITEMS

from ilora_dllm2rec.core.errors import ArtifactError, ConfigError
from ilora_dllm2rec.teacher.interfaces import TeacherRecommender
from ilora_dllm2rec.teacher.llm import is_checkpointing
from ilora_dllm2rec.teacher.moe_lora import moelora_layers


def _trainable(model) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def _perturb_adapters(model, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n or n == "head.weight":  # head: the residual head starts at zero
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)


def test_moelora_trains_only_adapters_projector_gate_head(make_model, batch) -> None:
    model = make_model()
    names = _trainable(model)
    groups = {model._group_of(n) for n in names}
    assert groups == {"adapter", "projector", "gate", "head"}
    assert not any(n.startswith("student.") for n in names)
    assert sum("lora_A" in n for n in names) == 2 * 4  # 2 layers x q,k,v,o
    report = model.trainable_parameter_report()
    assert report["trainable"] == sum(report["by_group"].values()) < report["total"]
    out = model(*batch)
    (out["scores"].sum() + out["h_u"].sum()).backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad <= names and {"gate.weight", "projector.0.weight", "head.weight"} <= with_grad


@pytest.mark.parametrize("adapter", ["lora", "freeze", "full"])
def test_other_modes_trainable_sets(make_model, adapter: str) -> None:
    model = make_model(adapter=adapter)
    groups = {model._group_of(n) for n in _trainable(model)}
    expected = {
        "lora": {"adapter", "projector", "head"},
        "freeze": {"projector", "head"},
        "full": {"llm", "projector", "head"},
    }[adapter]
    assert groups == expected and model.gate is None
    if adapter == "full":  # the whole LLM except nothing of the student
        llm_params = sum(p.numel() for p in model.llm.parameters())
        assert model.trainable_parameter_report()["by_group"]["llm"] == llm_params


def test_gate_rows_sum_to_one_and_differ(make_model, batch) -> None:
    model = make_model().eval()
    gate = model(*batch)["gate"]
    assert gate.shape == (3, 4)
    assert torch.allclose(gate.sum(-1), torch.ones(3))
    assert not torch.allclose(gate[0], gate[1])


def test_history_positions_carry_projected_student_embeddings(make_model, batch) -> None:
    model = make_model()
    b = model.prompts.build(*batch)
    embeds = model.prompt_embeddings(b)
    plain = model.llm.get_input_embeddings()(b["input_ids"])
    mask = b["hist_mask"]
    assert mask.sum() == 6
    assert torch.equal(embeds[~mask], plain[~mask])  # nothing else changes
    expected = model.projector(model.student.item_embedding(b["hist_item_ids"][mask]))
    assert torch.allclose(embeds[mask], expected, atol=1e-6)
    assert not torch.allclose(embeds[mask], plain[mask])


def test_peft_lora_mode_uses_hybrid_embeddings(make_model, batch) -> None:
    model = make_model(adapter="lora").eval()
    h1 = model(*batch)["h_u"]
    with torch.no_grad():
        model.projector[2].bias.add_(1.0)  # only [HistoryEmb] positions see the projector
    h2 = model(*batch)["h_u"]
    assert not torch.allclose(h1[:2], h2[:2]) and torch.allclose(h1[2], h2[2])  # row 2 has no history


def test_state_dict_round_trip_restores_outputs(make_model, make_student, batch) -> None:
    student = make_student()
    trained = make_model(seed=1, student=student).eval()
    _perturb_adapters(trained)
    other = make_model(seed=2, student=student).eval()
    state = trained.trainable_state_dict()
    assert set(state) == _trainable(trained)
    assert all(not v.requires_grad and v.device.type == "cpu" for v in state.values())
    assert not torch.allclose(other(*batch)["scores"], trained(*batch)["scores"])
    other.load_trainable_state_dict(state)
    assert torch.equal(other(*batch)["scores"], trained(*batch)["scores"])
    with pytest.raises(ArtifactError, match="does not match"):
        make_model(adapter="lora").load_trainable_state_dict(state)


def test_bf16_forward_backward_on_cpu(make_model, batch) -> None:
    model = make_model(dtype="bf16")
    assert model.llm_dtype == torch.bfloat16 and model.projector[0].weight.dtype == torch.float32
    assert moelora_layers(model.llm)[0].lora_A.dtype == torch.float32
    _perturb_adapters(model)
    out = model(*batch)
    assert out["scores"].dtype == torch.float32 and torch.isfinite(out["scores"]).all()
    torch.nn.functional.cross_entropy(out["scores"], torch.tensor([1, 2, 3])).backward()
    grads = [p.grad for n, p in model.named_parameters() if "lora_A" in n]
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


def test_left_padding_does_not_change_a_row(make_model, batch) -> None:
    model = make_model().eval()
    seq, len_seq = batch
    together = model(seq, len_seq)["h_u"]
    alone = model(seq[1:2], len_seq[1:2])["h_u"]
    assert torch.allclose(together[1], alone[0], atol=1e-5)


def test_pad_to_multiple_changes_scoring_width_not_scores(make_model, batch, monkeypatch) -> None:
    model = make_model(pad_to_multiple_of=1).eval()
    _perturb_adapters(model)
    plain = model(*batch)["scores"]
    widths: list[int] = []
    build = model.prompts.build
    monkeypatch.setattr(model.prompts, "build", lambda *a: widths.append(build(*a)["input_ids"].shape[1]) or build(*a))
    natural = build(*batch)["input_ids"].shape[1]
    model.pad_to_multiple_of = natural + 3  # one multiple: 3 extra padding columns
    assert torch.allclose(model(*batch)["scores"], plain, atol=1e-5)
    model.train()  # training batches stay unpadded
    model(*batch)
    assert widths == [natural + 3, natural]
    with pytest.raises(ConfigError, match="teacher.pad_to_multiple_of"):
        make_model(pad_to_multiple_of=0)


def test_heads_and_interface(make_model, batch) -> None:
    model = make_model()
    assert isinstance(model, TeacherRecommender)
    out = model(*batch)
    assert out["scores"].shape == (3, NUM_ITEMS) and out["q_u"].shape == out["z_u"].shape == (3, 16)
    expected = out["q_u"] @ model.student.item_embedding.weight[:NUM_ITEMS].T
    assert torch.allclose(out["scores"], expected)
    linear = make_model(use_item_embeddings_head=False)
    out = linear(*batch)
    assert out["q_u"] is None and out["scores"].shape == (3, NUM_ITEMS)
    assert linear.score(*batch).shape == (3, NUM_ITEMS) and linear.encode(*batch).shape == (3, linear.hidden_size)


def test_residual_head_starts_as_the_student(make_model, batch) -> None:
    model = make_model().eval()
    seq, len_seq = batch
    out = model(seq, len_seq)
    student_scores = model.student.score(model.student.encode(seq, len_seq))
    assert torch.allclose(out["q_u"], out["z_u"]) and torch.allclose(out["scores"], student_scores, atol=1e-6)
    with torch.no_grad():  # once P is trained, q_u = z_u + P(h_u)
        model.head.weight.normal_(std=0.1)
    out = model(seq, len_seq)
    assert torch.allclose(out["q_u"], out["z_u"] + model.head(out["h_u"]), atol=1e-6)
    assert not torch.allclose(out["scores"], student_scores, atol=1e-3)
    plain = make_model(head_residual=False).eval()  # iLoRA's literal head q_u = P(h_u): random start
    out = plain(seq, len_seq)
    assert torch.allclose(out["q_u"], plain.head(out["h_u"])) and not torch.allclose(out["q_u"], out["z_u"])


def test_teacher_keeps_the_students_history_bias(make_model, make_student, batch) -> None:
    student = make_student()
    student.enable_history_bias()
    with torch.no_grad():
        student.history_bias.fill_(-3.0)
    model = make_model(student=student).eval()
    seq, len_seq = batch
    # at initialisation the teacher ranks exactly like its student's full forward, history bias included
    assert torch.allclose(model(seq, len_seq)["scores"], student(seq, len_seq), atol=1e-6)
    assert not torch.allclose(student(seq, len_seq), student.score(student.encode(seq, len_seq)))
    assert "student.history_bias" not in _trainable(model)  # frozen with the rest of the student


def test_student_stays_frozen_in_eval_mode(make_model, batch) -> None:
    model = make_model()
    model.train()
    assert model.training and not model.student.training
    z1, z2 = model(*batch)["z_u"], model(*batch)["z_u"]
    assert torch.equal(z1, z2)  # the student's dropout is off


def test_parameter_groups_gate_and_head_lr(make_model) -> None:
    model = make_model()
    groups = {g["name"]: g for g in model.parameter_groups(1e-3, gate_lr_scale=0.3, head_lr_scale=10.0)}
    assert groups["gate"]["lr"] == pytest.approx(3e-4) and groups["main"]["lr"] == 1e-3
    assert groups["head"]["lr"] == pytest.approx(1e-2)
    n_params = sum(len(g["params"]) for g in groups.values())
    assert n_params == len(_trainable(model)) and len(groups["gate"]["params"]) == 2
    assert {id(p) for p in groups["head"]["params"]} == {id(p) for p in model.head.parameters()}


@pytest.mark.parametrize("adapter", ["moelora", "lora"])
def test_item_embeddings_adapters_off_by_default(make_model, adapter: str) -> None:
    model = make_model(adapter=adapter)
    before = model.item_semantic_embeddings(batch_size=5)
    assert before.shape == (NUM_ITEMS, model.hidden_size) and before.dtype == torch.float32
    _perturb_adapters(model)
    model.train()
    after = model.item_embeddings(batch_size=4)
    assert torch.allclose(before, after, atol=1e-5) and model.training  # mode restored
    assert not torch.allclose(before[0], before[1])


def test_item_embeddings_with_adapters(make_model) -> None:
    model = make_model(item_embedding_adapters=True)
    before = model.item_semantic_embeddings()
    _perturb_adapters(model)
    assert not torch.allclose(before, model.item_semantic_embeddings(), atol=1e-4)


def test_gradient_checkpointing_matches_plain_gradients(make_model, make_student, batch) -> None:
    student = make_student()
    grads = []
    for checkpointing in (False, True):
        model = make_model(seed=3, student=student, checkpointing=checkpointing)
        _perturb_adapters(model)
        model.train()
        assert is_checkpointing(model.llm) == checkpointing
        model(*batch)["scores"].logsumexp(-1).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for n, p in model.named_parameters() if "lora_A" in n]))
    assert grads[0].abs().sum() > 0 and torch.allclose(grads[0], grads[1], atol=1e-5)


def test_train_attention_switches_with_the_mode_and_keeps_the_outputs(make_model, make_student, batch) -> None:
    student = make_student()
    model = make_model(seed=3, student=student, train_attn_implementation="eager")
    plain = make_model(seed=3, student=student)  # sdpa for both modes
    _perturb_adapters(model)
    plain.load_state_dict(model.state_dict())
    model.training = True  # as Lightning restores modes: flags set directly, .train() not called
    out = model(*batch)["scores"]
    assert model.llm.config._attn_implementation == "eager"
    plain.train()
    assert torch.allclose(out, plain(*batch)["scores"], atol=1e-4)  # same maths, another kernel
    assert plain.llm.config._attn_implementation == "sdpa"
    model.eval()
    model(*batch)
    assert model.llm.config._attn_implementation == "sdpa"  # scoring / export use attn_implementation


def test_unknown_train_attention_is_a_config_error() -> None:
    from ilora_dllm2rec.core.errors import ConfigError
    from ilora_dllm2rec.teacher.factory import teacher_spec

    with pytest.raises(ConfigError, match="teacher.train_attn_implementation must be null or one of sdpa"):
        teacher_spec({"train_attn_implementation": "xformers"})


def test_compiled_backbone_gives_the_same_scores(make_model, make_student, batch) -> None:
    student = make_student()
    eager = make_model(seed=3, student=student).eval()
    compiled = make_model(seed=3, student=student, compile_backbone=True).eval()
    assert set(compiled.state_dict()) == set(eager.state_dict())  # in-place compile: checkpoints unchanged
    layers = list(compiled.backbone.layers)
    assert layers and all(layer._compiled_call_impl is not None for layer in layers)  # regional: per decoder layer
    assert compiled.backbone._compiled_call_impl is None
    with torch.no_grad():
        assert torch.allclose(compiled(*batch)["scores"], eager(*batch)["scores"], atol=1e-4)
    # training: the compiled layers' backward gives the adapters the same gradients
    grads = []
    for model in (eager, compiled):
        _perturb_adapters(model)
        model.train()
        model(*batch)["scores"].logsumexp(-1).sum().backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if "lora_" in n})
    assert grads[0].keys() == grads[1].keys() and all(g is not None for g in grads[1].values())
    assert all(torch.allclose(grads[0][n], grads[1][n], atol=1e-4) for n in grads[0])
