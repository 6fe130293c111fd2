"""mirrorlab.envs.paired: one action array per episode, every read checked by hash, pairing verified by replay."""

import json
import shutil

import h5py
import numpy as np
import pytest

from mirrorlab.agents.collection import CollectConfig
from mirrorlab.config import replace_checked
from mirrorlab.envs.episodes import replay
from mirrorlab.envs.paired import (
    FORMAT_VERSION,
    PairedDataError,
    PairedDataset,
    PairingError,
    ShardWriter,
    actions_sha256,
    side_sha256,
    verify_pairing,
)
from mirrorlab.errors import UserError
from mirrorlab.experiments.stages.collection import collect

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


def reseal(folder):
    """Make the manifest agree with the shards on disk again (size and SHA-256), as a forger who edits a shard
    would: the checks inside the shard are then what has to catch the edit."""
    from mirrorlab.envs.paired import file_sha256

    manifest = json.loads((folder / "manifest.json").read_text())
    for name, entry in manifest["shards"].items():
        entry.update(size=(folder / name).stat().st_size, sha256=file_sha256(folder / name))
    (folder / "manifest.json").write_text(json.dumps(manifest))


def first_demo(path):
    with PairedDataset(path) as ds:
        ref = ds.episodes("demo")[0]
        return ref, ds.read_episode(ref), ds.header


def _other_rollout(header, seed, actions):
    env = header.make_env("other")
    try:
        return replay(env, seed, actions, camera=header.observe_camera)
    finally:
        env.close()


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
    again = replay(env, ref.seed, ep["actions"], camera=header.perform_camera)
    env.close()
    np.testing.assert_array_equal(again["frames"], ep["perform"]["frames"])
    np.testing.assert_array_equal(again["joint_angles"], ep["perform"]["joint_angles"])


def test_the_fingerprint_names_the_content_not_the_folder(dataset, copy):
    manifest = json.loads((dataset / "manifest.json").read_text())
    with PairedDataset(dataset) as a, PairedDataset(copy) as b:
        assert a.fingerprint == b.fingerprint == manifest["fingerprint"]
    with h5py.File(copy / "shard-00000.h5", "r+") as f:
        f["demo/000000"].attrs["content_sha256"] = "0" * 64
    with pytest.raises(PairedDataError, match=r"shard-00000\.h5: its size or SHA-256 differs from what"):
        PairedDataset(copy)  # the manifest's hash of the shard catches the edit first ...
    reseal(copy)
    with PairedDataset(copy) as changed:  # ... and the content hashes change the fingerprint
        assert changed.fingerprint != manifest["fingerprint"]


def _write_observe(path, ref, record, hashes: str):
    """Put `record`'s arrays into episode `ref`'s observe side; `hashes`: 'keep' the stored ones, or make the
    side's own hashes agree with the new content ('side')."""
    with h5py.File(path / "shard-00000.h5", "r+") as f:
        g = f[ref.key]["observe"]
        for name in ("frames", "joint_angles", "joint_velocities", "fingertip_pos", "state", "distance", "reward"):
            g[name][...] = record[name]
        if hashes == "side":
            g.attrs["content_sha256"] = side_sha256(record, g.attrs["actions_sha256"])
    reseal(path)


def test_observe_frames_swapped_between_episodes_are_caught_by_the_default_check(copy):
    with h5py.File(copy / "shard-00000.h5", "r+") as f:
        a, b = f["demo/000000/observe/frames"], f["demo/000001/observe/frames"]
        fa, fb = a[()], b[()]
        a[...], b[...] = fb, fa
    reseal(copy)
    with PairedDataset(copy) as ds:
        with pytest.raises(PairingError, match=r"shard-00000\.h5: episode demo/000000: the observe side's recorded "
                                               r"arrays \(frames included\) do not match"):
            ds.check()
        with pytest.raises(PairingError, match="demo/000001"):
            ds.read_episode(ds.episodes("demo")[1])


