"""Lesions inside the recurrence (agents.lesion), unit sets, the matched null and the verdict (analysis.lesion),
the selectivity term, and the `lesion` command, on planted cores whose answer is known."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from mirrorlab.agents.core import record
from mirrorlab.agents.lesion import UnitAblation, make_probe, probe_scores, toy_probes, unit_masks
from mirrorlab.agents.toy import build_toy_core
from mirrorlab.analysis.lesion import (
    UnitTable,
    choose_unit_sets,
    compare_to_null,
    headline_k,
    matched_random_sets,
    necessity_verdict,
    rank_features,
)
from mirrorlab.envs.toy import make_effects, make_sequences

H = 32


def toy_world(seed, n=200, T=8, hidden=H):
    rng = np.random.default_rng(seed)
    effects = make_effects(6, 16, rng)
    data = make_sequences(n, T, effects, 0.9, 0.05, rng)
    return build_toy_core(6, 16, 16, hidden, False, seed), data


# --- inside the recurrence ---------------------------------------------------------------------------------
def test_a_silenced_unit_stays_silenced_at_every_step_and_changes_later_steps_of_other_units():
    model, data = toy_world(0, n=20)
    silenced = np.array([3, 7])
    lesion = UnitAblation(unit_masks([silenced], H)[0], "zero")
    intact = record(model, data.actions, data.sensory)
    lesioned = record(model, data.actions, data.sensory, lesion=lesion)
    for acts in (lesioned.perform, lesioned.observe):
        assert np.all(acts[:, :, silenced] == 0)                    # every step, both modes
    others = np.setdiff1d(np.arange(H), silenced)
    for before, after in ((intact.perform, lesioned.perform), (intact.observe, lesioned.observe)):
        np.testing.assert_allclose(after[:, 0, others], before[:, 0, others], atol=1e-6)  # step 0 reads no lesion
        assert np.abs(after[:, 1:, others] - before[:, 1:, others]).max() > 1e-3          # later steps do
    assert np.abs(lesioned.inverse_prediction - intact.inverse_prediction).max() > 1e-3


def test_mean_and_resample_ablations_take_values_from_the_pool_and_resample_is_seeded():
    pool = torch.randn(50, H)
    mask = unit_masks([np.array([1, 2])], H)[0]
    hidden = torch.randn(4, H)
    mean = UnitAblation(mask, "mean", pool)(hidden)
    torch.testing.assert_close(mean[:, 1:3], pool.mean(0)[1:3].expand(4, 2))
    torch.testing.assert_close(mean[:, 3:], hidden[:, 3:])
    a, b = UnitAblation(mask, "resample", pool, seed=5)(hidden), UnitAblation(mask, "resample", pool, seed=5)(hidden)
    torch.testing.assert_close(a, b)
    assert all(any(torch.equal(row[1:3], p[1:3]) for p in pool) for row in a)  # each value pair is a pool row's
    with pytest.raises(ValueError, match="recorded activity"):
        UnitAblation(mask, "mean", None)


def test_many_sets_side_by_side_score_as_each_set_alone():
    model, data = toy_world(1, n=30)
    probe = toy_probes(model, data)["observe"]
    sets = [np.array([0, 5]), np.array([]), np.arange(10, 20), np.array([31])]
    masks = unit_masks(sets, H)
    score = lambda pred: float(pred.sum())  # noqa: E731
    together = probe_scores(probe.probe, masks, "zero", None, 0, score, chunk=3)
    alone = [score(probe.probe.predict(UnitAblation(m, "zero"))) for m in masks]
    np.testing.assert_allclose(together, alone, rtol=1e-5)
    assert together[1] == pytest.approx(score(probe.probe.predict(None)), rel=1e-6)  # the empty set is intact


# --- planted cores: a known unit set carries the inverse read-out ------------------------------------------
def planted(seed, reads_mirror: bool):
    """An untrained toy core whose inverse head reads only `carriers` (fitted by least squares to the action);
    the table declares `carriers` the mirror units, or (reads_mirror False) units the head never reads."""
    model, data = toy_world(seed)
    rec = record(model, data.actions, data.sensory)
    carriers, decoys = np.arange(8), np.arange(8, 16)
    X = np.concatenate([rec.observe[..., carriers].reshape(-1, 8), np.ones((data.actions.size, 1))], 1)
    W = np.linalg.lstsq(X, np.eye(6)[data.actions.reshape(-1)], rcond=None)[0]
    with torch.no_grad():
        model.inverse_head.weight.zero_()
        model.inverse_head.weight[:, carriers] = torch.from_numpy(W[:-1].T).float()
        model.inverse_head.bias.copy_(torch.from_numpy(W[-1]).float())
    declared = carriers if reads_mirror else decoys
    r = np.zeros(H)
    r[declared] = 0.9
    q = np.where(r > 0, 0.001, 0.9)
    pools = {"observe": torch.from_numpy(rec.observe.reshape(-1, H))}
    features = np.stack([pools["observe"].var(0).numpy(),
                         model.inverse_head.weight.detach().norm(dim=0).numpy()], 1)
    table = UnitTable(r, np.full(H, 0.001), np.ones(H), q, features, features[:, 1])
    return model, data, table, pools


def planted_comparison(seed, reads_mirror):
    model, data, table, pools = planted(seed, reads_mirror)
    sets = [s for s in choose_unit_sets(table, 0.05, 0.4, np.random.default_rng(seed), ks=(8,), n_random=100)
            if s.kind in ("mirror", "matched_random")]
    probe = toy_probes(model, data)["observe"]
    accuracy = lambda pred: float((pred.argmax(-1) == probe.truth).double().mean())  # noqa: E731
    masks = unit_masks([np.zeros(0, int)] + [s.units for s in sets], H)
    scores = probe_scores(probe.probe, masks, "mean", pools["observe"], seed, accuracy, chunk=16)
    damage = scores[0] - scores[1:]
    assert scores[0] > 0.4                                   # the planted read-out works (chance: 1/6)
    return compare_to_null(damage[0], damage[1:])


def test_a_set_that_carries_the_read_out_is_far_above_the_matched_null():
    results = [planted_comparison(seed, reads_mirror=True) for seed in range(5)]
    assert all(c["exceeds"] and c["z"] > 15 for c in results)
    assert necessity_verdict(results, n_seeds=5)["verdict"] == "supported"


def test_a_set_the_read_out_ignores_is_not_above_the_null():
    results = [planted_comparison(seed, reads_mirror=False) for seed in range(5)]
    # Decoys still feed the carriers through the recurrence, as any non-mirror units do: within the null's
    # spread (z below 5, where the carriers give 15 and more), above its 95th percentile in at most 2 seeds.
    assert all(abs(c["z"]) < 5 and c["effect"] < 0.1 for c in results)
    assert sum(c["exceeds"] for c in results) <= 2
    assert necessity_verdict(results, n_seeds=5)["verdict"] == "not supported"


# --- unit sets and the matched null ------------------------------------------------------------------------
def test_the_matched_null_matches_what_plain_random_sets_do_not():
    rng = np.random.default_rng(0)
    U = 96
    features = rng.standard_normal((U, 3))
    target = rng.choice(np.argsort(-features[:, 0])[:32], 8, replace=False)  # "mirror" units: loud on feature 0
    features[target, 1] += 1.0                              # and read more on feature 1
    candidates = np.setdiff1d(np.arange(U), target)
    sets = matched_random_sets(target, candidates, features, 200, rng)
    ranked = rank_features(features)
    assert all(len(set(s)) == 8 and not set(s) & set(target) for s in sets)
    matched_gap = np.abs(ranked[sets].mean(axis=(0, 1)) - ranked[target].mean(0))
    plain = np.stack([rng.choice(candidates, 8, replace=False) for _ in range(200)])
    plain_gap = np.abs(ranked[plain].mean(axis=(0, 1)) - ranked[target].mean(0))
    assert matched_gap[:2].max() < 0.1 and plain_gap[:2].min() > 0.25   # in rank units (0..1)
    assert len({tuple(sorted(s)) for s in sets}) > 150      # random sets, not one nearest-neighbour set


def test_unit_sets_follow_the_analysis_table():
    r = np.array([0.9, 0.5, 0.95, -0.8, -0.5, 0.1, 0.3, 0.45])
    q = np.array([0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.5, 0.2])
    upper = r > 0
    table = UnitTable(r, np.where(upper, 0.001, 1.0), np.where(upper, 1.0, 0.001), q,
                      np.random.default_rng(0).standard_normal((8, 2)), np.arange(8.0))
    np.testing.assert_array_equal(table.mirror(0.05, 0.4), [2, 0, 1])   # significant, r >= 0.4, largest first
    np.testing.assert_array_equal(table.anti_mirror(0.05, 0.4), [3, 4])
    sets = choose_unit_sets(table, 0.05, 0.4, np.random.default_rng(0), ks=(2, 4), n_random=100)
    kinds = {(s.kind, s.k): s.units for s in sets if s.kind != "matched_random"}
    assert set(kinds) == {("mirror", 2), ("readout", 2), ("anti_mirror", 2)}   # k = 4: only 3 mirror units
    np.testing.assert_array_equal(kinds[("readout", 2)], [7, 6])
    assert sum(s.kind == "matched_random" for s in sets) == 100


# --- the null comparison and the verdict, by hand ------------------------------------------------------------
def test_compare_to_null_by_hand():
    c = compare_to_null(200.0, np.arange(1.0, 101.0))
    assert c["null_mean"] == 50.5 and c["null_p95"] == pytest.approx(95.05)
    assert c["z"] == pytest.approx((200 - 50.5) / np.std(np.arange(1.0, 101.0), ddof=1)) and c["exceeds"]
    assert not compare_to_null(95.0, np.arange(1.0, 101.0))["exceeds"]


def seeds(exceeds, differences):
    return [{"exceeds": e, "difference": d, "z": d} for e, d in zip(exceeds, differences)]


def test_the_verdict_rule_on_hand_computed_cases():
    # 4 of 5 above p95; differences 1..5: mean 3, sem sqrt(2.5/5), t(0.975, 4) = 2.7764 -> [1.037, 4.963]
    v = necessity_verdict(seeds([1, 1, 1, 1, 0], [1, 2, 3, 4, 5]), n_seeds=5)
    assert v["verdict"] == "supported" and v["n_exceed"] == 4
    assert v["difference"]["ci95"] == pytest.approx([3 - 2.7764 * np.sqrt(0.5), 3 + 2.7764 * np.sqrt(0.5)], abs=1e-3)
    assert necessity_verdict(seeds([1, 1, 1, 0, 0], [1, 2, 3, 4, 5]), 5)["verdict"] == "not supported"  # 3 of 5
    assert necessity_verdict(seeds([1, 1, 1, 1, 1], [-4, 0.1, 0.2, 0.3, 0.4]), 5)["verdict"] == "not supported"
    assert necessity_verdict(seeds([1, 1, 1], [1, 2, 3]), 3)["verdict"].startswith("not tested")
    # A seed without k mirror units counts as not exceeding: 4 seeds with the set, 5 in all, 3 exceed.
    assert necessity_verdict(seeds([1, 1, 1, 0], [1, 2, 3, 4]), 5)["verdict"] == "not supported"
    assert headline_k([40, 9, 20, 8, 3]) == 8 and headline_k([1, 1, 5, 0, 0]) is None


# --- the selectivity term ------------------------------------------------------------------------------------
def test_the_selectivity_term_is_minus_the_mean_per_unit_r_and_moves_training_both_ways():
    from mirrorlab.agents.conditions import get_condition
    from mirrorlab.agents.training import selectivity_loss, train_toy_core
    from mirrorlab.analysis.mirror_stats import pearson_per_unit

    h = torch.randn(4, 5, 6)
    assert selectivity_loss(h, h).item() == pytest.approx(-1.0, abs=1e-5)
    assert selectivity_loss(h, -h).item() == pytest.approx(1.0, abs=1e-5)
    mean_r = {}
    for weight in (-1.0, 1.0):
        model, data = toy_world(3, n=128, hidden=16)
        train_toy_core(model, data, get_condition("shared"), epochs=3, batch_size=32, lr=3e-3, forward_weight=1.0,
                       inverse_weight=1.0, seed=3, selectivity_weight=weight)
        rec = record(model, data.actions, data.sensory)
        mean_r[weight] = float(np.nanmean(pearson_per_unit(rec.perform.astype(float), rec.observe.astype(float))))
    assert mean_r[1.0] > 0.2 and mean_r[-1.0] < -0.2


# --- the command -------------------------------------------------------------------------------------------
def test_lesion_command_bad_input_is_one_line_exit_2(tmp_path, capsys):
    from mirrorlab.experiments.cli import main

    assert main(["lesion", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--runs" in err[0]
    assert main(["lesion", "--runs", str(tmp_path / "nope"), "--out", str(tmp_path / "b")]) == 2
    assert "--analysis" in capsys.readouterr().err
    assert main(["lesion", "--runs", str(tmp_path / "nope"), "--analysis", str(tmp_path), "--out",
                 str(tmp_path / "c")]) == 2
    assert "metrics.json" in capsys.readouterr().err           # not an analysis folder
    (tmp_path / "bad.json").write_text(json.dumps({"n_random": 10}))
    assert main(["lesion", "--toy", "--config", str(tmp_path / "bad.json"), "--out", str(tmp_path / "d")]) == 2
    assert "n_random" in capsys.readouterr().err
    assert not any((tmp_path / x).exists() for x in "abcd")


def test_lesion_command_runs_on_analyzed_runs_and_resumes(analyzed_runs, tmp_path):
    from mirrorlab.experiments.stages.lesion import LesionConfig, lesion

    runs, analysis = analyzed_runs
    # imitation on a test's budget: the open-loop inverse head, one video, two null sets
    config = LesionConfig(ks=(2,), workers=1, imitation_methods=("inverse",), imitation_videos=1, imitation_random=2)
    first = lesion(runs, analysis, tmp_path / "out", config)
    saved = sorted((tmp_path / "out" / "runs").glob("*.json"))
    assert len(saved) == len(runs) and (tmp_path / "out" / "report.md").is_file()
    for row in first["metrics"]["runs"]:
        assert set(row["intact"]) >= {"inverse_r2", "forward_mse"}
    measured = {row["run"]: row for g in json.loads((analysis / "metrics.json").read_text())["groups"].values()
                for e in g["conditions"].values() for row in e["per_seed"]}
    for row, run in zip(sorted(first["metrics"]["runs"], key=lambda r: r["condition"]), sorted(runs)):
        # intact, the lesion study scores what the analysis scored (the same episodes, the same R^2)
        assert row["intact"]["inverse_r2"] == pytest.approx(measured[str(run)]["inverse_r2"], abs=1e-4)
    stamps = [p.stat().st_mtime_ns for p in saved]
    again = lesion(runs, analysis, tmp_path / "out", config)       # resumes: nothing recomputed
    assert [p.stat().st_mtime_ns for p in saved] == stamps
    assert json.dumps(again["metrics"]["verdicts"]) == json.dumps(first["metrics"]["verdicts"])  # NaN == NaN here
    done, before = Path(runs[0]) / "done.json", (Path(runs[0]) / "done.json").stat()
    os.utime(done)                                                 # a run retrained since: its lesions only, again
    try:
        lesion(runs, analysis, tmp_path / "out", config)
    finally:
        os.utime(done, ns=(before.st_atime_ns, before.st_mtime_ns))  # the fixture is shared
    assert sum(p.stat().st_mtime_ns != s for p, s in zip(saved, stamps)) == 1
    assert {v["outcome"] for v in first["metrics"]["verdicts"]} == {
        "inverse_r2", "inverse_r2_babble", "forward_mse", "imitation_success_inverse", "imitation_final_distance_inverse"}
    report = (tmp_path / "out" / "report.md").read_text()
    assert "imitation final distance (m): inverse head, open loop" in report and "Imitation under lesions" in report
    assert any(p.name.startswith("lesion_imitation_") for p in (tmp_path / "out" / "figures").iterdir())


def test_an_embodied_run_trains_with_the_selectivity_term(analyzed_runs, tmp_path):
    from tests.conftest import train_tiny

    from mirrorlab.agents.runs import read_run

    data = read_run(analyzed_runs[0][0]).data_path
    run = train_tiny(data, tmp_path / "run", epochs=1, selectivity_weight=-0.5)
    history = (run / "history.csv").read_text().splitlines()
    assert "selectivity" in history[0].split(",")
    assert read_run(run).config.selectivity_weight == -0.5


def test_a_retrained_toy_core_is_the_replications_core():
    """The toy part retrains cores the replication does not keep: same config and seed, same numbers."""
    import dataclasses

    from mirrorlab.experiments.stages.lesion import LesionConfig, toy_lesion_cell
    from mirrorlab.experiments.stages.replication import ReplicateConfig, run_cell

    rep = dataclasses.replace(ReplicateConfig(), n_train=128, n_test=60, epochs=2, hidden_size=24, n_permutations=1000,
                              decode_folds=2, decode_shuffles=2, lag_permutations=20, align_permutations=20,
                              congruence_permutations=20, cca_components=3)
    cell = run_cell(rep, "shared", 7)["row"]
    lesioned = toy_lesion_cell(rep, "shared", 7, LesionConfig(ks=(2,), ablations=("zero",)))
    assert lesioned["intact"]["toy_inverse_accuracy"] == cell["inverse_accuracy"]
    assert lesioned["intact"]["toy_forward_mse"] == pytest.approx(cell["forward_mse"], rel=1e-6)
    assert lesioned["n_mirror"] == cell["n_mirror_fdr"]


def test_the_dose_response_table_summarises_each_weight_over_seeds():
    from mirrorlab.analysis.dose import dose_report, dose_response

    rows = [{"selectivity_weight": w, "seed": s, "n_mirror_fdr": 10 * w + s, "n_anti_mirror_fdr": 0, "mean_r": w,
             "inverse_accuracy": 0.9, "forward_mse": 0.1} for w in (-1.0, 1.0) for s in (0, 1, 2)]
    table = dose_response(rows)
    assert [t["selectivity_weight"] for t in table] == [-1.0, 1.0] and table[1]["n_seeds"] == 3
    assert table[0]["n_mirror_fdr"]["mean"] == pytest.approx(-9.0) and table[1]["n_mirror_fdr"]["mean"] == 11.0
    assert "| -1 | 3 | -9 [" in dose_report(table) and dose_report([]) == ""


# --- imitation under lesions: a planted core whose imitation rides on a known unit set --------------------------
CARRIERS, IDLE = np.arange(0, 6), np.arange(6, 12)   # the tiny core's 12 units, split in two


def planted_imitator(run_dir, methods=("inverse", "closed_loop", "latent", "goal_inference")):
    """The tiny shared core made into a known imitator: its inverse head reads the demonstrator's actions from
    the carriers alone (least squares on the very videos it will imitate), and the other units are idle: they
    read no input and no other unit, and nothing reads them (no unit, no head), so no method, not even a
    planner that matches every unit's state, can depend on them. Returns the imitation probe."""
    from mirrorlab.agents.imitation import watch
    from mirrorlab.agents.lesion import imitation_probe
    from mirrorlab.agents.runs import read_run

    run = read_run(run_dir)
    model = run.load_core()
    probe = imitation_probe(run, model, methods, 6, n_videos=3, plan_iterations=5)
    H = model.hidden_size
    gates = np.concatenate([IDLE + g * H for g in range(3)])
    with torch.no_grad():
        for gru in {id(g): g for g in (model.perform_core, model.observe_core)}.values():
            gru.weight_hh_l0[:, IDLE] = 0
            gru.weight_hh_l0[gates] = 0
            gru.weight_ih_l0[gates] = 0
        model.forward_head.expand[0].weight[:, IDLE] = 0
        states = watch(model, np.stack([v.frames for v in probe.videos]), tuple(run.config.observe_window))[0].numpy()
        X = np.concatenate([states[..., CARRIERS].reshape(-1, len(CARRIERS)), np.ones((states[..., 0].size, 1))], 1)
        W = np.linalg.lstsq(X, np.concatenate([v.actions for v in probe.videos]), rcond=None)[0]
        model.inverse_head.weight.zero_()
        model.inverse_head.weight[:, CARRIERS] = torch.from_numpy(W[:-1].T).float()
        model.inverse_head.bias.copy_(torch.from_numpy(W[-1]).float())
    return probe


