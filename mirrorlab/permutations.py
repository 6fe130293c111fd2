"""Derangements: permutations that move every item. One implementation for two uses that must agree.

The sequence-level nulls of `mirrorlab.analysis` re-pair sequence i with some j != i, and the
`shuffled_labels` control of `mirrorlab.agents.conditions` trains each sequence on another
sequence's labels. A plain permutation leaves ~1 item in place (1/e chance of none), which leaks the
true pairing into both: a null that is partly the observed statistic, a control that still learns.
"""

from __future__ import annotations

import numpy as np


def derangements(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` random permutations of range(n) with no fixed point, shape [count, n].

    Rejection sampling row by row (a uniform permutation is a derangement with probability ~1/e),
    so every derangement is equally likely.
    """
    if n < 2:
        raise ValueError(f"a derangement needs at least 2 items, got {n}")
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    perms = np.argsort(rng.random((count, n)), axis=1)
    identity = np.arange(n)
    bad = np.flatnonzero((perms == identity).any(axis=1))
    while bad.size:
        perms[bad] = np.argsort(rng.random((bad.size, n)), axis=1)
        bad = bad[(perms[bad] == identity).any(axis=1)]
    return perms


def derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """One random derangement of range(n), shape [n]."""
    return derangements(n, 1, rng)[0]
