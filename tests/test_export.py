"""`mirrorlab export --format minari`: every side of every paired episode loads back with Minari, bit for bit."""

import numpy as np

from mirrorlab.envs.paired import PairedDataset
from mirrorlab.experiments.cli import main as cli


def test_a_minari_export_loads_back_without_mirrorlab_bit_for_bit(tiny_dataset, tmp_path, monkeypatch, capsys):
    import minari

    root = tmp_path / "minari"
    assert cli(["export", "--data", str(tiny_dataset), "--format", "minari", "--out", "mirrorlab/tiny-paired-v0",
                "--minari-root", str(root)]) == 0
    assert "load it without mirrorlab" in capsys.readouterr().out
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    ds = minari.load_dataset("mirrorlab/tiny-paired-v0")
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
                np.testing.assert_array_equal(ep.infos["joint_angles"], source[side]["joint_angles"])
                assert int(ep.infos["role"][0]) == role and ep.infos["episode_id"][0] == ref.episode_id
            assert episodes[perform_i].infos["paired_with"][0] == observe_i
        for index, ref in enumerate(babble, start=2 * len(demo)):
            source = data.read_episode(ref)
            np.testing.assert_array_equal(episodes[index].observations["pixels"], source["perform"]["frames"])
            assert int(episodes[index].infos["role"][0]) == 2 and episodes[index].infos["paired_with"][0] == -1
    env = ds.recover_environment()
    assert env.spec.id == "mirrorlab/PlanarReach-v0" and env.spec.kwargs["actor"] == "self"
    env.close()
    # An existing dataset is not replaced without --force.
    assert cli(["export", "--data", str(tiny_dataset), "--out", "mirrorlab/tiny-paired-v0",
                "--minari-root", str(root)]) == 2
    assert "already exists" in capsys.readouterr().err