PLANTED_RADIUS = 0.035   # the planted task's success radius: the planted core reaches 1 or 2 of its 3 videos


def test_planted_imitation_breaks_when_its_carriers_are_silenced_and_not_when_idle_units_are(analyzed_runs):
    probe = planted_imitator(analyzed_runs[0][0])
    probe.context.task.success_radius = PLANTED_RADIUS
    try:
        masks = unit_masks([np.zeros(0, int), CARRIERS, IDLE], 12)
        scores = probe.scores(masks, "zero", {}, seed=0)
        for method in ("inverse", "closed_loop", "latent", "goal_inference"):     # idle units: nothing changes
            for measure in ("success", "final_distance"):
                assert scores[(method, measure)][2] == scores[(method, measure)][0], (method, measure)
        # carriers silenced: the head fitted to read these videos' actions breaks (no video reached, further off)
        assert scores[("inverse", "success")][0] >= 1 / 3 and scores[("inverse", "success")][1] == 0
        assert scores[("inverse", "final_distance")][1] > 1.15 * scores[("inverse", "final_distance")][0]
        # ... and its output is a constant: in closed loop the core no longer reacts to what it sees, it drives
        # the arm exactly as the blind open-loop replay does (intact, the two differ)
        assert scores[("closed_loop", "final_distance")][1] == scores[("inverse", "final_distance")][1]
        assert scores[("closed_loop", "final_distance")][0] != scores[("inverse", "final_distance")][0]
        for method in ("inverse", "closed_loop"):  # the intact row is what the method scores on its own
            assert scores[(method, "final_distance")][0] == pytest.approx(final_distances(probe, method).mean())
        again = probe.scores(masks, "zero", {}, seed=0)                 # scored once, then read back
        assert again is scores
    finally:
        probe.close()


