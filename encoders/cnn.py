"""A small convolutional frame encoder (and its mirror-image decoder) for square RGB frames.

Sized for 32-64 px MuJoCo frames on CPU: three stride-2 convolutions, then a linear map to the
embedding. Pixels are scaled as `x / 255 - 0.5` and weights are orthogonally initialised, as in
DrQ-v2. Both modules accept any leading batch shape: [..., 3, H, W] <-> [..., E].
"""

from __future__ import annotations

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
    """uint8 (or float in [0, 255]) frames [..., 3, S, S] -> embeddings [..., embed_dim]."""

    def __init__(self, frame_size: int, embed_dim: int, channels: int = 32) -> None:
        super().__init__()
        _check_size(frame_size)
        self.frame_size = frame_size
        self.convs = nn.Sequential(
            nn.Conv2d(3, channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(),
        )
        self.project = nn.Sequential(nn.Linear(channels * (frame_size // 8) ** 2, embed_dim), nn.LayerNorm(embed_dim))
        self.apply(_orthogonal_init)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        lead = frames.shape[:-3]
        if tuple(frames.shape[-3:]) != (3, self.frame_size, self.frame_size):
            raise ValueError(f"expected frames [..., 3, {self.frame_size}, {self.frame_size}], got "
                             f"{tuple(frames.shape)}")
        x = frames.reshape(-1, *frames.shape[-3:]).float() / 255.0 - 0.5
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


def frames_as_targets(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames in the decoder's output scale."""
    return frames.float() / 255.0 - 0.5
