"""Imitation from video (mirrorlab.agents.imitation and the imitate stage): the task only in the video."""

import csv
import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from mirrorlab.agents.imitation import (
    CoreTracker,
    dagger,
    episode_windows,
    fit_frame_policy,
    match_frames,
    match_states,
    plan_through_core,
)
from mirrorlab.errors import UserError
from mirrorlab.experiments.stages.imitation import ImitateConfig, imitate, imitation_env

TINY = ImitateConfig(episodes=3, policy_epochs=2, refit_epochs=1, dagger_iterations=1, dagger_episodes=1, bco_iterations=1,
                     plan_iterations=5, replan_every=25, replan_iterations=2, bootstrap=200)


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


def test_a_fits_learning_curve_watches_without_changing_the_fit():
    """`after_epoch` sees the policy after every epoch, and the fit ends with the very weights it has
    without the callback (scripts/policy_fit_curve.py reads every shorter fit off one long one)."""
    rng = np.random.default_rng(0)
    windows = rng.integers(0, 255, (40, 3, 3, 16, 16), dtype=np.uint8)
    actions = rng.uniform(-1, 1, (40, 2)).astype(np.float32)
    seen = []
    watched = fit_frame_policy(windows, actions, epochs=3, seed=1,
                               after_epoch=lambda e, p: seen.append((e, p.training, next(p.parameters()).sum().item())))
    plain = fit_frame_policy(windows, actions, epochs=3, seed=1)
    assert [e for e, _, _ in seen] == [1, 2, 3] and not any(training for _, training, _ in seen)
    assert len({round(total, 6) for _, _, total in seen}) == 3  # the weights move between epochs
    for a, b in zip(watched.state_dict().values(), plain.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


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


def _grounded_core_and_its_own_runs(seed=0, n=3):
    """A grounded core, start frames and known actions, with the core's own perform runs of them: the 'videos'
    and the states a planner must find its way back to."""
    from mirrorlab.agents.embodied import build_embodied_core

    model = build_embodied_core(2, 16, 8, 12, 4, False, seed=seed, grounding="start_frame_change").eval()
    rng = np.random.default_rng(seed)
    starts = rng.integers(64, 192, (n, 16, 16, 3), dtype=np.uint8)  # mid-range: start + change is not clipped
    true = rng.uniform(-0.8, 0.8, (n, 20, 2)).astype(np.float32)
    with torch.no_grad():
        out = model.perform(torch.from_numpy(true), torch.from_numpy(starts.transpose(0, 3, 1, 2)))
    predicted = np.clip((out.prediction.numpy().transpose(0, 1, 3, 4, 2) + 0.5) * 255, 0, 255).round()
    videos = np.concatenate([starts[:, None], predicted.astype(np.uint8)], axis=1)
    return model, starts, true, videos, out.hidden


def _perform_loss(model, starts, actions, match):
    with torch.no_grad():
        return float(match(model.perform(torch.from_numpy(actions), torch.from_numpy(starts.transpose(0, 3, 1, 2))),
                           0))


@pytest.mark.parametrize("kind", ["synthesis", "latent", "goal_inference"])
def test_planning_through_the_core_recovers_what_the_core_itself_did(kind):
    """Analysis by synthesis (pixels), latent matching (every state) and goal inference (the last state): on
    targets the core itself produced from known actions, planning three videos at once from zero actions cuts
    the mismatch far below doing nothing; matching every step also recovers the actions themselves."""
    model, starts, true, videos, hidden = _grounded_core_and_its_own_runs()
    match = match_frames(videos, model) if kind == "synthesis" else match_states(hidden, kind == "goal_inference")
    planned = plan_through_core(model, match, np.zeros_like(true), iterations=250, lr=0.05, start_frames=starts)
    assert planned.shape == true.shape
    assert _perform_loss(model, starts, planned, match) < 0.2 * _perform_loss(model, starts, np.zeros_like(true), match)
    if kind != "goal_inference":
        assert np.corrcoef(planned.ravel(), true.ravel())[0, 1] > 0.5


def test_a_grounded_perform_path_depends_on_where_the_arm_starts():
    """The own first frame sets the perform path's start state: the same actions from another start frame give
    other states (an ungrounded core of the same seed cannot tell the two starts apart)."""
    from mirrorlab.agents.embodied import build_embodied_core

    actions = torch.zeros(1, 5, 2)
    starts = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (2, 3, 16, 16), dtype=np.uint8))
    for grounding in ("start_frame", "start_frame_change"):
        grounded = build_embodied_core(2, 16, 8, 12, 4, False, seed=0, grounding=grounding).eval()
        with torch.no_grad():
            a, b = (grounded.perform(actions, s[None]).hidden for s in starts)
        assert (a - b).abs().max() > 1e-3
        with pytest.raises(ValueError, match="start"):
            grounded.perform(actions)
    plain = build_embodied_core(2, 16, 8, 12, 4, False, seed=0, grounding="none").eval()
    with torch.no_grad():
        np.testing.assert_array_equal(plain.perform(actions).hidden.numpy(), plain.perform(actions).hidden.numpy())