def test_the_imitation_outcome_is_scored_at_the_headline_k_against_its_share_of_the_null(analyzed_runs):
    """Through `lesion_effects`: the planted carriers declared mirror units, so the null's sets can only be the
    idle units (the other 6 of 12), whose lesion does nothing: the mirror set is above every null set."""
    from mirrorlab.experiments.stages.lesion import IMITATION, LesionConfig, lesion_effects

    probe = planted_imitator(analyzed_runs[0][0], methods=("inverse", "closed_loop"))
    try:
        r = np.zeros(12)
        r[CARRIERS] = 0.9
        table = UnitTable(r, np.full(12, 0.001), np.ones(12), np.where(r > 0, 0.001, 0.9),
                          np.random.default_rng(0).standard_normal((12, 2)), np.arange(12.0))
        config = LesionConfig(ks=(2, 6), imitation_random=3, ablations=("zero",))
        result = lesion_effects({"imitation": probe}, {}, table, 0.05, 0.4, IMITATION, config, seed=0)
    finally:
        probe.close()
    rows = {(row["outcome"], row["kind"], row["k"]): row["effects"] for row in result["effects"]}
    assert {k for *_, k in rows} == {6}                              # the probe's k only, not every k
    assert {o for o, *_ in rows} == {f"imitation_{m}_{x}" for m in ("success", "final_distance")
                                     for x in ("inverse", "closed_loop")}        # the planners were not asked
    distance = "imitation_final_distance_inverse"
    null = rows[(distance, "matched_random", 6)]
    assert len(null) == 3 and null == [0.0, 0.0, 0.0]                # 3 of the 100 sets: the idle units
    assert compare_to_null(rows[(distance, "mirror", 6)][0], np.array(null))["exceeds"]
    assert result["intact"][distance] > 0


