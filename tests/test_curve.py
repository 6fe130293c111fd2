"""`mirrorlab curve`: every point trains a core and scores it beside its ceiling; a rerun recomputes nothing."""

import dataclasses

from mirrorlab.agents.runs import TrainConfig
from mirrorlab.experiments.curve import CurveConfig, curve, plan
from tests.conftest import TINY_TRAIN

TINY = CurveConfig(episodes=10, babble=2, base_frame_size=16, render_supersample=1,
                   train=TrainConfig(**{**TINY_TRAIN, "epochs": 1, "test_fraction": 0.4}),
                   train_episodes=(2, 4), action_modes=("position", "torque"), frame_sizes=(16,),
                   windows=((1,), (-1, 0, 1)), epochs=(1, 2), forward_variants=(("start_frame_change", 10.0),
                                                                                ("none", 10.0)),
                   forward_train_episodes=4, forward_epochs=1, workers=1)
INVERSE_ONLY = dataclasses.replace(TINY, axes=("train_episodes", "frame_size", "window"))


def test_the_plan_varies_one_axis_at_a_time_and_trains_the_base_point_once():
    points = plan(INVERSE_ONLY)
    keys = [(p["axis"], p["value"], p["action_mode"]) for p in points]
    assert keys == [("train_episodes", 2, "position"), ("train_episodes", 4, "position"),
                    ("train_episodes", 2, "torque"), ("train_episodes", 4, "torque"), ("frame_size", 16, "position"),
                    ("window", "1", "position"), ("window", "-1,0,1", "position")]
    from mirrorlab.experiments.curve import _key

    assert len({_key(p) for p in points}) == 5  # the base point sits on three axes and is trained once


def test_the_forward_axes_vary_epochs_and_the_forward_model_on_the_small_training_set():
    from mirrorlab.experiments.curve import _key

    points = [p for p in plan(TINY) if p["axis"] in ("epochs", "forward")]
    assert [(p["axis"], p["value"]) for p in points] == [("epochs", 1), ("epochs", 2), ("forward", "start_frame_change fw10"),
                                                         ("forward", "none fw10")]
    assert all(p["train"].train_episodes == 4 for p in points)
    assert [p["train"].perform_grounding for p in points] == ["start_frame_change"] * 3 + ["none"]
    # the default form at forward_epochs is the epochs axis' point at that number: one key, trained once
    assert _key(points[0]) == _key(points[2]) and len({_key(p) for p in points}) == 3


def test_curve_end_to_end(tmp_path):
    out = tmp_path / "curve"
    result = curve(TINY, out, show_progress=False)
    rows = result["rows"]
    assert len(rows) == 11 and all(r["ceiling"] <= 1 and r["inverse_r2"] < 1 for r in rows)
    assert len(list((out / "points").iterdir())) == 7  # base point once; forward default at 1 epoch once
    assert {r["train_episodes"] for r in rows} == {2, 4}
    assert all(r["forward_action_sensitivity"] > 0 and r["forward_mse"] > 0 for r in rows)
    for name in ("learning_curve.png", "forward_curve.png"):
        assert (out / "figures" / name).read_bytes()[:4] == b"\x89PNG"
    assert "held-out R^2" in (out / "report.md").read_text()
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "points").iterdir()}
    curve(dataclasses.replace(TINY), out, show_progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "points").iterdir()} == stamps


def test_a_curve_of_the_forward_axes_alone_draws_only_the_forward_figure(tmp_path):
    out = tmp_path / "curve"
    rows = curve(dataclasses.replace(TINY, axes=("epochs",), epochs=(1,)), out, show_progress=False)["rows"]
    assert [r["axis"] for r in rows] == ["epochs"]
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["forward_curve.png"]
