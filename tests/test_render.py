"""`mirrorlab render` and `mirrorlab bench envs` run end to end on a tiny budget."""

from __future__ import annotations

import argparse

import imageio.v3 as iio
import pytest

from mirrorlab.errors import UserError
from mirrorlab.experiments import bench, render


def cli(argv):
    # Only this stage's sub-commands: the test does not depend on other studies' modules.
    parser = argparse.ArgumentParser(prog="mirrorlab")
    sub = parser.add_subparsers(dest="command", required=True)
    render.add_parser(sub)
    bench.add_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.mark.parametrize("env_id, steps", [("mirrorlab/PlanarReach-v0", 50), ("mirrorlab/Arm3DReach-v0", 100)])
def test_render_writes_side_by_side_mp4(tmp_path, env_id, steps):
    out = tmp_path / "video" / "paired.mp4"
    assert cli(["render", "--env", env_id, "--episodes", "2", "--out", str(out), "--size", "64",
                "--policy", "random"]) == 0
    frames = iio.imread(out)
    assert frames.shape == (2 * (steps + 1), 64, 128, 3)  # reset frame + one per step, two panels
    assert frames.std() > 1
    assert [p.name for p in out.parent.iterdir()] == ["paired.mp4"]  # no temp file left behind


def test_render_camera_option_and_bad_input(tmp_path, capsys):
    from mirrorlab.experiments.cli import main

    out = tmp_path / "scene.mp4"
    cli(["render", "--env", "mirrorlab/PlanarReach-v0", "--out", str(out), "--camera", "scene",
         "--size", "32", "--other-appearance", "recolored"])
    frames = iio.imread(out)
    assert frames.shape == (51, 32, 64, 3)
    for argv, message in [
        (["--env", "nope"], "mirrorlab/PlanarReach-v0"),
        (["--env", "mirrorlab/PlanarReach-v0", "--camera", "top"], "self_view"),
        (["--env", "mirrorlab/PlanarReach-v0", "--size", "50"], "--size"),
        (["--env", "mirrorlab/PlanarReach-v0", "--episodes", "0"], "--episodes"),
        (["--env", "mirrorlab/PlanarReach-v0", "--other-appearance", "x"], "identical"),
        (["--env", "mirrorlab/PlanarReach-v0", "--out", str(out)], "already exists; pass --force"),
    ]:
        assert main(["render", *argv] + ([] if "--out" in argv else ["--out", str(tmp_path / "bad.mp4")])) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    with pytest.raises(UserError, match=".mp4"):
        cli(["render", "--env", "mirrorlab/PlanarReach-v0", "--out", str(tmp_path / "x.avi")])
    assert not (tmp_path / "bad.mp4").exists()


def test_bench_envs_runs_on_a_tiny_budget(capsys):
    assert cli(["bench", "envs", "--env", "mirrorlab/PlanarReach-v0", "--steps", "20",
                "--rounds", "1", "--vector-steps", "0"]) == 0
    out = capsys.readouterr().out
    assert "floor fps" in out and "mirrorlab/PlanarReach-v0" in out
    with pytest.raises(UserError, match="envs"):
        cli(["bench", "nope"])