def test_a_change_predicting_forward_head_adds_its_output_to_the_own_start_frame():
    """With `start_frame_change` the forward prediction is the start frame (in the head's scale) plus the head's
    output on the same hidden states: a head that outputs zero predicts the arm stays where it started; with
    `start_frame` (same seed, same weights) the prediction is the head's output alone."""
    from mirrorlab.agents.embodied import build_embodied_core
    from mirrorlab.encoders.cnn import frames_as_targets

    actions = torch.from_numpy(np.random.default_rng(2).uniform(-1, 1, (2, 4, 2)).astype(np.float32))
    starts = torch.from_numpy(np.random.default_rng(3).integers(0, 255, (2, 3, 16, 16), dtype=np.uint8))
    change = build_embodied_core(2, 16, 8, 12, 4, False, seed=0, grounding="start_frame_change").eval()
    whole = build_embodied_core(2, 16, 8, 12, 4, False, seed=0, grounding="start_frame").eval()
    with torch.no_grad():
        out, plain = change.perform(actions, starts), whole.perform(actions, starts)
        torch.testing.assert_close(out.hidden, plain.hidden)
        torch.testing.assert_close(out.prediction, plain.prediction + frames_as_targets(starts)[:, None])
        for p in change.forward_head.parameters():
            p.zero_()
        still = change.perform(actions, starts).prediction
    torch.testing.assert_close(still, frames_as_targets(starts)[:, None].expand_as(still))


def test_a_lesion_acts_inside_the_recurrence():
    """A silenced unit is zero at every step, and silencing it changes the other units' later states (it no
    longer feeds the recurrence), in both modes."""
    from mirrorlab.agents.embodied import build_embodied_core

    model = build_embodied_core(2, 16, 8, 12, 4, False, seed=0, grounding="none").eval()

    def silence(h):
        h = h.clone()
        h[:, 3] = 0.0
        return h

    actions = torch.from_numpy(np.random.default_rng(1).uniform(-1, 1, (1, 6, 2)).astype(np.float32))
    with torch.no_grad():
        intact, lesioned = model.perform(actions).hidden, model.perform(actions, lesion=silence).hidden
    assert (lesioned[..., 3] == 0).all()
    others = [u for u in range(12) if u != 3]
    assert torch.allclose(intact[:, 0, others], lesioned[:, 0, others])  # the first step is not fed back yet
    assert (intact[:, 1:, others] - lesioned[:, 1:, others]).abs().max() > 1e-4


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


def test_the_forward_head_runs_only_for_a_reader_of_its_prediction():
    """Latent matching and goal inference read the perform states only, so planning never runs the frame decoder
    (about 14x faster per Adam step on a medium core); synthesis reads the frames. The lazy prediction equals
    the head on the states plus the start base, and read under no_grad it still carries gradients."""
    from mirrorlab.agents.embodied import build_embodied_core

    model = build_embodied_core(2, 16, 8, 12, 4, False, seed=1, grounding="start_frame_change")
    calls = []
    model.forward_head.register_forward_hook(lambda *_: calls.append(1))
    rng = np.random.default_rng(0)
    video = rng.integers(0, 255, (2, 6, 16, 16, 3), dtype=np.uint8)
    states = torch.from_numpy(rng.normal(size=(2, 5, 12)).astype(np.float32))
    start = video[:, 0]
    plan_through_core(model, match_states(states), np.zeros((2, 5, 2), np.float32), iterations=3, start_frames=start)
    plan_through_core(model, match_states(states, final_only=True), np.zeros((2, 5, 2), np.float32), iterations=3,
                      start_frames=start)
    assert calls == []
    plan_through_core(model, match_frames(video, model), np.zeros((2, 5, 2), np.float32), iterations=3,
                      start_frames=start)
    assert len(calls) == 3
    own = torch.from_numpy(start.transpose(0, 3, 1, 2).copy())
    out = model.perform(torch.zeros(2, 5, 2), own)
    with torch.no_grad():
        lazy = out.prediction
    assert lazy.requires_grad
    torch.testing.assert_close(lazy, model.forward_head(out.hidden) + model.prediction_base(own)[:, None])


