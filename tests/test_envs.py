"""The MuJoCo arm suite: API checks, determinism, bad input, appearance variants, actor routing."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from mirrorlab import envs
from mirrorlab.envs.scene import CAMERAS

ENV_IDS = envs.ENV_IDS
PLANAR, ARM3D, VIPERX = ENV_IDS
N_JOINTS = {PLANAR: 2, ARM3D: 4, VIPERX: 5}


def rollout(env_id, seed=0, steps=10, actions_seed=1, **kwargs):
    env = gym.make(env_id, **kwargs)
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(actions_seed)
    trace = [(obs, info)]
    for _ in range(steps):
        obs, _, _, _, info = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
        trace.append((obs, info))
    env.close()
    return trace


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("obs_mode", ["state", "both"])
def test_check_env_gymnasium_and_sb3(env_id, obs_mode):
    env = gym.make(env_id, obs_mode=obs_mode, render_mode="rgb_array", frame_size=64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gym_check_env(env.unwrapped, skip_render_check=False)
        sb3_check_env(env.unwrapped, warn=False)
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_and_actions_give_bit_identical_states_and_frames(env_id):
    a = rollout(env_id, obs_mode="both", seed=7)
    b = rollout(env_id, obs_mode="both", seed=7)
    for (obs_a, info_a), (obs_b, info_b) in zip(a, b):
        assert np.array_equal(obs_a["pixels"], obs_b["pixels"])
        assert obs_a["state"].tobytes() == obs_b["state"].tobytes()
        for key in ("self_joint_angles", "other_joint_angles", "self_joint_velocities"):
            assert info_a[key].tobytes() == info_b[key].tobytes()
    c = rollout(env_id, obs_mode="state", seed=8)
    assert not np.array_equal(a[0][0]["state"], c[0][0])  # the seed matters


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_spaces_and_observation_layout(env_id):
    env = gym.make(env_id, obs_mode="both", frame_size=32)
    obs, info = env.reset(seed=0)
    n = env.action_space.shape[0]
    assert n == N_JOINTS[env_id]
    assert env.observation_space.contains(obs)
    assert obs["pixels"].shape == (32, 32, 3) and obs["pixels"].dtype == np.uint8
    u = env.unwrapped
    d = u.target_dim
    state = obs["state"]
    assert state.shape == (2 * n + 2 * d,) and state.dtype == np.float32
    np.testing.assert_allclose(state[:n], u.physics.joint_angles("self"), rtol=1e-6)
    np.testing.assert_allclose(state[2 * n:2 * n + d], u.physics.target_in_base_frame("self")[:d], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(state[2 * n + d:]), info["distance"], rtol=1e-4, atol=1e-6)
    for arm in ("self", "other"):
        for part in ("joint_angles", "joint_velocities", "fingertip_pos", "target_pos"):
            assert f"{arm}_{part}" in info
    # dm_control suite_test: no constant elements across random initial states.
    states = np.stack([env.reset(seed=s)[0]["state"] for s in range(5)])
    assert np.all(states.std(axis=0) > 0)
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_observations_do_not_share_memory(env_id):
    env = gym.make(env_id, obs_mode="both", render_mode="rgb_array")
    obs1, info1 = env.reset(seed=0)
    obs2, _, _, _, info2 = env.step(env.action_space.sample())
    frame = env.render()
    assert not np.shares_memory(obs1["pixels"], obs2["pixels"])
    assert not np.shares_memory(obs2["pixels"], frame)
    assert not np.shares_memory(obs1["state"], obs2["state"])
    assert not np.shares_memory(info1["self_joint_angles"], info2["self_joint_angles"])
    assert not np.shares_memory(info2["self_joint_angles"], env.unwrapped.data.qpos)
    np.testing.assert_array_equal(obs2["pixels"], frame)
    env.close()


@pytest.mark.parametrize("kwargs, expected", [
    ({"actor": "me"}, "'self', 'other'"),
    ({"other_appearance": "blue"}, "'identical', 'recolored', 'mirrored', 'morphology', 'held_out_color'"),
    ({"obs_mode": "rgb"}, "'state', 'pixels', 'both'"),
    ({"camera": "top"}, "'self_view', 'other_view', 'third_person', 'scene'"),
    ({"frame_size": 63}, "16, 32, 48"),
    ({"frame_size": 0}, "16, 32, 48"),
    ({"frame_size": "64"}, "16, 32, 48"),
])
def test_bad_kwargs_fail_at_construction_listing_valid_values(kwargs, expected):
    with pytest.raises(ValueError) as err:
        gym.make(PLANAR, **kwargs)
    assert expected in str(err.value)


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("bad", ["nan", "inf", "short", "long", "matrix", "text"])
def test_bad_actions_raise_and_leave_state_untouched(env_id, bad):
    env = gym.make(env_id)
    env.reset(seed=0)
    n = env.action_space.shape[0]
    action = {"nan": np.full(n, np.nan), "inf": np.r_[np.inf, np.zeros(n - 1)],
              "short": np.zeros(n - 1), "long": np.zeros(n + 1), "matrix": np.zeros((1, n)),
              "text": ["a"] * n}[bad]
    u = env.unwrapped
    before = (u.data.qpos.copy(), u.data.qvel.copy(), u.data.ctrl.copy(), u.data.time)
    with pytest.raises(ValueError, match="action"):
        env.step(action)
    np.testing.assert_array_equal(u.data.qpos, before[0])
    np.testing.assert_array_equal(u.data.qvel, before[1])
    np.testing.assert_array_equal(u.data.ctrl, before[2])
    assert u.data.time == before[3]
    env.step(np.zeros(n))  # still usable
    env.close()


def test_unknown_render_mode_is_rejected():
    from mirrorlab.envs.reach import PlanarReachEnv
    with pytest.raises(ValueError, match="None, 'rgb_array'"):
        PlanarReachEnv(render_mode="human")


def test_unknown_camera_in_render_camera_is_rejected():
    env = gym.make(PLANAR)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="self_view"):
        env.unwrapped.render_camera("nope")
    for name in CAMERAS:
        assert env.unwrapped.render_camera(name, size=32).shape == (32, 32, 3)
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_actor_other_moves_only_the_other_arm(env_id):
    for actor, idle in (("self", "other"), ("other", "self")):
        trace = rollout(env_id, actor=actor, steps=8)
        first, last = trace[0][1], trace[-1][1]
        assert np.array_equal(first[f"{idle}_joint_angles"], last[f"{idle}_joint_angles"])
        assert np.all(last[f"{idle}_joint_velocities"] == 0)
        assert np.abs(last[f"{actor}_joint_angles"] - first[f"{actor}_joint_angles"]).max() > 1e-3


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("appearance", ["identical", "mirrored"])
def test_other_replays_self_episode_from_seed_and_actions(env_id, appearance):
    """Paired episodes: seed + actions on the other arm repeat the self arm's episode."""
    perform = rollout(env_id, actor="self", other_appearance=appearance, steps=10)
    observe = rollout(env_id, actor="other", other_appearance=appearance, steps=10)
    for (obs_p, info_p), (obs_o, info_o) in zip(perform, observe):
        np.testing.assert_allclose(info_p["self_joint_angles"], info_o["other_joint_angles"], atol=1e-9)
        np.testing.assert_allclose(obs_p, obs_o, atol=1e-5)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_reset_options_set_target_and_joint_angles(env_id):
    env = gym.make(env_id)
    u = env.unwrapped
    d = u.target_dim
    target = np.array([0.05, 0.15, 0.12][:d])
    qpos = np.array(u.arm_spec.init_qpos) + 0.05
    env.reset(seed=0, options={"target": target, "qpos": qpos})
    for arm in ("self", "other"):
        np.testing.assert_allclose(u.physics.target_in_base_frame(arm)[:d], target, atol=1e-12)
    np.testing.assert_allclose(u.physics.joint_angles("self"), qpos)
    with pytest.raises(ValueError, match="options"):
        env.reset(seed=0, options={"target": np.zeros(d + 1)})
    with pytest.raises(ValueError, match="goal"):
        env.reset(seed=0, options={"goal": target})
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_appearance_variants_really_differ(env_id):
    def first_frame(appearance, camera="other_view"):
        env = gym.make(env_id, actor="other", other_appearance=appearance, obs_mode="pixels", camera=camera)
        turned = np.array(env.unwrapped.arm_spec.init_qpos) + np.r_[0.5, np.zeros(env.action_space.shape[0] - 1)]
        frame, _ = env.reset(seed=3, options={"qpos": turned})  # base turned: a pose off the sagittal plane
        tip = env.unwrapped.physics.fingertip_in_base_frame("other")
        env.close()
        return frame, tip

    identical, tip_identical = first_frame("identical")
    for appearance in ("recolored", "mirrored", "morphology"):
        frame, _ = first_frame(appearance)
        assert np.abs(frame.astype(int) - identical).sum() > 0, appearance
    # Mirrored: the same pose reflected, so the other arm's view is the identical view flipped.
    mirrored, tip_mirrored = first_frame("mirrored")
    np.testing.assert_allclose(tip_mirrored, tip_identical, atol=1e-12)  # mirrored base frame
    flip_error = np.abs(mirrored[:, ::-1].astype(int) - identical).mean()
    assert flip_error < np.abs(mirrored.astype(int) - identical).mean()
    # Morphology: same joint angles, different link lengths, so the fingertip is elsewhere.
    _, tip_morph = first_frame("morphology")
    assert np.linalg.norm(tip_morph - tip_identical) > 0.01
    # Self's own view does not depend on how the other looks (recolour only).
    self_identical, _ = first_frame("identical", camera="self_view")
    self_recolored, _ = first_frame("recolored", camera="self_view")
    assert np.abs(self_identical.astype(int) - self_recolored).mean() < 0.5


