"""`mirrorlab.analysis.measure_mirroring` on anyone's arrays: planted mirror units are found and only they,
controls are measured on the same footing, bad input is one clear error, and the README's example runs
and prints the table the README shows."""

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pytest

from mirrorlab.analysis import MeasureSettings, MirroringResult, measure_mirroring
from mirrorlab.analysis.measures import measure_mirroring as study_measures
from mirrorlab.errors import UserError

FAST = MeasureSettings(n_permutations=400, lag_permutations=100, align_permutations=100,
                       congruence_permutations=100, decode_shuffles=5)
N, T, U = 40, 8, 10
PLANTED = [0, 3, 7]


def planted(seed: int = 0, mirror: bool = True):
    """Units 0, 3, 7 carry one latent in both modes (mirror units) when `mirror`; the rest are independent.

    The latent is an action-driven signal, so the actions (labels) are decodable in both modes."""
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, 3, size=(N, T))
    latent = np.array([-1.0, 0.0, 1.0])[actions][..., None] + 0.3 * rng.normal(size=(N, T, 1))
    perform = rng.normal(size=(N, T, U))
    observe = rng.normal(size=(N, T, U))
    perform[..., PLANTED] += 2 * latent
    if mirror:
        observe[..., PLANTED] += 2 * latent
    return perform, observe, actions


def test_planted_mirror_units_are_found_and_only_they():
    perform, observe, actions = planted()
    result = measure_mirroring(perform, observe, labels=actions, settings=FAST)
    assert isinstance(result, MirroringResult)
    assert np.flatnonzero(result.units["mirror"]).tolist() == PLANTED
    assert not result.units["anti_mirror"].any()
    assert result.row["n_mirror_fdr"] == 3
    table = result.unit_table()
    assert len(table) == U and table[3]["unit"] == 3 and table[3]["mirror"] is True
    answers = {v.measure: v.answer for v in result.verdicts()}
    assert answers["n_mirror_fdr"] == "yes" and answers["decode_perform_to_observe_zscored"] == "yes"


def test_a_control_that_mirrors_as_much_turns_the_answer_to_no():
    perform, observe, actions = planted()
    control = planted(seed=1)[:2]  # an "untrained" core that mirrors just as strongly
    result = measure_mirroring(perform, observe, labels=actions, untrained=control, settings=FAST)
    assert result.controls["untrained"]["n_mirror_fdr"] == 3
    verdict = next(v for v in result.verdicts() if v.measure == "n_mirror_fdr")
    assert verdict.controls == {"untrained": 3.0} and verdict.answer == "no: not above the untrained core"
    no_mirror = planted(seed=2, mirror=False)[:2]
    verdict = next(v for v in measure_mirroring(perform, observe, actions, untrained=no_mirror, settings=FAST)
                   .verdicts() if v.measure == "n_mirror_fdr")
    assert verdict.controls == {"untrained": 0.0} and verdict.answer == "yes"


def test_separate_cores_are_compared_only_on_alignment_invariant_measures():
    perform, observe, actions = planted()
    result = measure_mirroring(perform, observe, actions, separate=planted(seed=3, mirror=False)[:2], settings=FAST)
    by_measure = {v.measure: v.controls["separate"] for v in result.verdicts()}
    assert by_measure["n_mirror_fdr"] is None and by_measure["congruence"] is None
    assert by_measure["aligned_cka_debiased"] is not None
    assert "n/a" in result.verdict_table()


def test_the_numbers_are_the_studys_and_labels_only_add_measures():
    perform, observe, actions = planted()
    labelled = measure_mirroring(perform, observe, actions, seed=5, settings=FAST)
    study_row, _ = study_measures(perform, observe, actions, 5, FAST.__class__(**{**FAST.__dict__, "n_actions": 3}))
    assert labelled.row == study_row
    bare = measure_mirroring(perform, observe, seed=5, settings=FAST)
    assert "decode_perform_to_observe" not in bare.row and "congruence" not in bare.row
    for key, value in bare.row.items():
        assert labelled.row[key] == value, key
    assert [v.measure for v in bare.verdicts()] == ["n_mirror_fdr", "n_mirror_fdr_time_locked_removed",
                                                     "aligned_cka_debiased"]


def test_default_settings_let_bonferroni_reject_for_many_units():
    rng = np.random.default_rng(0)
    acts = rng.normal(size=(6, 4, 150))
    result = measure_mirroring(acts, acts + 0.1 * rng.normal(size=acts.shape))
    assert result.settings.n_permutations >= 2 * 150 / 0.05
    assert result.row["n_mirror_bonferroni"] == 150


@pytest.mark.parametrize("call, names", [
    (lambda p, o, a: measure_mirroring(p, o[:, :, :5], settings=FAST), "perform/observe"),
    (lambda p, o, a: measure_mirroring(p[0], o[0], settings=FAST), "perform/observe"),
    (lambda p, o, a: measure_mirroring(p, np.where(o > 2, np.nan, o), settings=FAST), "perform/observe: the "),
    (lambda p, o, a: measure_mirroring(p, o, a[:, :3], settings=FAST), "labels"),
    (lambda p, o, a: measure_mirroring(p, o, a - 1, settings=FAST), "labels"),
    (lambda p, o, a: measure_mirroring(p, o, untrained=(p[:20], o[:20]), settings=FAST), "untrained"),
    (lambda p, o, a: measure_mirroring(p, o, separate=(p,), settings=FAST), "separate"),
    (lambda p, o, a: measure_mirroring(p[:3], o[:3], settings=FAST), "settings"),
    (lambda p, o, a: measure_mirroring(p, o, settings=MeasureSettings(n_permutations=10)), "settings"),
])
def test_bad_input_is_one_error_naming_the_argument(call, names):
    perform, observe, actions = planted()
    with pytest.raises(UserError, match=f"^{re.escape(names)}"):
        call(perform, observe, actions)


def test_the_figure_draws_units_and_the_null():
    perform, observe, actions = planted()
    fig = measure_mirroring(perform, observe, untrained=planted(1, False)[:2], settings=FAST).figure()
    hist, null = fig.axes
    assert len(hist.patches) == 2 * 40 and len(null.patches) == 40  # network + untrained histograms, the null's bins
    assert re.match(r"unit (0|3|7): r=0\.\d\d$", null.get_legend().get_texts()[1].get_text())  # a planted unit


def _readme_blocks() -> tuple[str, str]:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Measure your own network", 1)[1].split("\n## ", 1)[0]
    code, printed = re.findall(r"```(?:python)?\n(.*?)```", section, flags=re.S)[:2]
    return code, printed


def test_the_readme_example_runs_and_prints_the_table_it_shows():
    code, printed = _readme_blocks()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md: Measure your own network", "exec"), {"__name__": "readme_example"})
    assert out.getvalue() == printed
    assert "Do the two modes share a population geometry?" in printed and "untrained" in printed.splitlines()[0]
