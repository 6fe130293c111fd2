"""Sequence-level nulls: re-pair whole sequences (i with j != i), never single timesteps.

Shuffling timesteps or circular shifts keep far too little of the autocorrelation of recurrent
activity, so their nulls are too narrow. Re-pairing sequence i's perform run with sequence j's
observe run (same timestep) keeps every within-sequence structure and breaks only the pairing.
The re-pairings are derangements (`mirrorlab.permutations`): no sequence is ever paired with itself.
"""

from __future__ import annotations

import numpy as np


def permutation_p_value(observed: np.ndarray, null: np.ndarray, alternative: str = "two-sided") -> np.ndarray:
    """p = (b + 1) / (B + 1), b = null draws at least as extreme as observed.

    observed: [...]; null: [B, ...]. 'two-sided' compares absolute values, 'greater'/'less' one tail.
    """
    observed = np.asarray(observed)
    null = np.asarray(null)
    if alternative == "two-sided":
        b = (np.abs(null) >= np.abs(observed)).sum(axis=0)
    elif alternative == "greater":
        b = (null >= observed).sum(axis=0)
    elif alternative == "less":
        b = (null <= observed).sum(axis=0)
    else:
        raise ValueError(f"alternative must be 'two-sided', 'greater' or 'less', got {alternative!r}")
    return (b + 1.0) / (null.shape[0] + 1.0)
