"""`mirrorlab collect` (mirrorlab.agents.collection + the collection stage): parallel, resumable, reproducible."""

import json

import h5py
import numpy as np
import pytest

from mirrorlab.envs.paired import PairedDataset
from mirrorlab.experiments.cli import main as cli

ARGS = ["--episodes", "4", "--babble", "2", "--frame-size", "16", "--episodes-per-shard", "2"]


def run(out, *extra):
    return cli(["collect", "--out", str(out), *ARGS, *extra])


def contents(path):
    with PairedDataset(path) as ds:
        return {(r.kind, r.episode_id): ds.read_episode(r) for r in ds.refs}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key]["actions"], b[key]["actions"])
        for side in ("observe", "perform"):
            if side in a[key]:
                for name, value in a[key][side].items():
                    np.testing.assert_array_equal(value, b[key][side][name], err_msg=f"{key} {side} {name}")


def test_collect_runs_in_parallel_resumes_and_is_reproducible(tmp_path, capsys):
    out = tmp_path / "data"
    assert run(out, "--workers", "2", "--verify-episodes", "1") == 0
    printed = capsys.readouterr().out
    assert "episodes/s" in printed and "pairing verified by replay on 2 episodes" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and len(manifest["shards"]) == 3
    assert manifest["provenance"]["config"]["episodes"] == 4 and "git_commit" in manifest["provenance"]
    before = contents(out)
    assert len(before) == 6

    # A killed run: one shard gone, one truncated mid-write, one temp file left by a dead worker; and one
    # shard edited in place without changing its size (an action changed): its bytes no longer match.
    kept_mtime = (out / "shard-00001.h5").stat().st_mtime_ns
    (out / "shard-00000.h5").unlink()
    data = (out / "shard-00002.h5").read_bytes()
    (out / "shard-00002.h5").write_bytes(data[: len(data) // 3])
    (out / ".shard-00003.h5.123.mirrorlab-tmp.h5").write_bytes(b"partial")
    assert run(out, "--workers", "1", "--verify-episodes", "0") == 0
    assert "collected 4 episodes" in capsys.readouterr().out  # the two damaged shards, not the intact one
    assert (out / "shard-00001.h5").stat().st_mtime_ns == kept_mtime
    assert not list(out.glob(".*mirrorlab-tmp*"))
    with h5py.File(out / "shard-00001.h5", "r+") as f:
        f["demo/000002/actions"][0, 0] += 0.5
    assert run(out, "--workers", "1", "--verify-episodes", "0") == 0
    assert "collected 2 episodes" in capsys.readouterr().out  # the edited shard is redone
    after = contents(out)
    assert_same(before, after)  # same config and seed: same data; nothing lost or duplicated

    assert run(out, "--verify-episodes", "0") == 0  # a finished collection: nothing to redo
    assert "collected" not in capsys.readouterr().out
    assert cli(["collect", "--out", str(out), "--check-only", "--verify-episodes", "1"]) == 0
    assert "6 episodes, every hash (actions, frames, proprioception) OK" in capsys.readouterr().out


def test_collect_refuses_a_different_config_and_bad_inputs(tmp_path, capsys):
    out = tmp_path / "data"
    assert cli(["collect", "--out", str(out), "--episodes", "1", "--babble", "0", "--frame-size", "16",
                "--other-appearance", "mirrored", "--verify-episodes", "1", "--workers", "1"]) == 0
    capsys.readouterr()
    assert cli(["collect", "--out", str(out), "--episodes", "2", "--babble", "0", "--frame-size", "16",
                "--other-appearance", "mirrored"]) == 2
    assert "different config (episodes)" in capsys.readouterr().err
    assert cli(["collect", "--out", str(tmp_path / "d2"), "--demonstrator", str(tmp_path / "nope"),
                "--episodes", "1", "--babble", "0"]) == 2
    assert f"{tmp_path / 'nope'} does not exist" in capsys.readouterr().err
    assert cli(["collect", "--out", str(tmp_path / "d3"), "--frame-size", "20"]) == 2
    assert "frame_size must be a multiple of 16" in capsys.readouterr().err
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "x.txt").write_text("mine")
    assert cli(["collect", "--out", str(foreign), "--episodes", "1", "--babble", "0"]) == 2
    assert "did not write" in capsys.readouterr().err
    assert (foreign / "x.txt").read_text() == "mine"


def test_collect_with_a_trained_demonstrator(tmp_path, tiny_checkpoint):
    out = tmp_path / "data"
    assert cli(["collect", "--out", str(out), "--demonstrator", str(tiny_checkpoint), "--episodes", "2",
                "--babble", "0", "--frame-size", "16", "--workers", "1", "--verify-episodes", "2"]) == 0
    with PairedDataset(out) as ds:
        assert ds.header.demonstrator == str(tiny_checkpoint) and len(ds.episodes("demo")) == 2


@pytest.fixture
def tiny_checkpoint(tmp_path):
    from mirrorlab.agents.demonstrator import DemoTrainConfig, train_demonstrator

    config = DemoTrainConfig(timesteps=40, learning_starts=20, batch_size=8, net_arch=(8,))
    (tmp_path / "ckpt").mkdir()
    train_demonstrator(config, tmp_path / "ckpt", show_progress=False)
    return tmp_path / "ckpt"
