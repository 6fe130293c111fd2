"""Overimitation (agents/overimitation.py, analysis/overimitation.py): detour demonstrations and the index."""

import numpy as np
import pytest

from mirrorlab.agents import overimitation as ov
from mirrorlab.analysis import overimitation as stats

T = 20
DIRECT = np.stack([np.linspace(0.0, 0.1, T + 1), np.zeros(T + 1), np.zeros(T + 1)], axis=1)
BUMP = np.sin(np.linspace(0, np.pi, T + 1))[:, None] * np.array([0.0, 0.05, 0.0])  # out and back, sideways
DETOUR = DIRECT + BUMP


WANDER = np.cos(np.linspace(0, 3, T + 1))[:, None] * np.array([0.02, 0.03, 0.0])  # a learner's own drift


@pytest.mark.parametrize("share", [1.0, 0.0, 0.5, -0.3])
def test_the_index_is_the_share_of_the_detour_reproduced(share):
    assert ov.response_gain(DIRECT + share * BUMP, DIRECT, DETOUR, DIRECT) == pytest.approx(share)
    # Drift that does not depend on the video cancels: only the response to the detour counts.
    assert ov.response_gain(DIRECT + WANDER + share * BUMP, DIRECT + WANDER, DETOUR, DIRECT) == pytest.approx(share)


def test_the_index_ignores_movement_orthogonal_to_the_detour_and_refuses_no_detour():
    wobble = np.sin(np.linspace(0, 2 * np.pi, T + 1))[:, None] * np.array([0.0, 0.0, 0.03])  # up and down
    assert ov.response_gain(DIRECT + wobble, DIRECT, DETOUR, DIRECT) == pytest.approx(0.0, abs=1e-12)
    assert ov.response_gain(DIRECT + WANDER, DIRECT + WANDER, DETOUR, DIRECT) == 0.0
    with pytest.raises(ValueError, match="nothing to overimitate"):
        ov.response_gain(DIRECT, DIRECT, DIRECT, DIRECT)


