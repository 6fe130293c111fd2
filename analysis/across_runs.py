"""A run's outcome against its mirror measures, across runs (pure): the one helper imitation, spillover and
lesions use to ask whether an outcome tracks mirroring."""

from __future__ import annotations

from typing import Any

import numpy as np

# The mirror measures an outcome is related to: significant mirror units (BH-FDR), the population view
# (debiased CKA over its null) and cross-mode decoding; one value each per run, from the analysis.
MIRROR_MEASURES = ("n_mirror_fdr", "aligned_cka_debiased_excess", "decode_perform_to_observe_zscored")
MIN_RUNS = 4  # fewer runs give no interval worth reporting


def correlate_across_runs(per_run: dict[str, float], measures: dict[str, dict[str, float]], measure: str
                          ) -> dict[str, Any]:
    """Pearson r (95% CI by Fisher z) across runs between a per-run score and a per-run measure, over the runs
    that have both, finite; with fewer than MIN_RUNS of them or no spread in either, only the count."""
    from scipy import stats

    runs = sorted(r for r in per_run if r in measures)
    x = np.array([measures[r].get(measure, np.nan) for r in runs], np.float64)
    y = np.array([per_run[r] for r in runs], np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    entry: dict[str, Any] = {"mirror_measure": measure, "n_runs": int(ok.sum())}
    if ok.sum() >= MIN_RUNS and np.std(x[ok]) > 0 and np.std(y[ok]) > 0:
        res = stats.pearsonr(x[ok], y[ok])
        ci = res.confidence_interval(0.95)
        entry.update(r=float(res.statistic), ci95=[float(ci.low), float(ci.high)], p=float(res.pvalue))
    return entry
