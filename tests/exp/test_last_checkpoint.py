"""``last.ckpt`` is the last completed epoch, whatever the validation metric did (``best.ckpt`` the best one).

Lightning's ``ModelCheckpoint(save_top_k=1, save_last=True)`` writes ``last.ckpt`` only when it also writes a
top-k checkpoint in the same step, so when validation stops improving ``last.ckpt`` stays at the last epoch
that improved (a 15-epoch run kept epoch 0). core/trainer.py: last_checkpoint_callback.
"""

from __future__ import annotations

import lightning as L
import pytest
import torch
from omegaconf import open_dict
from torch.utils.data import DataLoader, TensorDataset

from ilora_dllm2rec.core.trainer import build_trainer


class FadingModule(L.LightningModule):
    """A one-weight model whose validation metric is best at epoch 0 and falls every epoch after."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        return ((self.weight - batch[0]) ** 2).mean()

    def validation_step(self, batch, batch_idx) -> None:
        pass

    def on_validation_epoch_end(self) -> None:
        self.log("val/ndcg@10", torch.tensor(1.0 / (1 + self.current_epoch)))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _loader() -> DataLoader:
    return DataLoader(TensorDataset(torch.ones(4, 1)), batch_size=2)


@pytest.mark.parametrize("patience", [0, 10])  # without early stopping, and with patience longer than the run
def test_last_checkpoint_is_the_last_completed_epoch(tiny_cfg, tmp_path, patience):
    cfg = tiny_cfg()
    with open_dict(cfg):
        cfg.train.accelerator = "cpu"
        cfg.train.devices = 1
        cfg.train.patience = patience
    trainer, ckpt = build_trainer(
        cfg.train, models_dir=tmp_path / "models", tb_dir=None, progress_bar=False, max_epochs=4
    )
    trainer.fit(FadingModule(), train_dataloaders=_loader(), val_dataloaders=_loader())
    best = torch.load(tmp_path / "models" / "best.ckpt", map_location="cpu", weights_only=False)
    last = torch.load(tmp_path / "models" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt.best_model_path.endswith("best.ckpt") and best["epoch"] == 0  # model selection unchanged
    assert last["epoch"] == 3 and last["global_step"] == 8  # 4 epochs of 2 steps
    assert sorted(p.name for p in (tmp_path / "models").glob("*.ckpt")) == ["best.ckpt", "last.ckpt"]
