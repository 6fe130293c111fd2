"""Every mirror measure of the study on one pair of paired activation arrays, toy or embodied alike.

perform, observe: [N, T, U] activations aligned by (sequence, timestep); actions: [N, T] int
(discrete) or [N, T, A] float (continuous). Returns the scalars of one metrics row and the per-unit
arrays. Random streams depend only on the seed, so every condition of one seed sees the same null
draws and the same sequence splits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mirrorlab.analysis.alignment import aligned_similarity, hungarian_match
from mirrorlab.analysis.congruence import tuning_congruence
from mirrorlab.analysis.decoding import cross_condition_decoding
from mirrorlab.analysis.lags import lag_test
from mirrorlab.analysis.mirror_stats import min_permutations_for_bonferroni, mirror_unit_test, threshold_fractions
from mirrorlab.analysis.timelocked import remove_time_locked
from mirrorlab.errors import UserError


@dataclass(frozen=True)
class MeasureSettings:
    """The analysis knobs and their defaults, the one place they are set. `mirrorlab analyze` uses
    this as its config; the replication's flat config takes its defaults from here."""

    # B >= 2 n_units / alpha so that Bonferroni over all units (both tails) can reject (3,840 for 96 units).
    n_permutations: int = 4000
    alpha: float = 0.05
    mirror_min_abs_r: float = 0.4   # "strong": the paper calls |r| > 0.4-0.5 strong candidates
    decode_folds: int = 5
    decode_shuffles: int = 10
    max_lag: int = 3
    lag_permutations: int = 1000
    align_permutations: int = 500   # alignment-invariant measures (Hungarian, Procrustes, CCA, CKA)
    cca_components: int = 10
    congruence_permutations: int = 1000
    n_actions: int | None = None    # discrete actions: the number of tokens; continuous: None

    def validate(self, n_units: int | None = None, n_sequences: int | None = None, seq_len: int | None = None,
                 where: str = "config") -> None:
        """Every knob in range; with the data's sizes, also that the measures can run on them (a
        Bonferroni that can reject, enough sequences for the folds and the split-half fits)."""
        for name in ("n_permutations", "decode_shuffles", "lag_permutations", "align_permutations",
                     "cca_components", "congruence_permutations"):
            if getattr(self, name) < 1:
                raise UserError(f"{where}: {name} must be >= 1, got {getattr(self, name)}")
        if self.decode_folds < 2:
            raise UserError(f"{where}: decode_folds must be >= 2, got {self.decode_folds}")
        if not 0 < self.alpha < 1:
            raise UserError(f"{where}: alpha must be in (0, 1), got {self.alpha}")
        if not 0 <= self.mirror_min_abs_r <= 1:
            raise UserError(f"{where}: mirror_min_abs_r must be in [0, 1], got {self.mirror_min_abs_r}")
        if self.max_lag < 0:
            raise UserError(f"{where}: max_lag must be >= 0, got {self.max_lag}")
        if n_units is not None:
            need = min_permutations_for_bonferroni(n_units, self.alpha)
            if self.n_permutations < need:
                raise UserError(f"{where}: n_permutations must be >= {need} so that Bonferroni over {n_units} "
                                f"units at alpha={self.alpha} can reject; got {self.n_permutations}")
        if n_sequences is not None and n_sequences < min_sequences(self):
            raise UserError(f"{where}: the measures need at least {min_sequences(self)} held-out sequences "
                            f"({self.decode_folds} decoding folds, split-half fits), got {n_sequences}")
        if seq_len is not None and self.max_lag >= seq_len:
            raise UserError(f"{where}: max_lag must be < the sequence length ({seq_len}), got {self.max_lag}")


def min_sequences(s: MeasureSettings) -> int:
    """Split-half alignment needs 2 + 3 sequences, grouped decoding one sequence per fold."""
    return max(5, s.decode_folds)


def measure_mirroring(perform: np.ndarray, observe: np.ndarray, actions: np.ndarray, seed: int,
                      s: MeasureSettings) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    def rng(stream: int) -> np.random.Generator:
        return np.random.default_rng([seed, stream])

    row: dict[str, Any] = {}
    test = mirror_unit_test(perform, observe, s.n_permutations, rng(2))
    row.update(threshold_fractions(test.r))
    row.update(test.counts(s.alpha, s.mirror_min_abs_r))
    row.update(n_units=int(test.r.size), n_permutations=s.n_permutations)

    # The same test after removing what every sequence does at a given timestep.
    locked = mirror_unit_test(remove_time_locked(perform), remove_time_locked(observe), s.n_permutations, rng(2))
    row.update({f"{k}_time_locked_removed": v for k, v in threshold_fractions(locked.r).items()})
    row.update({f"{k}_time_locked_removed": v for k, v in locked.counts(s.alpha, s.mirror_min_abs_r).items()})

    for zscored in (False, True):
        dec = cross_condition_decoding(perform, observe, actions, rng(3), n_folds=s.decode_folds,
                                       n_shuffles=s.decode_shuffles, zscore_each=zscored)
        suffix = "_zscored" if zscored else ""
        row.update({f"decode_{k}{suffix}": v for k, v in dec.items()})

    for name, res in aligned_similarity(perform, observe, rng(4), n_permutations=s.align_permutations,
                                        n_components=s.cca_components).items():
        # The excess over the null's mean compares conditions whose nulls differ (an untrained
        # observe path can share much structure with the perform path by chance alone).
        row.update({f"aligned_{name}": res["value"], f"aligned_{name}_null_mean": res["null_mean"],
                    f"aligned_{name}_excess": res["value"] - res["null_mean"], f"aligned_{name}_p": res["p"]})

    # Congruence with units paired by identity, and (fair to separate cores) paired by a Hungarian
    # match fitted on the first half of the sequences and scored on the second.
    cong = tuning_congruence(perform, observe, actions, rng(5), s.congruence_permutations, n_actions=s.n_actions)
    row.update(congruence=cong["fraction"], congruence_null_mean=cong["null_mean"], congruence_p=cong["p"])
    half = perform.shape[0] // 2
    match = hungarian_match(perform[:half], observe[:half])
    matched = tuning_congruence(perform[half:], observe[half:][..., match], actions[half:], rng(5),
                                s.congruence_permutations, n_actions=s.n_actions)
    row.update(congruence_matched=matched["fraction"], congruence_matched_null_mean=matched["null_mean"],
               congruence_matched_p=matched["p"])

    lags = lag_test(perform, observe, s.max_lag, rng(6), s.lag_permutations)
    row["frac_peak_lag_zero"] = float(np.mean(lags["peak_lag"] == 0))
    arrays = {"r": test.r, "p": test.p, "p_greater": test.p_greater, "p_less": test.p_less, "q_fdr": test.q_fdr, "p_bonferroni": test.p_bonferroni,
              "null_example": test.null_example, "r_time_locked_removed": locked.r,
              "peak_lag": lags["peak_lag"], "peak_lag_r": lags["peak_r"], "peak_lag_p": lags["peak_p"]}
    return row, arrays
