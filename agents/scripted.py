"""A scripted reaching controller for either arm: damped-least-squares IK step + joint-space PD.

It reads the true state through the env's physics accessors (it is an oracle, used as the
fallback demonstrator and as a test of the environments), and answers in SB3's `predict` style.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


# How far the controller commands each step, per arm model, as a multiple of the IK step `dq`. The
# published ViperX's servos are heavily damped (shoulder: 20 N m s/rad against kp 265 N m/rad), so one
# env step closes only a fraction of a commanded offset; commanding the whole step keeps it on time.
POSITION_GAIN = {"vx300s": 1.0}
DEFAULT_POSITION_GAIN = 0.3


class ScriptedReacher:
    """`ScriptedReacher(env).predict(obs) -> (action, None)` drives `arm` to its target.

    Each call: e = target - fingertip (world), dq = J^T (J J^T + damping^2 I)^-1 e (the joint
    step that closes e, damped near singularities), then for torque actions
    action = clip(kp * dq - kd * qdot, -1, 1), and for position actions (a joint-target offset of
    `position_scale` rad per unit) action = clip(position_gain * dq / position_scale, -1, 1).
    """

    def __init__(self, env: gym.Env, arm: str | None = None, kp: float = 20.0, kd: float = 1.0,
                 damping: float = 0.02, position_gain: float | None = None):
        self.env = env.unwrapped
        self.arm = self.env.actor if arm is None else arm
        self.kp, self.kd, self.damping = float(kp), float(kd), float(damping)
        if position_gain is None:  # the arm's own (POSITION_GAIN), else 0.3
            position_gain = POSITION_GAIN.get(self.env.arm_spec.name, DEFAULT_POSITION_GAIN)
        self.position_gain = float(position_gain)

    def action(self, goal: np.ndarray | None = None) -> np.ndarray:
        """The next action toward the arm's target, or toward `goal` (a world position) when given: the
        controller of an agent that has read a goal from elsewhere (imitation's "what, then how")."""
        physics = self.env.physics
        error = physics.fingertip_to_target(self.arm) if goal is None else goal - physics.fingertip_pos(self.arm)
        jac = physics.fingertip_jacobian(self.arm)
        gram = jac @ jac.T + self.damping**2 * np.eye(3)
        dq = jac.T @ np.linalg.solve(gram, error)
        if self.env.action_mode == "position":
            return np.clip(self.position_gain * dq / self.env.position_scale, -1.0, 1.0).astype(np.float32)
        torque = self.kp * dq - self.kd * physics.joint_velocities(self.arm)
        return np.clip(torque, -1.0, 1.0).astype(np.float32)

    def predict(self, observation: Any = None, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, None]:
        """SB3's signature; the observation is ignored (the controller reads the true state)."""
        return self.action(), None
