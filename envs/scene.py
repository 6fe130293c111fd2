"""Build the two-arm table scene as MJCF: one arm description, instantiated for self and other.

The appearance of the other arm is a parameter of the generator, never a second copy of the XML:
`recolored` changes its colours, `mirrored` reflects its kinematic tree across its own sagittal
plane (local x -> -x; hinge axes transform as pseudovectors), `morphology` scales its links.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

ARMS = ("self", "other")
OTHER_APPEARANCES = ("identical", "recolored", "mirrored", "morphology", "held_out_color")
# `held_out_color`: a colour the study never trains a core on, so imitation tests transfer, not memorisation.
CAMERAS = ("self_view", "other_view", "third_person", "scene")
THIRD_PERSON_FOVY = 30.0  # narrower than the arm cameras: the other's workspace fills the frame from across the table

SELF_RGBA = "0.20 0.45 0.85 1"
RECOLORED_RGBA = "0.90 0.50 0.10 1"
HELD_OUT_RGBA = "0.70 0.20 0.65 1"
TARGET_RGBA = "0.15 0.75 0.25 1"
TIP_RGBA = "0.95 0.95 0.95 1"


@dataclasses.dataclass(frozen=True)
class ArmSpec:
    """A serial arm of hinge joints, described in its base frame (forward = +y, up = +z).

    `joints[i]` is the axis of hinge i; `offsets[i]` the position of body i in its parent;
    the link of body i runs from its origin to `offsets[i + 1]` (the last link to `tip`).
    """

    name: str
    axes: tuple[tuple[float, float, float], ...]
    offsets: tuple[tuple[float, float, float], ...]
    tip: tuple[float, float, float]
    ranges: tuple[tuple[float, float], ...]
    init_qpos: tuple[float, ...]
    link_radius: float
    gear: float
    damping: float
    armature: float
    morphology_scale: tuple[float, ...]  # multiplies each link's length for `morphology`
    camera_pos: tuple[float, float, float]  # arm camera, base frame
    camera_lookat: tuple[float, float, float]

    @property
    def n_joints(self) -> int:
        return len(self.axes)

    def scaled(self, scale: tuple[float, ...]) -> "ArmSpec":
        """Same arm with link k (origin of body k -> origin of body k+1, or the tip) scaled."""
        points = [np.array(p, float) for p in self.offsets[1:]] + [np.array(self.tip, float)]
        points = [tuple(float(v) for v in p * s) for p, s in zip(points, scale)]
        return dataclasses.replace(self, offsets=(self.offsets[0], *points[:-1]), tip=points[-1])


PLANAR = ArmSpec(
    name="planar",
    axes=((0, 0, 1), (0, 0, 1)),
    offsets=((0, 0, 0.02), (0, 0.12, 0)),
    tip=(0, 0.12, 0),
    ranges=((-math.pi, math.pi), (-2.6, 2.6)),
    init_qpos=(-0.6, 1.2),
    link_radius=0.012,
    gear=0.05,
    damping=0.01,
    armature=0.002,
    morphology_scale=(1.2, 0.65),
    camera_pos=(0, 0.07, 0.6),
    camera_lookat=(0, 0.07, 0),
)

ARM3D = ArmSpec(
    name="arm3d",
    axes=((0, 0, 1), (1, 0, 0), (1, 0, 0), (1, 0, 0)),
    offsets=((0, 0, 0), (0, 0, 0.08), (0, 0.14, 0), (0, 0.12, 0)),
    tip=(0, 0.06, 0),
    ranges=((-2.5, 2.5), (-1.2, 1.8), (-2.6, 2.6), (-2.0, 2.0)),
    init_qpos=(0.0, 0.5, -1.0, -0.3),
    link_radius=0.014,
    gear=0.1,
    damping=0.02,
    armature=0.004,
    morphology_scale=(1.0, 1.25, 0.75, 1.0),
    camera_pos=(0, -0.12, 0.55),
    camera_lookat=(0, 0.13, 0.04),
)

# Where each arm's base sits on the table (world frame) and which way it faces (yaw, rad).
BASE_POS = {"self": (0.0, -0.45, 0.0), "other": (0.0, 0.45, 0.0)}
BASE_YAW = {"self": 0.0, "other": math.pi}


def _fmt(values) -> str:
    return " ".join(f"{float(v):.6g}" for v in values)


def _mirror_point(p, sign: float):
    return (sign * p[0], p[1], p[2])


def _mirror_axis(a, sign: float):
    # An axis is a pseudovector: under the reflection x -> -x it maps to (ax, -ay, -az).
    return tuple(a) if sign > 0 else (a[0], -a[1], -a[2])


def _look_at_xyaxes(pos, lookat, up=(0.0, 0.0, 1.0)) -> str:
    forward = np.subtract(lookat, pos).astype(float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-6:  # looking straight down: image up = forward (+y)
        right = np.cross(forward, (0.0, 1.0, 0.0))
    right /= np.linalg.norm(right)
    image_up = np.cross(right, forward)
    return _fmt([*right, *image_up])


def third_person_lookat(spec: ArmSpec) -> tuple[float, float, float]:
    """Where the `third_person` camera looks, in the self arm's base frame: the point the other arm's own
    camera looks at (its workspace), seen from across the table."""
    other_in_self = np.subtract(BASE_POS["other"], BASE_POS["self"])
    turn = BASE_YAW["other"] - BASE_YAW["self"]
    x, y, z = spec.camera_lookat
    return (float(other_in_self[0] + math.cos(turn) * x - math.sin(turn) * y),
            float(other_in_self[1] + math.sin(turn) * x + math.cos(turn) * y), float(z))


def _arm_xml(spec: ArmSpec, arm: str, rgba: str, mirror: float) -> str:
    yaw = BASE_YAW[arm]
    quat = (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
    camera = (f'<camera name="{arm}_view" pos="{_fmt(spec.camera_pos)}" fovy="45" '
              f'xyaxes="{_look_at_xyaxes(spec.camera_pos, spec.camera_lookat)}"/>')
    if arm == "self":  # the third-person view: the other arm watched from the self arm's own camera position
        lookat = third_person_lookat(spec)
        camera += (f'\n<camera name="third_person" pos="{_fmt(spec.camera_pos)}" fovy="{THIRD_PERSON_FOVY:g}" '
                   f'xyaxes="{_look_at_xyaxes(spec.camera_pos, lookat)}"/>')
    lines = [f'<body name="{arm}_base" pos="{_fmt(BASE_POS[arm])}" quat="{_fmt(quat)}">',
             camera,
             f'<geom name="{arm}_pedestal" type="cylinder" size="0.03 0.01" pos="0 0 0.01" '
             f'rgba="0.25 0.25 0.25 1"/>']
    n = spec.n_joints
    for i in range(n):
        end = spec.offsets[i + 1] if i + 1 < n else spec.tip
        lines.append(f'<body name="{arm}_link{i}" pos="{_fmt(_mirror_point(spec.offsets[i], mirror))}" '
                     f'gravcomp="1">')
        lo, hi = spec.ranges[i]
        lines.append(f'<joint name="{arm}_joint{i}" axis="{_fmt(_mirror_axis(spec.axes[i], mirror))}" '
                     f'range="{lo:.6g} {hi:.6g}"/>')
        lines.append(f'<geom name="{arm}_link{i}_geom" type="capsule" size="{spec.link_radius:.6g}" '
                     f'fromto="0 0 0 {_fmt(_mirror_point(end, mirror))}" rgba="{rgba}"/>')
    tip = _fmt(_mirror_point(spec.tip, mirror))
    lines.append(f'<site name="{arm}_fingertip" pos="{tip}" size="0.012" rgba="{TIP_RGBA}" type="sphere"/>')
    lines.extend(["</body>"] * (n + 1))
    return "\n".join(lines)


ACTION_MODES = ("torque", "position")


def scene_xml(spec: ArmSpec, other_appearance: str = "identical", offscreen_size: int = 512,
              timestep: float = 0.005, action_mode: str = "position", position_kp: float = 30.0,
              position_kv: float = 0.6) -> str:
    """MJCF text of the table, both arms, one target per arm, and the three named cameras.

    `action_mode="torque"`: motors, ctrl in [-1, 1] x gear N m. `"position"`: position servos, ctrl the
    joint-angle target (rad, within the joint's range), force kp (target - q) - kv qdot. The actuators
    are named `{arm}_motor{i}` either way, so the physics accessors find them."""
    if action_mode not in ACTION_MODES:
        raise ValueError(f"action_mode must be one of {ACTION_MODES}, got {action_mode!r}")
    if other_appearance not in OTHER_APPEARANCES:
        raise ValueError(f"other_appearance must be one of {OTHER_APPEARANCES}, got {other_appearance!r}")
    other_spec = spec.scaled(spec.morphology_scale) if other_appearance == "morphology" else spec
    other_rgba = {"recolored": RECOLORED_RGBA, "held_out_color": HELD_OUT_RGBA}.get(other_appearance, SELF_RGBA)
    other_mirror = -1.0 if other_appearance == "mirrored" else 1.0
    if action_mode == "torque":
        actuators = "\n".join(
            f'<motor name="{arm}_motor{i}" joint="{arm}_joint{i}" gear="{spec.gear:.6g}" '
            f'ctrlrange="-1 1" ctrllimited="true"/>'
            for arm in ARMS for i in range(spec.n_joints))
    else:
        actuators = "\n".join(
            f'<position name="{arm}_motor{i}" joint="{arm}_joint{i}" kp="{position_kp:.6g}" kv="{position_kv:.6g}" '
            f'ctrlrange="{spec.ranges[i][0]:.6g} {spec.ranges[i][1]:.6g}" ctrllimited="true"/>'
            for arm in ARMS for i in range(spec.n_joints))
    targets = "\n".join(
        f'<body name="{arm}_target" mocap="true" pos="{_fmt(BASE_POS[arm])}">'
        f'<geom name="{arm}_target_geom" type="sphere" size="0.015" rgba="{TARGET_RGBA}"/></body>'
        for arm in ARMS)
    scene_cam_pos, scene_lookat = (0.75, 0.0, 1.0), (0.0, 0.0, 0.0)
    size = int(offscreen_size)
    return f"""<mujoco model="mirrorlab_{spec.name}">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{timestep:.6g}" integrator="implicitfast"/>
  <visual>
    <global offwidth="{size}" offheight="{size}"/>
    <quality shadowsize="0" offsamples="0" numslices="12" numstacks="6" numquads="1"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.35 0.35 0.35" specular="0 0 0"/>
  </visual>
  <default>
    <joint type="hinge" damping="{spec.damping:.6g}" armature="{spec.armature:.6g}" limited="true"/>
    <geom contype="0" conaffinity="0" density="500"/>
    <site group="0"/>
  </default>
  <worldbody>
    <light name="top" pos="0 0 2.5" dir="0 0 -1" directional="true" castshadow="false" diffuse="0.5 0.5 0.5" specular="0.1 0.1 0.1"/>
    <geom name="floor" type="plane" size="3 3 0.1" pos="0 0 -0.75" rgba="0.32 0.34 0.38 1"/>
    <geom name="table" type="box" size="0.4 0.8 0.02" pos="0 0 -0.02" rgba="0.62 0.52 0.42 1"/>
    <camera name="scene" pos="{_fmt(scene_cam_pos)}" fovy="48" xyaxes="{_look_at_xyaxes(scene_cam_pos, scene_lookat)}"/>
{_arm_xml(spec, "self", SELF_RGBA, 1.0)}
{_arm_xml(other_spec, "other", other_rgba, other_mirror)}
{targets}
  </worldbody>
  <actuator>
{actuators}
  </actuator>
</mujoco>
"""
