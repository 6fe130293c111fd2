"""`mirrorlab video` (and mirrorlab.analysis.videos): a decodable mp4 of a held-out episode from the recorded
activations; bad input fails before anything is simulated or drawn."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from mirrorlab.agents.runs import read_run
from mirrorlab.analysis import videos
from mirrorlab.analysis.videos import EpisodeCanvas, UnitTrace, frame_shape, select_units
from mirrorlab.errors import UserError
from mirrorlab.experiments import video
from mirrorlab.experiments.stages import episode_video
from mirrorlab.files import write_mp4

SIZE = 128
STEPS = 50  # PlanarReach


def cli(argv):
    # Only this stage's sub-command: the test does not depend on other studies' modules.
    parser = argparse.ArgumentParser(prog="mirrorlab")
    video.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def no_rendering(monkeypatch):
    """Fail the test if anything is simulated or drawn."""
    def forbidden(*_a, **_k):
        raise AssertionError("rendered before the input was checked")
    monkeypatch.setattr(episode_video, "_replay", forbidden)
    monkeypatch.setattr(videos.EpisodeCanvas, "__init__", forbidden)


def test_the_video_shows_the_recorded_activations_and_is_not_overwritten(analyzed_runs, tmp_path):
    import imageio.v3 as iio

    runs, analysis = analyzed_runs
    out = tmp_path / "v.mp4"
    assert cli(["video", "--run", str(runs[0]), "--analysis", str(analysis), "--episode", "1", "--out", str(out),
                "--size", "64", "--units", "2"]) == 0
    frames = iio.imread(out)
    assert frames.shape == (STEPS + 1, 128, 128, 3) and frames.std() > 1
    stamp = out.stat().st_mtime_ns
    with pytest.raises(UserError, match="already exists; pass --force"):
        cli(["video", "--run", str(runs[0]), "--analysis", str(analysis), "--episode", "1", "--out", str(out),
             "--size", "64"])
    assert out.stat().st_mtime_ns == stamp
    assert cli(["video", "--run", str(runs[0]), "--analysis", str(analysis), "--episode", "1", "--out", str(out),
                "--size", "64", "--force"]) == 0


def test_bad_input_fails_before_rendering(analyzed_runs, tmp_path, no_rendering):
    runs, analysis = analyzed_runs
    tiny_run = runs[0]
    out = tmp_path / "bad.mp4"
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    not_a_run = tmp_path / "empty"
    not_a_run.mkdir()
    a = ["--analysis", str(analysis)]
    for argv, message in [
        (["--run", str(tiny_run), *a, "--episode", "5"], r"held-out episodes, 0\.\.4"),
        (["--run", str(tiny_run), *a, "--episode", "-1"], r"0\.\.4"),
        (["--run", str(not_a_run), *a, "--episode", "0"], "not a finished `mirrorlab train` run"),
        (["--run", str(tiny_run), *a, "--episode", "0", "--size", "100"], "--size"),
        (["--run", str(tiny_run), *a, "--episode", "0", "--units", "0"], "--units"),
        (["--run", str(tiny_run), *a, "--episode", "0", "--data", str(not_a_run)], "not a dataset folder"),
        (["--run", str(tiny_run), "--analysis", str(not_a_run), "--episode", "0"], "not found"),
    ]:
        with pytest.raises(UserError, match=message):
            cli(["video", *argv, "--out", str(out)])
    with pytest.raises(UserError, match="is a file, expected a folder"):
        cli(["video", "--run", str(tiny_run), *a, "--episode", "0", "--out", str(blocker / "x.mp4")])
    with pytest.raises(UserError, match=r"\.mp4"):
        cli(["video", "--run", str(tiny_run), *a, "--episode", "0", "--out", str(tmp_path / "x.avi")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "empty"]


def test_run_without_weights_is_refused(analyzed_runs, tmp_path, no_rendering):
    import shutil

    broken = tmp_path / "run"
    shutil.copytree(analyzed_runs[0][0], broken)
    (broken / "done.json").unlink()
    with pytest.raises(UserError, match="not a finished"):
        read_run(broken)


def _traces(T=20):
    t = np.linspace(0, 3, T)
    return [UnitTrace(7, 0.62, np.sin(t), np.sin(t + 0.2)),
            UnitTrace(3, 0.41, np.cos(t), 0.5 * np.cos(t)),
            UnitTrace(9, -0.4, t, -t, anti=True)]


def test_composed_frame_has_views_and_moving_cursor():
    size, T = 64, 20
    rng = np.random.default_rng(0)
    left = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    right = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    canvas = EpisodeCanvas(_traces(T), size, caption="test")
    a, b = canvas.frame(5, left, right), canvas.frame(15, left, right)
    assert a.shape == b.shape == frame_shape(size) and a.dtype == np.uint8
    top = canvas.title_h
    assert np.array_equal(a[top:top + size, :size], left) and np.array_equal(a[top:top + size, size:], right)
    lanes = slice(canvas.lanes[0][0], canvas.lanes[-1][1])
    for step in (5, 15):
        column = canvas.x_of(step)
        assert not np.array_equal(a[lanes, column], b[lanes, column])  # the cursor is where the step is
    assert np.array_equal(a, EpisodeCanvas(_traces(T), size, caption="test").frame(5, left, right))  # static parts
    with pytest.raises(ValueError, match="step"):
        canvas.frame(T + 1, left, right)
    with pytest.raises(ValueError, match="uint8"):
        canvas.frame(0, left[:32], right)


def test_select_units_top_and_anti():
    r = np.array([0.1, np.nan, 0.9, -0.5, 0.4, -0.2])
    assert select_units(r, 2) == ([2, 4], 3)
    assert select_units(r, 5) == ([2, 4, 0, 5, 3], None)  # nan units are never chosen
    assert select_units(np.array([0.3, 0.2, 0.1]), 1) == ([0], 2)  # lowest r even when positive


def test_write_mp4_rejects_bad_frames_and_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="divisible by 16"):
        write_mp4(tmp_path / "x.mp4", [np.zeros((50, 64, 3), np.uint8)], fps=5)
    assert list(tmp_path.iterdir()) == []
