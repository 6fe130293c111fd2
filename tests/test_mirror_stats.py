import numpy as np
import pytest

from mirrorlab.analysis.mirror_stats import (
    min_permutations_for_bonferroni,
    mirror_unit_test,
    pearson_per_unit,
    sequence_null,
    threshold_fractions,
)
from mirrorlab.analysis.nulls import permutation_p_value
from mirrorlab.permutations import derangements
from tests.test_alignment import ar1 as _ar1


def ar1(rng, n, t, u, phi=0.9):
    """Independent autocorrelated sequences: what recurrent activity looks like."""
    return _ar1(rng, (n, t, u), phi)


def test_derangements_have_no_fixed_point_and_are_permutations():
    perms = derangements(7, 500, np.random.default_rng(0))
    assert perms.shape == (500, 7)
    assert not (perms == np.arange(7)).any()
    assert (np.sort(perms, axis=1) == np.arange(7)).all()
    with pytest.raises(ValueError, match="at least 2"):
        derangements(1, 5, np.random.default_rng(0))


def test_pearson_matches_numpy_and_constant_units_are_nan():
    rng = np.random.default_rng(1)
    p, o = rng.standard_normal((20, 5, 4)), rng.standard_normal((20, 5, 4))
    p[..., 3] = 2.0
    r = pearson_per_unit(p, o)
    for u in range(3):
        assert r[u] == pytest.approx(np.corrcoef(p[..., u].ravel(), o[..., u].ravel())[0, 1])
    assert np.isnan(r[3])


def test_sequence_null_is_exact_correlation_of_repaired_sequences():
    rng = np.random.default_rng(2)
    p, o = rng.standard_normal((10, 6, 3)), rng.standard_normal((10, 6, 3))
    perms = derangements(10, 4, rng)
    null = sequence_null(p, o, perms)
    for b in range(4):
        np.testing.assert_allclose(null[b], pearson_per_unit(p, o[perms[b]]), atol=1e-12)


def test_planted_mirror_and_anti_mirror_units_are_found():
    rng = np.random.default_rng(3)
    n, t, u = 120, 12, 40
    p, o = ar1(rng, n, t, u), ar1(rng, n, t, u)
    o[..., :8] = p[..., :8] + 0.7 * rng.standard_normal((n, t, 8))      # mirror
    o[..., 8:12] = -p[..., 8:12] + 0.7 * rng.standard_normal((n, t, 4))  # anti-mirror
    res = mirror_unit_test(p, o, min_permutations_for_bonferroni(u, 0.05), rng)
    counts = res.counts(alpha=0.05, min_abs_r=0.4)
    assert counts["n_mirror_bonferroni"] == 8
    assert counts["n_anti_mirror_bonferroni"] == 4
    assert (res.q_fdr[12:] >= 0.05).mean() > 0.9


def test_independent_autocorrelated_noise_gives_nominal_false_positive_rate():
    # 30 repeats x 40 units = 1,200 null units; at alpha 0.05 expect 60 (binomial sd ~7.5).
    rng = np.random.default_rng(4)
    p_values = []
    for _ in range(30):
        p, o = ar1(rng, 60, 12, 40), ar1(rng, 60, 12, 40)
        p_values.append(mirror_unit_test(p, o, 400, rng).p)
    rate = (np.concatenate(p_values) < 0.05).mean()
    assert 0.025 < rate < 0.08


def test_timestep_level_shuffle_would_be_too_narrow():
    """Why the null re-pairs sequences: with shared time-locked structure, a timestep shuffle rejects far
    more than alpha while the sequence-level null stays calibrated."""
    rng = np.random.default_rng(5)
    common = np.sin(np.linspace(0, 3, 12))[None, :, None]  # time-locked, same in both modes
    p = common + 0.3 * ar1(rng, 80, 12, 50)
    o = common + 0.3 * ar1(rng, 80, 12, 50)
    r = pearson_per_unit(p, o)
    flat_o = o.reshape(-1, 50)
    null_t = np.stack([pearson_per_unit(p, flat_o[rng.permutation(flat_o.shape[0])].reshape(o.shape))
                       for _ in range(200)])
    assert (permutation_p_value(r, null_t) < 0.05).mean() > 0.5
    assert (mirror_unit_test(p, o, 400, rng).p < 0.05).mean() < 0.15


def test_each_tail_is_tested_against_the_nulls_own_tail():
    """A unit whose null sits far from zero: both runs share a time course (null r ~ +0.37), and the
    sequence-specific part runs in opposite directions (r ~ -0.3). Comparing |r| with |null| misses it
    (most re-pairings have |r| >= 0.3); the lower tail of the null, where it belongs, finds it."""
    rng = np.random.default_rng(0)
    n, t, u, B = 30, 12, 4, 1999
    common = np.cos(np.linspace(0, 3, t))[None, :, None]
    x = ar1(rng, n, t, u)
    p, o = common + x, common - x + 0.1 * ar1(rng, n, t, u)
    old = permutation_p_value(pearson_per_unit(p, o), sequence_null(p, o, derangements(n, B, rng)), "two-sided")
    assert (old > 0.25).all()
    res = mirror_unit_test(p, o, B, rng)
    assert (res.r < -0.2).all() and (res.p_less == 1 / (B + 1)).all() and (res.p == 2 / (B + 1)).all()
    assert res.counts(alpha=0.05, min_abs_r=0.2)["n_anti_mirror_bonferroni"] == u
    assert res.counts(alpha=0.05, min_abs_r=0.2)["n_mirror_bonferroni"] == 0


def test_bonferroni_budget_and_thresholds():
    assert min_permutations_for_bonferroni(96, 0.05) == 3840
    assert 2 / (3840 + 1) * 96 < 0.05 <= 2 / 3840 * 96
    f = threshold_fractions(np.array([0.9, 0.7, -0.65, 0.1, np.nan]))
    assert f["frac_r_gt_0.75"] == pytest.approx(0.2)
    assert f["frac_abs_r_gt_0.6"] == pytest.approx(0.6)
    assert f["max_r"] == 0.9 and f["min_r"] == -0.65


def test_p_value_counts_extreme_draws_plus_one():
    null = np.array([[0.1], [0.5], [-0.6], [0.2]])
    assert permutation_p_value(np.array([0.5]), null)[0] == pytest.approx(3 / 5)
    assert permutation_p_value(np.array([0.5]), null, "greater")[0] == pytest.approx(2 / 5)
    assert permutation_p_value(np.array([-0.55]), null, "less")[0] == pytest.approx(2 / 5)
