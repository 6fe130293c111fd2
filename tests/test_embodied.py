"""The embodied core (mirrorlab.agents.embodied, runs, training, activations) and `analyze`, on a tiny dataset."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from mirrorlab.agents.activations import load_activations
from mirrorlab.agents.runs import TrainConfig, read_run, split_episodes
from mirrorlab.agents.training import TrainingDiverged, train_run
from mirrorlab.errors import UserError
from mirrorlab.experiments.stages.measurement import AnalyzeConfig, analyze
from tests.conftest import TINY_ANALYSIS as TINY_ANALYSIS_SETTINGS
from tests.conftest import TINY_TRAIN as TINY

TINY_TRAIN = TrainConfig(**TINY)
TINY_ANALYSIS = AnalyzeConfig(**TINY_ANALYSIS_SETTINGS)


@pytest.fixture(scope="module")
def dataset(tiny_dataset):
    return tiny_dataset


def test_split_holds_out_the_highest_ids():
    train_ids, test_ids = split_episodes([5, 1, 3, 2, 4, 0], 0.25)
    assert test_ids == [4, 5] and train_ids == [0, 1, 2, 3]


def train(config, data, run, show_progress=False):
    return train_run(config, data, run)


def _params(run):
    return read_run(run).load_core().state_dict()


def test_training_learns_and_a_killed_run_resumes_to_the_same_weights(dataset, tmp_path, monkeypatch):
    import mirrorlab.agents.training as train_module

    full = tmp_path / "full"
    train(TINY_TRAIN, dataset, full, show_progress=False)
    assert (full / "history.csv").read_text().count("\n") == 3  # header + 2 epochs

    killed = tmp_path / "killed"
    real_save = train_module.atomic_torch_save

    def save_then_die(path, obj):
        real_save(path, obj)
        if "epoch-0001" in str(path):
            raise KeyboardInterrupt  # killed right after the first checkpoint

    monkeypatch.setattr(train_module, "atomic_torch_save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(TINY_TRAIN, dataset, killed, show_progress=False)
    monkeypatch.setattr(train_module, "atomic_torch_save", real_save)
    assert not (killed / "done.json").exists()
    train(TINY_TRAIN, dataset, killed, show_progress=False)
    a, b = _params(full), _params(killed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    untrained = tmp_path / "untrained"
    train(dataclasses.replace(TINY_TRAIN, condition="untrained"), dataset, untrained, show_progress=False)
    assert not all(torch.equal(a[k], v) for k, v in _params(untrained).items())


def test_nan_loss_stops_and_names_the_last_good_checkpoint(dataset, tmp_path, monkeypatch):
    import mirrorlab.agents.training as training

    real = training.embodied_batch_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        loss, parts = real(*args, **kwargs)
        calls["n"] += 1
        return (loss * float("nan") if calls["n"] > 4 else loss), parts

    monkeypatch.setattr(training, "embodied_batch_loss", poisoned)
    with pytest.raises(TrainingDiverged, match=r"epoch 1 batch \d+; last good checkpoint: .*epoch-0001\.pt"):
        train(TINY_TRAIN, dataset, tmp_path / "run", show_progress=False)


def test_a_run_refuses_a_different_config_or_a_mismatched_dataset(dataset, tmp_path):
    run = tmp_path / "run"
    train(dataclasses.replace(TINY_TRAIN, epochs=1), dataset, run, show_progress=False)
    with pytest.raises(UserError, match=r"different config \(epochs\); use another"):
        train(dataclasses.replace(TINY_TRAIN, epochs=3), dataset, run, show_progress=False)
    record = json.loads((run / "config.json").read_text())
    record["data_fingerprint"] = "f" * 64
    (run / "config.json").write_text(json.dumps(record))
    with pytest.raises(UserError, match="was made from a different dataset"):
        analyze([run], tmp_path / "analysis", TINY_ANALYSIS)
    assert not (tmp_path / "analysis").exists()


def test_analyze_writes_the_replication_structure(dataset, tmp_path):
    runs = []
    for condition in ("shared", "untrained"):
        for seed in (0, 1):
            run = tmp_path / f"{condition}{seed}"
            train(dataclasses.replace(TINY_TRAIN, condition=condition, seed=seed, epochs=1), dataset, run,
                  show_progress=False)
            runs.append(run)
    out = tmp_path / "analysis"
    analyze(runs, out, TINY_ANALYSIS)
    metrics = json.loads((out / "metrics.json").read_text())
    (group, entry), = metrics["groups"].items()
    assert group.startswith("identical")
    assert set(entry["conditions"]) == {"shared", "untrained"}
    row = entry["conditions"]["shared"]["per_seed"][0]
    for key in ("n_mirror_fdr", "inverse_r2", "decode_perform_to_observe", "aligned_cka_debiased", "congruence"):
        assert np.isfinite(row[key]), key
    assert entry["claims"][0]["compared_with"] == "untrained"
    lines = (out / "units.csv").read_text().splitlines()
    assert len(lines) == 1 + 4 * 12
    acts = load_activations(metrics["runs"][str(runs[0].resolve())]["activations"])
    assert acts.perform.shape == (10, 50, 12) and acts.held_out.sum() == 5 and acts.babble_perform.shape == (3, 50, 12)
    assert acts.meta["inverse_r2"] == row["inverse_r2"] and acts.meta["condition"] == "shared"
    # The motion-only check: the inverse head on the self arm's babbling, scored for every "other" run.
    assert np.isfinite(row["inverse_r2_babble"]) and acts.meta["inverse_r2_babble"] == row["inverse_r2_babble"]
    # The forward head performs every held-out start with another episode's actions too: a ratio of errors.
    assert acts.meta["forward_action_sensitivity"] > 0 and row["forward_action_sensitivity"] == \
        acts.meta["forward_action_sensitivity"]
    assert "Does the claim hold?" in (out / "report.md").read_text()
    with pytest.raises(UserError, match="already holds results"):
        analyze(runs, out, TINY_ANALYSIS)


def test_cached_items_return_the_same_episodes_and_respect_the_memory_bound(dataset):
    from mirrorlab.agents.batches import CachedItems, EpisodeItems

    items = EpisodeItems(dataset, "demo")
    one = CachedItems.size_of(items[0])
    cached = CachedItems(items, max_bytes=2 * one)
    for i in range(len(items)):
        item = cached[i]
        assert torch.equal(item["actions"], items[i]["actions"]) and int(item["index"]) == i
        assert torch.equal(item["observe"]["frames"], items[i]["observe"]["frames"])
        assert item["observe"]["frames"].shape == (51, 3, 16, 16) and item["observe"]["frames"].dtype == torch.uint8
    assert len(cached._cache) == 2 and cached._bytes <= 2 * one
    assert cached[0] is cached[0] and cached[5] is not cached[5]
    babble = EpisodeItems(dataset, "babble")
    assert "observe" not in babble[0] and babble[0]["perform"]["frames"].shape == (51, 3, 16, 16)


def test_analyze_refuses_too_few_held_out_episodes(dataset, tmp_path):
    run = tmp_path / "run"
    train(dataclasses.replace(TINY_TRAIN, epochs=1, test_fraction=0.3), dataset, run, show_progress=False)
    with pytest.raises(UserError, match="3 held-out episodes, the analysis needs at least 5"):
        analyze([run], tmp_path / "analysis", TINY_ANALYSIS)
    assert not (tmp_path / "analysis").exists()


def test_observe_windows_stack_the_frames_around_each_step():
    from mirrorlab.agents.embodied import observed_input

    frames = torch.arange(6).reshape(1, 6, 1, 1, 1).expand(1, 6, 3, 16, 16)  # T = 5 steps; frame i holds i
    stacked = observed_input(frames, (-1, 0, 1))
    assert stacked.shape == (1, 5, 3, 3, 16, 16)
    assert stacked[0, :, :, 0, 0, 0].tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5]]
    assert observed_input(frames, (1,))[0, :, 0, 0, 0, 0].tolist() == [1, 2, 3, 4, 5]  # the frame after a_t
    assert observed_input(frames.numpy(), (1, 2))[0, -1, :, 0, 0, 0].tolist() == [5, 5]  # clamped at the end


def test_weight_profiles_draw_each_measure_against_the_inverse_weight():
    from mirrorlab.analysis.embodied_report import WEIGHT_MEASURES, weight_profiles

    cells = {}
    for w in (0.0, 4.0):
        for cond in ("shared", "separate", "untrained"):
            if cond == "untrained" and w > 0:
                continue  # the untrained core is trained once, at the first weight
            for seed in (0, 1, 2):
                value = -1.0 if cond == "untrained" else w * 10 + (cond == "shared") + seed * 0.5
                row = {"other_appearance": "identical", "inverse_data": "other", "inverse_weight": w,
                       "condition": cond, "seed": seed, **{col: value for col, _ in WEIGHT_MEASURES}}
                cells[(f"identical, w={w}", cond, seed)] = (row, {})
    outputs, lines = weight_profiles(cells)
    (path, png_bytes), = outputs.items()
    assert path.endswith("identical_other.png") and png_bytes[:4] == b"\x89PNG"
    table = [line for line in lines if line.startswith("| 4 |") or line.startswith("| 0 |")]
    # shared at weight 4: 41 + seed / 2 -> mean 41.5; untrained drawn at every weight with its own -1.
    assert any(line.startswith("| 4 | shared | 41.5 [") for line in table)
    assert any(line.startswith("| 4 | untrained | -1") for line in table)
    assert any(line.startswith("| 0 | separate | 0.5 [") for line in table)
    # one weight only: nothing to draw
    single = {k: v for k, v in cells.items() if v[0]["inverse_weight"] == 0.0}
    assert weight_profiles(single) == ({}, [])


def test_inverse_babble_trains_the_inverse_head_on_own_babbling_and_scores_only_held_out_babble(dataset, tmp_path):
    from mirrorlab.agents.activations import babble_scored
    from mirrorlab.agents.conditions import get_condition
    from mirrorlab.agents.runs import build_core
    from mirrorlab.agents.training import embodied_batch_loss, training_batches

    general = dataclasses.replace(TINY_TRAIN, epochs=1, inverse_babble=True)
    run_dir = tmp_path / "general"
    train(general, dataset, run_dir)
    run = read_run(run_dir)
    assert run.record["train_babble_ids"] == [0] and run.test_babble_ids == [1, 2]  # 3 babble, half held out
    assert [babble_scored(run, i) for i in (0, 1, 2)] == [False, True, True]

    batches, labels = training_batches(general, dataset, run.train_episode_ids, True, run.record["train_babble_ids"])
    seen = {kind: set() for kind in ("demo", "babble")}
    for kind, batch in batches.epoch(0, 0):
        seen[kind] |= set(batch["episode_id"].tolist())
    assert seen["babble"] == {0} and seen["demo"] == set(run.train_episode_ids)

    babble_batch = next(batch for kind, batch in batches.epoch(0, 0) if kind == "babble")
    model = build_core(general, run.record["data"])
    shared = get_condition("shared")
    _, parts = embodied_batch_loss(model, shared, general, "babble", babble_batch, labels["babble"][babble_batch["index"]])
    assert "inverse" in parts  # own babbling now teaches the inverse head ...
    plain = dataclasses.replace(general, inverse_babble=False)
    _, parts = embodied_batch_loss(model, shared, plain, "babble", babble_batch, labels["babble"][babble_batch["index"]])
    assert set(parts) == {"forward"}  # ... which it does not by default

    plain_run = tmp_path / "plain"
    train(dataclasses.replace(plain, epochs=0), dataset, plain_run)
    assert read_run(plain_run).test_babble_ids is None
    assert all(babble_scored(read_run(plain_run), i) for i in (0, 1, 2))
    with pytest.raises(UserError, match="inverse_babble needs inverse_data"):
        dataclasses.replace(general, inverse_data="self").validate()


def test_a_run_recorded_before_a_config_field_existed_resumes_with_its_default(dataset, tmp_path):
    """A field added to TrainConfig later (here inverse_babble) is absent from older records: it counts as
    its default, so an older unfinished run resumes; a non-default value is still a different config."""
    run = tmp_path / "run"
    train(dataclasses.replace(TINY_TRAIN, epochs=1), dataset, run)
    record = json.loads((run / "config.json").read_text())
    del record["config"]["inverse_babble"]
    (run / "config.json").write_text(json.dumps(record))
    (run / "done.json").unlink()
    summary = train(dataclasses.replace(TINY_TRAIN, epochs=1), dataset, run)
    assert summary["epochs"] == 1 and (run / "done.json").is_file()
    (run / "done.json").unlink()
    with pytest.raises(UserError, match=r"different config \(inverse_babble\)"):
        train(dataclasses.replace(TINY_TRAIN, epochs=1, inverse_babble=True), dataset, run)
