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
    from mirrorlab.agents.collection import CollectConfig
    from mirrorlab.experiments.stages.collection import collect

    out = tmp_path_factory.mktemp("data") / "planar"
    collect(dataclasses.replace(CollectConfig(), **TINY_COLLECT), out, show_progress=False)
    return out


def train_tiny(data, run, **overrides):
    from mirrorlab.agents.runs import TrainConfig
    from mirrorlab.agents.training import train_run

    train_run(TrainConfig(**{**TINY_TRAIN, **overrides}), data, run)
    return run


# The cheapest analysis settings that still run every measure (tests of the measures use their own data).
TINY_ANALYSIS = dict(n_permutations=500, decode_folds=2, decode_shuffles=2, lag_permutations=20, align_permutations=20,
                     congruence_permutations=20, cca_components=3)


@pytest.fixture(scope="session")
def analyzed_runs(tmp_path_factory):
    """Two tiny runs (shared, separate) on a tiny dataset, analyzed: (run folders, analysis folder)."""
    from mirrorlab.agents.collection import CollectConfig
    from mirrorlab.experiments.stages.collection import collect
    from mirrorlab.experiments.stages.measurement import AnalyzeConfig, analyze

    root = tmp_path_factory.mktemp("analyzed")
    data = root / "data"
    collect(dataclasses.replace(CollectConfig(), **TINY_COLLECT), data, show_progress=False)
    runs = [train_tiny(data, root / c, condition=c, epochs=1) for c in ("shared", "separate")]
    analyze(runs, root / "analysis", AnalyzeConfig(**TINY_ANALYSIS))
    return runs, root / "analysis"
