"""`mirrorlab curve`: every point trains a core and scores it beside its ceiling; a rerun recomputes nothing."""

import dataclasses

from mirrorlab.agents.runs import TrainConfig
from mirrorlab.experiments.curve import CurveConfig, curve, plan
from tests.conftest import TINY_TRAIN

TINY = CurveConfig(episodes=10, babble=2, base_frame_size=16, render_supersample=1,
                   train=TrainConfig(**{**TINY_TRAIN, "epochs": 1, "test_fraction": 0.4}),
                   train_episodes=(2, 4), action_modes=("position", "torque"), frame_sizes=(16,),
                   windows=((1,), (-1, 0, 1)), workers=1)


def test_the_plan_varies_one_axis_at_a_time_and_trains_the_base_point_once():
    points = plan(TINY)
    keys = [(p["axis"], p["value"], p["action_mode"]) for p in points]
    assert keys == [("train_episodes", 2, "position"), ("train_episodes", 4, "position"),
                    ("train_episodes", 2, "torque"), ("train_episodes", 4, "torque"), ("frame_size", 16, "position"),
                    ("window", "1", "position"), ("window", "-1,0,1", "position")]
    from mirrorlab.experiments.curve import _key

    assert len({_key(p) for p in points}) == 5  # the base point sits on three axes and is trained once


def test_curve_end_to_end(tmp_path):
    out = tmp_path / "curve"
    result = curve(TINY, out, show_progress=False)
    rows = result["rows"]
    assert len(rows) == 7 and all(r["ceiling"] <= 1 and r["inverse_r2"] < 1 for r in rows)
    assert len(list((out / "points").iterdir())) == 5
    assert {r["train_episodes"] for r in rows} == {2, 4}
    assert (out / "figures" / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert "held-out R^2" in (out / "report.md").read_text()
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "points").iterdir()}
    curve(dataclasses.replace(TINY), out, show_progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "points").iterdir()} == stamps