def test_imitate_scores_every_method_with_the_task_only_in_the_video(analyzed_runs, tmp_path):
    runs, analysis = analyzed_runs
    out = tmp_path / "imitation"
    result = imitate(runs, out, TINY, analysis, show_progress=False)
    rows = result["rows"]
    cores = {(r["method"], r.get("core")) for r in rows if r.get("core")}
    assert cores == {("inverse", "shared"), ("inverse", "separate"), ("closed_loop", "shared"),
                     ("closed_loop", "separate"), ("synthesis", "shared"), ("latent", "shared"),
                     ("goal_inference", "shared")}  # the planners run on mirror_conditions only
    assert {r["method"] for r in rows if not r.get("core")} == {"oracle", "random", "goal_given", "what_then_how",
                                                                 "bc", "bco", "bco_alpha", "dagger", "handover"}
    # The dataset's own appearance and one no core trained on, 3 test videos each, every method.
    assert {r["appearance"] for r in rows} == {"identical", "held_out_color"}
    oracle = [r for r in rows if r["method"] == "oracle"]
    assert len(oracle) == 2 * 3 and all(r["trajectory_error"] == 0.0 for r in oracle)
    assert all(r["success"] == r["success_specular"] for r in rows)  # no mirrored arm: the two goals coincide
    assert all(r["trajectory_error"] > 0 for r in rows if r["method"] == "random")
    assert all(r["expert_queries"] == 1 * 1 * 50 for r in rows if r["method"] == "dagger")
    # Activation patching on the planning core: each test video patched into the next one's start, 3 triples.
    sources = [r["episode_id"] for r in oracle if r["appearance"] == "identical"]
    assert [(p["source"], p["host"], p["control"]) for p in result["patching"]] == \
        [(sources[i], sources[(i + 1) % 3], sources[(i + 2) % 3]) for i in range(3)]
    assert all(p["core"] == "shared" and p["to_source"] >= 0 for p in result["patching"])
    metrics = json.loads((out / "metrics.json").read_text())
    (patch,) = metrics["patching"]
    assert patch["effect"]["n_videos"] == 3 and "Activation patching" in (out / "report.md").read_text()
    table = metrics["summary"]["other_view | trained on identical -> watching identical"]
    assert table["oracle"]["success"]["mean"] == 1.0 and table["goal_given"]["success"]["mean"] == 1.0
    assert table["oracle"]["success"]["n_seeds"] == 1 and table["inverse [shared]"]["success"]["n_videos"] == 3
    assert all(0 <= e["success"]["low"] <= e["success"]["mean"] <= e["success"]["high"] <= 1 for e in table.values())
    assert metrics["methods"]["dagger"]["expert"] is True and metrics["methods"]["latent"]["family"] == "mirror system"
    goals = metrics["targets"]["other_view | trained on identical -> watching identical"]
    assert goals["target"]["reference"] == "oracle" and "specular" not in goals  # no mirrored video here
    assert len(list(csv.DictReader((out / "imitation.csv").open()))) == len(rows)
    assert "| dagger | baseline |" in (out / "report.md").read_text()
    assert (out / "figures" / "success_by_method.png").read_bytes()[:4] == b"\x89PNG"
    # Resumed: every job's saved rows are newer than its runs and the analysis, so nothing is recomputed and
    # the summary is the same; a run retrained since makes its jobs stale; another config is refused.
    saved = sorted((out / "jobs").glob("*.json"))
    stamps = [p.stat().st_mtime_ns for p in saved]
    again = imitate(runs, out, TINY, analysis, show_progress=False)
    assert [p.stat().st_mtime_ns for p in saved] == stamps and len(saved) == 1
    assert json.dumps(again["rows"]) == json.dumps(rows) and json.loads((out / "metrics.json").read_text())["summary"] == metrics["summary"]
    done, before = Path(runs[0]) / "done.json", (Path(runs[0]) / "done.json").stat()
    os.utime(done)
    try:
        imitate(runs, out, TINY, analysis, show_progress=False)
    finally:
        os.utime(done, ns=(before.st_atime_ns, before.st_mtime_ns))  # the fixture is shared
    assert saved[0].stat().st_mtime_ns > stamps[0]
    with pytest.raises(UserError, match=r"another config \(episodes\)"):
        imitate(runs, out, dataclasses.replace(TINY, episodes=2), analysis, show_progress=False)


