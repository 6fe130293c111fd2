"""The selectivity dose-response's statistics on planted rows whose answer is known (analysis.dose)."""

import pytest

from mirrorlab.analysis.dose import ARM_MEASURES, dose_report, dose_response, dose_verdicts

SEEDS = (0, 1, 2, 3, 4)
OUTCOMES = [("imitation", "imitation success", True), ("error", "final distance", False),
            ("flat", "a score mirror units do not touch", True)]


def rows(mirror_step: float, imitation_step: float) -> list[dict]:
    """Weights -1, 0, 1 x 5 seeds: mirror units and imitation move by `step` x weight (+ seed noise); the error
    moves against imitation; `flat` never moves beyond noise."""
    out = []
    for w in (-1.0, 0.0, 1.0):
        for s in SEEDS:
            noise = 0.1 * (s - 2)
            out.append({"selectivity_weight": w, "seed": s, "n_mirror_fdr": 20 + mirror_step * w + noise,
                        "imitation": 0.5 + imitation_step * w + noise / 10, "error": 0.05 - imitation_step * w / 10,
                        "flat": 0.3 + (0.01 if s % 2 else -0.01)})
    return out


def verdicts_of(table) -> dict:
    return {(v["side"], v["outcome"]): v["verdict"] for v in table}


def test_mirror_units_that_carry_imitation_give_supported_on_both_sides():
    verdicts = verdicts_of(dose_verdicts(rows(mirror_step=10, imitation_step=0.2), OUTCOMES))
    assert verdicts[("fewer", "imitation")] == verdicts[("more", "imitation")] == "supported"
    assert verdicts[("fewer", "error")] == verdicts[("more", "error")] == "supported"  # lower is better: it rises
    assert verdicts[("fewer", "flat")] == verdicts[("more", "flat")] == "not supported"


def test_an_outcome_that_improves_with_fewer_mirror_units_is_contradicted():
    verdicts = verdicts_of(dose_verdicts(rows(mirror_step=10, imitation_step=-0.2), OUTCOMES))
    assert verdicts[("fewer", "imitation")] == verdicts[("more", "imitation")] == "contradicted"


def test_a_term_that_does_not_move_mirror_units_tests_nothing():
    verdicts = verdicts_of(dose_verdicts(rows(mirror_step=0, imitation_step=0.2), OUTCOMES))
    assert set(verdicts.values()) == {"not testable"}


def test_the_comparison_is_paired_by_seed_and_computed_by_hand():
    planted = rows(mirror_step=10, imitation_step=0.2)
    fewer = next(v for v in dose_verdicts(planted, OUTCOMES) if v["side"] == "fewer" and v["outcome"] == "imitation")
    (at,) = fewer["by_weight"]
    # paired by seed the seed noise cancels: every difference is exactly -0.2, so the interval is [-0.2, -0.2]
    assert at["difference"]["mean"] == pytest.approx(-0.2) and at["difference"]["n"] == 5
    assert at["difference"]["ci95"] == pytest.approx([-0.2, -0.2])
    assert at["mirror"]["mean"] == pytest.approx(-10.0) and at["weight"] == -1.0


def test_an_outcome_that_falls_whichever_way_the_term_pushes_is_the_terms_cost_not_mirrorings():
    planted = rows(mirror_step=10, imitation_step=0.2)
    for r in planted:  # a cost of the term's strength: imitation falls by 0.2 at both -1 and +1
        r["imitation"] = 0.5 - 0.2 * abs(r["selectivity_weight"])
    verdicts = {v["side"]: v for v in dose_verdicts(planted, OUTCOMES[:1])}
    assert verdicts["fewer"]["verdict"] == "not supported" and "own cost" in verdicts["fewer"]["why"]
    assert verdicts["more"]["verdict"] == "contradicted"


def test_a_side_is_supported_only_when_every_weight_that_moved_mirror_units_moved_the_outcome():
    planted = rows(mirror_step=10, imitation_step=0.2)
    half = [{**r, "selectivity_weight": -0.5, "imitation": 0.5 + 0.1 * (r["seed"] % 2 - 0.5)}  # units move, no change
            for r in planted if r["selectivity_weight"] == -1.0]
    for r in half:
        r["n_mirror_fdr"] -= 5
    fewer = next(v for v in dose_verdicts(planted + half, OUTCOMES[:1]) if v["side"] == "fewer")
    assert [b["weight"] for b in fewer["by_weight"]] == [-1.0, -0.5]
    assert fewer["verdict"] == "not supported" and "1 of 2" in fewer["why"]


def test_without_weight_zero_or_an_extreme_there_is_no_verdict():
    planted = rows(mirror_step=10, imitation_step=0.2)
    assert dose_verdicts([r for r in planted if r["selectivity_weight"] != 0], OUTCOMES) == []
    only_positive = [r for r in planted if r["selectivity_weight"] >= 0]
    assert {v["side"] for v in dose_verdicts(only_positive, OUTCOMES)} == {"more"}


def test_the_arm_report_shows_every_weight_and_each_verdict():
    planted = [{**r, **{m: 0.5 for m, _ in ARM_MEASURES if m not in r}} for r in rows(10, 0.2)]
    measures = [*ARM_MEASURES, ("imitation", "imitation success")]
    table = dose_response(planted, measures)
    text = dose_report(table, measures, "the arm", dose_verdicts(planted, OUTCOMES[:1]))
    assert "## Selectivity dose-response (the arm)" in text
    assert "| -1 | 5 | 10 [" in text and "| 1 | 5 | 30 [" in text
    assert "| do fewer mirror units make it worse? | imitation success | -1: -10 [-10, -10] -> -0.2 [-0.2, -0.2] | 5 | " \
           "**supported** (at every such weight) |" in text
