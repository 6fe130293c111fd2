"""Within-sequence cross-correlation: planted lags are recovered, the null is the sequence re-pairing."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from mirrorlab.analysis.lags import lag_test, lagged_correlation, lagged_correlation_null, peak_lag
from mirrorlab.analysis.timelocked import remove_time_locked
from mirrorlab.permutations import derangements
from tests.test_alignment import ar1


def shifted(x, lag):
    """observe[:, t] = x[:, t - lag] (fresh noise where that does not exist)."""
    out = np.random.default_rng(99).standard_normal(x.shape)
    T = x.shape[1]
    if lag >= 0:
        out[:, lag:] = x[:, : T - lag]
    else:
        out[:, :lag] = x[:, -lag:]
    return out


def test_lag_zero_is_pooled_pearson_and_lags_are_signed():
    rng = np.random.default_rng(0)
    P, O = rng.standard_normal((2, 30, 7, 4))
    r = lagged_correlation(P, O, 2)
    assert r.shape == (5, 4)
    expected = [np.corrcoef(P[..., u].ravel(), O[..., u].ravel())[0, 1] for u in range(4)]
    np.testing.assert_allclose(r[2], expected, atol=1e-12)
    lag1 = [np.corrcoef(P[:, :-1, u].ravel(), O[:, 1:, u].ravel())[0, 1] for u in range(4)]
    np.testing.assert_allclose(r[3], lag1, atol=1e-12)  # row max_lag + 1 is observe one step later


def test_null_equals_explicit_repairing():
    rng = np.random.default_rng(1)
    P, O = rng.standard_normal((2, 9, 6, 3))
    perms = np.vstack([np.arange(9), derangements(9, 4, rng)])
    null = lagged_correlation_null(P, O, 2, perms)
    for b, perm in enumerate(perms):
        np.testing.assert_allclose(null[b], lagged_correlation(P, O[perm], 2), atol=1e-12)


@pytest.mark.parametrize("lag", [2, -1])
def test_planted_lag_is_recovered(lag):
    rng = np.random.default_rng(2)
    P = ar1(rng, (100, 12, 8), phi=0.3)
    O = shifted(P, lag) + 0.5 * rng.standard_normal(P.shape)
    res = lag_test(P, O, 3, rng, n_permutations=199)
    np.testing.assert_array_equal(res["peak_lag"], lag)
    assert (res["peak_r"] > 0.6).all()
    assert np.allclose(res["peak_p"], 1 / 200)
    assert (res["p"][res["lags"] == lag] == 1 / 200).all()


def test_peak_lag_signed_or_absolute():
    r = np.array([[0.1, -0.2], [0.0, 0.3], [-0.9, 0.1]])  # lags -1, 0, +1
    lag, peak = peak_lag(r)
    np.testing.assert_array_equal(lag, [-1, 0])
    np.testing.assert_allclose(peak, [0.1, 0.3])
    lag, peak = peak_lag(r, absolute=True)
    np.testing.assert_array_equal(lag, [1, 0])
    np.testing.assert_allclose(peak, [-0.9, 0.3])


def test_independent_runs_have_uniform_peak_p():
    rng = np.random.default_rng(3)
    reps, U = 40, 10
    p = np.concatenate([lag_test(ar1(rng, (60, 8, U), 0.7), ar1(rng, (60, 8, U), 0.7), 2, rng, 99)["peak_p"] for _ in range(reps)])
    assert (p <= 0.05).sum() <= binom.ppf(0.999, reps * U, 0.05)
    assert 0.4 < p.mean() < 0.6


def test_remove_time_locked_kills_a_shared_clock():
    rng = np.random.default_rng(4)
    clock = np.sin(np.arange(10))[:, None] * np.ones(3)
    P = clock + 0.3 * rng.standard_normal((200, 10, 3))
    O = clock + 0.3 * rng.standard_normal((200, 10, 3))
    assert (lagged_correlation(P, O, 0)[0] > 0.7).all()
    Pr, Or = remove_time_locked(P), remove_time_locked(O)
    np.testing.assert_allclose(Pr.mean(axis=0), 0, atol=1e-12)
    assert (np.abs(lagged_correlation(Pr, Or, 0)[0]) < 0.1).all()
