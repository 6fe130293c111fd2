"""Cross-condition decoding: a linear read-out of the action fitted in one mode, tested in the other.

Folds are grouped by sequence (timesteps of one sequence never sit on both sides of a split), and
chance comes from re-pairing whole label sequences with other sequences' activations, which keeps
the label statistics and the within-sequence autocorrelation. Discrete actions are decoded with a
ridge classifier (one-hot targets in {-1, +1}, argmax; accuracy); continuous actions with ridge
regression (R^2 over action dimensions). Both are solved in closed form, so the true labels and all
their re-pairings share one solve per fold and mode.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import GroupKFold

from mirrorlab.analysis.lags import zscore_pooled
from mirrorlab.permutations import derangements


def _is_discrete(labels: np.ndarray) -> bool:
    return np.issubdtype(labels.dtype, np.integer)


def _targets(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Regression targets [n, columns] of labels [n] (int: one-hot in {-1, +1}, as a ridge classifier
    uses) or [n, A] (float: as they are)."""
    if _is_discrete(labels):
        return 2.0 * np.eye(n_classes)[labels] - 1.0
    return labels.reshape(len(labels), -1).astype(float)


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Ridge regression with an unpenalised intercept, for every column of y at once: (W, b)."""
    mx, my = x.mean(axis=0), y.mean(axis=0)
    xc = x - mx
    w = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ (y - my))
    return w, my - mx @ w


def _score(predicted: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy for discrete labels (argmax of the one-hot read-out), R^2 averaged over action
    dimensions for continuous ones (scikit-learn's uniform average)."""
    if _is_discrete(labels):
        return float((predicted.argmax(axis=-1) == labels).mean())
    ss_res = ((labels - predicted) ** 2).sum(axis=0)
    ss_tot = ((labels - labels.mean(axis=0)) ** 2).sum(axis=0)
    return float(np.mean(1.0 - ss_res / np.where(ss_tot > 0, ss_tot, np.nan)))


def _cv_scores(perform: np.ndarray, observe: np.ndarray, label_sets: list[np.ndarray], folds: list, alpha: float
               ) -> list[dict[str, float]]:
    """For each label set, the mean over folds of four read-outs: within each mode and across modes.

    One solve per (fold, source mode) serves every label set: the activations are the same, only the
    targets differ (the true labels and their sequence-level re-pairings)."""
    n_classes = int(max(ls.max() for ls in label_sets)) + 1 if _is_discrete(label_sets[0]) else 0
    keys = ("within_perform", "perform_to_observe", "observe_to_perform", "within_observe")
    sums = [dict.fromkeys(keys, 0.0) for _ in label_sets]
    for train, test in folds:
        flat = [ls[idx].reshape(-1, *ls.shape[2:]) for ls in label_sets for idx in (train, test)]
        y_train = np.concatenate([_targets(f, n_classes) for f in flat[0::2]], axis=1)
        width = y_train.shape[1] // len(label_sets)
        for src_name, src in (("perform", perform), ("observe", observe)):
            w, b = _ridge(src[train].reshape(-1, src.shape[-1]), y_train, alpha)
            for dst_name, dst in (("perform", perform), ("observe", observe)):
                key = f"within_{src_name}" if src_name == dst_name else f"{src_name}_to_{dst_name}"
                predicted = dst[test].reshape(-1, dst.shape[-1]) @ w + b
                for k in range(len(label_sets)):
                    sums[k][key] += _score(predicted[:, k * width:(k + 1) * width], flat[2 * k + 1])
    return [{k: v / len(folds) for k, v in entry.items()} for entry in sums]


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
    label_sets = [labels] + [labels[perm] for perm in derangements(n, n_shuffles, rng)]
    scores, *shuffled = _cv_scores(perform, observe, label_sets, folds, alpha)
    chance = [(s["perform_to_observe"] + s["observe_to_perform"]) / 2 for s in shuffled]
    scores["chance"] = float(np.mean(chance))
    scores["chance_q95"] = float(np.quantile(chance, 0.95))
    return scores
