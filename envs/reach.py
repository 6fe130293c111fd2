r"""Reach a target with the *self* or the *other* arm at a shared table (MuJoCo, headless).

Three registered environments share this one implementation and differ only in the arm model file
(envs/scene.py attaches it twice, self and other, through MuJoCo's MjSpec):

| id                        | arm                                   | joints | steps | dt (s) |
|---------------------------|---------------------------------------|--------|-------|--------|
| `mirrorlab/PlanarReach-v0`| planar, 2 hinges about the vertical (envs/assets/planar.xml) | 2 | 50 | 0.02 |
| `mirrorlab/Arm3DReach-v0` | 3-D: base yaw + shoulder, elbow, wrist pitch (envs/assets/arm3d.xml) | 4 | 100 | 0.02 |
| `mirrorlab/ViperXReach-v0`| Trossen ViperX 300s (ALOHA), from `robosuite_models` (see below) | 5 | 100 | 0.02 |

The ViperX drives waist, shoulder, elbow, forearm roll and wrist angle; its wrist rotation is welded and
no gripper is attached (its meshes would cost more to draw than the arm), so the fingertip is the flange.

The scene holds both arms facing each other across the table, one target per arm, and four
named cameras: `self_view` and `other_view` (each fixed to its arm's base, framing that arm and
its workspace), `third_person` (the other arm's workspace seen from the self arm's side of the
table, from its camera position or, on the ViperX, from above its base: how one watches another)
and `scene` (the whole table). `step(action)` drives the arm named by `actor`;
the idle arm starts at rest and holds its pose (the arms are gravity-compensated
and never touch anything: the scene has no contacts).

## Action space
`Box(-1, 1, (n_joints,), float32)`, one number per hinge of the acting arm, read by `action_mode`:
- `"position"` (default): a joint-angle target offset, `position_scale` (0.1 rad) x action from
  where the joint is, held by position servos for the step: the arm's own gains (planar and 3-D: kp 30,
  kv 0.6; ViperX: the model file's kp per joint, 43 to 265 N m/rad, and its joint damping), or
  `position_kp`/`position_kv` for every joint. The arm moves where the
  action says, so the action is readable from a few frames of video (`mirrorlab curve` measures it).
- `"torque"`: the torque on each hinge, scaled by the motor gear (planar 0.05 N m, 3-D 0.1 N m, ViperX the
  file's motor limits: 5, 50, 50, 5, 1 N m);
  the arm's inertia smooths it, so video shows it far less (see the README's learning curve).
The same action dimension for both arms, so one action sequence can be executed by the other arm
(observe) and replayed on the self arm (perform). An action of the wrong shape, or with a NaN or
infinity, raises `ValueError` and leaves the state untouched; finite values outside [-1, 1] are
clipped.

## Observation space
All positions are in the acting arm's base frame (forward = +y, up = +z; a mirrored arm's frame
is mirrored too), so the same episode reads identically whichever arm performs it.

| obs_mode   | space                                                                   |
|------------|-------------------------------------------------------------------------|
| `"state"`  | `Box(-inf, inf, (4n+2d,), float32)`, the parts below in order           |
| `"pixels"` | `Box(0, 255, (frame_size, frame_size, 3), uint8)` from `camera`         |
| `"both"`   | `Dict(state=..., pixels=...)`                                           |

| part                 | size | unit  | planar (n=2, d=2) | 3-D (n=4, d=3) | ViperX (n=5, d=3) |
|----------------------|------|-------|-------------------|----------------|-------------------|
| joint angles         | n    | rad   | 0:2               | 0:4            | 0:5               |
| joint velocities     | n    | rad/s | 2:4               | 4:8            | 5:10              |
| target position      | d    | m     | 4:6 (x, y)        | 8:11 (x, y, z) | 10:13             |
| fingertip -> target  | d    | m     | 6:8               | 11:14          | 13:16             |

With `observe_target=False` the state is joint angles and velocities only (2n): the task is then in
no part of the acting arm's observation (imitation gives the self arm its task only through the other
arm's video; `visible_targets="other"` also keeps the self arm's target out of every picture).

## Rewards and success
| term          | value                                        | kwarg (default)                 |
|---------------|----------------------------------------------|---------------------------------|
| `reward_dist` | `-w_dist * ||target - fingertip||_2` (m)      | `reward_dist_weight` (1.0)      |
| `reward_ctrl` | `-w_ctrl * ||action||_2^2`                   | `reward_control_weight` (0.01)  |
| reward        | `reward_dist + reward_ctrl`                  |                                 |
| `is_success`  | `||target - fingertip||_2 < success_radius`  | `success_radius` (0.02 m)       |

Distances are measured after the physics step. An episode is a success when its final step is
(the scripted controller's test counts it so). `info` holds every term: `distance`,
`reward_dist`, `reward_ctrl`, `is_success`, and both arms' proprioception every step:
`{arm}_joint_angles`, `{arm}_joint_velocities`, `{arm}_fingertip_pos`, `{arm}_target_pos`
(world frame) for arm in (`self`, `other`).

## Starting state
Drawn from the seed in a fixed order, *acting arm first*: its joint angles (nominal pose +
U(-init_noise, init_noise)) and velocities (U(-0.005, 0.005)), then the idle arm's angles (at
rest), then one target in base-frame coordinates that is given to *both* arms (mirrored with a
mirrored arm). So `actor="other"` with seed s and actions A repeats `actor="self"` with s and A
on the other body. Targets: planar, radius U(0.07, 0.20) m from the base, azimuth
U(-pi/2, pi/2) from forward; 3-D, radius U(0.12, 0.26) m from the shoulder, azimuth
U(-pi/2, pi/2), elevation U(-0.2, 0.6) rad; ViperX, radius U(0.25, 0.50) m from the shoulder,
azimuth U(-pi/2, pi/2), elevation U(-0.15, 0.6) rad (each arm's `Workspace` in envs/scene.py). `reset(options={"target": xyz_or_xy})` sets the
target (base frame, both arms); `options={"qpos": angles}` sets the acting arm's joint angles.

## Episode end
Never terminates; truncated by the `TimeLimit` at 50 (planar) or 100 (3-D, ViperX) steps.

## Arguments (`gymnasium.make(id, **kwargs)`)
| kwarg                   | values                                              | default                 |
|-------------------------|-----------------------------------------------------|-------------------------|
| `actor`                 | `"self"`, `"other"`: the arm `step` drives          | `"self"`                |
| `other_appearance`      | `"identical"`, `"recolored"`, `"mirrored"`, `"morphology"` (other's link lengths scaled), `"held_out_color"` (a colour no study core trains on) | `"identical"` |
| `obs_mode`              | `"state"`, `"pixels"`, `"both"`                     | `"state"`               |
| `camera`                | `"self_view"`, `"other_view"`, `"third_person"`, `"scene"` | `f"{actor}_view"`       |
| `frame_size`            | 16, 32, ..., 1024 (square frames, multiple of 16)   | 64                      |
| `render_mode`           | `None`, `"rgb_array"` (frames from `camera`)        | `None`                  |
| `frame_skip`            | physics steps of 5 ms per env step                  | 4                       |
| `reward_dist_weight`, `reward_control_weight`, `success_radius`, `init_noise` | see above | 1.0, 0.01, 0.02, 0.1 |
| `observe_target`        | the target is part of the state observation         | `True`                  |
| `visible_targets`       | `"both"`, `"self"`, `"other"`, `"none"`: whose target is drawn (a hidden one still scores success) | `"both"` |

`env.unwrapped.render_camera(name, size=None)` renders any named camera;
`env.unwrapped.physics` answers geometry questions per arm (`joint_angles(arm)`,
`joint_velocities(arm)`, `fingertip_pos(arm)`, `target_pos(arm)`, `fingertip_to_target(arm)`,
`fingertip_distance(arm)`, `fingertip_jacobian(arm)`, `to_base_frame(arm, p)`, ...).

## Determinism
The same seed and actions give bit-identical states and frames (rendering is software GL with
shadows, reflections and multisampling off).

## Version history
* v0: first release; scenes built from model files (MjSpec) with identical physics and pixels; the ViperX
  added.
"""