def test_imitation_config_is_checked():
    from mirrorlab.errors import UserError
    from mirrorlab.experiments.stages.lesion import LesionConfig

    for bad, word in ((dict(imitation_methods=("bc",)), "imitation_methods"),
                      (dict(imitation_random=101), "imitation_random"),
                      (dict(imitation_videos=0), "imitation_videos"),
                      (dict(imitation_planner_conditions=("nope",)), "imitation_planner_conditions")):
        with pytest.raises(UserError, match=word):
            LesionConfig(**bad).validate()
    LesionConfig(imitation_methods=(), imitation_planner_conditions=()).validate()


def final_distances(probe, method: str) -> np.ndarray:
    """Each test video's final distance when `method` imitates it with the intact core."""
    from mirrorlab.agents.imitation_methods import METHODS, Core

    ctx, task = probe.context, probe.context.task
    ctx.core = Core(probe.model, probe.label, probe.condition, probe.observe_window)
    make, _ = next(m for m in METHODS if m.name == method).build(ctx)
    return np.array([task.score(v, task.rollout(v, make(v)), probe.oracle_tips(v))["final_distance"]
                     for v in probe.videos])


def test_verdicts_list_an_outcome_only_where_it_was_measured_in_the_outcomes_order():
    """Imitation's planners run only in some conditions: no verdict row claims them elsewhere; a condition with
    too few mirror units says so for every outcome; rows follow the outcomes' order, not the alphabet."""
    from mirrorlab.analysis.lesion import summarise_lesions

    def run(condition, seed, n_mirror, outcomes):
        effects = [{"ablation": "mean", "outcome": o, "kind": kind, "k": 2, "effects": e}
                   for o in outcomes for kind, e in (("mirror", [1.0]), ("matched_random", [0.0, 0.1, -0.1]))]
        return {"group": "g", "condition": condition, "seed": seed, "n_mirror": n_mirror,
                "effects": effects if n_mirror >= 2 else [], "intact": {o: 0.5 for o in outcomes}}

    questions = {"inverse_r2": "watching", "forward_mse": "doing", "imitation_planner": "imitation"}
    results = ([run("shared", s, 4, list(questions)) for s in range(5)]
               + [run("separate", s, 4, ["inverse_r2", "forward_mse"]) for s in range(5)]
               + [run("untrained", s, 0, []) for s in range(5)])
    verdicts = summarise_lesions(results, questions, ks=(2,))["verdicts"]
    rows = {c: [v["outcome"] for v in verdicts if v["condition"] == c] for c in ("shared", "separate", "untrained")}
    assert rows["shared"] == ["inverse_r2", "forward_mse", "imitation_planner"]
    assert rows["separate"] == ["inverse_r2", "forward_mse"]
    assert rows["untrained"] == list(questions)
    assert all(v["verdict"].startswith("not tested (too few") for v in verdicts if v["condition"] == "untrained")
    assert all(v["verdict"] == "supported" for v in verdicts if v["condition"] == "shared")   # 1.0 > p95 every seed