def test_mirrored_demonstrations_are_scored_at_both_declared_goals():
    """A fingertip at the specular goal (the target reflected x -> -x in the arm's base frame) succeeds there and
    fails the anatomical goal, and the other way round; computed by hand."""
    from types import SimpleNamespace

    from mirrorlab.agents.imitation_task import ImitationTask, Video, specular

    np.testing.assert_array_equal(specular(np.array([0.1, 0.2, 0.03])), [-0.1, 0.2, 0.03])
    task = ImitationTask.__new__(ImitationTask)
    task.success_radius = 0.02
    task.physics = SimpleNamespace(to_base_frame=lambda _arm, p: np.asarray(p))  # base frame = world, for the test
    target = np.array([0.1, 0.15, 0.02])
    video = Video(0, 0, "mirrored", None, None, np.zeros((2, 3)), target)
    at_specular = {"fingertip_pos": np.array([[0.0, 0.0, 0.02], [-0.1, 0.15, 0.02]])}
    scores = task.score(video, at_specular, oracle_tips=at_specular["fingertip_pos"])
    assert scores["success_specular"] == 1.0 and scores["success"] == 0.0
    assert scores["final_distance"] == pytest.approx(0.2) and scores["final_distance_specular"] == 0.0
    at_anatomical = {"fingertip_pos": np.array([[0.0, 0.0, 0.02], [0.105, 0.15, 0.02]])}
    scores = task.score(video, at_anatomical, oracle_tips=at_anatomical["fingertip_pos"])
    assert scores["success"] == 1.0 and scores["success_specular"] == 0.0


def test_the_bootstrap_interval_resamples_seeds_and_videos_and_stays_in_the_unit_interval():
    """One seed, two videos (0 and 1): resampled means are 0, 1/2 or 1 with chances 1/4, 1/2, 1/4, so the 95%
    percentile interval is [0, 1]; a method that always succeeds has [1, 1]; seeds that disagree widen it."""
    from mirrorlab.analysis.imitation import bootstrap_mean

    b = bootstrap_mean(np.array([[0.0, 1.0]]), n=4000, seed=0)
    assert b["mean"] == 0.5 and b["low"] == 0.0 and b["high"] == 1.0 and (b["n_seeds"], b["n_videos"]) == (1, 2)
    assert bootstrap_mean(np.ones((5, 20)), n=500) == {"mean": 1.0, "low": 1.0, "high": 1.0, "n_seeds": 5,
                                                        "n_videos": 20}
    same = bootstrap_mean(np.tile([[1.0] * 10 + [0.0] * 10], (5, 1)), n=2000, seed=1)
    split = bootstrap_mean(np.array([[1.0] * 20] * 3 + [[0.0] * 20] * 2), n=2000, seed=1)
    assert same["mean"] == split["mean"] == 0.5 or same["mean"] == 0.5
    assert split["high"] - split["low"] > same["high"] - same["low"]  # between-seed spread counts


def test_what_then_how_reaches_a_goal_it_is_given():
    """The self arm's own reaching controller, given a goal in its base frame, gets there: the 'how' of the
    non-mirror baseline works, so that baseline fails only where reading the target fails."""
    import gymnasium as gym

    import mirrorlab.envs  # noqa: F401
    from mirrorlab.agents.scripted import ScriptedReacher

    env = gym.make("mirrorlab/PlanarReach-v0", actor="self", observe_target=False)
    try:
        env.reset(seed=3)
        u = env.unwrapped
        goal = u.physics.from_base_frame("self", np.array([-0.12, 0.1, u.physics.target_in_base_frame("self")[2]]))
        controller = ScriptedReacher(env)
        for _ in range(50):
            env.step(controller.action(goal=goal))
        assert np.linalg.norm(u.physics.fingertip_pos("self") - goal) < 0.02
    finally:
        env.close()


def test_imitate_rejects_a_folder_that_is_not_a_run_or_an_unanalyzed_run(analyzed_runs, tmp_path):
    runs, analysis = analyzed_runs
    with pytest.raises(UserError, match="not a finished `mirrorlab train` run"):
        imitate([tmp_path], tmp_path / "out", ImitateConfig(), analysis, show_progress=False)
    with pytest.raises(UserError, match="not the metrics.json of `mirrorlab analyze`|not found"):
        imitate(runs, tmp_path / "out", ImitateConfig(), tmp_path, show_progress=False)
    assert not (tmp_path / "out").exists()


