"""The paper's linear toy world: discrete actions push a sensory vector along fixed effect vectors.

    s_t = decay * s_{t-1} + effect[a_t] + N(0, noise_sigma^2 I),   s_0 = 0

One action sequence generates its sensory sequence, so every sequence is a *paired episode* by
construction: perform mode is driven by `actions[i]`, observe mode by `sensory[i]`, and both are
aligned by (sequence, timestep). The draft paper lost its effect by drawing the two sides from
different sequences; `ToySequences` keeps them in one object so that cannot happen silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ToySequences:
    """Paired toy episodes: actions [N, T] (int64) and the sensory states they produced [N, T, D]."""

    actions: np.ndarray
    sensory: np.ndarray

    def __post_init__(self) -> None:
        if self.actions.ndim != 2 or self.sensory.ndim != 3:
            raise ValueError(f"actions must be [N, T] and sensory [N, T, D]; got {self.actions.shape}, "
                             f"{self.sensory.shape}")
        if self.actions.shape != self.sensory.shape[:2]:
            raise ValueError(f"actions {self.actions.shape} and sensory {self.sensory.shape[:2]} are not paired "
                             "by (sequence, timestep)")

    def __len__(self) -> int:
        return self.actions.shape[0]


def make_effects(n_actions: int, sensory_dim: int, rng: np.random.Generator) -> np.ndarray:
    """One effect vector per action, ~ N(0, I): shape [K, D]."""
    return rng.standard_normal((n_actions, sensory_dim))


def roll_out(actions: np.ndarray, effects: np.ndarray, decay: float, noise_sigma: float,
             rng: np.random.Generator) -> np.ndarray:
    """Sensory states [N, T, D] produced by `actions` [N, T] under the linear dynamics above."""
    n, t_len = actions.shape
    noise = noise_sigma * rng.standard_normal((n, t_len, effects.shape[1]))
    sensory = np.empty((n, t_len, effects.shape[1]))
    state = np.zeros((n, effects.shape[1]))
    for t in range(t_len):
        state = decay * state + effects[actions[:, t]] + noise[:, t]
        sensory[:, t] = state
    return sensory


def make_sequences(n: int, seq_len: int, effects: np.ndarray, decay: float, noise_sigma: float,
                   rng: np.random.Generator) -> ToySequences:
    """`n` paired episodes with actions drawn uniformly and independently at each timestep."""
    actions = rng.integers(0, effects.shape[0], size=(n, seq_len))
    sensory = roll_out(actions, effects, decay, noise_sigma, rng)
    return ToySequences(actions=actions.astype(np.int64), sensory=sensory.astype(np.float32))
