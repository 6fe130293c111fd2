"""Imitation learners for the transfer test: a state policy cloned by BC (and improved by DAgger),
and BCO's inverse dynamics model learnt from the self arm's own babbling.

Written here because the `imitation` package pins gymnasium 0.29. Each is small on purpose: an MLP
on the state observation (joint angles and velocities, target and fingertip-to-target, all in the
acting arm's base frame, so a state of the other arm reads like one of the self arm).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mirrorlab.encoders.cnn import FrameEncoder


class StatePolicy(nn.Module):
    """state [.., S] -> action [.., A] in [-1, 1]."""

    def __init__(self, state_dim: int, action_dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(state_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                                 nn.Linear(hidden, action_dim), nn.Tanh())

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return self.net(state)

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, None]:
        """SB3's calling convention, so a cloned policy runs wherever a demonstrator does."""
        with torch.no_grad():
            action = self(torch.as_tensor(np.asarray(observation, dtype=np.float32)))
        return action.numpy(), None


def _fit(model: nn.Module, inputs: tuple[torch.Tensor, ...], targets: torch.Tensor, loss_of: Callable,
         epochs: int, lr: float, batch_size: int, seed: int) -> list[float]:
    """Adam on MSE over shuffled minibatches drawn from `seed`; returns the per-epoch mean loss."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    n = targets.shape[0]
    history = []
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(n))
        total = 0.0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            loss = F.mse_loss(loss_of(model, *(x[idx] for x in inputs)), targets[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        history.append(total / n)
    return history


def fit_policy(states: np.ndarray, actions: np.ndarray, *, epochs: int, lr: float = 1e-3, batch_size: int = 256,
               hidden: int = 64, seed: int = 0, policy: StatePolicy | None = None) -> StatePolicy:
    """Behavioural cloning: regress actions [M, A] on states [M, S] (a given policy is trained further)."""
    if states.shape[0] != actions.shape[0] or states.shape[0] == 0:
        raise ValueError(f"states {states.shape} and actions {actions.shape} must pair up and be non-empty")
    if policy is None:
        torch.manual_seed(seed)
        policy = StatePolicy(states.shape[1], actions.shape[1], hidden)
    _fit(policy, (torch.as_tensor(states, dtype=torch.float32),), torch.as_tensor(actions, dtype=torch.float32),
         lambda m, s: m(s), epochs, lr, batch_size, seed)
    return policy.eval()


def dagger(policy: StatePolicy, states: np.ndarray, actions: np.ndarray,
           rollout: Callable[[StatePolicy, int], tuple[np.ndarray, np.ndarray]], seeds: list[list[int]], *,
           epochs: int, lr: float = 1e-3, seed: int = 0) -> tuple[StatePolicy, int]:
    """DAgger (Ross et al. 2011): roll out the current policy, have the expert label the states it
    visits, aggregate with all data so far, refit. `rollout(policy, seed)` runs one episode with the
    policy acting and returns (visited states [T, S], the expert's actions in them [T, A]).
    `seeds[i]` are the episodes of iteration i. Returns the policy and the number of expert queries
    (labelled states)."""
    all_states, all_actions = [states], [actions]
    queries = 0
    for i, iteration_seeds in enumerate(seeds):
        for s in iteration_seeds:
            visited, labels = rollout(policy, s)
            all_states.append(visited)
            all_actions.append(labels)
            queries += len(visited)
        policy = fit_policy(np.concatenate(all_states), np.concatenate(all_actions), epochs=epochs, lr=lr,
                            seed=seed + i + 1, policy=policy)
    return policy, queries


class InverseDynamicsModel(nn.Module):
    """BCO's inverse dynamics: (frame before, frame after) -> the action between them."""

    def __init__(self, frame_size: int, action_dim: int, embed_dim: int = 32, channels: int = 16) -> None:
        super().__init__()
        self.encoder = FrameEncoder(frame_size, embed_dim, channels)
        self.head = nn.Sequential(nn.Linear(2 * embed_dim, 64), nn.ReLU(), nn.Linear(64, action_dim))

    def forward(self, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        """before, after [..., 3, S, S]."""
        return self.head(torch.cat([self.encoder(before.unsqueeze(-4)), self.encoder(after.unsqueeze(-4))], dim=-1))

    def label(self, frames: np.ndarray) -> np.ndarray:
        """frames [N, T+1, 3, S, S] -> inferred actions [N, T, A]."""
        with torch.no_grad():
            f = torch.from_numpy(frames)
            return self(f[:, :-1], f[:, 1:]).numpy()


def fit_inverse_dynamics(frames: np.ndarray, actions: np.ndarray, *, epochs: int, lr: float = 1e-3,
                         batch_size: int = 256, seed: int = 0) -> InverseDynamicsModel:
    """frames [N, T+1, 3, S, S] uint8 and actions [N, T, A] of the learner's own episodes."""
    torch.manual_seed(seed)
    model = InverseDynamicsModel(frames.shape[-1], actions.shape[-1])
    f = torch.from_numpy(frames)
    before = f[:, :-1].reshape(-1, *f.shape[2:])
    after = f[:, 1:].reshape(-1, *f.shape[2:])
    _fit(model, (before, after), torch.as_tensor(actions.reshape(-1, actions.shape[-1]), dtype=torch.float32),
         lambda m, b, a: m(b, a), epochs, lr, batch_size, seed)
    return model.eval()
