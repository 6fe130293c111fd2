"""Training and evaluation of the core on the toy world, under any of the study's conditions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from agents.conditions import Condition
from agents.core import MirrorCore
from encoders.vectors import discrete_action_encoder, sensory_vector_encoder
from envs.toy import ToySequences


def build_toy_core(n_actions: int, sensory_dim: int, action_embed_dim: int, hidden_size: int,
                   separate_cores: bool, seed: int) -> MirrorCore:
    """The paper's network; the seed fixes the initialisation, so conditions of one seed start alike."""
    torch.manual_seed(seed)
    return MirrorCore(
        action_encoder=discrete_action_encoder(n_actions, action_embed_dim),
        sensory_encoder=sensory_vector_encoder(sensory_dim, action_embed_dim),
        input_dim=action_embed_dim,
        hidden_size=hidden_size,
        forward_head=nn.Linear(hidden_size, sensory_dim),
        inverse_head=nn.Linear(hidden_size, n_actions),
        separate_cores=separate_cores,
    )


def toy_losses(model: MirrorCore, actions: torch.Tensor, sensory: torch.Tensor,
               observe_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward loss: MSE of s_t predicted from a_<=t. Inverse loss: cross-entropy of a_t from s_<=t."""
    forward_loss = F.mse_loss(model.perform(actions).prediction, sensory)
    logits = model.observe(sensory).prediction
    inverse_loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), observe_labels.reshape(-1))
    return forward_loss, inverse_loss


def train_toy_core(model: MirrorCore, data: ToySequences, condition: Condition, *, epochs: int,
                   batch_size: int, lr: float, forward_weight: float, inverse_weight: float,
                   rng: np.random.Generator, on_epoch=None) -> list[dict[str, float]]:
    """Adam on forward_weight * forward + inverse_weight * inverse; returns per-epoch mean losses.

    The untrained condition returns at once. Batch order and label shuffles come from `rng`, so a
    (config, seed) pair gives the same model bit for bit on CPU.
    """
    history: list[dict[str, float]] = []
    if not condition.trained:
        return history
    actions = torch.from_numpy(data.actions)
    sensory = torch.from_numpy(data.sensory)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    n = len(data)
    model.train()
    for epoch in range(epochs):
        order = rng.permutation(n)
        sums = {"forward": 0.0, "inverse": 0.0}
        for start in range(0, n, batch_size):
            idx = torch.from_numpy(order[start:start + batch_size])
            a, s = actions[idx], sensory[idx]
            labels = a
            if condition.shuffle_observe_labels:
                # Observe labels of a different sequence of the batch: the sensory->action mapping is lost.
                labels = a[torch.from_numpy(rng.permutation(len(idx)))]
            forward_loss, inverse_loss = toy_losses(model, a, s, labels)
            loss = forward_weight * forward_loss
            if condition.inverse_loss:
                loss = loss + inverse_weight * inverse_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            sums["forward"] += forward_loss.item() * len(idx)
            sums["inverse"] += inverse_loss.item() * len(idx)
        history.append({k: v / n for k, v in sums.items()})
        if on_epoch is not None:
            on_epoch(epoch, history[-1])
    return history


@dataclass
class ToyActivations:
    """Hidden states on held-out paired episodes, aligned by (sequence, timestep)."""

    perform: np.ndarray   # [N, T, H]
    observe: np.ndarray   # [N, T, H]
    inverse_accuracy: float
    forward_mse: float


@torch.no_grad()
def record_activations(model: MirrorCore, data: ToySequences) -> ToyActivations:
    model.eval()
    actions = torch.from_numpy(data.actions)
    sensory = torch.from_numpy(data.sensory)
    perform = model.perform(actions)
    observe = model.observe(sensory)
    accuracy = (observe.prediction.argmax(-1) == actions).float().mean().item()
    mse = F.mse_loss(perform.prediction, sensory).item()
    return ToyActivations(perform.hidden.numpy().astype(np.float64), observe.hidden.numpy().astype(np.float64),
                          accuracy, mse)
