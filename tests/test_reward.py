"""Reward-modulated learning (agents.reward and the trainer's per-step path): weights computed by hand, a step
without progress that teaches nothing, and the unmodulated loss left as it was."""

import dataclasses

import pytest
import torch
from torch.utils.data import default_collate

from mirrorlab.agents.batches import EpisodeItems
from mirrorlab.agents.conditions import get_condition
from mirrorlab.agents.reward import modulation_weights, reward_weights, step_progress, weighted_mean
from mirrorlab.agents.runs import TrainConfig, build_core
from mirrorlab.agents.training import embodied_batch_loss, step_batch_loss
from mirrorlab.envs.paired import PairedDataset
from mirrorlab.errors import UserError
from tests.conftest import TINY_TRAIN as TINY

TINY_TRAIN = TrainConfig(**TINY)
SHARED = get_condition("shared")


def test_weights_are_the_rectified_progress_over_its_batch_mean_mixed_by_strength():
    distance = torch.tensor([[1.0, 0.9, 0.9, 1.0]])  # progress 0.1, then none, then 0.1 away from the target
    assert torch.allclose(step_progress(distance), torch.tensor([[0.1, 0.0, 0.0]]))
    progress = step_progress(distance)
    assert torch.allclose(modulation_weights(progress, 1.0), torch.tensor([[3.0, 0.0, 0.0]]))
    assert torch.allclose(modulation_weights(progress, 0.5), torch.tensor([[2.0, 0.5, 0.5]]))
    assert torch.equal(modulation_weights(progress, 0.0), torch.ones(1, 3))
    assert torch.equal(modulation_weights(torch.zeros(2, 3), 1.0), torch.zeros(2, 3))  # nothing progressed
    errors = torch.tensor([[1.0, 5.0, 7.0]])
    assert weighted_mean(errors, modulation_weights(progress, 1.0)).item() == pytest.approx(1.0)  # 3 x 1 / 3
    assert weighted_mean(errors, None).item() == pytest.approx(13 / 3)


def test_self_and_other_read_their_own_side_and_babbling_has_no_other():
    batch = {"perform": {"distance": torch.tensor([[1.0, 0.5, 0.5]])},
             "observe": {"distance": torch.tensor([[1.0, 1.0, 0.5]])}}
    assert torch.equal(reward_weights(batch, "self", 1.0), torch.tensor([[2.0, 0.0]]))
    assert torch.equal(reward_weights(batch, "other", 1.0), torch.tensor([[0.0, 2.0]]))
    assert reward_weights(batch, "none", 1.0) is None
    assert reward_weights({"perform": batch["perform"]}, "other", 1.0) is None


def _batch(dataset, ids):
    items = EpisodeItems(dataset, "demo")
    try:
        return default_collate([items[i] for i in ids])
    finally:
        items.close()


def _model(dataset, config):
    with PairedDataset(dataset) as data:
        from mirrorlab.agents.runs import data_signature
        return build_core(config, data_signature(data.header))


def _grads(model, config, batch):
    model.zero_grad(set_to_none=True)
    loss, _ = embodied_batch_loss(model, SHARED, config, "demo", batch, batch["actions"])
    loss.backward()
    return [p.grad.clone() for p in model.parameters() if p.grad is not None]


def _scrambled_first_episode(batch):
    """The batch with episode 0's frames and labels replaced by noise (episode 1 untouched)."""
    out = {**batch, "actions": batch["actions"].clone(), "perform": dict(batch["perform"]),
           "observe": dict(batch["observe"])}
    gen = torch.Generator().manual_seed(3)
    out["actions"][0] = torch.randn(out["actions"][0].shape, generator=gen)
    for side in ("perform", "observe"):
        frames = out[side]["frames"].clone()
        frames[0] = torch.randint(0, 256, frames[0].shape, generator=gen, dtype=torch.uint8)
        out[side]["frames"] = frames
    return out


def test_an_episode_without_progress_contributes_no_gradient(tiny_dataset):
    config = dataclasses.replace(TINY_TRAIN, reward_modulation="self", reward_strength=1.0)
    batch = _batch(tiny_dataset, [0, 1])
    distance = batch["perform"]["distance"].clone()
    distance[0] = distance[0, 0]  # episode 0: the self arm never gets closer (zero reward at every step)
    distance[1] = torch.linspace(0.3, 0.0, distance.shape[1])  # episode 1: steady progress
    batch["perform"] = {**batch["perform"], "distance": distance}
    model = _model(tiny_dataset, config)
    scrambled = _scrambled_first_episode(batch)
    same = zip(_grads(model, config, batch), _grads(model, config, scrambled))
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-9) for a, b in same)
    # The same scrambling does change the gradient without modulation: the check above can fail.
    plain = dataclasses.replace(config, reward_modulation="none")
    changed = zip(_grads(model, plain, batch), _grads(model, plain, scrambled))
    assert not all(torch.allclose(a, b, rtol=1e-5, atol=1e-9) for a, b in changed)


def test_the_unweighted_step_path_is_the_batch_mean_path_and_the_default_loss_is_embodieds(tiny_dataset):
    from mirrorlab.agents.conditions import training_loss
    from mirrorlab.agents.embodied import forward_loss, inverse_loss

    batch = _batch(tiny_dataset, [0, 1, 2])
    model = _model(tiny_dataset, TINY_TRAIN)
    loss, parts = embodied_batch_loss(model, SHARED, TINY_TRAIN, "demo", batch, batch["actions"])
    # The default loss is agents.embodied's, bit for bit: neither option touches it.
    expected = training_loss(SHARED, forward_loss(model, batch["actions"], batch["perform"]["frames"]),
                             inverse_loss(model, batch["observe"]["frames"], batch["actions"],
                                          tuple(TINY_TRAIN.observe_window)),
                             TINY_TRAIN.forward_weight, TINY_TRAIN.inverse_weight)
    assert torch.equal(loss, expected)
    step_loss, step_parts, surprise = step_batch_loss(model, SHARED, TINY_TRAIN, "demo", batch, batch["actions"])
    assert step_loss.item() == pytest.approx(loss.item(), rel=1e-5)
    assert step_parts == pytest.approx(parts, rel=1e-5)
    assert surprise.shape == (3,) and surprise.mean().item() == pytest.approx(loss.item(), rel=1e-5)
    # Strength 0 weighs every step 1 whatever the reward.
    zero = dataclasses.replace(TINY_TRAIN, reward_modulation="other", reward_strength=0.0)
    assert embodied_batch_loss(model, SHARED, zero, "demo", batch, batch["actions"])[0].item() == \
        pytest.approx(loss.item(), rel=1e-5)


@pytest.mark.parametrize("field, value, message", [
    ("reward_modulation", "dopamine", "reward_modulation must be one of none, self, other"),
    ("reward_strength", 1.5, r"reward_strength must be in \[0, 1\]"),
    ("reward_strength", -0.1, r"reward_strength must be in \[0, 1\]"),
])
def test_bad_reward_options_are_one_clear_line(field, value, message):
    with pytest.raises(UserError, match=message) as err:
        dataclasses.replace(TINY_TRAIN, **{field: value}).validate()
    assert "\n" not in str(err.value)
