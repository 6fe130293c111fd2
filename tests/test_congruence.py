"""Tuning congruence: planted shared tuning is found, independent tuning sits at chance."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from mirrorlab.analysis.congruence import preferred_action, tuning_congruence

N, T, U, K = 60, 8, 40, 4


def tuned(rng, actions, tuning, noise=1.0):
    """Activity = each unit's tuning curve at the current action + noise: [N, T, U]."""
    return tuning[actions] + noise * rng.standard_normal(actions.shape + (tuning.shape[1],))


def tuning_curves(rng, units=U):
    """[K, units]: a clear preferred action per unit on top of weaker tuning to the others."""
    return 0.5 * rng.standard_normal((K, units)) + 2.0 * np.eye(K)[rng.integers(0, K, units)].T


def test_discrete_planted_congruence():
    rng = np.random.default_rng(0)
    actions = rng.integers(0, K, (N, T))
    tuning = tuning_curves(rng)
    P = tuned(rng, actions, tuning)
    class_means = np.stack([P[actions == k].mean(axis=0) for k in range(K)])
    np.testing.assert_array_equal(preferred_action(P, actions), class_means.argmax(0))
    assert (preferred_action(P, actions) == tuning.argmax(0)).mean() > 0.9
    res = tuning_congruence(P, tuned(rng, actions, 0.5 * tuning), actions, rng, n_permutations=199)
    assert res["fraction"] > 0.9
    assert res["p"] == pytest.approx(1 / 200)
    assert res["null_mean"] == pytest.approx(1 / K, abs=0.05)
    assert res["congruent"].shape == (U,) and res["congruent"].dtype == bool


def test_discrete_differently_tuned_or_dead_units_are_not_congruent():
    rng = np.random.default_rng(1)
    actions = rng.integers(0, K, (N, T))
    tuning = tuning_curves(rng)
    P = tuned(rng, actions, tuning)
    O = tuned(rng, actions, np.roll(tuning, 1, axis=0))  # tuned, but to another action
    P[..., 0] = O[..., 0] = 2.0  # a dead unit prefers nothing
    res = tuning_congruence(P, O, actions, rng, n_permutations=99)
    assert res["perform_preferred"][0] == res["observe_preferred"][0] == -1
    assert res["fraction"] < 0.15 and res["p"] > 0.5


def test_discrete_independent_is_at_chance_with_nominal_false_positives():
    rng = np.random.default_rng(2)
    reps = 120
    fractions, null_means, p = [], [], []
    for _ in range(reps):
        actions = rng.integers(0, K, (20, 6))
        tuning = tuning_curves(rng, 20)
        res = tuning_congruence(tuned(rng, actions, tuning), rng.standard_normal((20, 6, 20)), actions, rng, 99)
        fractions.append(res["fraction"])
        null_means.append(res["null_mean"])
        p.append(res["p"])
    assert np.mean(fractions) == pytest.approx(1 / K, abs=0.03)
    assert np.mean(null_means) == pytest.approx(1 / K, abs=0.03)
    assert (np.array(p) <= 0.05).sum() <= binom.ppf(0.999, reps, 0.05)


def test_continuous_direction_congruence():
    rng = np.random.default_rng(3)
    actions = rng.standard_normal((N, T, 2))
    angle = rng.uniform(0, 2 * np.pi, U)
    W = np.stack([np.cos(angle), np.sin(angle)])  # unit-norm preferred directions
    P = actions @ W + rng.standard_normal((N, T, U))
    direction = preferred_action(P, actions)
    assert direction.shape == (U, 2)
    cos = (direction * W.T).sum(1) / np.linalg.norm(direction, axis=1) / np.linalg.norm(W.T, axis=1)
    assert cos.min() > 0.95
    res = tuning_congruence(P, actions @ (0.5 * W) + rng.standard_normal(P.shape), actions, rng, 199)
    assert res["fraction"] > 0.9 and res["cosine"].shape == (U,)
    assert res["p"] == pytest.approx(1 / 200)
    # Random directions in 2-D agree within 60 degrees a third of the time: the measured chance.
    # Loose, because one re-pairing maps every unit's direction through the same random 2 x 2 matrix.
    assert res["null_mean"] == pytest.approx(1 / 3, abs=0.08)
    res = tuning_congruence(P, actions @ rng.standard_normal((2, U)) + rng.standard_normal(P.shape), actions, rng, 199)
    assert res["fraction"] < 0.6 and res["p"] > 0.01


def test_mismatched_actions_are_rejected():
    rng = np.random.default_rng(4)
    with pytest.raises(ValueError):
        preferred_action(rng.standard_normal((5, 4, 3)), rng.integers(0, 2, (5, 3)))
    with pytest.raises(ValueError):
        preferred_action(rng.standard_normal((5, 4, 3)), rng.standard_normal((5, 4)))
