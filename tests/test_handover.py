"""Handing over control (agents/handover.py): the expert drives exactly where the ensemble disagrees."""

import math

import numpy as np
import pytest

from mirrorlab.agents.handover import SharedControl, calibrate, disagreement, handover_dagger, mean_policy

EXPERT_ACTION = np.array([0.7, -0.7], np.float32)


def _planted_members(region=range(10, 20)):
    """Three members that agree (0) except on steps in `region`, where they say -1, 0, 1."""
    return [lambda t, s=sign: np.full(2, s * float(t in region), np.float32) for sign in (-1.0, 0.0, 1.0)]


def _drive(control, steps=40):
    return np.stack([control(None, t) for t in range(steps)])


def test_the_expert_drives_exactly_where_the_ensemble_disagrees():
    control = SharedControl(lambda _obs, t: t, _planted_members(), lambda _o, _t: EXPERT_ACTION, 0.1, budget=100)
    actions = _drive(control)
    assert control.handed_over == list(range(10, 20)) and control.labelled == list(range(10, 20))
    np.testing.assert_array_equal(actions[10:20], np.tile(EXPERT_ACTION, (10, 1)))
    np.testing.assert_array_equal(np.delete(actions, range(10, 20), axis=0), 0.0)  # the ensemble's mean elsewhere
    assert control.disagreement[15] == pytest.approx(disagreement(np.array([[-1, -1], [0, 0], [1, 1]])))
    assert control.disagreement[5] == 0.0 and len(control.labels) == 10


def test_the_budget_caps_the_hand_over_and_the_learner_drives_on():
    control = SharedControl(lambda _obs, t: t, _planted_members(), lambda _o, _t: EXPERT_ACTION, 0.1, budget=4)
    actions = _drive(control)
    assert control.handed_over == [10, 11, 12, 13]
    np.testing.assert_array_equal(actions[14:20], 0.0)  # disagreeing, but the budget is spent: the mean drives


def test_the_threshold_leaves_the_asked_for_share_above_it():
    values = list(np.random.default_rng(0).exponential(size=1000))
    threshold = calibrate(values, 0.25)
    assert np.mean(np.array(values) > threshold) == pytest.approx(0.25, abs=0.002)


def _toy():
    """A 1-D world (as DAgger's test): the demonstrations cover x in [0, 0.4], the learner's episodes start in
    [1, 2]. Members are polynomials of degree 1, 2, 3: they agree on the data and part ways off it."""
    expert = lambda x: np.cos(3.0 * x) * 0.8  # noqa: E731

    def fit(x, y, _members, _iteration):
        return [lambda s, p=np.polyfit(x[:, 0], y[:, 0], d): np.polyval(p, s) for d in (1, 2, 3)]

    def rollout(members, threshold, budget, index):
        x = np.array([np.random.default_rng(index).uniform(1.0, 2.0)])
        control = SharedControl(lambda obs, _t: obs.copy(), members, lambda obs, _t: expert(obs), threshold, budget)
        for t in range(20):
            x = x + 0.05 * np.clip(control(x, t), -1, 1) + 0.02  # actions clipped, as the env clips them
        return control

    demo = np.linspace(0.0, 0.4, 200)[:, None]
    return expert, fit, rollout, demo


def test_handing_over_spends_at_most_the_budget_and_fixes_the_states_the_learner_visits():
    expert, fit, rollout, demo = _toy()
    members = fit(demo, expert(demo), None, 0)
    states = np.linspace(1.0, 2.5, 60)[:, None]  # where the learner's episodes go
    error = lambda ms: float(np.abs(mean_policy(ms)(states) - expert(states)).mean())  # noqa: E731
    improved, cost = handover_dagger(members, demo, expert(demo), rollout, fit, iterations=3, episodes=2, budget=10,
                                     fraction=0.25)
    assert 0 < cost.expert_queries <= 3 * 10 and cost.expert_queries == cost.expert_driven_steps
    assert cost.expert_driven_steps + cost.learner_driven_steps == 20 * cost.episodes
    assert 2 < cost.episodes <= 2 + 3 * 16  # two calibration episodes, then at most 2 ceil(2 / 0.25) per iteration
    assert error(improved) < 0.5 * error(members)


def test_the_handover_method_imitates_videos_within_daggers_query_budget(tiny_dataset):
    from mirrorlab.agents.handover import build_handover
    from mirrorlab.agents.imitation_methods import METHODS, Context, ImitateConfig
    from mirrorlab.agents.imitation_task import ImitationTask
    from mirrorlab.experiments.stages.imitation import make_expert

    task = ImitationTask(tiny_dataset, [0, 1, 2, 3, 4], [5, 6, 7, 8, 9], 2)
    try:
        config = ImitateConfig(episodes=2, policy_epochs=2, refit_epochs=1, dagger_iterations=1, dagger_episodes=1)
        ctx = Context(task, config, 0, "cpu", make_expert(task))
        make, extra = build_handover(ctx)
        assert list(ctx.fits) == ["demonstrations"]  # member 0 is DAgger's first policy: one fit per seed
        T = len(task.fit[0].actions)
        assert 0 < extra["expert_queries"] == extra["expert_driven_steps"] <= 1 * 1 * T  # DAgger asks 1 x 1 x T
        steps = extra["expert_driven_steps"] + extra["learner_driven_steps"]
        assert steps % T == 0 and steps >= 2 * T  # whole episodes: one driven alone, then shared control
        video = task.test[task.appearance][0]
        assert task.rollout(video, make(video))["actions"].shape == (T, task.header.action_dim)
    finally:
        task.close()
    (row,) = [m for m in METHODS if m.name == "handover"]
    assert row.build is build_handover and row.expert and row.learner and row.family == "baseline"
