"""mirrorlab.analysis.spillover on planted latents: coincide -> full spillover, orthogonal -> none,
feedback removes it where self and other can be told apart."""

import numpy as np
import pytest

from mirrorlab.analysis.spillover import half_life, init_head, measure_spillover, sgd, shaped_reward, transience


def episodes(rng, n=60, T=30):
    """Distances that fall towards a target (a reach) with noise; rewards from them."""
    start = rng.uniform(0.1, 0.3, (n, 1))
    speed = rng.uniform(0.05, 0.2, (n, 1))
    d = np.maximum(start * np.exp(-speed * np.arange(T)) + 0.005 * rng.standard_normal((n, T)), 0)
    return shaped_reward(d)


def latents(code: np.ndarray, layout: tuple[float, float], rng, noise=0.05, extra=6):
    """[N, T, 2 + extra]: the reward code in dims 0 and 1 with the given weights, plus noise dims."""
    z = noise * rng.standard_normal(code.shape + (2 + extra,))
    z[..., 0] += layout[0] * code
    z[..., 1] += layout[1] * code
    return z


def fitted(self_z, self_r, rng):
    return sgd(init_head(self_z), self_z.reshape(-1, self_z.shape[-1]), self_r.ravel(), 3000, rng)


def test_shaped_reward_is_one_at_the_target_and_vanishes_far_away():
    r = shaped_reward(np.array([0.0, 0.05, 0.5]))
    assert r[0] == 1.0 and r[1] == pytest.approx(np.exp(-1)) and r[2] < 1e-4


@pytest.mark.parametrize("other_layout, spill", [((1.0, 1.0), "full"), ((0.0, 0.0), "none")])
def test_spillover_is_full_when_self_and_other_coincide_and_absent_when_orthogonal(other_layout, spill):
    rng = np.random.default_rng(0)
    r_self, r_other, r_test = episodes(rng), episodes(rng), episodes(rng)
    self_z = latents(r_self, (1.0, 1.0), rng)
    head = fitted(self_z, r_self, rng)
    other_z = latents(r_other, other_layout, rng)
    if spill == "none":  # the other's reward lives in directions the self never uses
        other_z[..., 2] += r_other
    res = measure_spillover(head, other_z, r_other, latents(r_test, (1.0, 1.0), rng), r_test, rng, n_permutations=199)
    if spill == "full":
        assert res.r > 0.95 and res.p == pytest.approx(1 / 200) and 0.85 < res.relative < 1.15
    else:
        # The value assigned to the other's success is ~0 of one's own; r, blind to magnitude, sees only
        # the head's tiny weight on a direction that is noise for self.
        assert abs(res.relative) < 0.05 and abs(res.r) < 0.2


def test_feedback_removes_spillover_where_self_and_other_differ():
    """Self codes its reward in dims 0 and 1, the other only in dim 0: at first the value head, fitted on
    self alone, spreads over both and values the other's progress; feedback that the other's success is
    worth nothing moves the weight onto dim 1, which the other never drives."""
    rng = np.random.default_rng(1)
    r_self, r_other, r_test = episodes(rng), episodes(rng), episodes(rng)
    self_z = latents(r_self, (1.0, 1.0), rng)
    head = fitted(self_z, r_self, rng)
    self_test = (latents(r_test, (1.0, 1.0), rng), r_test)  # the held-out episodes, seen as self
    curve = transience(head, (self_z, r_self), latents(r_other, (1.0, 0.0), rng),
                       (latents(r_test, (1.0, 0.0), rng), r_test), self_test, rng, updates=4000, every=250)
    assert curve["r"][0] > 0.9 and curve["relative"][0] > 0.3
    assert curve["relative"][-1] < 0.5 * curve["relative"][0]
    assert 0 < half_life(curve["updates"], curve["relative"]) < 4000
    # Where the two cannot be told apart (identical latents), the same feedback cannot remove it.
    same = transience(head, (self_z, r_self), latents(r_other, (1.0, 1.0), rng),
                      (latents(r_test, (1.0, 1.0), rng), r_test), self_test, rng, updates=4000, every=250)
    assert same["r"][-1] > 0.9 and half_life(same["updates"], same["relative"]) == float("inf")


def test_babbling_in_the_self_set_does_not_pass_for_telling_self_from_other():
    """Self and other look identical in demonstrations; only the self set also holds babbling, coded in
    a dimension of its own. Feedback can then remove value from every demonstration-like latent and keep
    it on babbling. Measured against the self *training* set (babbling included), that looked like the
    spillover decaying; against the same held-out episodes seen as self, it must not."""
    rng = np.random.default_rng(2)
    r_demo, r_babble, r_test = episodes(rng), episodes(rng), episodes(rng)
    demo_z = latents(r_demo, (1.0, 1.0), rng)
    babble_z = latents(np.zeros_like(r_babble), (0.0, 0.0), rng)
    babble_z[..., 2] += r_babble                      # a situation only the self arm is ever in
    self_z, self_r = np.concatenate([demo_z, babble_z]), np.concatenate([r_demo, r_babble])
    head = fitted(self_z, self_r, rng)
    other_test = (latents(r_test, (1.0, 1.0), rng), r_test)
    self_test = (latents(r_test, (1.0, 1.0), rng), r_test)
    curve = transience(head, (self_z, self_r), latents(r_demo, (1.0, 1.0), rng), other_test, self_test, rng,
                       updates=4000, every=250)
    assert half_life(curve["updates"], curve["relative"]) == float("inf")
    assert np.all(curve["relative"] > 0.8)
    # The old reference (the self training set) shows a decay that is not there.
    old = transience(head, (self_z, self_r), latents(r_demo, (1.0, 1.0), rng), other_test, (self_z, self_r), rng,
                     updates=4000, every=250)
    assert half_life(old["updates"], old["relative"]) < 4000