from __future__ import annotations

import atexit
import math
import weakref
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mirrorlab.envs import _headless
from mirrorlab.envs.physics import TwoArmPhysics
from mirrorlab.envs.scene import (ACTION_MODES, ARM3D, ARMS, CAMERAS, OTHER_APPEARANCES, PLANAR, VX300S, ArmModel,
                                  build_scene)

mujoco = _headless.import_mujoco()

OBS_MODES = ("state", "pixels", "both")
VISIBLE_TARGETS = ("both", "self", "other", "none")
RENDER_MODES = (None, "rgb_array")
MAX_FRAME_SIZE = 1024

# Renderers left open at interpreter exit would be freed after mujoco's EGL display is gone
# (noisy tracebacks). mujoco registers its display's atexit when the first context is made; ours
# is registered after that, so it runs before it and closes what is still open.
_LIVE_ENVS: "weakref.WeakSet[MirrorReachEnv]" = weakref.WeakSet()
_atexit_registered = False


def _close_live_envs() -> None:
    for env in list(_LIVE_ENVS):
        env.close()


def _track(env: "MirrorReachEnv") -> None:
    global _atexit_registered
    _LIVE_ENVS.add(env)
    if not _atexit_registered:
        atexit.register(_close_live_envs)
        _atexit_registered = True


