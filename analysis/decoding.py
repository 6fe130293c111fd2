"""Cross-condition decoding: a linear read-out of the action fitted in one mode, tested in the other.

Folds are grouped by sequence (timesteps of one sequence never sit on both sides of a split), and
chance comes from re-pairing whole label sequences with other sequences' activations, which keeps
the label statistics and the within-sequence autocorrelation. Discrete actions are decoded with a
ridge classifier (accuracy); continuous actions with ridge regression (R^2 over action dimensions).
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import Ridge, RidgeClassifier
from sklearn.metrics import r2_score
from sklearn.model_selection import GroupKFold

from mirrorlab.analysis.lags import zscore_pooled
from mirrorlab.permutations import derangements


def _is_discrete(labels: np.ndarray) -> bool:
    return np.issubdtype(labels.dtype, np.integer)


def _fit(x: np.ndarray, y: np.ndarray, alpha: float):
    return (RidgeClassifier if _is_discrete(y) else Ridge)(alpha=alpha).fit(x, y)


def _score(model, x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy for discrete labels, R^2 (averaged over action dimensions) for continuous ones."""
    if _is_discrete(y):
        return float((model.predict(x) == y).mean())
    return float(r2_score(y, model.predict(x)))


def _flatten(acts: np.ndarray, seqs: np.ndarray) -> np.ndarray:
    return acts[seqs].reshape(-1, acts.shape[-1])


def _cv_scores(perform: np.ndarray, observe: np.ndarray, labels: np.ndarray, folds: list, alpha: float
               ) -> dict[str, float]:
    """Mean over folds of four read-outs: within each mode, and across modes both ways."""
    lab_dims = labels.shape[2:]
    sums = {"perform_to_observe": 0.0, "observe_to_perform": 0.0, "within_perform": 0.0, "within_observe": 0.0}
    for train, test in folds:
        y_train = labels[train].reshape(-1, *lab_dims)
        y_test = labels[test].reshape(-1, *lab_dims)
        for src_name, src in (("perform", perform), ("observe", observe)):
            model = _fit(_flatten(src, train), y_train, alpha)
            for dst_name, dst in (("perform", perform), ("observe", observe)):
                key = f"within_{src_name}" if src_name == dst_name else f"{src_name}_to_{dst_name}"
                sums[key] += _score(model, _flatten(dst, test), y_test)
    return {k: v / len(folds) for k, v in sums.items()}


def cross_condition_decoding(perform: np.ndarray, observe: np.ndarray, labels: np.ndarray,
                             rng: np.random.Generator, n_folds: int = 5, n_shuffles: int = 20,
                             alpha: float = 1.0, zscore_each: bool = False) -> dict[str, float]:
    """Decode labels [N, T] (int) or [N, T, A] (float) from activations [N, T, U] across modes.

    Returns the four cross-validated scores, `chance` (mean of the across-mode scores when label
    sequences are re-paired with other sequences) and `chance_q95` (its 95th percentile).
    `zscore_each` z-scores each mode separately first, so a decoder cannot win or lose by an offset
    between modes alone.
    """
    if perform.shape != observe.shape or perform.shape[:2] != labels.shape[:2]:
        raise ValueError(f"perform {perform.shape}, observe {observe.shape} and labels {labels.shape} must "
                         "share [N, T]")
    if zscore_each:
        perform, observe = zscore_pooled(perform), zscore_pooled(observe)
    n = perform.shape[0]
    groups = np.arange(n)
    folds = [(tr, te) for tr, te in GroupKFold(n_splits=n_folds).split(groups, groups=groups)]
    scores = _cv_scores(perform, observe, labels, folds, alpha)
    chance = []
    for perm in derangements(n, n_shuffles, rng):
        shuffled = _cv_scores(perform, observe, labels[perm], folds, alpha)
        chance.append((shuffled["perform_to_observe"] + shuffled["observe_to_perform"]) / 2)
    scores["chance"] = float(np.mean(chance))
    scores["chance_q95"] = float(np.quantile(chance, 0.95))
    return scores
