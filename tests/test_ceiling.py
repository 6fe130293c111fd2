"""mirrorlab.analysis.ceiling: the state ceiling finds a planted inverse map, and only inside its window."""

import numpy as np

from mirrorlab.analysis.ceiling import inverse_ceiling, window_features


def planted(rng, n=50, T=20):
    """q_{t+1} = q_t + 0.1 tanh(a_t) (a velocity-like control): a_t is readable from frames t and t+1 only."""
    actions = rng.uniform(-1, 1, (n, T, 2))
    q = np.zeros((n, T + 1, 2))
    for t in range(T):
        q[:, t + 1] = q[:, t] + 0.1 * np.tanh(actions[:, t])
    qd = np.diff(q, axis=1, prepend=q[:, :1])
    return q, qd, actions


def test_window_features_stack_the_frames_of_each_step():
    q = np.arange(4, dtype=float).reshape(1, 4, 1)
    x = window_features(q, 10 * q, (-1, 1))
    assert x.shape == (1, 3, 4)
    assert x[0, :, 0].tolist() == [0, 0, 1] and x[0, :, 2].tolist() == [1, 2, 3]  # angles at t-1 and t+1
    assert x[0, :, 3].tolist() == [10, 20, 30]


def test_the_ceiling_reads_a_planted_inverse_map_only_when_the_window_shows_it():
    rng = np.random.default_rng(0)
    train, test = planted(rng), planted(rng)
    seeing = inverse_ceiling(train, test, window=(0, 1))
    assert seeing["ceiling"] > 0.95 and seeing["ceiling"] == max(seeing["ridge"], seeing["mlp"])
    blind = inverse_ceiling(train, test, window=(0,))  # the state before the action says nothing about it
    assert blind["ceiling"] < 0.05


def test_the_policy_baseline_sees_a_policy_but_not_random_actions():
    """Actions set by the state before them (a = tanh(target - q)) are predictable without seeing the motion;
    random actions are not: the baseline separates knowing the policy from reading the movement."""
    from mirrorlab.analysis.ceiling import policy_baseline

    def episodes(rng, policy, n=60, T=20):
        targets = rng.uniform(-1, 1, (n, 2))
        q = np.zeros((n, T + 1, 2))
        actions = np.zeros((n, T, 2))
        for t in range(T):
            actions[:, t] = np.tanh(3 * (targets - q[:, t])) if policy else rng.uniform(-1, 1, (n, 2))
            q[:, t + 1] = q[:, t] + 0.1 * actions[:, t]
        return q, np.diff(q, axis=1, prepend=q[:, :1]), targets, actions

    rng = np.random.default_rng(1)
    assert policy_baseline(episodes(rng, True), episodes(rng, True)) > 0.9
    assert policy_baseline(episodes(rng, False), episodes(rng, False)) < 0.05
