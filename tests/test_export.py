"""`mirrorlab export --format minari`: every side of every paired episode loads back with Minari, bit for bit,
at most twice the source's size; the export is atomic (an id cannot leave the Minari root, --force replaces only
a complete new dataset, a killed export leaves the old one and is cleaned up by the rerun)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mirrorlab.envs.paired import PairedDataset
from mirrorlab.experiments.cli import main as cli

ID = "mirrorlab/tiny-paired-v0"


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _export(data, root, *extra, dataset_id=ID):
    return cli(["export", "--data", str(data), "--format", "minari", "--out", dataset_id, "--minari-root", str(root),
                *extra])


@pytest.fixture(scope="module")
def exported(tiny_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("minari")
    assert _export(tiny_dataset, root) == 0
    return root


def _load(root, monkeypatch, dataset_id=ID):
    import minari

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return minari.load_dataset(dataset_id)


def test_a_minari_export_loads_back_without_mirrorlab_bit_for_bit(tiny_dataset, exported, monkeypatch):
    ds = _load(exported, monkeypatch)
    episodes = {ep.id: ep for ep in ds.iterate_episodes()}
    meta = ds.storage.metadata["mirrorlab"]
    with PairedDataset(tiny_dataset) as data:
        assert meta["source_fingerprint"] == data.fingerprint and meta["other_appearance"] == "identical"
        demo, babble = data.episodes("demo"), data.episodes("babble")
        assert ds.total_episodes == 2 * len(demo) + len(babble) == len(episodes)
        assert len(meta["pairs"]) == len(demo)
        for (perform_i, observe_i, episode_id, seed), ref in zip(meta["pairs"], demo):
            source = data.read_episode(ref)
            assert (episode_id, seed) == (ref.episode_id, ref.seed)
            for index, side, role in ((perform_i, "perform", 0), (observe_i, "observe", 1)):
                ep = episodes[index]
                np.testing.assert_array_equal(ep.actions, source["actions"])
                np.testing.assert_array_equal(ep.observations["pixels"], source[side]["frames"])
                np.testing.assert_array_equal(ep.observations["state"], source[side]["state"].astype(np.float32))
                np.testing.assert_array_equal(ep.infos["joint_angles"], source[side]["joint_angles"])
                np.testing.assert_array_equal(ep.infos["distance"][:, 0], source[side]["distance"])
                np.testing.assert_array_equal(ep.rewards, source[side]["reward"])
                assert ep.infos["role"][0, 0] == role and ep.infos["episode_id"][0, 0] == ref.episode_id
            assert episodes[perform_i].infos["paired_with"][0, 0] == observe_i
        for index, ref in enumerate(babble, start=2 * len(demo)):
            source = data.read_episode(ref)
            np.testing.assert_array_equal(episodes[index].observations["pixels"], source["perform"]["frames"])
            assert episodes[index].infos["role"][0, 0] == 2 and episodes[index].infos["paired_with"][0, 0] == -1
    env = ds.recover_environment()
    assert env.spec.id == "mirrorlab/PlanarReach-v0" and env.spec.kwargs["actor"] == "self"
    env.close()


def test_the_export_is_at_most_twice_the_source(tiny_dataset, exported):
    ratio = _size(exported / ID) / _size(tiny_dataset)
    print(f"minari parquet / source HDF5 size: {ratio:.2f}")
    assert ratio <= 2.0


def test_an_existing_dataset_is_kept_without_force_and_ids_cannot_leave_the_root(tiny_dataset, exported, capsys):
    assert _export(tiny_dataset, exported) == 2
    assert "already exists" in capsys.readouterr().err
    victim = exported.parent / "victim-v0"
    victim.mkdir()
    (victim / "mine.txt").write_text("mine")
    for bad in ("../victim-v0", "../escape-v0", ".hidden/x-v0", "a/../../victim-v0"):
        assert _export(tiny_dataset, exported, "--force", dataset_id=bad) == 2
        assert capsys.readouterr().err.count("\n") == 1
    assert (victim / "mine.txt").read_text() == "mine" and not (exported.parent / "escape-v0").exists()
    assert not (exported / ".hidden").exists()


def test_force_from_broken_data_keeps_the_old_dataset(tiny_dataset, exported, monkeypatch, capsys):
    from mirrorlab.errors import UserError

    calls = {"n": 0}
    real = PairedDataset.read_episode

    def failing(self, ref, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 3:
            raise UserError(f"{tiny_dataset}: shard corrupted (planted)")
        return real(self, ref, *args, **kwargs)

    monkeypatch.setattr(PairedDataset, "read_episode", failing)
    before = _size(exported / ID)
    assert _export(tiny_dataset, exported, "--force") == 2
    assert "planted" in capsys.readouterr().err
    monkeypatch.undo()
    assert _size(exported / ID) == before and _load(exported, monkeypatch).total_episodes > 0
    assert not [p for p in (exported / "mirrorlab").iterdir() if p.name.startswith(".")]  # no temporary left


def test_a_killed_export_leaves_the_old_dataset_and_the_rerun_cleans_up(tiny_dataset, exported, monkeypatch):
    """SIGTERM while the new dataset is being written: the old one stays whole; the rerun succeeds."""
    env = {**os.environ, "MUJOCO_GL": "egl", "OMP_NUM_THREADS": "1"}
    before = sorted(p.name for p in (exported / ID).rglob("*"))
    proc = subprocess.Popen([sys.executable, "-m", "mirrorlab.experiments.cli", "export", "--data", str(tiny_dataset),
                             "--out", ID, "--minari-root", str(exported), "--force"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        temps = []
        while time.time() < deadline and proc.poll() is None:
            temps = list((exported / "mirrorlab").glob(".tiny-paired-v0.mirrorlab-tmp-*/**/*.parquet"))
            if temps:
                break
            time.sleep(0.05)
        assert temps, "the export never started writing"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert sorted(p.name for p in (exported / ID).rglob("*")) == before
    assert _load(exported, monkeypatch).total_episodes == len(_load(exported, monkeypatch).episode_indices)
    assert _export(tiny_dataset, exported, "--force") == 0
    assert not [p for p in (exported / "mirrorlab").iterdir() if p.name.startswith(".")]


# --- LeRobot v3.0 --------------------------------------------------------------------------------------------
# The v3.0 layout as LeRobot documents it (lerobot/datasets/utils.py: create_empty_dataset_info, DEFAULT_*_PATH).
LEROBOT_INFO_KEYS = {"codebase_version", "robot_type", "total_episodes", "total_frames", "total_tasks", "chunks_size",
                     "data_files_size_in_mb", "video_files_size_in_mb", "fps", "splits", "data_path", "video_path",
                     "features"}
LEROBOT_DEFAULT_FEATURES = {"timestamp": "float32", "frame_index": "int64", "episode_index": "int64", "index": "int64",
                            "task_index": "int64"}
LEROBOT_EPISODE_COLUMNS = {"episode_index", "tasks", "length", "dataset_from_index", "dataset_to_index",
                           "data/chunk_index", "data/file_index", "meta/episodes/chunk_index",
                           "meta/episodes/file_index"}
VIDEO_COLUMNS = ("chunk_index", "file_index", "from_timestamp", "to_timestamp")


@pytest.fixture(scope="module")
def lerobot(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("lerobot") / "tiny-paired"
    assert cli(["export", "--data", str(tiny_dataset), "--format", "lerobot", "--out", str(out)]) == 0
    return out


def _arrow_matches(field, feature) -> bool:
    import pyarrow as pa

    shape, dtype = feature["shape"], feature["dtype"]
    if shape == [1]:
        return field.type == pa.from_numpy_dtype(np.dtype(dtype))
    return (pa.types.is_fixed_size_list(field.type) and field.type.list_size == shape[0]
            and field.type.value_type == pa.from_numpy_dtype(np.dtype(dtype)))


def test_a_lerobot_export_follows_the_v3_schema(tiny_dataset, lerobot):
    import json

    import pandas as pd
    import pyarrow.parquet as pq

    info = json.loads((lerobot / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and LEROBOT_INFO_KEYS <= set(info)
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    features = info["features"]
    videos = {k for k, f in features.items() if f["dtype"] == "video"}
    assert videos == {"observation.images.perform", "observation.images.observe"}
    assert all(features[k]["names"] == ["height", "width", "channels"] and features[k]["shape"][2] == 3 for k in videos)
    assert {k: features[k]["dtype"] for k in LEROBOT_DEFAULT_FEATURES} == LEROBOT_DEFAULT_FEATURES
    data = pq.read_table(lerobot / info["data_path"].format(chunk_index=0, file_index=0))
    assert set(data.column_names) == set(features) - videos
    assert all(_arrow_matches(data.schema.field(k), features[k]) for k in data.column_names)
    with PairedDataset(tiny_dataset) as source:
        demo = source.episodes("demo")
        assert info["total_episodes"] == len(demo) and info["total_tasks"] == 1
        assert info["total_frames"] == data.num_rows == sum(len(source.read_episode(r)["actions"]) for r in demo)
        episodes = pq.read_table(lerobot / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
        assert [(e["mirrorlab/episode_id"], e["mirrorlab/seed"]) for e in episodes] == [(r.episode_id, r.seed) for r in demo]
    expected = LEROBOT_EPISODE_COLUMNS | {f"videos/{k}/{c}" for k in videos for c in VIDEO_COLUMNS}
    assert expected <= set(episodes[0])
    assert [e["episode_index"] for e in episodes] == list(range(len(episodes)))
    assert [e["dataset_to_index"] - e["dataset_from_index"] for e in episodes] == [e["length"] for e in episodes]
    assert all(a["dataset_to_index"] == b["dataset_from_index"] for a, b in zip(episodes, episodes[1:]))
    for e in episodes:
        for k in videos:
            assert e[f"videos/{k}/from_timestamp"] == pytest.approx(e["dataset_from_index"] / info["fps"])
            assert e[f"videos/{k}/to_timestamp"] == pytest.approx(e["dataset_to_index"] / info["fps"])
    tasks = pd.read_parquet(lerobot / "meta" / "tasks.parquet")
    assert tasks.index.name == "task" and tasks["task_index"].tolist() == [0]
    stats = json.loads((lerobot / "meta" / "stats.json").read_text())
    assert set(stats) == set(features)
    assert all({"min", "max", "mean", "std", "count"} <= set(s) for s in stats.values())
    assert np.asarray(stats["observation.images.perform"]["mean"]).shape == (3, 1, 1)
    assert "perform" in info["mirrorlab"]["pairing"] and info["mirrorlab"]["source_fingerprint"]


def test_lerobot_videos_decode_to_the_paired_frames_within_tolerance(tiny_dataset, lerobot):
    import imageio_ffmpeg
    import pyarrow.parquet as pq

    from mirrorlab.envs.lerobot_export import PIXEL_TOLERANCE

    data = pq.read_table(lerobot / "data/chunk-000/file-000.parquet")
    with PairedDataset(tiny_dataset) as source:
        episodes = [source.read_episode(r) for r in source.episodes("demo")]
    np.testing.assert_array_equal(np.stack(data["action"].to_numpy(zero_copy_only=False)),
                                  np.concatenate([e["actions"] for e in episodes]).astype(np.float32))
    for key, side in (("observation.images.perform", "perform"), ("observation.images.observe", "observe")):
        frames = imageio_ffmpeg.read_frames(str(lerobot / f"videos/{key}/chunk-000/file-000.mp4"))
        size = next(frames)["size"]
        decoded = np.stack([np.frombuffer(f, np.uint8).reshape(size[1], size[0], 3) for f in frames])
        expected = np.concatenate([e[side]["frames"][:len(e["actions"])] for e in episodes])
        assert decoded.shape == expected.shape
        error = np.abs(decoded.astype(int) - expected)
        print(f"{key}: max |decoded - source| {error.max()}, mean {error.mean():.3f}")
        assert error.max() <= PIXEL_TOLERANCE


def test_a_lerobot_export_is_replaced_only_with_force(tiny_dataset, lerobot, capsys):
    before = (lerobot / "meta" / "info.json").stat().st_mtime_ns
    assert cli(["export", "--data", str(tiny_dataset), "--format", "lerobot", "--out", str(lerobot)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli(["export", "--data", str(tiny_dataset), "--format", "lerobot", "--out", str(lerobot), "--force"]) == 0
    assert (lerobot / "meta" / "info.json").stat().st_mtime_ns != before
    assert not [p for p in lerobot.parent.iterdir() if p.name.startswith(".")]
