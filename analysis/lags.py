"""Temporal lags between perform and observe activity, from within-sequence cross-correlation.

r(lag)[u] is the Pearson r between perform[i, t, u] and observe[i, t + lag, u], pooled over
sequences i and every t where both exist. A positive peak lag means the observe run echoes the
perform run `lag` steps later. Significance re-pairs whole sequences (perform of i with observe of
j != i, same timesteps), never single timesteps, so autocorrelation is kept in the null.

The null is vectorised: z-score once (re-pairing sequences leaves the pooled mean and std of each
column unchanged), form every sequence-by-sequence product G[u, i, j] = sum_t zP[i,t,u] zO[j,t,u]
in one batched matmul, then a re-pairing's r is just sum_i G[u, i, perm(i)] / n: one sparse
product of G with the re-pairings' [B, N * N] indicator matrix.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from mirrorlab.analysis.nulls import permutation_p_value
from mirrorlab.permutations import derangements


def zscore_pooled(x: np.ndarray) -> np.ndarray:
    """Pooled z-score over sequences and timesteps [N, T, U]; a constant column becomes 0 (so r = 0)."""
    x = x - x.mean(axis=(0, 1))
    sd = x.std(axis=(0, 1))
    return x / np.where(sd > 0, sd, np.inf)


def _lag_pair(perform: np.ndarray, observe: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """z-scored perform[:, t] and observe[:, t + lag] over the timesteps where both exist."""
    T = perform.shape[1]
    p = perform[:, max(0, -lag) : T - max(0, lag)]
    o = observe[:, max(0, lag) : T - max(0, -lag)]
    return zscore_pooled(p), zscore_pooled(o)


def _check(perform, observe, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    perform = np.asarray(perform, dtype=float)
    observe = np.asarray(observe, dtype=float)
    if perform.ndim != 3 or perform.shape != observe.shape:
        raise ValueError(f"expected two [N, T, U] arrays of one shape, got {perform.shape} and {observe.shape}")
    if not 0 <= max_lag < perform.shape[1]:
        raise ValueError(f"max_lag must be in [0, T - 1] = [0, {perform.shape[1] - 1}], got {max_lag}")
    return perform, observe


def lagged_correlation(perform, observe, max_lag: int) -> np.ndarray:
    """Per-unit r(lag) for lag in -max_lag..max_lag: [2 * max_lag + 1, U] (row k is lag k - max_lag)."""
    perform, observe = _check(perform, observe, max_lag)
    rows = []
    for lag in range(-max_lag, max_lag + 1):
        zp, zo = _lag_pair(perform, observe, lag)
        rows.append((zp * zo).mean(axis=(0, 1)))
    return np.stack(rows)


def lagged_correlation_null(perform, observe, max_lag: int, perms: np.ndarray) -> np.ndarray:
    """r(lag) with observe sequences re-paired by each row of `perms` [B, N]: [B, 2 * max_lag + 1, U].

    Row b pairs perform sequence i with observe sequence perms[b, i]; use derangements for a null.
    """
    perform, observe = _check(perform, observe, max_lag)
    perms = np.asarray(perms)
    N, _, U = perform.shape
    B = perms.shape[0]
    flat = np.arange(N) * N + perms  # [B, N] index of (i, perm(i)) in a flattened N x N block
    pairing = sparse.csr_matrix((np.ones(B * N), flat.ravel(), np.arange(0, B * N + 1, N)), shape=(B, N * N))
    out = np.empty((B, 2 * max_lag + 1, U))
    for k, lag in enumerate(range(-max_lag, max_lag + 1)):
        zp, zo = _lag_pair(perform, observe, lag)
        n = zp.shape[0] * zp.shape[1]
        G = np.matmul(zp.transpose(2, 0, 1), zo.transpose(2, 1, 0)).reshape(U, N * N)
        out[:, k] = pairing @ G.T / n
    return out


def peak_lag(lagged_r: np.ndarray, absolute: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per unit, the lag of the largest r (or |r| when `absolute`) and the r there: ([U] int, [U]).

    Signed by default because a mirror unit is one whose observe activity goes *with* its perform
    activity; `absolute` also counts anti-mirror (sign-flipped) echoes. Ties go to the earliest lag.
    """
    lagged_r = np.asarray(lagged_r)
    max_lag = (lagged_r.shape[0] - 1) // 2
    k = np.argmax(np.abs(lagged_r) if absolute else lagged_r, axis=0)
    return k - max_lag, np.take_along_axis(lagged_r, k[None], axis=0)[0]


def lag_test(
    perform, observe, max_lag: int, rng: np.random.Generator, n_permutations: int = 1000, absolute: bool = False
) -> dict[str, np.ndarray]:
    """Lagged r, its sequence-level null, and the peak lag per unit with a p-value for the peak.

    Returns {"lags" [2L+1], "r" [2L+1, U], "p" [2L+1, U] (each lag alone), "peak_lag" [U],
    "peak_r" [U], "peak_p" [U]}. peak_p compares the peak with the null's peak over all lags, so it
    already pays for having looked at 2L+1 lags. One-sided ('greater') unless `absolute`.
    """
    r = lagged_correlation(perform, observe, max_lag)
    perms = derangements(np.asarray(perform).shape[0], n_permutations, rng)
    null = lagged_correlation_null(perform, observe, max_lag, perms)
    lag, r_peak = peak_lag(r, absolute)
    if absolute:
        p = permutation_p_value(r, null, "two-sided")
        peak_p = permutation_p_value(np.abs(r_peak), np.abs(null).max(axis=1), "greater")
    else:
        p = permutation_p_value(r, null, "greater")
        peak_p = permutation_p_value(r_peak, null.max(axis=1), "greater")
    return {
        "lags": np.arange(-max_lag, max_lag + 1),
        "r": r,
        "p": p,
        "peak_lag": lag,
        "peak_r": r_peak,
        "peak_p": peak_p,
    }
