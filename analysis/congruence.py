"""Tuning congruence: is a unit's preferred action the same when performing and observing?

The neurophysiologists' criterion for a "congruent" mirror neuron. Discrete actions: the preferred
action is the class with the highest mean activation. Continuous actions: the preferred direction
is the unit's ridge regression weight vector on the action, and a unit is congruent when the cosine
between its perform and observe directions is at least `min_cosine`.

Both kinds of tuning are a fixed linear operator D (built from the actions alone) applied to the
activations, tuning = D @ acts. That makes the sequence-level null cheap: the observe run of
sequence j != i is labelled with sequence i's actions (same timesteps), which keeps every
time-locked action statistic and breaks only the pairing, and costs one small matmul per draw.
"""

from __future__ import annotations

import numpy as np

from mirrorlab.analysis.nulls import permutation_p_value
from mirrorlab.permutations import derangements


def _is_discrete(actions: np.ndarray) -> bool:
    return np.issubdtype(actions.dtype, np.integer) or actions.dtype == bool


def _tuning_operator(actions, n_actions: int | None, ridge: float) -> tuple[np.ndarray, np.ndarray | None]:
    """D [R, samples] with tuning = D @ acts_flat; for discrete also the mask of classes present.

    Discrete: row k averages the samples with action k (R = K). Continuous: ridge least squares on
    centred actions (R = A); D annihilates constants, so activations need no centring.
    """
    actions = np.asarray(actions)
    if _is_discrete(actions):
        a = actions.reshape(-1).astype(int)
        K = int(a.max()) + 1 if n_actions is None else n_actions
        if a.min() < 0 or a.max() >= K:
            raise ValueError(f"discrete actions must lie in 0..{K - 1}, got {a.min()}..{a.max()}")
        onehot = np.zeros((K, a.size))
        onehot[a, np.arange(a.size)] = 1.0
        counts = onehot.sum(axis=1)
        return onehot / np.maximum(counts, 1)[:, None], counts > 0
    A = actions.reshape(-1, actions.shape[-1]).astype(float)
    A = A - A.mean(axis=0)
    gram = A.T @ A
    gram += ridge * max(np.trace(gram) / gram.shape[0], 1e-12) * np.eye(gram.shape[0])
    return np.linalg.solve(gram, A.T), None


def _check(acts, actions) -> tuple[np.ndarray, np.ndarray]:
    acts = np.asarray(acts, dtype=float)
    actions = np.asarray(actions)
    lead = acts.shape[:-1]
    ok = actions.shape == lead if _is_discrete(actions) else (actions.ndim == acts.ndim and actions.shape[:-1] == lead)
    if not ok:
        raise ValueError(
            f"actions {actions.shape} do not match activations {acts.shape}: discrete actions need the "
            "activations' leading shape ([N, T]), continuous ones an extra trailing action axis ([N, T, A])"
        )
    return acts, actions


def _prefer(tuning: np.ndarray, present: np.ndarray | None) -> np.ndarray:
    """Preferred class per unit ([..., K, U] -> [..., U], -1 if untuned) or the direction itself."""
    if present is None:
        return np.swapaxes(tuning, -1, -2)  # [..., U, A]
    t = np.where(present[:, None], tuning, -np.inf)
    best = np.argmax(t, axis=-2)
    spread = t.max(axis=-2) - np.where(present[:, None], tuning, np.inf).min(axis=-2)
    scale = np.abs(tuning).max(axis=-2)
    # A unit with the same mean for every action prefers nothing; without this, dead units would
    # "prefer" class 0 in both conditions and count as congruent.
    return np.where(spread > 1e-12 * np.maximum(scale, 1.0), best, -1)


def preferred_action(acts, actions, n_actions: int | None = None, ridge: float = 1e-6) -> np.ndarray:
    """Each unit's preferred action.

    acts [..., U] with discrete int actions [...] (values 0..K-1) -> [U] int class of highest mean
    activation, -1 for a unit equal across classes; or with continuous actions [..., A] -> [U, A]
    ridge regression weights of the unit's activation on the action (its preferred direction).
    """
    acts, actions = _check(acts, actions)
    D, present = _tuning_operator(actions, n_actions, ridge)
    return _prefer(D @ acts.reshape(-1, acts.shape[-1]), present)


def _congruent(pref_p, pref_o, discrete: bool, min_cosine: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-unit congruence flags [U] (and cosines, for directions)."""
    if not discrete:
        num = (pref_p * pref_o).sum(axis=-1)
        den = np.linalg.norm(pref_p, axis=-1) * np.linalg.norm(pref_o, axis=-1)
        cos = np.divide(num, den, out=np.full(num.shape, np.nan), where=den > 0)
        return np.nan_to_num(cos, nan=-np.inf) >= min_cosine, cos
    return (pref_p == pref_o) & (pref_p >= 0), None


def tuning_congruence(
    perform,
    observe,
    actions,
    rng: np.random.Generator,
    n_permutations: int = 1000,
    n_actions: int | None = None,
    min_cosine: float = 0.5,
    ridge: float = 1e-6,
) -> dict[str, object]:
    """Fraction of units with the same preferred action (direction) in both conditions, with its null.

    perform, observe [N, T, U] (same units: a shared core, or a separate core's units reordered by
    a Hungarian match); actions [N, T] int or [N, T, A] float, the actions of each sequence, used to
    label both runs. Returns
      "fraction"          float, fraction of congruent units
      "congruent"         [U] bool
      "perform_preferred", "observe_preferred"   [U] int (-1 untuned) or [U, A] directions
      "cosine"            [U] perform-observe cosine (continuous only; nan for a zero direction)
      "null"              [B] fraction with observe sequences re-paired (derangements)
      "null_mean", "p"    chance level as measured, and p = (b + 1) / (B + 1) one-sided ('greater')
    Chance is ~1/K for discrete actions; for directions it depends on A and min_cosine (1/3 for
    A = 2 and 0.5), which is why the null, not a formula, is the reference.
    """
    perform, actions = _check(perform, actions)
    observe = np.asarray(observe, dtype=float)
    if perform.ndim != 3 or observe.shape != perform.shape:
        raise ValueError(f"expected two [N, T, U] arrays of one shape, got {perform.shape} and {observe.shape}")
    N, T, U = perform.shape
    D, present = _tuning_operator(actions, n_actions, ridge)
    pref_p = _prefer(D @ perform.reshape(-1, U), present)
    pref_o = _prefer(D @ observe.reshape(-1, U), present)
    congruent, cos = _congruent(pref_p, pref_o, present is not None, min_cosine)

    perms = derangements(N, n_permutations, rng)
    D3 = D.reshape(D.shape[0], N, T)
    null = np.empty(n_permutations)
    for b, perm in enumerate(perms):
        tuning = np.tensordot(D3, observe[perm], axes=([1, 2], [0, 1]))
        null[b] = _congruent(pref_p, _prefer(tuning, present), present is not None, min_cosine)[0].mean()
    fraction = float(congruent.mean())
    out = {
        "fraction": fraction,
        "congruent": congruent,
        "perform_preferred": pref_p,
        "observe_preferred": pref_o,
        "null": null,
        "null_mean": float(null.mean()),
        "p": float(permutation_p_value(fraction, null, "greater")),
    }
    if cos is not None:
        out["cosine"] = cos
    return out
