"""Imitation learners (BC, DAgger, BCO's inverse dynamics) and `mirrorlab imitate` end to end."""

import csv
import json

import numpy as np
import pytest

from mirrorlab.agents.imitation import dagger, fit_inverse_dynamics, fit_policy
from mirrorlab.errors import UserError
from mirrorlab.experiments.stages.imitation import ImitateConfig, imitate


def test_bc_recovers_a_planted_linear_policy():
    rng = np.random.default_rng(0)
    states = rng.uniform(-1, 1, (2000, 4)).astype(np.float32)
    w = rng.normal(0, 0.4, (4, 2))
    policy = fit_policy(states, np.tanh(states @ w), epochs=150, lr=3e-3, seed=0)
    test = rng.uniform(-1, 1, (200, 4)).astype(np.float32)
    err = np.abs(policy.predict(test)[0] - np.tanh(test @ w)).mean()
    assert err < 0.05


def test_dagger_counts_queries_and_fixes_the_states_the_learner_visits():
    """BC sees only the expert's own states (x in [0, 0.4]); the learner's rollouts start elsewhere
    (x in [1, 2]) where the expert does something BC cannot extrapolate. DAgger adds the learner's
    states, relabelled by the expert, so the learner improves exactly there."""
    expert = lambda x: np.cos(3.0 * x) * 0.8  # noqa: E731

    def run(policy, seed):
        x = np.array([np.random.default_rng(seed).uniform(1.0, 2.0)], np.float32)
        visited = []
        for _ in range(20):
            visited.append(x.copy())
            x = x + 0.05 * policy(x) + 0.02
        return np.stack(visited)

    demo_states = np.linspace(0.0, 0.4, 200, dtype=np.float32)[:, None]
    bc = fit_policy(demo_states, expert(demo_states), epochs=100, lr=3e-3, seed=0)

    def rollout(pol, seed):
        states = run(lambda x: pol.predict(x)[0], seed)
        return states, expert(states)

    def error_on_own_states(pol):
        states = np.concatenate([run(lambda x: pol.predict(x)[0], s) for s in range(100, 105)])
        return np.abs(pol.predict(states)[0] - expert(states)).mean()

    before = error_on_own_states(bc)
    improved, queries = dagger(bc, demo_states, expert(demo_states), rollout, [[1, 2], [3, 4], [5, 6]],
                               epochs=100, lr=3e-3, seed=0)
    assert queries == 3 * 2 * 20
    assert error_on_own_states(improved) < 0.5 * before


def test_inverse_dynamics_learns_from_babbling(tiny_dataset):
    from mirrorlab.envs.paired import PairedDataset

    with PairedDataset(tiny_dataset) as data:
        eps = [data.read_episode(r) for r in data.episodes("babble")]
    frames = np.stack([e["perform"]["frames"] for e in eps]).transpose(0, 1, 4, 2, 3)
    actions = np.stack([e["actions"] for e in eps])
    idm = fit_inverse_dynamics(frames, actions, epochs=30, lr=3e-3, seed=0)
    residual = ((idm.label(frames) - actions) ** 2).mean()
    assert residual < 0.8 * actions.var()


def test_imitate_scores_every_method_and_the_oracle_is_exact(analysed_runs, tmp_path):
    runs, analysis = analysed_runs
    out = tmp_path / "imitation"
    config = ImitateConfig(episodes=3, policy_epochs=5, idm_epochs=2, dagger_iterations=1, dagger_episodes=2)
    result = imitate(runs, out, config, analysis, show_progress=False)
    methods = {r["method"] for r in result["rows"]}
    assert methods == {"oracle", "random", "inverse_shared", "inverse_separate", "bc", "dagger", "bco"}
    oracle = [r for r in result["rows"] if r["method"] == "oracle"]
    assert len(oracle) == 3 and all(r["trajectory_error"] == 0.0 for r in oracle)
    assert all(r["trajectory_error"] > 0 for r in result["rows"] if r["method"] == "random")
    dagger_rows = [r for r in result["rows"] if r["method"] == "dagger"]
    assert all(r["expert_queries"] == 1 * 2 * 50 for r in dagger_rows)
    summary = json.loads((out / "metrics.json").read_text())["summary"]["identical"]
    assert summary["oracle"]["success"]["mean"] == 1.0
    assert len(list(csv.DictReader((out / "imitation.csv").open()))) == len(result["rows"])
    assert "| dagger |" in (out / "report.md").read_text()
    with pytest.raises(UserError, match="already holds results"):
        imitate(runs, out, config, analysis, show_progress=False)


def test_oracle_replay_matches_the_stored_perform_side(tiny_dataset):
    from mirrorlab.envs.paired import PairedDataset

    with PairedDataset(tiny_dataset) as data:
        ep = data.read_episode(data.episodes("demo")[0])
        env = data.header.make_env("self")
    from mirrorlab.envs.episodes import replay

    result = replay(env, ep["seed"], ep["actions"])
    np.testing.assert_array_equal(result["fingertip_pos"], ep["perform"]["fingertip_pos"])


def test_imitate_rejects_a_folder_that_is_not_a_run_or_an_unanalysed_run(analysed_runs, tmp_path):
    runs, analysis = analysed_runs
    with pytest.raises(UserError, match="not a finished `mirrorlab train` run"):
        imitate([tmp_path], tmp_path / "out", ImitateConfig(), analysis, show_progress=False)
    with pytest.raises(UserError, match="not the metrics.json of `mirrorlab analyze`|not found"):
        imitate(runs, tmp_path / "out", ImitateConfig(), tmp_path, show_progress=False)
    assert not (tmp_path / "out").exists()