def test_the_waypoint_index_is_one_through_the_waypoint_and_zero_watching_or_not():
    waypoint = DETOUR[T // 2]
    assert ov.waypoint_index(DETOUR, DIRECT, DETOUR, DIRECT, waypoint) == pytest.approx(1.0)
    assert ov.waypoint_index(DIRECT, DIRECT, DETOUR, DIRECT, waypoint) == pytest.approx(0.0)
    assert ov.waypoint_index(DIRECT + 0.5 * BUMP, DIRECT, DETOUR, DIRECT, waypoint) == pytest.approx(0.5)
    assert ov.waypoint_index(DIRECT - BUMP, DIRECT, DETOUR, DIRECT, waypoint) < 0  # the other way
    with pytest.raises(ValueError, match="no closer"):
        ov.waypoint_index(DIRECT, DIRECT, DIRECT, DIRECT, waypoint)


def test_the_waypoint_lies_to_the_left_of_the_direct_path_inside_the_workspace():
    start, target, center = np.array([0.0, 0.2, 0.02]), np.array([0.0, 0.1, 0.02]), np.array([0.0, 0.0, 0.02])
    # Heading -y, left is +x: the midpoint (0, 0.15) moved 0.06 along +x.
    np.testing.assert_allclose(ov.detour_waypoint(start, target, 0.06, (0.07, 0.20), center), [0.06, 0.15, 0.02])
    far = ov.detour_waypoint(start, target, 0.5, (0.07, 0.20), center)  # out of reach: pulled back to the shell
    assert np.linalg.norm(far - center) == pytest.approx(0.20) and far[0] > 0


@pytest.fixture(scope="module")
def task_and_pairs(tiny_dataset):
    from mirrorlab.agents.imitation_methods import Context, ImitateConfig
    from mirrorlab.agents.imitation_task import ImitationTask
    from mirrorlab.experiments.stages.imitation import make_expert

    task = ImitationTask(tiny_dataset, [0, 1, 2, 3, 4], [5, 6, 7, 8, 9], 3)
    try:
        yield Context(task, ImitateConfig(), 0, "cpu", make_expert(task)), ov.detour_pairs(task)
    finally:
        task.close()


def test_a_pair_differs_by_the_detour_only_and_both_end_at_the_target(task_and_pairs):
    ctx, pairs = task_and_pairs
    assert [p.episode_id for p in pairs] == [v.episode_id for v in ctx.task.test[ctx.task.appearance]]
    for p in pairs:
        closest = lambda video: np.linalg.norm(video.other_path - p.waypoint, axis=1).min()  # noqa: E731
        assert closest(p.detour) < 0.005 < 0.015 < closest(p.direct)  # the detour is visible
        np.testing.assert_array_equal(p.direct.other_path[0], p.detour.other_path[0])  # one start, one target
        np.testing.assert_array_equal(p.direct.target, p.detour.target)
        for video in (p.direct, p.detour):
            assert np.linalg.norm(video.other_path[-1] - video.target) < ctx.task.success_radius
            assert video.frames.shape == (len(video.actions) + 1, 16, 16, 3)
        assert np.abs(p.detour.frames[10].astype(int) - p.direct.frames[10]).max() > 50  # the video shows it


def test_replaying_the_detour_overimitates_and_reaching_directly_does_not(task_and_pairs):
    """The planted case: the oracle replays each demonstration's actions (index 1), the goal-given reference
    reaches the target directly whatever it watched (index 0); both succeed."""
    from mirrorlab.agents.imitation_methods import METHODS

    ctx, pairs = task_and_pairs
    by_name = {m.name: m for m in METHODS}
    oracle = ov.overimitation_rows(by_name["oracle"], ctx, pairs, {"view": "v"})
    direct = ov.overimitation_rows(by_name["goal_given"], ctx, pairs, {"view": "v"})
    assert [r["overimitation"] for r in oracle] == pytest.approx([1.0] * 3, abs=1e-6)
    assert [r["overimitation"] for r in direct] == pytest.approx([0.0] * 3, abs=1e-6)
    assert [r["waypoint_index"] for r in oracle] == pytest.approx([1.0] * 3, abs=1e-6)
    assert [r["waypoint_index"] for r in direct] == pytest.approx([0.0] * 3, abs=1e-6)
    assert all(r["success"] == r["success_direct"] == 1.0 and r["view"] == "v" for r in oracle + direct)


def test_a_method_is_built_on_the_demonstrations_with_a_core_that_has_watched_none_of_them(task_and_pairs):
    from dataclasses import replace

    from mirrorlab.agents.imitation_methods import Core

    ctx, pairs = task_and_pairs
    core = Core(model=None, label="shared", condition="shared", observe_window=(1,))
    core._watched[(pairs[0].detour.appearance, pairs[0].episode_id)] = "the test video's states"
    videos = [p.detour for p in pairs]
    view = ov.demonstration_context(replace(ctx, core=core), videos)
    assert view.task.test == {ctx.task.appearance: videos} and view.core._watched == {}
    assert ctx.task.test[ctx.task.appearance][0] is not videos[0] and len(core._watched) == 1


def test_a_learnt_method_acts_as_fitted_and_any_other_is_built_on_each_set_of_demonstrations(task_and_pairs):
    from mirrorlab.agents.imitation_methods import Method

    ctx, pairs = task_and_pairs
    replayer = lambda v: (lambda _o, t: v.actions[t])  # noqa: E731
    fitted = Method("fitted", "baseline", "the video", False, lambda _c: pytest.fail("refitted"), learner=True)
    rows = ov.overimitation_rows(fitted, ctx, pairs, {}, make=replayer)
    assert [r["overimitation"] for r in rows] == pytest.approx([1.0] * 3, abs=1e-6)
    built = []

    def build(c):
        built.append(c.task.test[c.task.appearance])
        return replayer, {}

    ov.overimitation_rows(Method("planner", "mirror system", "the video", False, build), ctx, pairs, {}, make=replayer)
    assert built == [[p.direct for p in pairs], [p.detour for p in pairs]]


def test_the_summary_and_report_carry_each_methods_mean():
    rows = [{"view": "other_view", "trained_on": "identical", "method": m, "core": None, "seed": s, "episode_id": e,
             "overimitation": value, "waypoint_index": value, "success": 1.0, "final_distance": 0.01,
             "success_direct": 0.5}
            for m, value in (("oracle", 1.0), ("goal_given", 0.0)) for s in (0, 1) for e in (3, 4, 5)]
    summary = stats.summarise(rows, n_boot=50)
    table = summary["other_view | trained on identical"]
    assert table["oracle"]["overimitation"]["mean"] == 1.0 and table["goal_given"]["overimitation"]["mean"] == 0.0
    assert table["oracle"]["success"]["n_seeds"] == 2 and table["oracle"]["success"]["n_videos"] == 3
    records = {"oracle": {"family": "bound"}, "goal_given": {"family": "reference"}}
    text = stats.report(summary, records)
    assert "| oracle | bound | 1.000 [1.000, 1.000] | 1.000 [1.000, 1.000] | 100% [100%, 100%] | 50% [50%, 50%] |" \
        in text and "| goal_given | reference | 0.000" in text


def test_imitate_with_overimitation_scores_every_method_on_the_detour_pairs(analyzed_runs, tmp_path):
    import csv
    import json

    from mirrorlab.experiments.stages.imitation import ImitateConfig, imitate

    assert ImitateConfig().overimitation is False  # an option, off unless asked for
    runs, analysis = analyzed_runs
    config = ImitateConfig(episodes=2, learners=False, mirror_conditions=("shared",), plan_iterations=2, patching=False,
                           bootstrap=50, overimitation=True)
    imitate(runs, tmp_path / "imitation", config, analysis, show_progress=False)
    with open(tmp_path / "imitation" / "overimitation.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["method"], r["core"]) for r in rows} == {
        ("oracle", ""), ("random", ""), ("goal_given", ""), ("inverse", "shared"), ("inverse", "separate"),
        ("closed_loop", "shared"), ("closed_loop", "separate"), ("synthesis", "shared"), ("latent", "shared"),
        ("goal_inference", "shared")}
    assert len(rows) == 10 * 2  # every method on both pairs
    assert all(abs(float(r["overimitation"]) - 1) < 1e-6 for r in rows if r["method"] == "oracle")
    assert all(abs(float(r["overimitation"])) < 1e-6 for r in rows if r["method"] in ("goal_given", "random"))
    metrics = json.loads((tmp_path / "imitation" / "metrics.json").read_text())
    table = metrics["overimitation"]["other_view | trained on identical"]
    assert table["oracle"]["overimitation"]["mean"] == pytest.approx(1.0)
    assert "## Overimitation" in (tmp_path / "imitation" / "report.md").read_text()
    assert "Does overimitation track the mirror measures?" in (tmp_path / "imitation" / "report.md").read_text()
    assert {c["method"] for c in metrics["mirror_vs_overimitation"]} >= {"inverse", "latent", "goal_inference"}


def test_overimitation_against_the_mirror_measures_uses_trained_runs_and_their_own_videos():
    from mirrorlab.analysis.across_runs import MIRROR_MEASURES
    from mirrorlab.experiments.stages.imitation import correlate_with_mirroring

    mirror = {f"run{i}": {m: float(i) for m in MIRROR_MEASURES} for i in range(6)}
    mirror["untrained"] = {m: 0.0 for m in MIRROR_MEASURES}
    rows = [{"method": "latent", "run": f"run{i}", "core": "shared", "appearance": "identical",
             "trained_on": "identical", "overimitation": 0.1 * i + 0.01 * video, "success": 0.0}
            for i in range(6) for video in (0, 1)]
    rows += [{**rows[0], "run": "untrained", "core": "untrained", "overimitation": 9.0},        # left out: untrained
             {**rows[0], "appearance": "held_out_color", "overimitation": -9.0}]               # ... another look
    planted = correlate_with_mirroring(rows, mirror, "overimitation")
    assert len(planted) == len(MIRROR_MEASURES)
    assert all(c["n_runs"] == 6 and c["r"] == pytest.approx(1.0) for c in planted)
    assert all("r" not in c for c in correlate_with_mirroring(rows, mirror))  # success has no spread: no r
