"""What a reader calls each measure: one name per metrics.json field, used by the library's verdict
table and the study page (field names stay in a tooltip and the page's glossary)."""

from __future__ import annotations

# field name -> (what a reader calls it, what it measures). The page's tooltips use the same words.
GLOSSARY: dict[str, tuple[str, str]] = {
    "n_mirror_fdr": ("mirror units", "units whose perform and observe activity rise together beyond the sequence-"
                     "level null (BH-FDR 5% over units) with r >= the strength threshold"),
    "n_mirror_bonferroni": ("mirror units (Bonferroni)", "as mirror units, Bonferroni-corrected over units"),
    "n_anti_mirror_fdr": ("anti-mirror units", "units whose perform and observe activity go strongly opposite ways "
                          "beyond the null (BH-FDR 5%)"),
    "n_mirror_fdr_time_locked_removed": ("mirror units, trial clock removed", "mirror units after subtracting each "
                                         "timestep's mean over sequences (activity every trial shares)"),
    "frac_r_gt_0.75": ("units with r > 0.75", "the paper's headline fraction, no null"),
    "frac_abs_r_gt_0.6": ("units with |r| > 0.6", "the paper's second fraction, no null"),
    "mean_r": ("mean unit r", "mean perform-vs-observe Pearson r over units"),
    "aligned_cka_debiased": ("shared population geometry", "debiased linear CKA of perform and observe states: "
                             "needs no unit matching"),
    "aligned_cka_debiased_excess": ("shared population geometry beyond chance", "debiased CKA minus its "
                                    "sequence-re-pairing null's mean"),
    "aligned_procrustes_excess": ("rotation-matched r beyond chance", "held-out r after the best rotation of perform "
                                  "states onto observe states, minus its null's mean"),
    "aligned_hungarian_excess": ("unit-matched r beyond chance", "held-out r of units matched one-to-one on other "
                                 "sequences, minus its null's mean"),
    "decode_perform_to_observe_zscored": ("action read-out transfers (perform to observe)", "a linear read-out of "
                                          "the action fitted on perform states, scored on observe states, each mode "
                                          "z-scored; accuracy (discrete) or R^2 (continuous)"),
    "decode_observe_to_perform_zscored": ("action read-out transfers (observe to perform)", "the same, the other way"),
    "congruence": ("same preferred action in both modes", "fraction of units whose preferred action (direction) "
                   "is the same when performing and observing"),
    "congruence_matched": ("same preferred action, units matched", "congruence after a one-to-one unit match "
                           "fitted on half the sequences (fair to separate cores)"),
    "frac_peak_lag_zero": ("units in step", "fraction of units whose perform-observe cross-correlation peaks at lag 0"),
}


def readable(name: str) -> str:
    """A measure's reader-facing name (the field name itself when it has none)."""
    return GLOSSARY.get(name, (name, ""))[0]