def test_runs_that_learnt_differently_are_scored_apart_by_weight_and_inverse_data():
    from types import SimpleNamespace

    from mirrorlab.agents.runs import run_label as condition_label

    def run(name, condition, weight, babble=False, grounding="start_frame_change", selectivity=0.0, forward=10.0):
        return SimpleNamespace(name=name, config=SimpleNamespace(condition=condition, inverse_weight=weight,
                                                                 inverse_babble=babble, perform_grounding=grounding,
                                                                 selectivity_weight=selectivity,
                                                                 forward_weight=forward))

    assert condition_label(run("shared__seed0", "shared", 1.0)) == "shared"
    assert condition_label(run("shared__seed0", "shared", 0.25)) == "shared@w0.25"
    assert condition_label(run("separate__seed2", "separate", 4.0)) == "separate@w4"
    assert condition_label(run("untrained__seed0", "untrained", 0.0)) == "untrained"
    assert condition_label(run("shared_selfvideo__seed1", "shared", 1.0)) == "shared_selfvideo"
    assert condition_label(run("shared__seed0", "shared", 0.25, babble=True)) == "shared+babble@w0.25"
    assert condition_label(run("untrained__seed0", "untrained", 1.0, babble=True)) == "untrained"
    assert condition_label(run("shared__seed0", "shared", 1.0, grounding="none")) == "shared-ungrounded"
    assert condition_label(run("shared__seed0", "shared", 1.0, grounding="start_frame")) == "shared-wholeframe"
    assert condition_label(run("shared__seed0", "shared", 1.0, forward=1.0)) == "shared@fw1"
    assert condition_label(run("shared__seed0", "shared", 1.0, selectivity=-0.3)) == "shared@sel-0.3"


def test_methods_that_start_from_the_same_fit_share_it_and_each_gets_its_own_copy(monkeypatch):
    """BC and DAgger's first policy (and BCO and BCO(alpha)'s inverse dynamics) are one fit per seed: it runs
    once, and each caller gets a copy, so one method's refits cannot change another's policy."""
    from types import SimpleNamespace

    from mirrorlab.agents import imitation_methods as methods

    calls = []
    monkeypatch.setattr(methods, "_fit", lambda ctx, x, y: calls.append(len(x)) or torch.nn.Linear(2, 2))
    ctx = methods.Context(task=None, config=SimpleNamespace(learner_episodes=0), seed=0, device="cpu", expert=None)
    data = lambda: (np.zeros((5, 2)), np.zeros((5, 2)))  # noqa: E731
    a, b = ctx.first_fit("demonstrations", data), ctx.first_fit("demonstrations", data)
    assert calls == [5] and a is not b and torch.equal(a.weight, b.weight)
    with torch.no_grad():
        a.weight.add_(1.0)
    assert not torch.equal(a.weight, ctx.first_fit("demonstrations", data).weight)
    ctx.first_fit("babble", data)
    assert calls == [5, 5]


def test_targets_compare_with_the_goal_given_reference_where_the_bodies_differ():
    """On a morphology video the oracle's replayed actions land elsewhere (0%), so the best from-video method is
    measured against the goal-given reference; on an identical arm against the oracle; the specular goal only
    where a goal-given-specular reference ran (mirrored videos)."""
    from mirrorlab.agents.imitation_methods import METHOD_RECORDS
    from mirrorlab.analysis.imitation import targets

    def entry(method, success, core=None):
        stat = {"mean": success, "low": success, "high": success}
        return {"success": stat, "success_specular": stat, "method": method, "core": core}

    table = {"oracle": entry("oracle", 0.0), "goal_given": entry("goal_given", 1.0), "bco": entry("bco", 0.2),
             "inverse [shared]": entry("inverse", 0.45, "shared"), "latent [shared]": entry("latent", 0.3, "shared")}
    out = targets({"a": table, "b": {**table, "oracle": entry("oracle", 0.9)}}, METHOD_RECORDS,
                  {"a": "morphology", "b": "identical"})
    assert out["a"]["target"]["reference"] == "goal_given" and out["a"]["target"]["best_of_reference"] == 0.45
    assert out["b"]["target"]["reference"] == "oracle" and out["b"]["target"]["best_of_reference"] == 0.5
    assert out["a"]["target"]["best"] == "inverse [shared]" and out["a"]["target"]["beats"] == {"bco": True}
    assert abs(out["a"]["target"]["mirror_gap_points"] - 15.0) < 1e-9 and "specular" not in out["a"]
