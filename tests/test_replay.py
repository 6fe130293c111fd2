"""Replay at surprise (agents.replay and the trainer): planted surprises fill the buffer and are replayed most,
at the uniform pass's number and size of batches; a surprise run is deterministic and resumes exactly; the
default config trains as before."""

import dataclasses
from collections import Counter

import numpy as np
import pytest
import torch

from mirrorlab.agents.batches import EpisodeBatches, EpisodeItems
from mirrorlab.agents.replay import SurpriseReplay
from mirrorlab.agents.runs import TrainConfig, read_run
from mirrorlab.agents.training import train_run
from mirrorlab.errors import UserError
from mirrorlab.files import load_torch
from tests.conftest import TINY_TRAIN as TINY

TINY_TRAIN = TrainConfig(**TINY)


class Numbered(torch.utils.data.Dataset):
    """Items that are only their index: what a replay drew is read off the batch."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"index": torch.tensor(i)}


def test_the_buffer_keeps_the_largest_latest_surprises():
    replay = SurpriseReplay({"demo": Numbered(10)}, batch_size=2, fraction=0.5, capacity=3)
    replay.record("demo", torch.arange(10), torch.tensor([1.0, 9.0, 1.0, 5.0, 1.0, 1.0, 1.0, 7.0, 1.0, 1.0]))
    indices, surprise = replay.buffer("demo")
    assert indices.tolist() == [1, 7, 3] and surprise.tolist() == [9.0, 7.0, 5.0]
    replay.record("demo", torch.tensor([1]), torch.tensor([0.5]))  # episode 1 learnt since: it loses its place
    assert replay.buffer("demo")[0].tolist() == [7, 3, 0]  # ties (1.0) go to the lowest index


def test_planted_surprises_are_replayed_in_proportion():
    replay = SurpriseReplay({"demo": Numbered(10)}, batch_size=2, fraction=0.5, capacity=4)
    planted = torch.tensor([1.0, 1.0, 8.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    replay.record("demo", torch.arange(10), planted)  # buffer: 2 (8.0), then 0, 1, 3 (1.0 each)
    rng = np.random.default_rng(0)
    drawn = Counter(i for _ in range(2000) for i in replay.draw("demo", rng).tolist())
    assert set(drawn) == {0, 1, 2, 3}
    assert drawn[2] > 1.5 * max(drawn[i] for i in (0, 1, 3))  # drawn first 8/11 of the time, never twice a batch
    assert SurpriseReplay({"demo": Numbered(10)}, 5, 0.5, 5).draw("demo", rng) is None  # nothing recorded yet


def test_an_epoch_keeps_the_uniform_number_and_size_of_batches_and_replays_planted_episodes(tiny_dataset):
    items = EpisodeItems(tiny_dataset, "demo")  # 10 episodes
    batches = EpisodeBatches({"demo": items}, batch_size=2)
    replay = SurpriseReplay(batches.sources, batch_size=2, fraction=0.4, capacity=2)
    planted = {3: 50.0, 8: 40.0}  # the episodes the core "predicts worst"
    seen, counts = Counter(), []
    for epoch in range(6):
        uniform = list(batches.epoch(0, epoch))
        schedule = list(replay.epoch(iter(uniform), len(batches), 0, epoch))
        counts.append((len(uniform), len(schedule)))
        assert [b["index"].shape for _, b in schedule] == [b["index"].shape for _, b in uniform]
        for _, batch in schedule:
            seen.update(batch["index"].tolist())
            replay.record("demo", batch["index"], torch.tensor([planted.get(i, 1.0) for i in batch["index"].tolist()]))
    items.close()
    assert counts == [(5, 5)] * 6  # equal updates
    assert replay.buffer("demo")[0].tolist() == [3, 8]
    others = [seen[i] for i in range(10) if i not in planted]
    assert min(seen[3], seen[8]) > max(others)  # the planted episodes were trained on most
    assert len(replay.replay_positions(5, 0, 0)) == 2


def _weights(run):
    return read_run(run).load_core().state_dict()


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_a_surprise_run_is_deterministic_resumes_exactly_and_differs_from_uniform(tiny_dataset, tmp_path, monkeypatch):
    import mirrorlab.agents.training as train_module

    config = dataclasses.replace(TINY_TRAIN, replay="surprise", replay_fraction=0.5, replay_buffer=3)
    train_run(config, tiny_dataset, tmp_path / "full")
    real_save = train_module.atomic_torch_save

    def save_then_die(path, obj):
        real_save(path, obj)
        if "epoch-0001" in str(path):
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "atomic_torch_save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_run(config, tiny_dataset, tmp_path / "killed")
    monkeypatch.setattr(train_module, "atomic_torch_save", real_save)
    buffers = load_torch(tmp_path / "killed" / "checkpoints" / "epoch-0001.pt", "checkpoint")["replay"]
    assert sorted(buffers["demo"]["index"].tolist()) == list(range(5))  # every training episode has a surprise
    train_run(config, tiny_dataset, tmp_path / "killed")
    assert _same(_weights(tmp_path / "full"), _weights(tmp_path / "killed"))
    train_run(TINY_TRAIN, tiny_dataset, tmp_path / "uniform")
    assert not _same(_weights(tmp_path / "full"), _weights(tmp_path / "uniform"))


def test_the_default_config_trains_as_before(tiny_dataset, tmp_path):
    """The options at their neutral values, whatever their parameters, leave training bit for bit as it was:
    no per-step path, no buffer, no reweighting."""
    train_run(TINY_TRAIN, tiny_dataset, tmp_path / "default")
    neutral = dataclasses.replace(TINY_TRAIN, replay="uniform", replay_fraction=0.9, replay_buffer=1,
                                  reward_modulation="none", reward_strength=0.3)
    train_run(neutral, tiny_dataset, tmp_path / "neutral")
    assert _same(_weights(tmp_path / "default"), _weights(tmp_path / "neutral"))
    assert "replay" not in load_torch(tmp_path / "default" / "checkpoints" / "epoch-0002.pt", "checkpoint")


@pytest.mark.parametrize("fields, message", [
    ({"replay": "prioritised"}, "replay must be one of uniform, surprise"),
    ({"replay_fraction": 1.0}, r"replay_fraction must be in \(0, 1\)"),
    ({"replay": "surprise", "replay_buffer": 2}, r"replay_buffer must be >= batch_size \(3\)"),
])
def test_bad_replay_options_are_one_clear_line(fields, message):
    with pytest.raises(UserError, match=message) as err:
        dataclasses.replace(TINY_TRAIN, **fields).validate()
    assert "\n" not in str(err.value)


def test_runs_of_seed_002_options_are_labelled_apart():
    from types import SimpleNamespace

    from mirrorlab.agents.runs import run_label

    def run(**options):
        return SimpleNamespace(name="shared__seed0", config=dataclasses.replace(TINY_TRAIN, **options))

    assert run_label(run()) == "shared"
    assert run_label(run(replay="surprise")) == "shared+surprise"
    assert run_label(run(reward_modulation="other")) == "shared+reward_other"
    assert run_label(run(replay="surprise", reward_modulation="self")) == "shared+surprise+reward_self"
