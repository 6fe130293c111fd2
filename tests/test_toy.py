import numpy as np
import pytest

from mirrorlab.envs.toy import ToySequences, make_effects, make_sequences


def test_each_sensory_sequence_is_generated_by_its_own_actions():
    rng = np.random.default_rng(0)
    effects = make_effects(6, 16, rng)
    data = make_sequences(50, 12, effects, 0.9, 0.05, rng)
    prev = np.concatenate([np.zeros((50, 1, 16)), data.sensory[:, :-1]], axis=1)
    residual = data.sensory - 0.9 * prev - effects[data.actions]
    # What is left is the N(0, 0.05^2) noise: pairing holds by construction.
    assert abs(residual.std() - 0.05) < 0.005
    # Re-pairing with another sequence's actions leaves residuals of the size of the effects.
    wrong = data.sensory - 0.9 * prev - effects[np.roll(data.actions, 1, axis=0)]
    assert wrong.std() > 10 * residual.std()


def test_actions_cover_all_tokens_uniformly():
    rng = np.random.default_rng(1)
    data = make_sequences(2000, 12, make_effects(6, 16, rng), 0.9, 0.05, rng)
    counts = np.bincount(data.actions.ravel(), minlength=6)
    assert counts.min() > 0.9 * counts.mean()
    assert data.actions.dtype == np.int64 and data.sensory.dtype == np.float32


def test_same_seed_same_world():
    a = make_sequences(5, 4, make_effects(3, 2, np.random.default_rng(7)), 0.9, 0.05, np.random.default_rng(8))
    b = make_sequences(5, 4, make_effects(3, 2, np.random.default_rng(7)), 0.9, 0.05, np.random.default_rng(8))
    assert np.array_equal(a.actions, b.actions) and np.array_equal(a.sensory, b.sensory)


def test_unpaired_shapes_are_rejected():
    with pytest.raises(ValueError, match="not paired"):
        ToySequences(actions=np.zeros((3, 12), dtype=np.int64), sensory=np.zeros((4, 12, 16), dtype=np.float32))
