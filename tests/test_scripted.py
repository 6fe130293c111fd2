"""The scripted reaching controller: Meta-World style success bar on every env, either arm."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from mirrorlab import envs
from mirrorlab.agents.scripted import ScriptedReacher

EPISODES = 10


def success_rate(env_id, policy, actor="self", other_appearance="identical", seeds=range(EPISODES)):
    env = gym.make(env_id, actor=actor, other_appearance=other_appearance)
    controller = ScriptedReacher(env)
    successes = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        done = False
        while not done:
            if policy == "scripted":
                action, state = controller.predict(obs)
                assert state is None and env.action_space.contains(action)
            else:
                action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        successes.append(info["is_success"])  # an episode succeeds when its final step does
    env.close()
    return float(np.mean(successes))


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
@pytest.mark.parametrize("actor, appearance", [("self", "identical"), ("other", "mirrored"),
                                               ("other", "morphology")])
def test_scripted_reacher_succeeds_in_80_percent(env_id, actor, appearance):
    assert success_rate(env_id, "scripted", actor, appearance) >= 0.8


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_random_actions_do_much_worse(env_id):
    assert success_rate(env_id, "random") <= 0.3


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_scripted_reacher_reaches_90_percent_of_100_held_out_targets(env_id):
    """The demonstrator's bar, on targets and starts drawn from seeds 1000-1099 (the tests above use 0-9)."""
    assert success_rate(env_id, "scripted", seeds=range(1000, 1100)) >= 0.9