def test_camera_default_follows_actor():
    assert gym.make(PLANAR, actor="self").unwrapped.camera == "self_view"
    assert gym.make(PLANAR, actor="other").unwrapped.camera == "other_view"
    assert gym.make(PLANAR, actor="other", camera="scene").unwrapped.camera == "scene"


def test_episode_lengths_are_registered():
    for env_id, steps in envs.MAX_EPISODE_STEPS.items():
        assert gym.spec(env_id).max_episode_steps == steps


def test_the_task_can_be_removed_from_the_acting_arms_observation_and_pictures():
    """What imitation needs: the self arm's state carries no target and no frame shows its target."""
    import gymnasium as gym

    full = gym.make("mirrorlab/PlanarReach-v0", actor="self", frame_size=64)
    blind = gym.make("mirrorlab/PlanarReach-v0", actor="self", frame_size=64, observe_target=False,
                     visible_targets="other")
    try:
        obs_full, _ = full.reset(seed=3)
        obs_blind, _ = blind.reset(seed=3)
        assert obs_blind.shape == (4,) and blind.observation_space.shape == (4,)
        np.testing.assert_array_equal(obs_blind, obs_full[:4])  # angles and velocities only
        target_colour = np.array([0.15, 0.75, 0.25]) * 255
        greenish = lambda img: (np.abs(img.astype(float) - target_colour).sum(-1) < 60).sum()  # noqa: E731
        assert greenish(full.unwrapped.render_camera("self_view")) > 5
        assert greenish(blind.unwrapped.render_camera("self_view")) == 0
        assert greenish(blind.unwrapped.render_camera("other_view")) > 5  # the other's target stays in view
        # Hidden is not gone: success still means reaching it.
        assert full.unwrapped.physics.target_pos("self").tolist() == blind.unwrapped.physics.target_pos("self").tolist()
    finally:
        full.close()
        blind.close()
