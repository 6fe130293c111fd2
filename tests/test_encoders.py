"""mirrorlab.encoders: frame encoder/decoder shapes, stacked frames, DrQ's random shift."""

import pytest
import torch

from mirrorlab.encoders.cnn import FrameDecoder, FrameEncoder, random_shift
from mirrorlab.encoders.vectors import continuous_action_encoder, discrete_action_encoder, sensory_vector_encoder


def test_cnn_shapes_stacked_frames_and_bad_input():
    enc, dec = FrameEncoder(32, 10, 4), FrameDecoder(7, 32, 4)
    frames = torch.randint(0, 255, (2, 5, 1, 3, 32, 32), dtype=torch.uint8)
    assert enc(frames).shape == (2, 5, 10)
    assert dec(torch.zeros(2, 5, 7)).shape == (2, 5, 3, 32, 32)
    stacked = FrameEncoder(32, 10, 4, n_frames=3, strides=(2, 1, 2, 1))
    assert stacked(torch.zeros(2, 5, 3, 3, 32, 32)).shape == (2, 5, 10)
    with pytest.raises(ValueError, match="multiple of 16"):
        FrameEncoder(30, 10)
    with pytest.raises(ValueError, match="expected frames"):
        enc(torch.zeros(2, 3, 16, 16))
    with pytest.raises(ValueError, match="expected frames"):
        stacked(torch.zeros(2, 5, 1, 3, 32, 32))


def test_random_shift_moves_each_episode_rigidly_and_reproducibly():
    frames = torch.randint(0, 255, (4, 6, 3, 16, 16), dtype=torch.uint8)
    a = random_shift(frames, 2, torch.Generator().manual_seed(0))
    b = random_shift(frames, 2, torch.Generator().manual_seed(0))
    assert a.dtype == torch.uint8 and a.shape == frames.shape and torch.equal(a, b)
    assert not torch.equal(a, frames)
    for e in range(4):  # the interior of every frame of an episode moved by the same (dy, dx)
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if torch.equal(a[e, :, :, 2:-2, 2:-2], frames[e, :, :, 2 - dy:14 - dy, 2 - dx:14 - dx])]
        assert len(found) >= 1
    assert torch.equal(random_shift(frames, 0, torch.Generator()), frames)


def test_vector_encoders_are_the_papers_shapes():
    assert discrete_action_encoder(6, 96)(torch.zeros(2, 12, dtype=torch.long)).shape == (2, 12, 96)
    assert sensory_vector_encoder(16, 96)(torch.zeros(2, 12, 16)).shape == (2, 12, 96)
    assert continuous_action_encoder(2, 64)(torch.zeros(2, 12, 2)).shape == (2, 12, 64)
