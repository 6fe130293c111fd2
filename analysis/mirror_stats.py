"""Per-unit perform-vs-observe correlation and its sequence-level significance.

Activations are [N, T, U] arrays aligned by (sequence, timestep). The paper's metric is the
per-unit Pearson r over all N*T pairs. Significance re-pairs sequence i's perform run with
sequence j != i's observe run (same timesteps); the lag-0 case of `analysis.lags`, which z-scores
once and turns each permutation into a sum of precomputed per-sequence-pair dot products.

Each tail is tested against the null's own tail: p_greater counts re-pairings with r >= the observed
r, p_less those with r <= it. A unit's null is often far from zero (time-locked activity shared by both
runs: per-unit null means from -0.85 to +0.52 in the toy study), and comparing |r| with |null| then
misses a unit that lies beyond the null on the side of zero. The unit's p is the two one-sided tests
combined by doubling the smaller (p = min(1, 2 min(p_greater, p_less))): a Bonferroni correction over
the two tails, so a mirror unit (significant upper tail, r >= min_abs_r) and an anti-mirror unit
(significant lower tail, r <= -min_abs_r) come from one family of U tests, corrected by BH-FDR or
Bonferroni over the units. The smallest p is 2 / (B + 1), so Bonferroni can reject only with
B >= 2 U / alpha (3,840 for 96 units at 0.05).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from statsmodels.stats.multitest import multipletests

from mirrorlab.analysis.lags import lagged_correlation, lagged_correlation_null
from mirrorlab.analysis.nulls import permutation_p_value
from mirrorlab.permutations import derangements


def _check_paired(perform: np.ndarray, observe: np.ndarray) -> None:
    if perform.ndim != 3 or perform.shape != observe.shape:
        raise ValueError(f"perform and observe activations must both be [N, T, U] and equal in shape; got "
                         f"{perform.shape} and {observe.shape}")


def _varies(acts: np.ndarray) -> np.ndarray:
    flat = acts.reshape(-1, acts.shape[-1])
    return flat.std(axis=0) > 1e-12 * np.maximum(1.0, np.abs(flat).max(axis=0))


def pearson_per_unit(perform: np.ndarray, observe: np.ndarray) -> np.ndarray:
    """Pearson r of each unit over all (sequence, timestep) pairs, [U]; nan for a constant unit."""
    _check_paired(perform, observe)
    r = lagged_correlation(perform, observe, 0)[0]
    return np.where(_varies(perform) & _varies(observe), r, np.nan)


def sequence_null(perform: np.ndarray, observe: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """r of every unit when perform run i is paired with observe run perms[b, i]: [B, U].

    Exact Pearson r: re-pairing whole sequences leaves each side's mean and variance unchanged.
    """
    _check_paired(perform, observe)
    return lagged_correlation_null(perform, observe, 0, perms)[:, 0]


@dataclass
class MirrorTest:
    """Per-unit results of the mirror-unit test, each [U]."""

    r: np.ndarray
    p: np.ndarray            # min(1, 2 min(p_greater, p_less)): both tails, each against the null's own tail
    p_greater: np.ndarray    # (b + 1) / (B + 1), b = re-pairings with r >= observed
    p_less: np.ndarray       # (b + 1) / (B + 1), b = re-pairings with r <= observed
    q_fdr: np.ndarray        # Benjamini-Hochberg adjusted p
    p_bonferroni: np.ndarray
    null_example: np.ndarray  # [B] null draws of the unit with the largest |r|, for figures
    n_permutations: int

    def counts(self, alpha: float, min_abs_r: float) -> dict[str, int]:
        """Mirror units: significant in the upper tail with r >= min_abs_r; anti-mirror: significant in
        the lower tail with r <= -min_abs_r."""
        r = np.nan_to_num(self.r, nan=0.0)
        upper = self.p_greater <= self.p_less
        pos, neg = (r >= min_abs_r) & upper, (r <= -min_abs_r) & ~upper
        fdr, bonf = self.q_fdr < alpha, self.p_bonferroni < alpha
        return {
            "n_mirror_fdr": int((fdr & pos).sum()),
            "n_mirror_bonferroni": int((bonf & pos).sum()),
            "n_anti_mirror_fdr": int((fdr & neg).sum()),
            "n_anti_mirror_bonferroni": int((bonf & neg).sum()),
        }


def mirror_unit_test(perform: np.ndarray, observe: np.ndarray, n_permutations: int,
                     rng: np.random.Generator) -> MirrorTest:
    """Per-unit r with sequence-level permutation p-values (each tail against the null's own tail),
    BH-FDR and Bonferroni adjustment over the units."""
    r = pearson_per_unit(perform, observe)
    perms = derangements(perform.shape[0], n_permutations, rng)
    null = sequence_null(perform, observe, perms)
    observed = np.nan_to_num(r, nan=0.0)
    p_greater = permutation_p_value(observed, null, "greater")
    p_less = permutation_p_value(observed, null, "less")
    p = np.where(np.isnan(r), 1.0, np.minimum(1.0, 2.0 * np.minimum(p_greater, p_less)))
    q = multipletests(p, method="fdr_bh")[1]
    p_bonf = multipletests(p, method="bonferroni")[1]
    top = int(np.nanargmax(np.abs(np.nan_to_num(r, nan=0.0))))
    return MirrorTest(r=r, p=p, p_greater=p_greater, p_less=p_less, q_fdr=q, p_bonferroni=p_bonf,
                      null_example=null[:, top], n_permutations=n_permutations)


def threshold_fractions(r: np.ndarray) -> dict[str, float]:
    """The paper's headline fractions, over all units (a constant unit counts as not passing)."""
    r = np.nan_to_num(np.asarray(r, dtype=float), nan=0.0)
    return {
        "frac_r_gt_0.75": float((r > 0.75).mean()),
        "frac_abs_r_gt_0.6": float((np.abs(r) > 0.6).mean()),
        "max_r": float(r.max()),
        "min_r": float(r.min()),
        "mean_r": float(r.mean()),
        "median_abs_r": float(np.median(np.abs(r))),
    }


def min_permutations_for_bonferroni(n_units: int, alpha: float) -> int:
    """Smallest B whose best possible p, 2/(B+1) (two tails), survives Bonferroni (p * n_units < alpha):
    3,840 for 96 units at 0.05."""
    return int(np.floor(2 * n_units / alpha + 1e-9))
