"""The embodied core: torques and CNN-encoded video through one GRU (or two, for the separate control).

Perform: torque a_t -> linear action encoder -> GRU -> forward head (a small deconvolutional
decoder) predicts the self arm's frame after the action, in pixels. With `grounding="start_frame_change"`
(the default) the GRU starts from the self arm's own first frame, seen by the same CNN as the observe path
(the still frame stacked as a window: the arm at rest) and projected to the hidden state, and the forward
head's output is added to that frame: it predicts how the picture changes from where the arm started. The
start pose is random (+-0.1 rad a joint), which only the start frame tells; and a head that adds to that
frame need not redraw the pixels that never move. Measured (README, "The forward model"): both help, but less
than the forward loss weight; with position actions the actions themselves say where the arm goes, so even
the ungrounded head becomes action-sensitive once trained. `grounding="start_frame"` sets only the start
state; `grounding="none"` is the action-only path of the paper. Pixels rather than a
stop-gradient target embedding because a pixel target is fixed: nothing can collapse, in any
condition (with forward-only training the CNN gets no gradient at all, just as the toy's observe
projection does, so a learnt target embedding would be free to collapse to a constant).
Observe: at step t, the frames t + k for k in `observe_window` (frame t is the state before action
t, frame t+1 the one it produced), stacked on channels, through the CNN encoder -> GRU -> inverse
head regresses a_t. The default (1,) is the frame after the action; (-1, 0, 1) shows the motion around
it (a torque sets an acceleration, visible only across three frames). Frames past either end of the
episode repeat the first or last one. Timestep t means the same in both modes: action a_t.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mirrorlab.agents.core import MirrorCore
from mirrorlab.agents.runs import GROUNDINGS
from mirrorlab.encoders.cnn import FrameDecoder, FrameEncoder, frames_as_targets
from mirrorlab.encoders.vectors import continuous_action_encoder


class StartEncoder(nn.Module):
    """The own start frame [B, 3, S, S] -> the perform path's initial hidden state [B, H], through the
    observe path's CNN (`eyes`, shared: one visual system) with the still frame filling its window.
    With `predict_change` the forward head's output is also added to that frame (`base`), so the head predicts
    how the arm's picture changes from where it started rather than redrawing the whole scene."""

    def __init__(self, eyes: FrameEncoder, embed_dim: int, hidden_size: int, predict_change: bool = False) -> None:
        super().__init__()
        self.eyes = eyes
        self.project = nn.Sequential(nn.Linear(embed_dim, hidden_size), nn.Tanh())
        self.predict_change = predict_change

    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        still = frame[:, None].expand(frame.shape[0], self.eyes.n_frames, *frame.shape[1:])
        return self.project(self.eyes(still))

    def base(self, frame: torch.Tensor) -> torch.Tensor | None:
        """The start frame in the forward head's scale, if the head predicts the change from it."""
        return frames_as_targets(frame) if self.predict_change else None


def build_embodied_core(action_dim: int, frame_size: int, embed_dim: int, hidden_size: int, cnn_channels: int,
                        separate_cores: bool, seed: int, observe_window: tuple[int, ...] = (1,),
                        cnn_strides: tuple[int, ...] = (2, 2, 2), grounding: str = "none") -> MirrorCore:
    """The seed fixes the initialisation, so every condition of one seed starts from the same weights."""
    if grounding not in GROUNDINGS:
        raise ValueError(f"grounding must be one of {GROUNDINGS}, got {grounding!r}")
    torch.manual_seed(seed)
    eyes = FrameEncoder(frame_size, embed_dim, cnn_channels, len(observe_window), cnn_strides)
    core = MirrorCore(
        action_encoder=continuous_action_encoder(action_dim, embed_dim),
        sensory_encoder=eyes,
        input_dim=embed_dim,
        hidden_size=hidden_size,
        forward_head=FrameDecoder(hidden_size, frame_size, cnn_channels),
        inverse_head=nn.Linear(hidden_size, action_dim),
        separate_cores=separate_cores,
    )
    if grounding != "none":  # built last, so an ungrounded core of the same seed has the same weights
        core.start_encoder = StartEncoder(eyes, embed_dim, hidden_size, predict_change=grounding == "start_frame_change")
    return core


def perform_start(model: MirrorCore, perform_frames):
    """What a core's perform path starts from: the own first frame [B, 3, S, S] if it is grounded, else None
    (perform_frames [B, T+1, 3, S, S], torch or numpy)."""
    return perform_frames[:, 0] if model.grounded else None


def window_indices(n_steps: int, observe_window: tuple[int, ...]) -> np.ndarray:
    """[T, K] frame index of each stacked frame of each step: t + k, clamped to the episode's 0..T."""
    return np.clip(np.arange(n_steps)[:, None] + np.asarray(observe_window)[None, :], 0, n_steps)


def observed_input(frames, observe_window: tuple[int, ...]):
    """What the observe path sees at each step t of an episode whose frames are [..., T+1, 3, S, S]:
    [..., T, K, 3, S, S], the frames t + k for k in the window (torch or numpy, without copying the
    frames more than the stacking needs)."""
    index = window_indices(frames.shape[-4] - 1, observe_window)
    if isinstance(frames, torch.Tensor):
        return frames[..., torch.from_numpy(index), :, :, :]
    return frames[..., index, :, :, :]


def forward_prediction(model: MirrorCore, actions: torch.Tensor, perform_frames: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """(the forward head's prediction, its target), both [B, T, 3, S, S]: actions [B, T, A]; perform_frames
    [B, T+1, 3, S, S] uint8 (frame 0 before the first action). The one place the forward objective is defined:
    its batch mean (`forward_loss`) and its per-step errors (`forward_step_errors`) both come from here."""
    predicted = model.perform(actions, perform_start(model, perform_frames)).prediction
    return predicted, frames_as_targets(perform_frames[:, 1:])


def forward_loss(model: MirrorCore, actions: torch.Tensor, perform_frames: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(*forward_prediction(model, actions, perform_frames))


def forward_step_errors(model: MirrorCore, actions: torch.Tensor, perform_frames: torch.Tensor) -> torch.Tensor:
    """Each (episode, step)'s mean squared pixel error [B, T] (reward modulation and replay weigh steps)."""
    predicted, target = forward_prediction(model, actions, perform_frames)
    return (predicted - target).square().flatten(2).mean(2)


def inverse_prediction(model: MirrorCore, watched_frames: torch.Tensor, observe_window: tuple[int, ...]
                       ) -> torch.Tensor:
    """The inverse head's actions [B, T, A] from watched_frames [B, T+1, 3, S, S], the frames of whichever arm
    it learns from: the one place the inverse objective's input is built."""
    return model.observe(observed_input(watched_frames, observe_window)).prediction


def inverse_loss(model: MirrorCore, watched_frames: torch.Tensor, labels: torch.Tensor,
                 observe_window: tuple[int, ...]) -> torch.Tensor:
    return F.mse_loss(inverse_prediction(model, watched_frames, observe_window), labels)


def inverse_step_errors(model: MirrorCore, watched_frames: torch.Tensor, labels: torch.Tensor,
                        observe_window: tuple[int, ...]) -> torch.Tensor:
    """Each (episode, step)'s mean squared action error [B, T]."""
    return (inverse_prediction(model, watched_frames, observe_window) - labels).square().mean(2)
