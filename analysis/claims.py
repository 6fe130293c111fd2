"""Which of the paper's causal claims survive: paired, per-seed differences between conditions.

Each claim compares two conditions trained on the same data from the same initialisation, so the
difference is taken seed by seed and summarised by its mean and 95% interval. A claim is
*supported* when every one of its metrics is higher in the first condition with an interval that
excludes zero, *contradicted* when any metric's interval lies wholly below zero, and otherwise
*not supported* (the data cannot tell the conditions apart on some metric).
"""

from __future__ import annotations

from typing import Any

from mirrorlab.analysis.intervals import mean_ci95

# (claim, condition that should be higher, the condition it is compared with, metrics)
CLAIMS = [
    ("mirror units emerge through training (not present in the untrained core)", "shared", "untrained",
     ("n_mirror_fdr", "aligned_cka_debiased_excess", "decode_perform_to_observe_zscored")),
    ("sharing one core is necessary (separate cores, compared by alignment-invariant measures)", "shared",
     "separate", ("aligned_cka_debiased_excess", "aligned_procrustes_excess", "decode_perform_to_observe_zscored")),
    ("the inverse objective is necessary (forward-only training)", "shared", "forward_only",
     ("n_mirror_fdr", "aligned_cka_debiased_excess", "decode_perform_to_observe_zscored")),
    ("correct observe labels are necessary (shuffled labels)", "shared", "shuffled_labels",
     ("n_mirror_fdr", "aligned_cka_debiased_excess", "decode_perform_to_observe_zscored")),
]


def paired_difference(rows_a: list[dict[str, Any]], rows_b: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    """mean_ci95 of a[metric] - b[metric] over the seeds both conditions have."""
    b_by_seed = {r["seed"]: r for r in rows_b}
    return mean_ci95([r[metric] - b_by_seed[r["seed"]][metric] for r in rows_a if r["seed"] in b_by_seed])


def verdict(differences: list[dict[str, Any]]) -> str:
    lows = [d["ci95"][0] for d in differences]
    highs = [d["ci95"][1] for d in differences]
    if any(h < 0 for h in highs):
        return "contradicted"
    if all(lo > 0 for lo in lows):
        return "supported"
    return "not supported"


def assess_claims(per_seed: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One entry per claim whose two conditions were run: metric differences and the verdict."""
    out = []
    for claim, higher, lower, metrics in CLAIMS:
        if higher not in per_seed or lower not in per_seed:
            continue
        diffs = {m: paired_difference(per_seed[higher], per_seed[lower], m) for m in metrics}
        out.append({"claim": claim, "condition": higher, "compared_with": lower, "differences": diffs,
                    "verdict": verdict(list(diffs.values()))})
    return out
