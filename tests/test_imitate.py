"""Imitation from video (mirrorlab.agents.imitation and the imitate stage): the task only in the video."""

import csv
import json

import numpy as np
import pytest
import torch

from mirrorlab.agents.imitation import CoreTracker, dagger, episode_windows, fit_frame_policy, plan_by_synthesis
from mirrorlab.errors import UserError
from mirrorlab.experiments.stages.imitation import ImitateConfig, imitate, imitation_env

TINY = ImitateConfig(episodes=3, policy_epochs=2, refit_epochs=1, dagger_iterations=1, dagger_episodes=1, bco_iterations=1,
                     plan_iterations=5, replan_every=25, replan_iterations=2)


def test_the_imitating_arm_sees_no_target_while_the_video_shows_it(tiny_dataset):
    from mirrorlab.envs.paired import PairedDataset

    with PairedDataset(tiny_dataset) as data:
        episode = data.read_episode(data.episodes("demo")[0])
        env = imitation_env(data.header)
    try:
        obs, _ = env.reset(seed=episode["seed"])
        assert obs["state"].shape == (2 * data.header.action_dim,)  # joint angles and velocities only
        # The green target, even blended into one anti-aliased pixel, is the only green in the scene.
        greenish = lambda img: (img[..., 1].astype(int) - img[..., [0, 2]].max(-1) > 15).sum()  # noqa: E731
        assert greenish(obs["pixels"]) == 0 and greenish(episode["observe"]["frames"][0]) > 0
        np.testing.assert_allclose(obs["state"][:2], episode["perform"]["joint_angles"][0], atol=1e-6)  # same start
    finally:
        env.close()


def test_frame_windows_and_a_policy_that_reads_motion_from_them(tiny_dataset):
    """An inverse dynamics model from the self arm's own babbling: frames t-1, t, t+1 -> a_t."""
    from mirrorlab.envs.paired import PairedDataset

    with PairedDataset(tiny_dataset) as data:
        eps = [data.read_episode(r) for r in data.episodes("babble")]
    frames = np.stack([e["perform"]["frames"] for e in eps])
    windows = episode_windows(frames)
    assert windows.shape == (3, 50, 3, 3, 16, 16)
    np.testing.assert_array_equal(windows[0, 10, 2], frames[0, 11].transpose(2, 0, 1))
    actions = np.concatenate([e["actions"] for e in eps])
    flat = windows.reshape(-1, 3, 3, 16, 16)
    idm = fit_frame_policy(flat, actions, epochs=40, lr=3e-3, seed=0, augment_shift=0)
    with torch.no_grad():
        residual = ((idm(torch.from_numpy(flat)).numpy() - actions) ** 2).mean()
    assert residual < 0.6 * actions.var()


def test_dagger_counts_queries_and_fixes_the_states_the_learner_visits():
    """BC sees only the expert's own states (x in [0, 0.4]); the learner's rollouts start elsewhere
    (x in [1, 2]) where the expert does something BC cannot extrapolate. DAgger adds the learner's
    states, relabelled by the expert, so the learner improves exactly there."""
    from sklearn.neighbors import KNeighborsRegressor

    expert = lambda x: np.cos(3.0 * x) * 0.8  # noqa: E731

    def run(policy, seed):
        x = np.array([np.random.default_rng(seed).uniform(1.0, 2.0)])
        visited = []
        for _ in range(20):
            visited.append(x.copy())
            x = x + 0.05 * policy.predict(x[None])[0] + 0.02
        return np.stack(visited)

    fit = lambda x, y, _p, _i: KNeighborsRegressor(3).fit(x, y)  # noqa: E731
    demo = np.linspace(0.0, 0.4, 200)[:, None]
    bc = fit(demo, expert(demo)[:, 0], None, 0)
    error = lambda pol: np.mean([np.abs(pol.predict(s)[..., None] - expert(s)).mean()  # noqa: E731
                                 for s in (run(pol, k) for k in range(100, 105))])
    improved, queries = dagger(bc, demo, expert(demo)[:, 0], lambda pol, s: (run(pol, s), expert(run(pol, s))[:, 0]),
                               [[1, 2], [3, 4], [5, 6]], fit)
    assert queries == 3 * 2 * 20
    assert error(improved) < 0.5 * error(bc)


