"""The ceiling of reading actions from video: an inverse model on the observed arm's true joint state.

A pixel inverse head can at best recover what the watched episode's states determine. This fits the
same question on the true joint angles and velocities of the observed arm, over the same window of
frames the pixel model sees at each step (frames t + k, k in the window, clamped to the episode), on
the same training episodes, and scores R^2 on the same held-out episodes: the best R^2 the episode's
information allows, printed beside every pixel R^2. Two regressors, each on standardised features:
ridge (linear) and a two-layer MLP (torque inverse dynamics are nonlinear in the joint angles); the
ceiling is the better of the two.

Beside it, `policy_baseline`: the same regressors on the state *before* each action only. A trained
demonstrator's actions are largely predictable from that state, so a high R^2 on demonstrations can
come from knowing the policy rather than reading the movement; the baseline says how much.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def window_features(angles: np.ndarray, velocities: np.ndarray, window: tuple[int, ...]) -> np.ndarray:
    """angles, velocities [N, T+1, J] -> [N, T, 2 J K]: (q, qd) at frames t + k for k in the window."""
    T = angles.shape[1] - 1
    index = np.clip(np.arange(T)[:, None] + np.asarray(window)[None, :], 0, T)  # [T, K]
    both = np.concatenate([angles, velocities], axis=-1)                      # [N, T+1, 2J]
    return both[:, index].reshape(angles.shape[0], T, -1)


def _best_fit(x_train, y_train, x_test, y_test, seed: int) -> dict[str, float]:
    """Held-out R^2 of ridge and of a two-layer MLP (standardised features), and the better one."""
    fitted = {
        "ridge": make_pipeline(StandardScaler(), Ridge(alpha=1e-3)),
        "mlp": make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(128, 128), max_iter=400,
                                                            early_stopping=True, random_state=seed, tol=1e-5,
                                                            n_iter_no_change=20)),
    }
    out = {name: float(r2_score(y_test, model.fit(x_train, y_train).predict(x_test))) for name, model in fitted.items()}
    out["best"] = max(out.values())
    return out


def inverse_ceiling(train: tuple[np.ndarray, np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray, np.ndarray],
                    window: tuple[int, ...], seed: int = 0) -> dict[str, float]:
    """train, test: (angles [N, T+1, J], velocities [N, T+1, J], actions [N, T, A]).

    Returns held-out R^2 (scikit-learn's uniform average over action dimensions) of "ridge" and "mlp",
    and "ceiling", the larger."""
    def xy(part):
        angles, velocities, actions = part
        x = window_features(np.asarray(angles, float), np.asarray(velocities, float), window)
        return x.reshape(-1, x.shape[-1]), np.asarray(actions, float).reshape(-1, actions.shape[-1])

    out = _best_fit(*xy(train), *xy(test), seed)
    out["ceiling"] = out.pop("best")
    return out


def policy_baseline(train: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
                    test: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], seed: int = 0) -> float:
    """How much of a demonstrator's action is predictable *without seeing the motion it causes*.

    train, test: (angles [N, T+1, J], velocities [N, T+1, J], targets [N, D], actions [N, T, A]). The
    same regressors on the state before each action (angles and velocities at t, the target), nothing
    after it. A demonstrator's action is a function of that state, so a pixel model can score high on
    demonstrations by recognising the policy's situation rather than reading the movement; an R^2
    near this baseline says nothing about reading motion (random babbling actions would)."""
    def xy(part):
        angles, velocities, targets, actions = (np.asarray(a, float) for a in part)
        T = actions.shape[1]
        x = np.concatenate([angles[:, :T], velocities[:, :T], np.repeat(targets[:, None], T, axis=1)], axis=-1)
        return x.reshape(-1, x.shape[-1]), actions.reshape(-1, actions.shape[-1])

    return _best_fit(*xy(train), *xy(test), seed)["best"]
