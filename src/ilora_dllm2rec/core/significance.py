"""Paired comparison of two models on the same users: relative gain, bootstrap interval, randomization p-value.

Why: on MovieLens-100K (943 test users) one seed's NDCG@10 moves by 3-5%, so a table of means cannot tell a
gain from noise. With both models' per-user values on the same users the comparison is paired: resampling
users keeps each user's two values together. scipy.stats has ``bootstrap`` and ``permutation_test``, but
scipy is not a dependency of the platform, and a paired resample of one vector is a few vectorised numpy
lines (done in chunks so that memory stays bounded for large user counts).
"""

from __future__ import annotations

import numpy as np

_CHUNK_ELEMENTS = 4_000_000  # resamples x users per chunk: ~32 MB of float64


def _chunks(resamples: int, n: int):
    rows = max(1, _CHUNK_ELEMENTS // n)
    for first in range(0, resamples, rows):
        yield min(rows, resamples - first)


def paired_comparison(
    reference: np.ndarray,
    other: np.ndarray,
    *,
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, float]:
    """``other`` against ``reference``: per-user metric values of two models on the same users, in the same order.

    Returns the two means, the relative gain ``mean(other) / mean(reference) - 1``, its percentile bootstrap
    interval (users resampled with replacement, both models' values kept together) and the two-sided p-value
    of a paired sign-flip randomization test of ``mean(other - reference) = 0`` (each user's difference keeps
    or flips its sign at random; ``p = (1 + #{|mean| >= observed}) / (1 + resamples)``).
    """
    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(other, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape or a.size == 0:
        raise ValueError(f"paired_comparison needs two 1-d arrays of one length > 0, got {a.shape} and {b.shape}")
    if resamples < 1 or not 0 < confidence < 1:
        raise ValueError(f"resamples must be >= 1 and confidence in (0, 1), got {resamples} and {confidence}")
    n = a.size
    rng = np.random.default_rng(seed)
    mean_a, mean_b = float(a.mean()), float(b.mean())
    gain = mean_b / mean_a - 1.0 if mean_a > 0 else float("nan")

    ratios = []
    for rows in _chunks(resamples, n):
        users = rng.integers(0, n, size=(rows, n))
        boot_a, boot_b = a[users].mean(axis=1), b[users].mean(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios.append(boot_b / boot_a - 1.0)
    ratios = np.concatenate(ratios)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(ratios, [tail, 1 - tail]) if np.isfinite(ratios).all() else (np.nan, np.nan)

    diff = b - a
    observed = abs(diff.mean())
    extreme = 0
    for rows in _chunks(resamples, n):
        signs = rng.integers(0, 2, size=(rows, n)) * 2 - 1
        # a small tolerance: a flip pattern that reproduces the observed mean exactly must count as extreme
        extreme += int((np.abs(signs @ diff) / n >= observed - 1e-12).sum())
    return {
        "reference_mean": mean_a,
        "mean": mean_b,
        "gain": gain,
        "gain_ci_low": float(low),
        "gain_ci_high": float(high),
        "p_value": (1 + extreme) / (1 + resamples),
        "num_users": n,
        "resamples": resamples,
        "confidence": confidence,
    }
