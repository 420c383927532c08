"""``train.monitor_window``: select and early-stop on the trailing mean of the validation metric
(core/trainer.py: WindowedMonitor), against the raw per-epoch maximum."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from omegaconf import open_dict
from torch.utils.data import DataLoader, TensorDataset

from ilora_dllm2rec.core.errors import ConfigError
from ilora_dllm2rec.core.trainer import WindowedMonitor, build_trainer

# a lucky spike at epoch 1, then a steady plateau; trailing means of 3: .1 .3 .2333 .3 .25 .3167
VALUES = [0.1, 0.5, 0.1, 0.3, 0.35, 0.3]


class ScriptedModule(L.LightningModule):
    def __init__(self, values: list[float], key: str = "val/ndcg@10") -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.values, self.key = values, key

    def training_step(self, batch, batch_idx):
        return ((self.weight - batch[0]) ** 2).mean()

    def validation_step(self, batch, batch_idx) -> None:
        pass

    def on_validation_epoch_end(self) -> None:
        self.log(self.key, torch.tensor(self.values[self.current_epoch]))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(tiny_cfg, tmp_path, window: int, patience: int = 0, values=VALUES, key="val/ndcg@10"):
    cfg = tiny_cfg()
    with open_dict(cfg):
        cfg.train.accelerator = "cpu"
        cfg.train.devices = 1
        cfg.train.patience = patience
        cfg.train.monitor_window = window
    trainer, ckpt = build_trainer(
        cfg.train, models_dir=tmp_path / "models", tb_dir=None, progress_bar=False, max_epochs=len(values)
    )
    loader = DataLoader(TensorDataset(torch.ones(4, 1)), batch_size=2)
    trainer.fit(ScriptedModule(values, key), train_dataloaders=loader, val_dataloaders=loader)
    best = torch.load(tmp_path / "models" / "best.ckpt", map_location="cpu", weights_only=False)
    return trainer, ckpt, best


@pytest.mark.parametrize(("window", "best_epoch", "score"), [(1, 1, 0.5), (3, 5, (0.35 + 0.3 + 0.3) / 3)])
def test_best_checkpoint_is_the_end_of_the_best_window(tiny_cfg, tmp_path, window, best_epoch, score):
    trainer, ckpt, best = _fit(tiny_cfg, tmp_path, window)
    assert best["epoch"] == best_epoch
    assert float(ckpt.best_model_score) == pytest.approx(score)
    if window > 1:
        assert ckpt.monitor == "val/ndcg@10_mean3"
        assert best["callbacks"]  # the window's history travels with the checkpoint
        (windowed,) = [c for c in trainer.callbacks if isinstance(c, WindowedMonitor)]
        assert windowed.history == pytest.approx(VALUES[-3:])


def test_early_stopping_waits_on_the_window_not_the_spike(tiny_cfg, tmp_path):
    """Patience 2: the raw metric stops after epoch 3 (nothing beats the spike); the window's means
    (.1 .3 .2333 .3167 .2833 .3833) keep improving within the patience, to the end."""
    values = [0.1, 0.5, 0.1, 0.35, 0.4, 0.4]
    trainer, _, _ = _fit(tiny_cfg, tmp_path, window=1, patience=2, values=values)
    assert trainer.current_epoch == 4  # epochs 0-3 ran (stopped after the 2nd epoch without a new best)
    trainer, _, best = _fit(tiny_cfg, tmp_path / "w", window=3, patience=2, values=values)
    assert trainer.current_epoch == 6 and best["epoch"] == 5


def test_window_history_resumes_from_the_checkpoint_state() -> None:
    windowed = WindowedMonitor("val/ndcg@10", 3)
    windowed.load_state_dict({"history": [0.2, 0.4]})
    assert windowed.state_dict() == {"history": [0.2, 0.4]}


def test_a_monitor_the_stage_does_not_log_is_named(tiny_cfg, tmp_path):
    with pytest.raises(ConfigError, match=r"train.monitor='val/ndcg@10' was not logged .*'val/hr@10'"):
        _fit(tiny_cfg, tmp_path, window=3, key="val/hr@10")