def _check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")


def check_frame_size(frame_size: Any) -> int:
    if (isinstance(frame_size, bool) or not isinstance(frame_size, (int, np.integer))
            or frame_size % 16 or not 16 <= frame_size <= MAX_FRAME_SIZE):
        raise ValueError(f"frame_size must be one of 16, 32, 48, ..., {MAX_FRAME_SIZE} (an int, "
                         f"a multiple of 16: the video codec's macroblock); got {frame_size!r}")
    return int(frame_size)


def _check_arguments(*, actor, other_appearance, obs_mode, camera, render_mode, visible_targets, action_mode,
                     render_supersample, position_scale, position_kp, position_kv, reward_dist_weight,
                     reward_control_weight, init_noise, success_radius, observe_target) -> None:
    """MirrorReachEnv's constructor arguments, each checked with one clear error naming it."""
    _check_choice("actor", actor, ARMS)
    _check_choice("other_appearance", other_appearance, OTHER_APPEARANCES)
    _check_choice("obs_mode", obs_mode, OBS_MODES)
    _check_choice("camera", camera, CAMERAS)
    _check_choice("render_mode", render_mode, RENDER_MODES)
    _check_choice("visible_targets", visible_targets, VISIBLE_TARGETS)
    _check_choice("action_mode", action_mode, ACTION_MODES)
    if isinstance(render_supersample, bool) or not isinstance(render_supersample, (int, np.integer)) \
            or not 1 <= render_supersample <= 8:
        raise ValueError(f"render_supersample must be an int in 1..8; got {render_supersample!r}")
    for name, value in (("position_scale", position_scale), ("position_kp", position_kp),
                        ("position_kv", position_kv)):
        if value is not None and not (isinstance(value, (int, float)) and value > 0 and math.isfinite(value)):
            raise ValueError(f"{name} must be a positive number; got {value!r}")
    for name, value, low in (("reward_dist_weight", reward_dist_weight, 0.0),
                             ("reward_control_weight", reward_control_weight, 0.0),
                             ("init_noise", init_noise, 0.0), ("success_radius", success_radius, None)):
        if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                and (value > 0 if low is None else value >= low)):
            raise ValueError(f"{name} must be a finite number {'> 0' if low is None else '>= 0'}; got {value!r}")
    if not isinstance(observe_target, bool):
        raise ValueError(f"observe_target must be True or False; got {observe_target!r}")


