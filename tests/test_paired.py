import shutil

import h5py
import numpy as np
import pytest
import torch

from agents.windows import PairedWindows, window_loader
from envs.paired import (FORMAT_VERSION, PairedDataError, PairedDataset, PairingError, ShardWriter, actions_sha256,
                         record_side, replay_side, verify_pairing)
from experiments.collect import CollectConfig, collect
from experiments.config import replace_checked

SMALL = dict(episodes=4, babble=2, frame_size=16, episodes_per_shard=2, workers=1, verify_episodes=0)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("paired") / "data"
    collect(replace_checked(CollectConfig(), SMALL, "test"), out, show_progress=False)
    return out


@pytest.fixture
def copy(dataset, tmp_path):
    target = tmp_path / "data"
    shutil.copytree(dataset, target)
    return target


def first_demo(path):
    with PairedDataset(path) as ds:
        ref = ds.episodes("demo")[0]
        return ref, ds.read_episode(ref), ds.header


def test_dataset_holds_every_episode_once_with_one_shared_action_array(dataset):
    with PairedDataset(dataset, expect_env_id="mirrorlab/PlanarReach-v0") as ds:
        assert [r.episode_id for r in ds.episodes("demo")] == [0, 1, 2, 3]
        assert [r.episode_id for r in ds.episodes("babble")] == [0, 1]
        assert ds.check() == 6
        ref = ds.episodes("demo")[0]
        group = ds.group(ref)
        assert "actions" in group and "actions" not in group["observe"] and "actions" not in group["perform"]
        digest = actions_sha256(group["actions"][()])
        assert group["observe"].attrs["actions_sha256"] == group["perform"].attrs["actions_sha256"] == digest
        ep = ds.read_episode(ref)
    T = 50
    assert ep["actions"].shape == (T, 2) and ep["actions"].dtype == np.float32
    for side, arm in (("observe", "other"), ("perform", "self")):
        assert ep[side]["frames"].shape == (T + 1, 16, 16, 3) and ep[side]["frames"].dtype == np.uint8
        assert ep[side]["joint_angles"].shape == (T + 1, 2) and ep[side]["reward"].shape == (T,)
        assert ep[side]["arm"] == arm
    assert ep["observe"]["success"]  # the scripted demonstrator reaches
    # The identical self arm replaying the same actions from the same seed moves the same way (to roundoff).
    np.testing.assert_allclose(ep["observe"]["joint_angles"], ep["perform"]["joint_angles"], rtol=0, atol=1e-9)
    assert ep["actions"].std() > 0 and ep["perform"]["frames"][0].tolist() != ep["perform"]["frames"][-1].tolist()


def test_the_format_opens_with_plain_h5py_without_pickle(dataset):
    with h5py.File(dataset / "shard-00000.h5", "r") as f:
        assert f.attrs["format"] == "mirrorlab-paired" and f.attrs["format_version"] == FORMAT_VERSION
        assert f.attrs["pairing"] == "shared_actions" and f.attrs["env_id"] == "mirrorlab/PlanarReach-v0"
        assert f.attrs["frame_size"] == 16 and f.attrs["action_dim"] == 2
        frames = f["demo/000000/observe/frames"]
        assert frames.chunks is not None and frames.compression == "gzip"


def test_replaying_stored_actions_gives_the_stored_frames_back(dataset):
    report = verify_pairing(dataset, n_episodes=None)
    assert len(report["episodes_checked"]) == 6
    ref, ep, header = first_demo(dataset)
    env = header.make_env("self")
    replay = replay_side(env, ref.seed, header.perform_camera, ep["actions"])
    env.close()
    np.testing.assert_array_equal(replay["frames"], ep["perform"]["frames"])
    np.testing.assert_array_equal(replay["joint_angles"], ep["perform"]["joint_angles"])


def _other_rollout(header, seed, actions):
    env = header.make_env("other")
    try:
        return replay_side(env, seed, header.observe_camera, actions)
    finally:
        env.close()


def _replace_observe(path, ref, record, keep_hash):
    with h5py.File(path / "shard-00000.h5", "r+") as f:
        g = f[ref.key]["observe"]
        for name in ("frames", "joint_angles", "joint_velocities", "fingertip_pos"):
            g[name][...] = record[name]
        if not keep_hash:
            g.attrs["actions_sha256"] = record["actions_sha256"]


def test_observe_from_another_action_sequence_is_rejected_by_the_loader(copy):
    ref, ep, header = first_demo(copy)
    other_actions = np.random.default_rng(1).uniform(-1, 1, ep["actions"].shape).astype(np.float32)
    _replace_observe(copy, ref, _other_rollout(header, ref.seed, other_actions), keep_hash=False)
    with PairedDataset(copy) as ds, pytest.raises(PairingError, match=r"shard-00000\.h5: episode demo/000000.*mispaired"):
        ds.read_episode(ds.episodes("demo")[0])
    with pytest.raises(PairingError, match="demo/000000"):
        PairedWindows(copy, window=4)[0]


def test_mispairing_with_a_copied_hash_is_caught_by_replay(copy):
    ref, ep, header = first_demo(copy)
    other_actions = ep["actions"][::-1].copy()
    _replace_observe(copy, ref, _other_rollout(header, ref.seed, other_actions), keep_hash=True)
    with PairedDataset(copy) as ds:
        ds.read_episode(ds.episodes("demo")[0])  # the structure looks fine...
    with pytest.raises(PairingError, match=r"shard-00000\.h5: episode demo/000000: the observe side's frames"):
        verify_pairing(copy, n_episodes=None, kinds=("demo",))


