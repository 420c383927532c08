"""Seeding of Python, numpy and torch (`general.seed`)."""

from __future__ import annotations

import lightning as L


def set_seed(seed: int) -> None:
    """Fix the Python, numpy and torch (CPU and CUDA) random generators."""
    L.seed_everything(int(seed), workers=True, verbose=False)
