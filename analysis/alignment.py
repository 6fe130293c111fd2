"""Alignment-invariant similarity of perform and observe activity, for shared and separate cores.

With two separately trained cores, unit i of one has no relation to unit i of the other, so
identity-paired r is meaningless. These measures find the best correspondence instead: Hungarian
unit matching, orthogonal Procrustes, CCA (all fitted) and linear CKA (plain and debiased, nothing
to fit). They are reported for every condition, so shared and separate cores meet on one footing.

Honesty rules, as for every statistic here: fitted maps are fitted on half the sequences and scored
on the other half (a fit scored on its own data finds structure in pure noise), and significance
comes from re-pairing whole sequences of the score half (perform of i with observe of j != i, same
timesteps), with the fit left on the correctly paired fit half.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.linalg import orthogonal_procrustes
from scipy.optimize import linear_sum_assignment

from mirrorlab.analysis.lags import lagged_correlation, lagged_correlation_null
from mirrorlab.analysis.nulls import permutation_p_value
from mirrorlab.permutations import derangements

MEASURES = ("hungarian", "procrustes", "cca", "cka", "cka_debiased")


def _flat(x) -> np.ndarray:
    """[..., U] -> [samples, U]."""
    x = np.asarray(x, dtype=float)
    return x.reshape(-1, x.shape[-1])


# ---------------------------------------------------------------- CKA


def _cka_scorer(X, Y) -> Callable[[np.ndarray | None], tuple[float, float]]:
    """Linear CKA of X [n, p] and Y [n, q] with Y's rows reordered: order -> (plain, debiased).

    Works in feature space, so the n x n Gram matrices are never formed: with K = X X^T, L = Y Y^T
    and ~ meaning a zeroed diagonal, Song et al. (2012)'s unbiased HSIC
        [tr(K~L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3))
    needs only ||X'Y||_F^2, the row norms and K~1 = X (X'1) - diag(K). Reordering Y's rows
    (a sequence re-pairing) costs one p x q matmul; everything else is precomputed.
    """
    X = _flat(X)
    Y = _flat(Y)
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y need the same samples, got {X.shape[0]} and {Y.shape[0]}")
    n = X.shape[0]
    if n < 4:
        raise ValueError(f"CKA needs at least 4 samples, got {n}")
    X = X - X.mean(axis=0)
    Y = Y - Y.mean(axis=0)

    def terms(Z):
        sq = np.einsum("ij,ij->i", Z, Z)  # diag of the Gram matrix
        row = Z @ Z.sum(axis=0) - sq  # K~ 1
        return sq, row, row.sum()

    def hsic(cross2, sx, rx, tx, sy, ry, ty):
        biased = cross2  # centred features: biased HSIC up to a factor that cancels in CKA
        unbiased = (cross2 - sx @ sy + tx * ty / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * (rx @ ry)) / (n * (n - 3))
        return biased, unbiased

    tx_ = terms(X)
    ty_ = terms(Y)
    xx = hsic(np.sum((X.T @ X) ** 2), *tx_, *tx_)
    yy = hsic(np.sum((Y.T @ Y) ** 2), *ty_, *ty_)
    norm = [np.sqrt(xx[d] * yy[d]) if xx[d] > 0 and yy[d] > 0 else np.nan for d in (0, 1)]

    def score(order=None):
        Yo, (sy, ry, ty) = (Y, ty_) if order is None else (Y[order], (ty_[0][order], ty_[1][order], ty_[2]))
        xy = hsic(np.sum((X.T @ Yo) ** 2), *tx_, sy, ry, ty)
        return float(xy[0] / norm[0]), float(xy[1] / norm[1])

    return score


def linear_cka(X, Y, debiased: bool = False) -> float:
    """Linear CKA of X [n, p] and Y [n, q] (p != q allowed); rows are paired samples.

    Invariant to rotations and isotropic scaling of either side, so it needs no unit matching.
    Plain CKA is biased upwards when features are many relative to samples (independent noise
    scores > 0); the debiased form (Kornblith et al. 2019, unbiased HSIC) is ~0 there and can go
    slightly negative. A constant side gives nan.
    """
    return _cka_scorer(X, Y)(None)[int(debiased)]


# ---------------------------------------------------------------- fitted maps


def hungarian_match(P_fit, O_fit) -> np.ndarray:
    """One-to-one unit matching maximising summed perform-observe correlation on fitting data.

    P_fit [..., U_p], O_fit [..., U_o] -> match [U_p] int: the observe unit paired with each
    perform unit, -1 where U_p > U_o leaves it unmatched. Signed r: a sign-flipped twin is an
    anti-mirror, not a mirror (Procrustes and CCA are the measures that forgive sign flips).
    """
    P = _flat(P_fit)
    O = _flat(O_fit)
    with np.errstate(invalid="ignore", divide="ignore"):  # a constant unit correlates with nothing
        corr = np.nan_to_num(np.corrcoef(P, O, rowvar=False)[: P.shape[1], P.shape[1] :])
    rows, cols = linear_sum_assignment(corr, maximize=True)
    match = np.full(P.shape[1], -1, dtype=int)
    match[rows] = cols
    return match


def fit_procrustes(P_fit, O_fit) -> np.ndarray:
    """Rotation R [U, U] minimising ||(P - mean) R - (O - mean)||_F on fitting data (U_p == U_o).

    Centred but not z-scored: per-unit scaling would turn a rotation into a non-orthogonal map.
    """
    P = _flat(P_fit)
    O = _flat(O_fit)
    if P.shape[1] != O.shape[1]:
        raise ValueError(f"Procrustes needs equal unit counts, got {P.shape[1]} and {O.shape[1]}")
    R, _ = orthogonal_procrustes(P - P.mean(axis=0), O - O.mean(axis=0))
    return R


def fit_cca(P_fit, O_fit, n_components: int = 10, ridge: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """CCA weights A [U_p, k], B [U_o, k] from fitting data; U_p != U_o allowed.

    Ridge-regularised (ridge x mean variance added to each covariance's diagonal) because recurrent
    units are often nearly collinear or dead, which makes plain whitening blow up noise directions.
    (scikit-learn's CCA has no ridge and fits iteratively, one component at a time: closed form here.)
    """
    P = _flat(P_fit)
    O = _flat(O_fit)
    P = P - P.mean(axis=0)
    O = O - O.mean(axis=0)
    n = P.shape[0]
    k = min(n_components, P.shape[1], O.shape[1])

    def inv_sqrt(C):
        C = C + ridge * max(np.trace(C) / C.shape[0], 1e-12) * np.eye(C.shape[0])
        w, V = np.linalg.eigh(C)
        return (V / np.sqrt(np.maximum(w, 1e-12))) @ V.T

    Wp = inv_sqrt(P.T @ P / n)
    Wo = inv_sqrt(O.T @ O / n)
    U_, _, Vt = np.linalg.svd(Wp @ (P.T @ O / n) @ Wo)
    return Wp @ U_[:, :k], Wo @ Vt[:k].T


def _summary(value: float, null: np.ndarray) -> dict[str, float]:
    return {
        "value": float(value),
        "null_mean": float(np.mean(null)),
        "null_q95": float(np.quantile(null, 0.95)),
        "p": float(permutation_p_value(value, null, "greater")),
    }


def aligned_similarity(
    perform,
    observe,
    rng: np.random.Generator,
    n_permutations: int = 500,
    fit_fraction: float = 0.5,
    n_components: int = 10,
    ridge: float = 1e-3,
) -> dict[str, dict[str, float]]:
    """All alignment-invariant measures, fitted on some sequences, scored and tested on the rest.

    perform [N, T, U_p], observe [N, T, U_o]: paired by (sequence, timestep). Sequences (never
    timesteps) are split at random into fit / score parts. Returns {measure: {"value", "null_mean",
    "null_q95", "p"}} for measure in MEASURES:
      hungarian     mean held-out r of units matched on the fit part
      procrustes    mean held-out r per observe unit of the fit-part rotation of perform
                    (nan when U_p != U_o)
      cca           mean held-out r of the top `n_components` canonical pairs of the fit part
      cka           linear CKA on the score part (nothing to fit, so scored on the same sequences
      cka_debiased  as the others to keep the values comparable)
    The null re-pairs score-part sequences with one set of derangements shared by all measures;
    p = (b + 1) / (B + 1), one-sided ('greater'), so the smallest p is 1 / (n_permutations + 1).
    """
    perform = np.asarray(perform, dtype=float)
    observe = np.asarray(observe, dtype=float)
    if perform.ndim != 3 or observe.ndim != 3 or perform.shape[:2] != observe.shape[:2]:
        raise ValueError(f"expected [N, T, U] arrays paired on N and T, got {perform.shape}, {observe.shape}")
    N = perform.shape[0]
    n_fit = int(round(N * fit_fraction))
    if n_fit < 2 or N - n_fit < 3:
        raise ValueError(f"need >= 2 fit and >= 3 score sequences, got {n_fit} of {N}")
    order = rng.permutation(N)
    fit, score = order[:n_fit], order[n_fit:]
    Pf, Of, Ps, Os = perform[fit], observe[fit], perform[score], observe[score]
    perms = derangements(len(score), n_permutations, rng)

    def mean_r(Pp, Op):
        value = lagged_correlation(Pp, Op, 0)[0].mean()
        null = lagged_correlation_null(Pp, Op, 0, perms)[:, 0].mean(axis=-1)
        return _summary(value, null)

    out = {}
    match = hungarian_match(Pf, Of)
    ok = match >= 0
    out["hungarian"] = mean_r(Ps[..., ok], Os[..., match[ok]])
    if perform.shape[2] == observe.shape[2]:
        out["procrustes"] = mean_r(Ps @ fit_procrustes(Pf, Of), Os)
    else:
        out["procrustes"] = dict.fromkeys(("value", "null_mean", "null_q95", "p"), float("nan"))
    A, B = fit_cca(Pf, Of, n_components, ridge)
    out["cca"] = mean_r(Ps @ A, Os @ B)

    cka = _cka_scorer(Ps, Os)
    T = perform.shape[1]
    rows = (perms[:, :, None] * T + np.arange(T)).reshape(len(perms), -1)  # sequence re-pairing as row order
    null = np.array([cka(r) for r in rows])
    for d, name in enumerate(("cka", "cka_debiased")):
        out[name] = _summary(cka(None)[d], null[:, d])
    return out
