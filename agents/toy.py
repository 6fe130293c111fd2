"""The paper's network on its toy world: build it, score it, record its activations."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mirrorlab.agents.core import MirrorCore, record
from mirrorlab.encoders.vectors import discrete_action_encoder, sensory_vector_encoder
from mirrorlab.envs.toy import ToySequences


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
               observe_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward loss: MSE of s_t predicted from a_<=t. Inverse loss: cross-entropy of a_t from s_<=t. And the
    per-unit perform-observe correlation of the batch (agents.training.selectivity_loss), for its term."""
    from mirrorlab.agents.training import selectivity_loss

    performed, observed = model.perform(actions), model.observe(sensory)
    forward_loss = F.mse_loss(performed.prediction, sensory)
    logits = observed.prediction
    inverse_loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), observe_labels.reshape(-1))
    return forward_loss, inverse_loss, selectivity_loss(performed.hidden, observed.hidden)


@dataclass
class ToyActivations:
    """Hidden states on held-out paired episodes, aligned by (sequence, timestep), and the heads' scores."""

    perform: np.ndarray   # [N, T, H]
    observe: np.ndarray   # [N, T, H]
    inverse_accuracy: float  # on the sequences' true actions, whatever labels training used
    forward_mse: float


def record_toy_activations(model: MirrorCore, data: ToySequences) -> ToyActivations:
    rec = record(model, data.actions, data.sensory, batch_size=len(data))
    accuracy = float((rec.inverse_prediction.argmax(-1) == data.actions).mean())
    mse = float(((rec.forward_prediction - data.sensory) ** 2).mean())
    return ToyActivations(rec.perform.astype(np.float64), rec.observe.astype(np.float64), accuracy, mse)
