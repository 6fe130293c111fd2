"""Alignment-invariant similarity: planted correspondences are found, independence is not."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom, ortho_group

from mirrorlab.analysis.alignment import (
    MEASURES,
    aligned_similarity,
    fit_cca,
    fit_procrustes,
    hungarian_match,
    linear_cka,
)
from mirrorlab.permutations import derangements


def ar1(rng, shape, phi=0.7):
    """Stationary AR(1) along axis 1 of [N, T, U]: autocorrelated like recurrent activity."""
    eps = rng.standard_normal(shape)
    x = np.empty(shape)
    x[:, 0] = eps[:, 0]
    for t in range(1, shape[1]):
        x[:, t] = phi * x[:, t - 1] + np.sqrt(1 - phi**2) * eps[:, t]
    return x


def identity_r(P, O):
    """Mean identity-paired r: what the paper reports, meaningless across separate cores."""
    p = P.reshape(-1, P.shape[-1])
    o = O.reshape(-1, O.shape[-1])
    return np.mean([np.corrcoef(p[:, u], o[:, u])[0, 1] for u in range(p.shape[1])])


def gram_cka(X, Y, debiased):
    """CKA from explicit n x n Gram matrices (Kornblith et al. 2019; Song et al. 2012 unbiased HSIC)."""
    n = X.shape[0]
    K, L = X @ X.T, Y @ Y.T

    def hsic(K, L):
        if not debiased:
            H = np.eye(n) - 1.0 / n
            return np.sum((H @ K @ H) * (H @ L @ H))
        K, L = K - np.diag(np.diag(K)), L - np.diag(np.diag(L))
        one = np.ones(n)
        return (np.trace(K @ L) + one @ K @ one * (one @ L @ one) / ((n - 1) * (n - 2)) - 2 / (n - 2) * one @ K @ L @ one) / (
            n * (n - 3)
        )

    return hsic(K, L) / np.sqrt(hsic(K, K) * hsic(L, L))


@pytest.mark.parametrize("debiased", [False, True])
def test_cka_matches_gram_formula_and_invariances(debiased):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 6)) + 3.0
    Y = X[:, :4] @ rng.standard_normal((4, 9)) + rng.standard_normal((40, 9))  # p != q
    value = linear_cka(X, Y, debiased)
    assert value == pytest.approx(gram_cka(X - X.mean(0), Y - Y.mean(0), debiased), rel=1e-9)
    assert linear_cka(X, X, debiased) == pytest.approx(1.0, abs=1e-12)
    Q = ortho_group.rvs(9, random_state=1)
    assert linear_cka(2.5 * X - 7.0, Y @ Q * 0.1, debiased) == pytest.approx(value, rel=1e-9)
    assert linear_cka(X, rng.standard_normal((40, 9)), debiased) < value


def test_debiased_cka_is_unbiased_for_independent_features():
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((2, 600, 40))
    assert abs(linear_cka(X, Y, debiased=True)) < 0.01
    assert linear_cka(X, Y) > 0.04  # the plain form's bias, ~ features / samples


def column_r(a, b):
    """Pearson r of matching columns of two [samples, k] arrays."""
    a, b = a - a.mean(0), b - b.mean(0)
    return (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))


def test_fitted_maps_recover_planted_correspondence():
    rng = np.random.default_rng(2)
    P = rng.standard_normal((2, 2000, 12))
    perm = rng.permutation(12)
    O = P[..., perm] + 0.3 * rng.standard_normal(P.shape)  # observe unit j is perform unit perm[j]
    match = hungarian_match(P[0], O[0])
    np.testing.assert_array_equal(perm[match], np.arange(12))
    assert column_r(P[1], O[1][:, match]).min() > 0.9  # held-out: fitted on P[0], scored on P[1]
    Q = ortho_group.rvs(12, random_state=3)
    O = P @ Q + 0.3 * rng.standard_normal(P.shape)
    assert column_r(P[1] @ fit_procrustes(P[0], O[0]), O[1]).min() > 0.9
    A, B = fit_cca(P[0], O[0], n_components=5)
    assert A.shape == (12, 5) and column_r(P[1] @ A, O[1] @ B).min() > 0.9


def test_hungarian_leaves_extra_perform_units_unmatched():
    rng = np.random.default_rng(4)
    P = rng.standard_normal((500, 6))
    match = hungarian_match(P, P[:, [4, 1, 0]])
    np.testing.assert_array_equal(match, [2, 1, -1, -1, 0, -1])


@pytest.mark.parametrize("planted", ["permutation", "rotation"])
def test_planted_alignment_is_found_where_identity_r_sees_nothing(planted):
    rng = np.random.default_rng(5)
    N, T, U, B = 80, 8, 16, 199
    P = ar1(rng, (N, T, U))
    mix = np.eye(U)[:, derangements(U, 1, rng)[0]] if planted == "permutation" else ortho_group.rvs(U, random_state=6)
    O = P @ mix + 0.5 * rng.standard_normal(P.shape)
    assert abs(identity_r(P, O)) < 0.15
    res = aligned_similarity(P, O, rng, n_permutations=B)
    assert set(res) == set(MEASURES)
    found = ("hungarian",) if planted == "permutation" else ()
    for m in found + ("procrustes", "cca", "cka", "cka_debiased"):
        assert res[m]["value"] > 0.5, m
        assert res[m]["p"] == pytest.approx(1 / (B + 1)), m
        assert res[m]["value"] > res[m]["null_q95"] > res[m]["null_mean"] - 1e-9, m


def test_unequal_unit_counts():
    rng = np.random.default_rng(7)
    P = ar1(rng, (60, 8, 10))
    O = P @ rng.standard_normal((10, 6)) + 0.3 * rng.standard_normal((60, 8, 6))
    res = aligned_similarity(P, O, rng, n_permutations=99)
    assert np.isnan(res["procrustes"]["value"])
    for m in ("hungarian", "cca", "cka", "cka_debiased"):
        assert res[m]["p"] == pytest.approx(0.01), m


def test_null_keeps_false_positives_at_nominal_rate():
    """Independent runs sharing a time-locked course (which raises identity r): p ~ uniform.

    Derangement nulls run slightly hot with few sequences (~0.065 at 12 score sequences, since the
    null never contains the observed pairing's own terms); 30 score sequences keep this small.
    """
    rng = np.random.default_rng(8)
    N, T, U, B, reps = 60, 5, 4, 99, 150
    clock = 0.8 * np.sin(np.arange(T)[:, None] + np.arange(U))  # same in both runs, every sequence
    p = {m: [] for m in MEASURES}
    for _ in range(reps):
        res = aligned_similarity(ar1(rng, (N, T, U)) + clock, ar1(rng, (N, T, U)) + clock, rng, n_permutations=B)
        for m in MEASURES:
            p[m].append(res[m]["p"])
    limit = binom.ppf(0.999, reps, 0.05)  # fails by chance once in 1000 per measure
    for m in MEASURES:
        p_m = np.array(p[m])
        assert (p_m <= 0.05).sum() <= limit, m
        assert 0.4 < p_m.mean() < 0.6, m  # also not conservative