class MirrorReachEnv(gym.Env):
    """Two arms at a table; `actor` reaches for its target. See the module docstring."""

    arm_spec: ArmModel
    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(self, actor: str = "self", other_appearance: str = "identical",
                 obs_mode: str = "state", camera: str | None = None, frame_size: int = 64,
                 render_mode: str | None = None, frame_skip: int = 4,
                 reward_dist_weight: float = 1.0, reward_control_weight: float = 0.01,
                 success_radius: float = 0.02, init_noise: float = 0.1, observe_target: bool = True,
                 visible_targets: str = "both", action_mode: str = "position", position_scale: float = 0.1,
                 position_kp: float | None = None, position_kv: float | None = None, render_supersample: int = 1):
        camera = f"{actor}_view" if camera is None else camera
        _check_arguments(actor=actor, other_appearance=other_appearance, obs_mode=obs_mode, camera=camera,
                         render_mode=render_mode, visible_targets=visible_targets, action_mode=action_mode,
                         render_supersample=render_supersample, position_scale=position_scale,
                         position_kp=position_kp, position_kv=position_kv, reward_dist_weight=reward_dist_weight,
                         reward_control_weight=reward_control_weight, init_noise=init_noise,
                         success_radius=success_radius, observe_target=observe_target)
        frame_size = check_frame_size(frame_size)
        if isinstance(frame_skip, bool) or not isinstance(frame_skip, (int, np.integer)) or frame_skip < 1:
            raise ValueError(f"frame_skip must be an int >= 1; got {frame_skip!r}")

        self.actor, self.idle = actor, ("other" if actor == "self" else "self")
        self.other_appearance, self.obs_mode, self.camera = other_appearance, obs_mode, camera
        self.frame_size, self.render_mode, self.frame_skip = frame_size, render_mode, int(frame_skip)
        self.reward_dist_weight = float(reward_dist_weight)
        self.reward_control_weight = float(reward_control_weight)
        self.success_radius = float(success_radius)
        self.init_noise = float(init_noise)
        self.observe_target, self.visible_targets = observe_target, visible_targets
        self.action_mode, self.position_scale = action_mode, float(position_scale)
        self.render_supersample = int(render_supersample)

        self._build_physics(position_kp, position_kv)
        self._define_spaces()
        mujoco.mj_forward(self.model, self.data)

    def _build_physics(self, position_kp: float | None, position_kv: float | None) -> None:
        """The two-arm scene compiled for this env's appearance, actuators and frame size, its physics accessors,
        the hidden targets' geoms made invisible, and the renderer cache."""
        spec = self.arm_spec
        self.model = build_scene(spec, self.other_appearance,
                                 offscreen_size=max(512, self.frame_size * self.render_supersample),
                                 action_mode=self.action_mode, position_kp=position_kp, position_kv=position_kv).compile()
        self.data = mujoco.MjData(self.model)
        for arm in ARMS:  # a hidden target is still there (success is measured against it), just not drawn
            if self.visible_targets not in ("both", arm):
                self.model.geom_rgba[mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, f"{arm}_target_geom"), 3] = 0
        self.n_joints = spec.n_joints
        self.planar = spec.planar
        self.target_dim = 2 if self.planar else 3
        self.physics = TwoArmPhysics(self.model, self.data, spec.joints,
                                     mirrored={"other": self.other_appearance == "mirrored"},
                                     planar=self.planar)
        self.dt = self.model.opt.timestep * self.frame_skip
        self.metadata = {**self.metadata, "render_fps": int(round(1.0 / self.dt))}
        self._init_qpos = np.array(spec.init_qpos, dtype=np.float64)
        self._ranges = self.physics.joint_ranges("self")
        self._renderers: dict[tuple[str, int], mujoco.Renderer] = {}
        self._frame_cache: tuple[tuple[str, int], np.ndarray] | None = None
        self._idle_pose = self._init_qpos.copy()

    def _define_spaces(self) -> None:
        """Actions: one position (or torque) command per joint in [-1, 1]; observations by `obs_mode`."""
        self.action_space = spaces.Box(-1.0, 1.0, (self.n_joints,), np.float32)
        state_dim = 2 * self.n_joints + (2 * self.target_dim if self.observe_target else 0)
        state_space = spaces.Box(-np.inf, np.inf, (state_dim,), np.float32)
        pixel_space = spaces.Box(0, 255, (self.frame_size, self.frame_size, 3), np.uint8)
        self.observation_space = {
            "state": state_space,
            "pixels": pixel_space,
            "both": spaces.Dict({"state": state_space, "pixels": pixel_space}),
        }[self.obs_mode]

    # --- episode --------------------------------------------------------------------------
    def sample_target(self, rng: np.random.Generator) -> np.ndarray:
        """A reachable target in base-frame coordinates (x, y, z): a draw from the arm's workspace."""
        return self.arm_spec.workspace.sample(rng)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"target", "qpos"}
        if unknown:
            raise ValueError(f"reset options may contain 'target', 'qpos'; got {sorted(unknown)}")
        rng, n = self.np_random, self.n_joints
        # Draw order is fixed and starts with the acting arm: see "Starting state".
        actor_q = self._init_qpos + rng.uniform(-self.init_noise, self.init_noise, n)
        actor_qd = rng.uniform(-0.005, 0.005, n)
        idle_q = self._init_qpos + rng.uniform(-self.init_noise, self.init_noise, n)
        target = self.sample_target(rng)
        if "qpos" in options:
            actor_q = self._checked_vector(options["qpos"], n, "options['qpos']")
        if "target" in options:
            given = self._checked_vector(options["target"], self.target_dim, "options['target']")
            target = np.append(given, target[2]) if self.planar else given

        mujoco.mj_resetData(self.model, self.data)
        self.physics.set_joint_state(self.actor, np.clip(actor_q, *self._ranges.T), actor_qd)
        self._idle_pose = np.clip(idle_q, *self._ranges.T)
        self.physics.set_joint_state(self.idle, self._idle_pose, np.zeros(n))
        if self.action_mode == "position":  # the servos hold each arm where it starts
            self.physics.set_controls(self.actor, self.physics.joint_angles(self.actor))
            self.physics.set_controls(self.idle, self._idle_pose)
        for arm in ARMS:
            self.physics.set_target_pos(arm, self.physics.from_base_frame(arm, target))
        mujoco.mj_forward(self.model, self.data)
        self._frame_cache = None
        return self._get_obs(), self._info(np.zeros(n))

    def step(self, action):
        action = self._checked_vector(action, self.n_joints, "action")
        action = np.minimum(np.maximum(action, -1.0), 1.0)
        if self.action_mode == "torque":
            self.physics.set_controls(self.actor, action)
        else:  # a joint-angle target offset from where the arm is, held for the step
            target = self.physics.joint_angles(self.actor) + self.position_scale * action
            self.physics.set_controls(self.actor, np.clip(target, *self._ranges.T))
        mujoco.mj_step(self.model, self.data, nstep=self.frame_skip)
        # The idle arm holds its pose exactly (gravity compensation leaves ~1e-16 residue).
        self.physics.set_joint_state(self.idle, self._idle_pose, np.zeros(self.n_joints))
        # mj_step leaves positions one substep stale; recompute so distances and frames agree.
        mujoco.mj_forward(self.model, self.data)
        self._frame_cache = None
        info = self._info(action)
        reward = info["reward_dist"] + info["reward_ctrl"]
        return self._get_obs(), reward, False, False, info

    def _checked_vector(self, value, size: int, what: str) -> np.ndarray:
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{what} must be {size} numbers; got {value!r}") from err
        if array.shape != (size,):
            raise ValueError(f"{what} must have shape ({size},); got shape {array.shape}")
        if not np.isfinite(array).all():
            raise ValueError(f"{what} must be finite (no NaN or inf); got {array}")
        return array

    def _info(self, action: np.ndarray) -> dict[str, Any]:
        p = self.physics
        info: dict[str, Any] = {}
        for arm in ARMS:
            info[f"{arm}_joint_angles"] = p.joint_angles(arm)
            info[f"{arm}_joint_velocities"] = p.joint_velocities(arm)
            info[f"{arm}_fingertip_pos"] = p.fingertip_pos(arm)
            info[f"{arm}_target_pos"] = p.target_pos(arm)
        error = info[f"{self.actor}_target_pos"] - info[f"{self.actor}_fingertip_pos"]
        distance = math.sqrt(float(error @ error))  # = p.fingertip_distance(actor), computed once
        info["distance"] = distance
        info["reward_dist"] = -self.reward_dist_weight * distance
        info["reward_ctrl"] = -self.reward_control_weight * float(action @ action)
        info["is_success"] = bool(distance < self.success_radius)
        return info

    def state_vector(self, observe_target: bool | None = None) -> np.ndarray:
        """The `"state"` observation of the acting arm (float32, a fresh array); `observe_target` overrides
        the env's setting (an expert that knows the target, in an env whose observation hides it)."""
        p, arm, d = self.physics, self.actor, self.target_dim
        parts = [p.joint_angles(arm), p.joint_velocities(arm)]
        if self.observe_target if observe_target is None else observe_target:
            parts += [p.target_in_base_frame(arm)[:d], p.vector_to_base_frame(arm, p.fingertip_to_target(arm))[:d]]
        return np.concatenate(parts).astype(np.float32)

    def _get_obs(self):
        if self.obs_mode == "state":
            return self.state_vector()
        frame = self.render_camera(self.camera)
        self._frame_cache = ((self.camera, self.frame_size), frame)
        if self.obs_mode == "pixels":
            return frame.copy()
        return {"state": self.state_vector(), "pixels": frame.copy()}

    # --- rendering --------------------------------------------------------------------------
    def render_camera(self, name: str, size: int | None = None) -> np.ndarray:
        """A fresh uint8 (size, size, 3) frame of the current state from a named camera; with
        `render_supersample` k, rendered at k * size and averaged over k x k blocks (anti-aliasing: a
        sub-pixel motion then changes pixel values, where a single sample per pixel may not)."""
        _check_choice("camera", name, CAMERAS)
        size = self.frame_size if size is None else check_frame_size(size)
        k = self.render_supersample
        if k == 1:
            return self._render(name, size)
        big = self._render(name, size * k).astype(np.float32)
        return np.rint(big.reshape(size, k, size, k, 3).mean(axis=(1, 3))).astype(np.uint8)

    def _render(self, name: str, size: int) -> np.ndarray:
        key = (name, size)
        renderer = self._renderers.get(key)
        if renderer is None:
            if size > self.model.vis.global_.offwidth:
                self.model.vis.global_.offwidth = self.model.vis.global_.offheight = size
            try:
                renderer = mujoco.Renderer(self.model, size, size)
            except Exception as err:  # any GL failure: say which packages fix it
                raise _headless.renderer_error(err) from err
            flags = renderer.scene.flags
            for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION,
                         mujoco.mjtRndFlag.mjRND_SKYBOX, mujoco.mjtRndFlag.mjRND_FOG):
                flags[flag] = 0
            self._renderers[key] = renderer
            _track(self)
        renderer.update_scene(self.data, camera=name)
        return renderer.render()

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called with render_mode=None; make the env with "
                            "render_mode='rgb_array'.")
            return None
        key = (self.camera, self.frame_size)
        if self._frame_cache is not None and self._frame_cache[0] == key:
            return self._frame_cache[1].copy()  # the frame this step already rendered
        return self.render_camera(self.camera)

    def close(self):
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
        self._frame_cache = None


class PlanarReachEnv(MirrorReachEnv):
    """Fast planar 2-joint arms (`mirrorlab/PlanarReach-v0`)."""

    arm_spec = PLANAR


class Arm3DReachEnv(MirrorReachEnv):
    """3-D 4-joint arms: base yaw, shoulder, elbow, wrist pitch (`mirrorlab/Arm3DReach-v0`)."""

    arm_spec = ARM3D


class ViperXReachEnv(MirrorReachEnv):
    """Trossen Robotics' ViperX 300s, the ALOHA arm, from `robosuite_models` (`mirrorlab/ViperXReach-v0`)."""

    arm_spec = VX300S