def test_the_writer_refuses_sides_that_ran_other_actions(dataset, tmp_path):
    ref, ep, header = first_demo(dataset)
    observe = _other_rollout(header, ref.seed, ep["actions"])
    env = header.make_env("self")
    perform = replay_side(env, ref.seed, header.perform_camera, ep["actions"][::-1].copy())
    env.close()
    writer = ShardWriter(tmp_path / "shard-00000.h5", header, 0, "demo")
    with pytest.raises(PairingError, match="different action array"):
        writer.add_episode(0, ref.seed, ep["actions"], {"observe": observe, "perform": perform})
    writer.abort()
    assert not list(tmp_path.iterdir())


def test_mismatched_lengths_name_file_and_episode(copy):
    with h5py.File(copy / "shard-00001.h5", "r+") as f:
        g = f["demo/000003/perform"]
        frames = g["frames"][:-1]
        del g["frames"]
        g.create_dataset("frames", data=frames)
    with PairedDataset(copy) as ds, pytest.raises(PairedDataError, match=r"shard-00001\.h5: episode demo/000003: "
                                                                          r"perform/frames has shape"):
        ds.check()


def test_truncated_and_foreign_files_give_clear_errors(copy, tmp_path):
    shard = copy / "shard-00002.h5"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    with pytest.raises(PairedDataError, match=r"shard-00002\.h5: not a readable HDF5 file"):
        PairedDataset(copy)
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    with pytest.raises(PairedDataError, match="notes.h5: not a readable HDF5 file"):
        PairedDataset(text)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(PairedDataError, match="foreign.h5: not a mirrorlab paired dataset"):
        PairedDataset(foreign)
    with pytest.raises(PairedDataError, match="no such dataset"):
        PairedDataset(tmp_path / "missing")


def test_other_env_version_or_incomplete_shards_are_rejected(copy):
    with pytest.raises(PairedDataError, match=r"shard-00000\.h5: dataset of env mirrorlab/PlanarReach-v0, expected "
                                              r"mirrorlab/Arm3DReach-v0"):
        PairedDataset(copy, expect_env_id="mirrorlab/Arm3DReach-v0")
    with h5py.File(copy / "shard-00001.h5", "r+") as f:
        f.attrs["env_id"] = "mirrorlab/Arm3DReach-v0"
    with pytest.raises(PairedDataError, match=r"shard-00001\.h5: its header differs .* in env_id"):
        PairedDataset(copy)
    with h5py.File(copy / "shard-00001.h5", "r+") as f:
        f.attrs["format_version"] = 99
    with pytest.raises(PairedDataError, match=r"shard-00001\.h5: dataset format version 99"):
        PairedDataset(copy)
    with h5py.File(copy / "shard-00001.h5", "r+") as f:
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["complete"] = False
    with pytest.raises(PairedDataError, match=r"shard-00001\.h5: shard is incomplete"):
        PairedDataset(copy)


def test_windows_are_aligned_tensors_of_one_action_array(dataset):
    windows = PairedWindows(dataset, window=8, stride=3)
    assert len(windows) == 4 * ((50 - 8) // 3 + 1)
    item = windows[len(windows) - 1]
    assert item["actions"].shape == (8, 2) and item["actions"].dtype == torch.float32
    for side in ("perform", "observe"):
        assert item[side]["frames"].shape == (9, 3, 16, 16) and item[side]["frames"].dtype == torch.uint8
        assert item[side]["joint_angles"].shape == (9, 2)
    ref, ep, header = first_demo(dataset)
    item = windows[2]  # episode 0, start 6
    e, t = int(item["episode_id"]), int(item["start"])
    assert (e, t) == (0, 6)
    np.testing.assert_array_equal(item["actions"].numpy(), ep["actions"][t:t + 8])
    # Observe frames are the other arm executing exactly these actions (re-simulated from the seed).
    replay = _other_rollout(header, ref.seed, ep["actions"][: t + 8])
    np.testing.assert_array_equal(item["observe"]["frames"].numpy(), replay["frames"][t:].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(item["perform"]["frames"].numpy(),
                                  ep["perform"]["frames"][t:t + 9].transpose(0, 3, 1, 2))
    babble = PairedWindows(dataset, window=10, kind="babble")
    assert "observe" not in babble[0] and babble[0]["perform"]["frames"].shape == (11, 3, 16, 16)
    with pytest.raises(PairedDataError, match="no episode is as long"):
        PairedWindows(dataset, window=51)


def test_window_loader_batches_in_worker_processes(dataset):
    loader = window_loader(PairedWindows(dataset, window=8, stride=10), batch_size=4, num_workers=2, seed=0)
    batches = list(loader)
    assert sum(len(b["actions"]) for b in batches) == 4 * 5
    assert batches[0]["observe"]["frames"].shape == (4, 9, 3, 16, 16)
    again = list(window_loader(PairedWindows(dataset, window=8, stride=10), batch_size=4, seed=0))
    assert [b["episode_id"].tolist() for b in again] == [b["episode_id"].tolist() for b in batches]


def test_record_side_records_what_it_executed(dataset):
    _, _, header = first_demo(dataset)
    env = header.make_env("other")
    rec = record_side(env, 7, header.observe_camera, lambda obs, t: np.full(2, 2.0), 3)  # clipped by the env
    env.close()
    assert rec["actions"].shape == (3, 2) and rec["actions_sha256"] == actions_sha256(rec["actions"])
    assert rec["frames"].shape == (4, 16, 16, 3)