def test_the_value_head_fits_latents_whose_units_all_move_together():
    """96 units carrying one signal: the curvature of the squared error is ~96 in that direction, where a
    fixed step of 0.05 (the first version) diverged to inf/nan; the normalised step must fit it."""
    rng = np.random.default_rng(3)
    r = episodes(rng)
    z = r[..., None] * rng.uniform(0.5, 1.5, 96) + 0.01 * rng.standard_normal(r.shape + (96,))
    head = fitted(z, r, rng)
    values = head(z)
    assert np.all(np.isfinite(values))
    assert np.corrcoef(values.ravel(), r.ravel())[0, 1] > 0.99


def test_half_life_interpolates_and_says_never():
    assert half_life(np.array([0, 10, 20]), np.array([1.0, 0.8, 0.4])) == pytest.approx(10 + 10 * 0.3 / 0.4)
    assert half_life(np.array([0, 10]), np.array([1.0, 0.9])) == float("inf")
    assert np.isnan(half_life(np.array([0, 10]), np.array([-0.1, 0.0])))


def spill_row(label: str, condition: str, seed: int, relative: float, weight: str = "") -> dict:
    """A run's row as the stage writes it: its label, condition, counterparts and results (planted values)."""
    return {"run": f"runs/{label}/seed{seed}", "appearance": "identical, third_person", "label": label,
            "condition": condition, "seed": seed, "relative": relative, "r": relative / 2, "half_life": 100.0,
            "counterparts": {"untrained": "untrained", "separate": f"separate{weight}"},
            "curve_updates": [0, 1], "curve_relative": [relative, relative / 2]}


def test_a_loss_weight_map_is_never_pooled_in_groups_or_comparisons():
    from mirrorlab.analysis.spillover import compare, summarise

    planted = {("shared", "shared", ""): 0.1, ("shared@w0.25", "shared", "@w0.25"): 0.9,
               ("separate", "separate", ""): 0.3, ("separate@w0.25", "separate", "@w0.25"): 0.4,
               ("untrained", "untrained", ""): 0.0}
    rows = [spill_row(label, condition, seed, value + seed / 100, weight)
            for (label, condition, weight), value in planted.items() for seed in (0, 1)]
    groups = summarise(rows)["identical, third_person"]
    assert set(groups) == {label for label, _, _ in planted} and all(g["n_seeds"] == 2 for g in groups.values())
    assert groups["shared@w0.25"]["relative"]["mean"] == pytest.approx(0.905)  # its own two seeds only
    found = {c["comparison"]: c for c in compare(rows)}
    assert set(found) == {"shared minus untrained", "shared minus separate", "shared@w0.25 minus untrained",
                          "shared@w0.25 minus separate@w0.25"}
    assert found["shared@w0.25 minus separate@w0.25"]["relative"]["mean"] == pytest.approx(0.5)
    assert found["shared minus separate"]["relative"]["mean"] == pytest.approx(-0.2)
    assert all(c["n_seeds"] == 2 for c in found.values())
    with pytest.raises(ValueError, match="share appearance, label and seed"):
        summarise(rows + [dict(rows[0], run="runs/another")])  # two runs in one cell would be pooled


def test_a_run_is_compared_with_the_cores_trained_the_same_way(analyzed_runs):
    import dataclasses

    from mirrorlab.agents.runs import read_run
    from mirrorlab.experiments.stages.spillover import counterparts

    run = read_run(analyzed_runs[0][0])
    weighted = dataclasses.replace(run, config=dataclasses.replace(run.config, condition="shared", inverse_weight=0.25))
    assert counterparts(weighted) == {"untrained": "untrained", "separate": "separate@w0.25"}
    ungrounded = dataclasses.replace(weighted, config=dataclasses.replace(weighted.config, perform_grounding="none"))
    assert counterparts(ungrounded) == {"untrained": "untrained-ungrounded", "separate": "separate-ungrounded@w0.25"}


def test_the_spillover_command_on_analyzed_runs(analyzed_runs, tmp_path):
    import json

    from mirrorlab.errors import UserError
    from mirrorlab.experiments.cli import main as cli

    runs, analysis = analyzed_runs
    out = tmp_path / "spill"
    assert cli(["spillover", "--runs", *map(str, runs), "--analysis", str(analysis), "--out", str(out), "--config",
                _tiny_config(tmp_path)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {r["label"] for r in metrics["runs"]} == {r["condition"] for r in metrics["runs"]} == {"shared", "separate"}
    row = metrics["runs"][0]
    assert len(row["curve_relative"]) == 300 // 50 + 1 and np.isfinite(row["r"]) and 0 < row["p"] <= 1
    assert set(metrics["groups"]["identical, other_view"]) == {"shared", "separate"}
    assert (out / "figures" / "spillover_vs_feedback.png").read_bytes()[:4] == b"\x89PNG"
    assert "Spillover" in (out / "report.md").read_text()
    with pytest.raises(UserError, match="already holds results"):
        from mirrorlab.experiments.stages.spillover import SpilloverConfig, spillover

        spillover(runs, analysis, out, SpilloverConfig())


def _tiny_config(tmp_path):
    import json

    path = tmp_path / "spill.json"
    path.write_text(json.dumps({"fit_updates": 200, "feedback_updates": 300, "every": 50, "n_permutations": 50}))
    return str(path)