def test_a_side_rendered_from_other_actions_is_refused_on_read_and_by_replay(copy):
    ref, ep, header = first_demo(copy)
    other_actions = ep["actions"][::-1].copy()
    record = _other_rollout(header, ref.seed, other_actions)
    _write_observe(copy, ref, record, hashes="side")
    # The side's own hash now matches its content, but the episode's hash (over both sides) does not ...
    with PairedDataset(copy) as ds, pytest.raises(PairingError, match="demo/000000: the episode's content"):
        ds.read_episode(ds.episodes("demo")[0])
    # ... and a forger who rewrites that too is still caught by re-simulation.
    with h5py.File(copy / "shard-00000.h5", "r+") as f:
        from mirrorlab.envs.paired import episode_sha256

        g = f[ref.key]
        digests = {s: g[s].attrs["content_sha256"] for s in ("observe", "perform")}
        g.attrs["content_sha256"] = episode_sha256(g["actions"][()], g["target"][()], digests)
    reseal(copy)
    with pytest.raises(PairingError, match=r"shard-00000\.h5: episode demo/000000: the observe side's frames"):
        verify_pairing(copy, n_episodes=None, kinds=("demo",))


def test_the_writer_refuses_sides_that_ran_other_actions(dataset, tmp_path):
    ref, ep, header = first_demo(dataset)
    observe = _other_rollout(header, ref.seed, ep["actions"])
    env = header.make_env("self")
    perform = replay(env, ref.seed, ep["actions"][::-1].copy(), camera=header.perform_camera)
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
    reseal(copy)
    with PairedDataset(copy) as ds, pytest.raises(PairedDataError, match=r"shard-00001\.h5: episode demo/000003: "
                                                                          r"perform/frames has shape"):
        ds.check()


def test_truncated_corrupted_and_foreign_files_give_clear_errors(copy, tmp_path):
    shard = copy / "shard-00002.h5"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    reseal(copy)
    with pytest.raises(PairedDataError, match=r"shard-00002\.h5: not a readable HDF5 file"):
        PairedDataset(copy)
    # Bytes overwritten inside a compressed frame chunk: h5py raises deep inside; we name the file.
    single = tmp_path / "single.h5"
    shutil.copy(copy / "shard-00000.h5", single)
    with h5py.File(single, "r") as f:
        offset = f["demo/000000/observe/frames"].id.get_chunk_info(0).byte_offset
    raw = bytearray(single.read_bytes())
    raw[offset + 20: offset + 400] = bytes(380)
    single.write_bytes(bytes(raw))
    with PairedDataset(single) as ds, pytest.raises(PairedDataError, match=r"single\.h5: episode demo/000000"):
        ds.check()
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
    reseal(copy)
    with pytest.raises(PairedDataError, match=r"shard-00001\.h5: header max_steps is 50, expected 100\.\.100"):
        PairedDataset(copy)  # the 3-D arm's episodes are 100 steps long
    with h5py.File(copy / "shard-00001.h5", "r+") as f:
        f.attrs["max_steps"] = 100
    reseal(copy)
    with pytest.raises(PairedDataError, match=r"shard-00001\.h5: its header differs .* in env_id"):
        PairedDataset(copy)
    with h5py.File(copy / "shard-00001.h5", "r+") as f:
        f.attrs["format_version"] = 99
    reseal(copy)
    with pytest.raises(PairedDataError, match=r"shard-00001\.h5: dataset format version 99"):
        PairedDataset(copy)
    with h5py.File(copy / "shard-00001.h5", "r+") as f:
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["complete"] = False
    reseal(copy)
    with pytest.raises(PairedDataError, match=r"shard-00001\.h5: shard is incomplete"):
        PairedDataset(copy)


# --- files from elsewhere: nothing outside the folder is read, nothing is imported --------------------------
def test_a_shard_swapped_for_another_datasets_is_refused(dataset, copy, tmp_path):
    other = tmp_path / "other"
    collect(replace_checked(CollectConfig(), {**SMALL, "seed": 1}, "test"), other, show_progress=False)
    shutil.copy(other / "shard-00000.h5", copy / "shard-00000.h5")
    with pytest.raises(PairedDataError, match=r"shard-00000\.h5: its size or SHA-256 differs from what .*manifest"):
        PairedDataset(copy)


