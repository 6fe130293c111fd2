"""Encoders for the toy world: a token embedding for discrete actions, a linear projection for sensory vectors."""

from __future__ import annotations

from torch import nn


def discrete_action_encoder(n_actions: int, dim: int) -> nn.Module:
    """Perform-mode input: one learnt vector per action token (the paper's 96-d action embedding)."""
    return nn.Embedding(n_actions, dim)


def sensory_vector_encoder(sensory_dim: int, dim: int) -> nn.Module:
    """Observe-mode input: the paper's Linear(16, 96) projection of the sensory vector."""
    return nn.Linear(sensory_dim, dim)


def continuous_action_encoder(action_dim: int, dim: int) -> nn.Module:
    """Perform-mode input for torques: a linear map of the action vector, the continuous analogue of
    the token embedding (an embedding is a linear map of a one-hot vector)."""
    return nn.Linear(action_dim, dim)
