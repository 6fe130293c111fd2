"""Replay at surprise (the paper's future work: "store hidden states at surprise events and replay them"): a
buffer of the training episodes the core predicted worst, replayed in proportion to how badly.

An episode's *surprise* is its own term of the training loss (forward_weight x its forward error + inverse_weight
x its inverse error, as the condition weighs them), recorded every time it is trained on, so a replayed episode
the core has since learnt loses its place (as in prioritised experience replay, Schaul et al. 2016). The buffer
of a kind (`demo`, `babble`) is the `replay_buffer` episodes of that kind with the largest latest surprise.
What is kept is the episode, not hidden states: the core is retrained on it, so the replay goes through the
same losses as everything else.

Equal updates: in every epoch a fixed share (`replay_fraction`) of the uniform pass's batch positions, drawn
from (seed, epoch), are given to replays: the uniform batch at such a position is dropped and a batch of the
same kind and size is drawn from that kind's buffer instead, without replacement, each episode with probability
proportional to its surprise. A position whose buffer holds fewer than a batch of episodes (early in the first
epoch) keeps its uniform batch. So a surprise run makes exactly the updates of a uniform run, on batches of the
same size and mix of kinds; only which episodes fill them differs.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate


class SurpriseReplay:
    """The surprise buffers of a run's sources and the epoch schedule that replays them."""

    def __init__(self, sources: dict[str, Dataset], batch_size: int, fraction: float, capacity: int):
        self.sources, self.batch_size = sources, batch_size
        self.fraction, self.capacity = fraction, capacity
        self.surprise: dict[str, dict[int, float]] = {kind: {} for kind in sources}

    def record(self, kind: str, indices: torch.Tensor, surprise: torch.Tensor) -> None:
        """The latest surprise of each episode (by its `index` in its source) of a batch just trained on."""
        for i, s in zip(indices.tolist(), surprise.detach().cpu().tolist()):
            self.surprise[kind][int(i)] = float(s)

    def buffer(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """(indices, surprise) of the kind's `capacity` most surprising episodes, largest first (ties: lower
        index first, so the buffer does not depend on the order surprises arrived in)."""
        ranked = sorted(self.surprise[kind].items(), key=lambda item: (-item[1], item[0]))[:self.capacity]
        return np.array([i for i, _ in ranked], dtype=np.int64), np.array([s for _, s in ranked], dtype=np.float64)

    def replay_positions(self, n_batches: int, seed: int, epoch: int) -> set[int]:
        """The epoch's batch positions given to replays: round(fraction x batches) of them, drawn from (seed, epoch)."""
        rng = np.random.default_rng([seed, epoch, 7])
        return set(rng.choice(n_batches, size=int(round(self.fraction * n_batches)), replace=False).tolist())

    def draw(self, kind: str, rng: np.random.Generator) -> np.ndarray | None:
        """A batch of indices from the kind's buffer, drawn in proportion to surprise; None if it holds too few."""
        indices, surprise = self.buffer(kind)
        if len(indices) < self.batch_size:
            return None
        weights = np.maximum(surprise, 0.0) + 1e-12  # losses are >= 0; the floor keeps a zero-loss buffer drawable
        return rng.choice(indices, size=self.batch_size, replace=False, p=weights / weights.sum())

    def epoch(self, uniform: Iterator[tuple[str, dict[str, Any]]], n_batches: int, seed: int, epoch: int
              ) -> Iterator[tuple[str, dict[str, Any]]]:
        """The uniform pass with its replay positions swapped for replays. Lazy: the replay at position b is
        drawn from the buffer as the batches before it left it."""
        positions = self.replay_positions(n_batches, seed, epoch)
        for b, (kind, batch) in enumerate(uniform):
            picked = self.draw(kind, np.random.default_rng([seed, epoch, 8, b])) if b in positions else None
            if picked is None:
                yield kind, batch
            else:
                yield kind, default_collate([self.sources[kind][int(i)] for i in picked])

    def state_dict(self) -> dict[str, Any]:
        """The buffers as tensors (checkpoints are weights-only torch), so a resumed run replays as an
        uninterrupted one."""
        return {kind: {"index": torch.tensor(sorted(s), dtype=torch.int64),
                       "surprise": torch.tensor([s[i] for i in sorted(s)], dtype=torch.float64)}
                for kind, s in self.surprise.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for kind, part in state.items():
            self.surprise[kind] = dict(zip(part["index"].tolist(), part["surprise"].tolist()))