def test_analysis_by_synthesis_finds_actions_whose_predicted_frames_match_a_video():
    """The core's own forward predictions for known actions, as the 'video': planning reduces the pixel error
    far below that of doing nothing and moves towards the true actions."""
    from mirrorlab.agents.embodied import build_embodied_core

    model = build_embodied_core(2, 16, 8, 12, 4, False, seed=0)
    true = np.random.default_rng(0).uniform(-0.8, 0.8, (20, 2)).astype(np.float32)
    with torch.no_grad():
        frames = model.perform(torch.from_numpy(true)[None]).prediction[0]
    video = np.concatenate([np.zeros((1, 16, 16, 3), np.uint8),
                            np.clip((frames.numpy().transpose(0, 2, 3, 1) + 0.5) * 255, 0, 255).round().astype(np.uint8)])
    def loss(actions):
        with torch.no_grad():
            pred = model.perform(torch.from_numpy(actions)[None]).prediction[0]
        return float(((pred - (torch.from_numpy(video[1:].transpose(0, 3, 1, 2)).float() / 255 - 0.5)) ** 2).mean())
    planned = plan_by_synthesis(model, video, 2, iterations=200, lr=0.05)
    assert loss(planned) < 0.2 * loss(np.zeros_like(true))
    assert np.corrcoef(planned.ravel(), true.ravel())[0, 1] > 0.5


def test_the_closed_loop_core_matches_its_batch_observe_path_when_the_arm_follows_the_video():
    from mirrorlab.agents.embodied import build_embodied_core, observed_input

    for window in ((1,), (-1, 0, 1)):
        model = build_embodied_core(2, 16, 8, 12, 4, False, seed=1, observe_window=window).eval()
        video = np.random.default_rng(2).integers(0, 255, (11, 16, 16, 3), dtype=np.uint8)
        tracker = CoreTracker(model, window, video)
        stepped = np.stack([tracker({"pixels": video[t]}, t) for t in range(10)])
        with torch.no_grad():
            batch = model.observe(torch.from_numpy(observed_input(video.transpose(0, 3, 1, 2), window))[None])
        np.testing.assert_allclose(stepped, batch.prediction[0].numpy(), atol=1e-5)


def test_imitate_scores_every_method_with_the_task_only_in_the_video(analyzed_runs, tmp_path):
    runs, analysis = analyzed_runs
    out = tmp_path / "imitation"
    result = imitate(runs, out, TINY, analysis, show_progress=False)
    methods = {r["method"] for r in result["rows"]}
    assert methods == {"oracle", "random", "goal_given", "inverse_shared", "inverse_separate", "closed_shared",
                       "closed_separate", "mirror_shared", "mirror_separate", "bc", "dagger", "bco", "bco_alpha"}
    oracle = [r for r in result["rows"] if r["method"] == "oracle"]
    assert len(oracle) == 3 and all(r["trajectory_error"] == 0.0 for r in oracle)  # 3 test videos x the runs' 1 seed
    assert all(r["trajectory_error"] > 0 for r in result["rows"] if r["method"] == "random")
    assert all(r["expert_queries"] == 1 * 1 * 50 for r in result["rows"] if r["method"] == "dagger")
    metrics = json.loads((out / "metrics.json").read_text())
    summary = metrics["summary"]["identical"]
    assert summary["oracle"]["success"]["mean"] == 1.0 and summary["goal_given"]["success"]["mean"] == 1.0
    assert summary["oracle"]["n_seeds"] == 1 and summary["inverse_shared"]["n_seeds"] == 1
    assert "best_from_video" in metrics["targets"]["identical"]
    assert len(list(csv.DictReader((out / "imitation.csv").open()))) == len(result["rows"])
    assert "| dagger |" in (out / "report.md").read_text()
    assert (out / "figures" / "success_by_method.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(UserError, match="already holds results"):
        imitate(runs, out, TINY, analysis, show_progress=False)


def test_imitate_rejects_a_folder_that_is_not_a_run_or_an_unanalyzed_run(analyzed_runs, tmp_path):
    runs, analysis = analyzed_runs
    with pytest.raises(UserError, match="not a finished `mirrorlab train` run"):
        imitate([tmp_path], tmp_path / "out", ImitateConfig(), analysis, show_progress=False)
    with pytest.raises(UserError, match="not the metrics.json of `mirrorlab analyze`|not found"):
        imitate(runs, tmp_path / "out", ImitateConfig(), tmp_path, show_progress=False)
    assert not (tmp_path / "out").exists()


def test_runs_that_learnt_differently_are_scored_apart_by_weight_and_inverse_data():
    from types import SimpleNamespace

    from mirrorlab.experiments.stages.imitation import condition_label

    def run(name, condition, weight, babble=False):
        return SimpleNamespace(name=name, config=SimpleNamespace(condition=condition, inverse_weight=weight,
                                                                 inverse_babble=babble))

    assert condition_label(run("shared__seed0", "shared", 1.0)) == "shared"
    assert condition_label(run("shared__seed0", "shared", 0.25)) == "shared@w0.25"
    assert condition_label(run("separate__seed2", "separate", 4.0)) == "separate@w4"
    assert condition_label(run("untrained__seed0", "untrained", 0.0)) == "untrained"
    assert condition_label(run("shared_selfvideo__seed1", "shared", 1.0)) == "shared_selfvideo"
    assert condition_label(run("shared__seed0", "shared", 0.25, babble=True)) == "shared+babble@w0.25"
    assert condition_label(run("untrained__seed0", "untrained", 1.0, babble=True)) == "untrained"
