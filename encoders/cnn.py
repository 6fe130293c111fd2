"""A small convolutional frame encoder (and its mirror-image decoder) for square RGB frames.

Sized for 32-64 px MuJoCo frames on CPU: 3x3 convolutions with the given strides (stride 1 keeps the
resolution that sub-pixel motion needs), then a linear map and LayerNorm to the embedding. Several
frames of one step can be stacked on the channel axis (a torque sets an acceleration, visible only
across >= 3 frames, as DrQ-v2 stacks three). Pixels are scaled as `x / 255 - 0.5` and weights are
orthogonally initialised, as in DrQ-v2, whose random-shift augmentation is `random_shift` here.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _orthogonal_init(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.orthogonal_(module.weight.data, gain=nn.init.calculate_gain("relu"))
        if module.bias is not None:
            module.bias.data.fill_(0.0)


def _check_size(frame_size: int) -> None:
    if frame_size % 16 or frame_size < 16:
        raise ValueError(f"frame_size must be a multiple of 16 (>= 16), got {frame_size}")


class FrameEncoder(nn.Module):
    """uint8 (or float in [0, 255]) frames [..., F, 3, S, S] (F = `n_frames` stacked) -> [..., embed_dim]."""

    def __init__(self, frame_size: int, embed_dim: int, channels: int = 32, n_frames: int = 1,
                 strides: tuple[int, ...] = (2, 2, 2)) -> None:
        super().__init__()
        _check_size(frame_size)
        if n_frames < 1 or not strides or min(strides) < 1:
            raise ValueError(f"need n_frames >= 1 and strides >= 1, got {n_frames} and {strides}")
        self.frame_size, self.n_frames = frame_size, n_frames
        layers, cin, side = [], 3 * n_frames, frame_size
        for stride in strides:
            layers += [nn.Conv2d(cin, channels, 3, stride=stride, padding=1), nn.ReLU()]
            cin, side = channels, math.ceil(side / stride)
        self.convs = nn.Sequential(*layers, nn.Flatten())
        self.project = nn.Sequential(nn.Linear(channels * side * side, embed_dim), nn.LayerNorm(embed_dim))
        self.apply(_orthogonal_init)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        expected = (self.n_frames, 3, self.frame_size, self.frame_size)
        if tuple(frames.shape[-4:]) != expected:
            raise ValueError(f"expected frames [..., {', '.join(map(str, expected))}], got {tuple(frames.shape)}")
        lead = frames.shape[:-4]
        x = scale_pixels(frames.reshape(-1, 3 * self.n_frames, self.frame_size, self.frame_size))
        return self.project(self.convs(x)).reshape(*lead, -1)


class FrameDecoder(nn.Module):
    """Vectors [..., in_dim] -> predicted frames [..., 3, S, S] in the encoder's scale (x / 255 - 0.5)."""

    def __init__(self, in_dim: int, frame_size: int, channels: int = 32) -> None:
        super().__init__()
        _check_size(frame_size)
        self.frame_size, self.channels = frame_size, channels
        self.expand = nn.Sequential(nn.Linear(in_dim, channels * (frame_size // 8) ** 2), nn.ReLU())
        self.deconvs = nn.Sequential(
            nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(channels, 3, 4, stride=2, padding=1),
        )
        self.apply(_orthogonal_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        s = self.frame_size // 8
        y = self.deconvs(self.expand(x.reshape(-1, x.shape[-1])).reshape(-1, self.channels, s, s))
        return y.reshape(*lead, 3, self.frame_size, self.frame_size)


def scale_pixels(frames: torch.Tensor) -> torch.Tensor:
    """Pixels as the encoder sees them and the decoder predicts them: x / 255 - 0.5, in float32.

    uint8 frames are converted once and scaled in place on that fresh copy: the same two float32
    roundings per element as `frames.float() / 255 - 0.5`, so bit for bit the same values, without
    the two temporaries (the conversion dominates a small CNN's input cost). Float input is never
    modified in place (it may be the caller's, or need a gradient)."""
    if frames.dtype == torch.uint8:
        return frames.to(torch.float32).div_(255.0).sub_(0.5)
    return frames.float() / 255.0 - 0.5


def frames_as_targets(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames in the decoder's output scale."""
    return scale_pixels(frames)


def random_shift(frames: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """DrQ's augmentation: pad by replicating the border, crop back at a random integer offset.

    frames [B, ..., 3, S, S]; one offset per leading index b, shared by everything under it (every
    timestep and stacked frame of an episode), so the motion between frames is untouched.
    """
    if pad <= 0:
        return frames
    B, S = frames.shape[0], frames.shape[-1]
    offsets = torch.randint(0, 2 * pad + 1, (B, 2), generator=generator).to(frames.device)
    # Replicate-padding then cropping at (y, x) reads row clamp(y - pad + i) and column clamp(x - pad + j):
    # one gather of those pixels, in the frames' own dtype, without a padded float copy of the batch.
    grid = torch.arange(S, device=frames.device)[None, :]
    rows = (grid + offsets[:, :1] - pad).clamp_(0, S - 1)
    cols = (grid + offsets[:, 1:] - pad).clamp_(0, S - 1)
    index = (rows[:, :, None] * S + cols[:, None, :]).reshape(B, 1, S * S)
    flat = frames.reshape(B, -1, S * S)
    return flat.gather(2, index.expand(B, flat.shape[1], S * S)).reshape(frames.shape)
