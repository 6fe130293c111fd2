"""One episode of an arm env, recorded: the single rollout loop of the project.

Collection (both sides of a paired episode), pairing verification, imitation, demonstrator
evaluation, rendering and the perform-vs-observe videos all run episodes through `rollout`, so an
episode means the same thing everywhere: `reset(seed)`, then `n_steps` actions from `act(obs, t)`,
each clipped to the action space before it is executed *and* before it is recorded (what is stored
is what the arm did). Every env an episode runs in is made by `make_arm_env`, which takes env ids only
from the registered `mirrorlab/...` ids: an id read from a file (`module:Env-v0`) would otherwise make
gymnasium import that module before anything is checked.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from mirrorlab.errors import UserError

Actor = Callable[[Any, int], np.ndarray]


def check_env_id(env_id: Any, where: str) -> str:
    """An env id that is one of the registered `mirrorlab/...` ids (never a `module:Env` path to import)."""
    from mirrorlab import envs

    if not isinstance(env_id, str) or env_id not in envs.ENV_IDS:
        raise UserError(f"{where}: env id {str(env_id)[:80]!r} is not a mirrorlab env; expected one of "
                        f"{', '.join(envs.ENV_IDS)}")
    return env_id


def check_env_kwargs(kwargs: Any, where: str) -> dict[str, Any]:
    """Env kwargs read from a file: an object of plain values, numbers finite, frames for files only."""
    if not isinstance(kwargs, dict):
        raise UserError(f"{where}: env kwargs must be an object, got {type(kwargs).__name__}")
    for key, value in kwargs.items():
        if not isinstance(value, (str, int, float, bool, type(None))):
            raise UserError(f"{where}: env kwarg {key!r} must be a plain value, got {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"{where}: env kwarg {key!r} must be a finite number, got {value}")
    if kwargs.get("render_mode") not in (None, "rgb_array"):
        raise UserError(f"{where}: env kwarg render_mode={kwargs['render_mode']!r}: mirrorlab envs render "
                        "\"rgb_array\" only (frames for files, never a window)")
    return kwargs


def make_arm_env(env_id: Any, where: str, **kwargs: Any):
    """`gymnasium.make` of a registered mirrorlab env; a bad id or kwarg is one line naming `where`."""
    import gymnasium as gym

    import mirrorlab.envs  # noqa: F401  (registers the ids)

    check_env_id(env_id, where)
    check_env_kwargs(kwargs, where)
    try:
        return gym.make(env_id, **kwargs)
    except (TypeError, ValueError, OverflowError) as err:
        raise UserError(f"{where}: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from None


def rollout(env, seed: int, act: Actor, *, camera: str | None = None, frame_size: int | None = None,
            n_steps: int | None = None, options: dict | None = None) -> dict[str, Any]:
    """Reset `env` (a registered arm env) with `seed` and step it `n_steps` times (default: its time limit).

    `act(obs, t)` gets the env's observation and the step index. With `camera`, every state is also
    rendered (at `frame_size`, default the env's). Returns, for the acting arm (T = n_steps):

    | key                | shape, dtype        | meaning                                           |
    |--------------------|---------------------|---------------------------------------------------|
    | `actions`          | [T, A] float32      | the clipped actions executed                      |
    | `frames`           | [T+1, S, S, 3] uint8| (with `camera`) frame 0 after reset, t+1 after action t |
    | `state`            | [T+1, D] float32    | the env's state vector of the acting arm          |
    | `joint_angles`, `joint_velocities` | [T+1, A] float64 | proprioception                 |
    | `fingertip_pos`    | [T+1, 3] float64    | world frame                                       |
    | `distance`         | [T+1] float64       | fingertip to target (m)                           |
    | `reward`           | [T] float64         | the env's reward for action t                     |
    | `success`          | bool                | within the success radius at the final step      |
    | `target_pos`, `target` | [3] float64     | the target in the world and in the arm's base frame |
    | `arm`, `camera`, `seed` |                | which arm acted, which camera, the reset seed     |
    """
    u = env.unwrapped
    arm = u.actor
    n_steps = env.spec.max_episode_steps if n_steps is None else int(n_steps)
    low, high = env.action_space.low, env.action_space.high
    obs, info = env.reset(seed=int(seed), options=options)
    frames, states, angles, velocities, tips, dists, rewards, actions = [], [], [], [], [], [], [], []

    def snapshot(info: dict[str, Any]) -> None:
        if camera is not None:
            frames.append(u.render_camera(camera, frame_size))
        states.append(u.state_vector())
        angles.append(np.asarray(info[f"{arm}_joint_angles"], dtype=np.float64))
        velocities.append(np.asarray(info[f"{arm}_joint_velocities"], dtype=np.float64))
        tips.append(np.asarray(info[f"{arm}_fingertip_pos"], dtype=np.float64))
        dists.append(float(info["distance"]))

    snapshot(info)
    target_pos = np.asarray(info[f"{arm}_target_pos"], dtype=np.float64)
    for t in range(n_steps):
        action = np.clip(np.asarray(act(obs, t), dtype=np.float32).reshape(-1), low, high).astype(np.float32)
        actions.append(action)
        obs, reward, _terminated, _truncated, info = env.step(action)
        rewards.append(float(reward))
        snapshot(info)
    out: dict[str, Any] = {
        "arm": arm, "camera": camera, "seed": int(seed),
        "actions": np.stack(actions) if actions else np.zeros((0, u.n_joints), np.float32),
        "success": bool(info["is_success"]), "target_pos": target_pos,
        "target": np.asarray(u.physics.to_base_frame(arm, target_pos), dtype=np.float64),
        "state": np.stack(states), "joint_angles": np.stack(angles), "joint_velocities": np.stack(velocities),
        "fingertip_pos": np.stack(tips), "distance": np.asarray(dists), "reward": np.asarray(rewards),
    }
    if camera is not None:
        out["frames"] = np.stack(frames)
    return out


def replay(env, seed: int, actions: np.ndarray, **kwargs: Any) -> dict[str, Any]:
    """`rollout` of a stored action array [T, A] from `reset(seed)` (same keyword arguments)."""
    actions = np.asarray(actions, dtype=np.float32)
    return rollout(env, seed, lambda _obs, t: actions[t], n_steps=len(actions), **kwargs)


def policy_actor(policy: Any) -> Actor:
    """An SB3-style policy (`predict(obs, deterministic=True) -> (action, state)`) as an actor."""
    return lambda obs, _t: policy.predict(obs, deterministic=True)[0]
