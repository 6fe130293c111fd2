"""Test-wide settings: tests run two at a time (pytest -n 2) on 2 cores, so BLAS and torch get one
thread each; oversubscribed BLAS threads spin and make numpy-heavy tests tens of times slower."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

torch.set_num_threads(1)
threadpool_limits(limits=1)


import dataclasses  # noqa: E402

import pytest  # noqa: E402

# The smallest paired dataset and core that exercise the whole embodied pipeline in seconds.
TINY_COLLECT = dict(episodes=10, babble=3, frame_size=16, episodes_per_shard=6, workers=1, verify_episodes=1)
TINY_TRAIN = dict(embed_dim=8, hidden_size=12, cnn_channels=4, batch_size=3, epochs=2, test_fraction=0.5)


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from experiments.collect import CollectConfig, collect

    out = tmp_path_factory.mktemp("data") / "planar"
    collect(dataclasses.replace(CollectConfig(), **TINY_COLLECT), out, show_progress=False)
    return out


def train_tiny(data, run, **overrides):
    from experiments.train import TrainConfig, train

    train(TrainConfig(**{**TINY_TRAIN, **overrides}), data, run, show_progress=False)
    return run
