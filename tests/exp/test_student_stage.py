"""In-process student stage tests: reproducibility, NaN loss, checkpoint reload."""

from __future__ import annotations

import json

import pytest

from ilora_dllm2rec.core.errors import TrainingError
from ilora_dllm2rec.core.run_logging import RunDir
from ilora_dllm2rec.data import prepare_data
from ilora_dllm2rec.exp import stages
from ilora_dllm2rec.student.train import load_student_checkpoint


def _run(cfg, root):
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir)
    return stages.baseline(cfg, RunDir(root), data), data


@pytest.mark.parametrize("student", ["sasrec", "gru4rec", "caser"])
def test_same_seed_same_metrics(tiny_cfg, tmp_path, student):
    cfg = tiny_cfg(
        extra=[
            f"student={student}",
            "student.hidden_size=16",
            "student.emb_size=16",
            "student.num_epochs=2",
            "dataset.max_seq_len=10",
        ]
    )
    first, _ = _run(cfg, tmp_path / "result" / "result_a")
    second, _ = _run(cfg, tmp_path / "result" / "result_b")
    assert first["val"] == second["val"] and first["test"] == second["test"]


def test_checkpoint_reload_gives_the_recorded_metrics(tiny_cfg, tmp_path):
    from ilora_dllm2rec.student.evaluator import evaluate_model

    cfg = tiny_cfg()
    result, data = _run(cfg, tmp_path / "result" / "result_a")
    model, hparams = load_student_checkpoint(result["best_checkpoint"])
    again = evaluate_model(model, data.test, batch_size=64, ks=[1, 5, 10, 20], exclude_history=False)
    assert again == pytest.approx(result["test"])
    assert hparams["num_items"] == data.num_items


def test_nan_loss_stops_with_a_clear_error(tiny_cfg, tmp_path, monkeypatch):
    from ilora_dllm2rec.student.losses import StudentLoss

    original = StudentLoss.forward
    calls = {"n": 0}

    def poisoned(self, scores, batch, generator=None, negatives=None):
        calls["n"] += 1
        loss, parts = original(self, scores, batch, generator, negatives)
        return (loss * float("nan") if calls["n"] >= 3 else loss), parts

    monkeypatch.setattr(StudentLoss, "forward", poisoned)
    cfg = tiny_cfg()
    with pytest.raises(TrainingError, match="loss became nan"):
        _run(cfg, tmp_path / "result" / "result_a")
    # nothing claims to be complete
    assert not (tmp_path / "result" / "result_a" / "models" / "baseline" / "manifest.json").exists()
    assert not (tmp_path / "result" / "result_a" / "metrics" / "eval_baseline.json").exists()


def test_eval_json_has_best_epoch_from_validation(tiny_cfg, tmp_path):
    cfg = tiny_cfg(extra=["student.num_epochs=3"])
    result, _ = _run(cfg, tmp_path / "result" / "result_a")
    saved = json.loads((tmp_path / "result" / "result_a" / "metrics" / "eval_baseline.json").read_text())
    assert saved["best_epoch"] == result["best_epoch"] and 0 <= saved["best_epoch"] <= 2


def test_progress_is_one_log_line_per_epoch_when_not_on_a_terminal(tiny_cfg, tmp_path):
    """Piped to a file (pytest's stdout is no terminal), each epoch is one line in the stage log, no bar redraws."""
    cfg = tiny_cfg(extra=["logging.progress_bar=true", "student.num_epochs=2"])
    _run(cfg, tmp_path / "result" / "result_a")
    text = (tmp_path / "result" / "result_a" / "logs" / "train_student_baseline.log").read_text()
    lines = [x for x in text.splitlines() if "val/ndcg@10" in x and "epoch " in x]
    assert [x.split("epoch ")[1][:3] for x in lines] == ["0/1", "1/1"], text[-2000:]
    assert "train/loss" in lines[0] and "(best " in lines[1] and "━" not in text
