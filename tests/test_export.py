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
