"""Paired comparison: the randomization p-value against exact enumeration, the bootstrap interval against the
delta method, and the degenerate cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ilora_dllm2rec.core.significance import paired_comparison


def test_identical_models_gain_nothing_and_p_is_one():
    a = np.random.default_rng(0).random(50)
    out = paired_comparison(a, a.copy(), resamples=500)
    assert out["gain"] == 0.0 and out["gain_ci_low"] == 0.0 and out["gain_ci_high"] == 0.0
    assert out["p_value"] == 1.0 and out["num_users"] == 50


def test_p_value_matches_exact_sign_flip_enumeration():
    rng = np.random.default_rng(1)
    a = rng.random(12)
    b = a + rng.normal(0.08, 0.2, size=12)
    diff = b - a
    observed = abs(diff.mean())
    flips = np.array(list(itertools.product((-1, 1), repeat=12)))
    exact = float((np.abs(flips @ diff) / 12 >= observed - 1e-12).mean())
    out = paired_comparison(a, b, resamples=40_000, seed=3)
    assert 0.01 < exact < 0.99  # an informative case, not a corner
    assert out["p_value"] == pytest.approx(exact, abs=0.01)


def test_bootstrap_interval_matches_the_delta_method():
    rng = np.random.default_rng(2)
    n = 4000
    a = (rng.random(n) < 0.20).astype(float)  # HR-like 0/1 values
    b = np.where(rng.random(n) < 0.9, a, (rng.random(n) < 0.30).astype(float))
    out = paired_comparison(a, b, resamples=4000, seed=0)
    ma, mb = a.mean(), b.mean()
    # delta method for mb/ma: var ~ (var_b / ma^2 - 2 mb cov / ma^3 + mb^2 var_a / ma^4) / n
    cov = np.cov(a, b, ddof=1)
    se = np.sqrt((cov[1, 1] / ma**2 - 2 * mb * cov[0, 1] / ma**3 + mb**2 * cov[0, 0] / ma**4) / n)
    assert out["gain"] == pytest.approx(mb / ma - 1)
    assert out["gain_ci_low"] == pytest.approx(out["gain"] - 1.96 * se, abs=0.15 * 1.96 * se)
    assert out["gain_ci_high"] == pytest.approx(out["gain"] + 1.96 * se, abs=0.15 * 1.96 * se)


def test_a_clear_gain_is_significant_and_results_repeat_by_seed():
    rng = np.random.default_rng(4)
    a = rng.random(900) * 0.2
    b = a + 0.02
    first = paired_comparison(a, b, resamples=1000, seed=7)
    assert first["p_value"] == pytest.approx(1 / 1001) and first["gain_ci_low"] > 0
    assert paired_comparison(a, b, resamples=1000, seed=7) == first


def test_chunks_cover_every_resample(monkeypatch):
    from ilora_dllm2rec.core import significance

    monkeypatch.setattr(significance, "_CHUNK_ELEMENTS", 7 * 30)  # 7 resamples per chunk
    a = np.random.default_rng(5).random(30)
    # equal models: every flip is as extreme as the observed 0, so p = 1 exactly iff all 50 are counted once
    assert paired_comparison(a, a.copy(), resamples=50)["p_value"] == 1.0


@pytest.mark.parametrize(("a", "b"), [(np.ones(3), np.ones(4)), (np.ones((2, 2)), np.ones((2, 2))), ([], [])])
def test_mismatched_or_empty_inputs_are_refused(a, b):
    with pytest.raises(ValueError, match="paired_comparison"):
        paired_comparison(np.asarray(a), np.asarray(b))
