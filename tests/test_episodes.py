"""mirrorlab.envs.episodes: the one rollout loop records exactly what the arm did."""

import gymnasium as gym
import numpy as np

import mirrorlab.envs  # noqa: F401
from mirrorlab.envs.episodes import replay, rollout


def test_rollout_clips_records_and_replays_bit_for_bit():
    env = gym.make("mirrorlab/PlanarReach-v0", actor="other", frame_size=16)
    try:
        rec = rollout(env, 7, lambda obs, t: np.full(2, 2.0 if t % 2 else -3.0), camera="other_view", n_steps=3)
        assert rec["actions"].shape == (3, 2) and rec["actions"].dtype == np.float32
        assert set(np.unique(rec["actions"])) == {-1.0, 1.0}  # clipped before it was executed and recorded
        assert rec["frames"].shape == (4, 16, 16, 3) and rec["state"].shape[0] == 4
        assert rec["arm"] == "other" and rec["seed"] == 7 and rec["reward"].shape == (3,)
        again = replay(env, 7, rec["actions"], camera="other_view")
        for name in ("frames", "joint_angles", "joint_velocities", "fingertip_pos", "distance", "state"):
            np.testing.assert_array_equal(again[name], rec[name], err_msg=name)
        plain = rollout(env, 7, lambda obs, t: rec["actions"][t], n_steps=3)
        assert "frames" not in plain and plain["success"] == rec["success"]
    finally:
        env.close()
