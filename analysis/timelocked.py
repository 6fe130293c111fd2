"""Remove time-locked activity: what every sequence does at timestep t regardless of its content.

Both perform and observe runs share a time course (start-up transients, the trial clock), which
correlates them without any mirroring; subtracting each timestep's mean across sequences leaves
only the sequence-specific part that the pairing can explain.
"""

from __future__ import annotations

import numpy as np


def remove_time_locked(acts: np.ndarray) -> np.ndarray:
    """acts [N, T, ...] minus its mean over sequences at each timestep (per unit); same shape."""
    acts = np.asarray(acts, dtype=float)
    if acts.ndim < 2:
        raise ValueError(f"expected [N, T, ...] activations, got shape {acts.shape}")
    return acts - acts.mean(axis=0, keepdims=True)
