"""The embodied core: torques and CNN-encoded video through one GRU (or two, for the separate control).

Perform: torque a_t -> linear action encoder -> GRU -> forward head (a small deconvolutional
decoder) predicts the self arm's frame after the action, in pixels. Pixels rather than a
stop-gradient target embedding because a pixel target is fixed: nothing can collapse, in any
condition (with forward-only training the CNN gets no gradient at all, just as the toy's observe
projection does, so a learnt target embedding would be free to collapse to a constant).
Observe: the frame after action t, through the CNN encoder -> GRU -> inverse head regresses a_t.
Timestep t means the same in both modes: action a_t and the frame it produced.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from mirrorlab.agents.core import MirrorCore
from mirrorlab.encoders.cnn import FrameDecoder, FrameEncoder, frames_as_targets
from mirrorlab.encoders.vectors import continuous_action_encoder


def build_embodied_core(action_dim: int, frame_size: int, embed_dim: int, hidden_size: int, cnn_channels: int,
                        separate_cores: bool, seed: int) -> MirrorCore:
    """The seed fixes the initialisation, so every condition of one seed starts from the same weights."""
    torch.manual_seed(seed)
    return MirrorCore(
        action_encoder=continuous_action_encoder(action_dim, embed_dim),
        sensory_encoder=FrameEncoder(frame_size, embed_dim, cnn_channels),
        input_dim=embed_dim,
        hidden_size=hidden_size,
        forward_head=FrameDecoder(hidden_size, frame_size, cnn_channels),
        inverse_head=nn.Linear(hidden_size, action_dim),
        separate_cores=separate_cores,
    )


def observed_input(frames: torch.Tensor) -> torch.Tensor:
    """What the observe path sees at each step t of an episode whose frames are [..., T+1, 3, S, S]:
    the frame after action t."""
    return frames[..., 1:, :, :, :]


def forward_loss(model: MirrorCore, actions: torch.Tensor, perform_frames: torch.Tensor) -> torch.Tensor:
    """actions [B, T, A]; perform_frames [B, T+1, 3, S, S] uint8 (frame 0 before the first action)."""
    predicted = model.perform(actions).prediction
    return F.mse_loss(predicted, frames_as_targets(perform_frames[:, 1:]))


def inverse_loss(model: MirrorCore, watched_frames: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """watched_frames [B, T+1, 3, S, S]: the frames of whichever arm the inverse head learns from."""
    return F.mse_loss(model.observe(observed_input(watched_frames)).prediction, labels)