def test_manifest_shard_names_and_symlinks_stay_inside_the_folder(copy, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(copy / "shard-00000.h5", outside / "shard-00000.h5")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["shards"]["../outside/shard-00000.h5"] = manifest["shards"].pop("shard-00000.h5")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PairedDataError, match=r"manifest\.json: shard name: '\.\./outside/shard-00000\.h5' is not a "
                                              r"file name inside"):
        PairedDataset(copy)
    manifest["shards"]["shard-00000.h5"] = manifest["shards"].pop("../outside/shard-00000.h5")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    (copy / "shard-00000.h5").unlink()
    (copy / "shard-00000.h5").symlink_to(outside / "shard-00000.h5")  # same bytes, but from elsewhere
    with pytest.raises(PairedDataError, match=r"shard-00000\.h5 is a symbolic link"):
        PairedDataset(copy)


@pytest.mark.parametrize("link", ["external", "soft", "external_storage"])
def test_links_out_of_a_shard_are_refused(copy, tmp_path, link):
    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as f:
        f["data"] = np.arange(4)
    (tmp_path / "raw.bin").write_bytes(bytes(32))
    with h5py.File(copy / "shard-00000.h5", "r+") as f:
        if link == "external":
            f["demo/000000/extra"] = h5py.ExternalLink(str(secret), "/data")
        elif link == "soft":
            f["demo/000000/extra"] = h5py.SoftLink("/demo/000001/actions")
        else:
            f["demo/000000"].create_dataset("extra", shape=(4,), dtype="<i8",
                                            external=[(str(tmp_path / "raw.bin"), 0, 32)])
    reseal(copy)
    with pytest.raises(PairedDataError, match=r"shard-00000\.h5: .*(ExternalLink|SoftLink|outside the file)"):
        PairedDataset(copy)


def test_an_incomplete_collection_is_refused_with_the_command_that_finishes_it(copy):
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["complete"] = False
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PairedDataError, match=r"not complete .*rerunning the `mirrorlab collect --out .*data` command"):
        PairedDataset(copy)
    with PairedDataset(copy, require_complete=False) as ds:  # the collector verifying its own work
        assert len(ds) == 6


def test_an_env_id_that_names_a_module_is_refused_before_anything_is_imported(copy, tmp_path, monkeypatch):
    import sys

    flag = tmp_path / "imported"
    (tmp_path / "evil_envs.py").write_text(f"open({str(flag)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for shard in sorted(copy.glob("shard-*.h5")):
        with h5py.File(shard, "r+") as f:
            f.attrs["env_id"] = "evil_envs:Reach-v0"
    reseal(copy)
    with pytest.raises(PairedDataError, match=r"header env_id: env id 'evil_envs:Reach-v0' is not a mirrorlab env"):
        PairedDataset(copy)
    assert not flag.exists() and "evil_envs" not in sys.modules


@pytest.mark.parametrize("kwargs, expected", [
    ({"success_radius": -1}, "success_radius"),
    ({"reward_dist_weight": float("nan")}, "env kwarg 'reward_dist_weight' must be a finite number"),
    ({"init_noise": float("inf")}, "env kwarg 'init_noise' must be a finite number"),
    ({"render_mode": "human"}, "rgb_array\" only"),
    ({"not_a_kwarg": 1}, "not_a_kwarg"),
])
def test_bad_env_kwargs_in_a_header_are_one_line(copy, kwargs, expected):
    for shard in sorted(copy.glob("shard-*.h5")):
        with h5py.File(shard, "r+") as f:
            f.attrs["env_kwargs"] = json.dumps({**json.loads(f.attrs["env_kwargs"]), **kwargs})
    reseal(copy)
    with pytest.raises(UserError) as err:
        with PairedDataset(copy) as ds:
            ds.header.make_env("self").close()
    assert expected in str(err.value) and "\n" not in str(err.value)
