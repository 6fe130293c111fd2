"""Build the two-arm table scene from model files: one arm's MJCF, attached twice (self and other).

MuJoCo's model-editing API (`mujoco.MjSpec`) loads the table (envs/assets/table.xml) and an arm's
model file, edits a copy of the arm for the other's appearance, and attaches it under the prefixes
`self_` and `other_`, so every name in the scene comes from the model file. A published arm joins the
same way as the home-made ones: `VX300S` is Trossen Robotics' ViperX 300s (the ALOHA arm) as shipped
in the `robosuite_models` package. The appearance of the other arm is an edit of its copy, never a
second model file: `recolored` changes the colour of its moving links, `mirrored` reflects its
kinematic tree across its own sagittal plane (positions reflect; hinge axes and orientations
transform as pseudovectors), `morphology` scales its links.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from pathlib import Path

import numpy as np

from mirrorlab.envs._headless import import_mujoco

# mujoco is imported inside the functions that build (`import_mujoco()`, cached after the first call): the
# constants here are read by commands validating their flags, which must not probe a GL backend.

ARMS = ("self", "other")
OTHER_APPEARANCES = ("identical", "recolored", "mirrored", "morphology", "held_out_color")
# `held_out_color`: a colour the study never trains a core on, so imitation tests transfer, not memorisation.
CAMERAS = ("self_view", "other_view", "third_person", "scene")
ACTION_MODES = ("torque", "position")
THIRD_PERSON_FOVY = 30.0  # narrower than the arm cameras: the other's workspace fills the frame from across the table

RECOLORED_RGBA = (0.90, 0.50, 0.10, 1.0)
HELD_OUT_RGBA = (0.70, 0.20, 0.65, 1.0)
TARGET_RGBA = (0.15, 0.75, 0.25, 1.0)
TIP_RGBA = (0.95, 0.95, 0.95, 1.0)
ASSETS = Path(__file__).resolve().parent / "assets"

# Where each arm's base sits on the table (world frame) and which way it faces (yaw, rad).
BASE_POS = {"self": (0.0, -0.45, 0.0), "other": (0.0, 0.45, 0.0)}
BASE_YAW = {"self": 0.0, "other": math.pi}
SCENE_CAMERA = ((0.75, 0.0, 1.0), (0.0, 0.0, 0.0))  # position, look-at (world frame)


@dataclasses.dataclass(frozen=True)
class Workspace:
    """Where targets are drawn, in the arm's base frame: `center` + radius along (azimuth, elevation).
    Azimuth 0 is forward (+y); `elevation=None` keeps targets in the horizontal plane of `center`."""

    center: tuple[float, float, float]
    radius: tuple[float, float]
    azimuth: tuple[float, float]
    elevation: tuple[float, float] | None

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """A target (x, y, z) in the base frame; the draw order (radius, azimuth, elevation) is fixed."""
        radius, azimuth = rng.uniform(*self.radius), rng.uniform(*self.azimuth)
        elevation = 0.0 if self.elevation is None else rng.uniform(*self.elevation)
        return np.add(self.center, radius * np.array([np.cos(elevation) * np.sin(azimuth),
                                                      np.cos(elevation) * np.cos(azimuth), np.sin(elevation)]))


@dataclasses.dataclass(frozen=True)
class ArmModel:
    """An arm's model file and what the scene and the task need to know about it.

    `file` lies in this package's envs/assets, or in the installed Python package `package` (under its
    assets/). `joints` are the driven hinges (names in the file, base to tip); any other joint of the file
    is removed (its body welded to its parent). The scene's base frame has forward = +y and up = +z:
    `mount_yaw` turns the file's frame onto it and `sagittal_axis` is the axis of the file's frame that
    the mirrored appearance reflects. `tip_body`/`tip_pos` add the fingertip site where the file has none.

    Cameras: each arm's `*_view` sits at `camera_pos` looking at `camera_lookat` (its base frame), fovy 45.
    `third_person` is in the self arm's base at `third_person_pos` (default: the self camera's
    place), aimed at `third_person_aim` given in the *other* arm's base frame (default: `camera_lookat`, the
    point the other's own camera looks at), with `third_person_fovy`. An arm whose links rise well above its
    workspace (the ViperX) needs its own: from the self camera's place its own raised links fill the bottom
    of the frame and the other's leave the top (`envs/framing.py` measures this; tests/test_framing.py).
    """

    name: str
    file: str
    root_body: str
    joints: tuple[str, ...]
    init_qpos: tuple[float, ...]
    gear: tuple[float, ...]  # torque actions: N m per unit of action, per joint
    servo_kp: tuple[float, ...]  # position actions: the servos' stiffness per joint (N m / rad)
    servo_kv: float
    morphology_scale: tuple[float, ...]  # multiplies each driven link's size for `morphology`
    camera_pos: tuple[float, float, float]  # the arm camera, base frame
    camera_lookat: tuple[float, float, float]
    workspace: Workspace
    planar: bool = False
    third_person_pos: tuple[float, float, float] | None = None
    third_person_aim: tuple[float, float, float] | None = None
    third_person_fovy: float = THIRD_PERSON_FOVY
    mount_yaw: float = 0.0
    sagittal_axis: int = 0
    tip_body: str | None = None
    tip_pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    drop_bodies: tuple[str, ...] = ()
    drop_sites: tuple[str, ...] = ()
    package: str | None = None
    source: str = "built for mirrorlab"

    @property
    def n_joints(self) -> int:
        return len(self.joints)


def model_path(arm: ArmModel) -> Path:
    """The arm's model file on this machine. A package's file is found without importing the package
    (robosuite_models' __init__ imports robosuite, which this project does not install), and never
    downloaded: it ships inside the installed wheel."""
    if arm.package is None:
        return ASSETS / arm.file
    found = importlib.util.find_spec(arm.package)
    if found is None or not found.submodule_search_locations:
        raise ImportError(f"the {arm.name} arm's model file ships in the package {arm.package}, which is not "
                          "installed here (scripts/setup.sh installs it from pyproject.toml)")
    return Path(list(found.submodule_search_locations)[0]) / "assets" / arm.file


PLANAR = ArmModel(
    name="planar", file="planar.xml", root_body="base", joints=("joint0", "joint1"),
    init_qpos=(-0.6, 1.2), gear=(0.05, 0.05), servo_kp=(30.0, 30.0), servo_kv=0.6,
    morphology_scale=(1.2, 0.65), camera_pos=(0, 0.07, 0.6), camera_lookat=(0, 0.07, 0),
    workspace=Workspace(center=(0.0, 0.0, 0.02), radius=(0.07, 0.20), azimuth=(-math.pi / 2, math.pi / 2),
                        elevation=None),
    planar=True)

ARM3D = ArmModel(
    name="arm3d", file="arm3d.xml", root_body="base", joints=("joint0", "joint1", "joint2", "joint3"),
    init_qpos=(0.0, 0.5, -1.0, -0.3), gear=(0.1,) * 4, servo_kp=(30.0,) * 4, servo_kv=0.6,
    morphology_scale=(1.0, 1.25, 0.75, 1.0), camera_pos=(0, -0.12, 0.55), camera_lookat=(0, 0.13, 0.04),
    workspace=Workspace(center=(0.0, 0.0, 0.08), radius=(0.12, 0.26), azimuth=(-math.pi / 2, math.pi / 2),
                        elevation=(-0.2, 0.6)))


# Trossen Robotics' ViperX 300s (6 hinges; the ALOHA arm). Its wrist rotation is welded: with no gripper
# attached (the ALOHA gripper's meshes would cost ~150k triangles a frame), it moves nothing in view; the
# gripper's frame (`right_hand`: its inertia and wrist camera) goes with it. The fingertip is the flange. The
# file's two marker sites go too: `right/gripper` would float, drawn, 15 cm beyond the flange where no gripper
# is, and `right_center` is a red marker at the base's origin.
# Gains and torque limits are the file's own (its `position` defaults and motor ctrlranges).
VX300S = ArmModel(
    name="vx300s", file="robots/vx300s/robot.xml", package="robosuite_models", root_body="base",
    joints=("right/waist", "right/shoulder", "right/elbow", "right/forearm_roll", "right/wrist_angle"),
    init_qpos=(0.0, -0.6, 0.6, 0.0, 0.5), gear=(5.0, 50.0, 50.0, 5.0, 1.0),
    servo_kp=(43.0, 265.0, 227.0, 78.0, 37.0), servo_kv=0.0,
    morphology_scale=(1.0, 0.8, 0.8, 1.0, 1.0), camera_pos=(0.0, -0.15, 0.95), camera_lookat=(0.0, 0.3, 0.12),
    workspace=Workspace(center=(0.0, 0.0, 0.127), radius=(0.25, 0.50), azimuth=(-math.pi / 2, math.pi / 2),
                        elevation=(-0.15, 0.6)),
    third_person_pos=(0.0, 0.05, 1.4), third_person_aim=(0.0, 0.05, 0.2), third_person_fovy=40.0,
    mount_yaw=math.pi / 2, sagittal_axis=1, tip_body="right/gripper_link", drop_bodies=("right_hand",),
    drop_sites=("right_center", "right/gripper"),
    source="Trossen Robotics ViperX 300s (BSD-3-Clause), as redistributed in robosuite_models 1.0.0 (MIT)")

ARM_MODELS = {arm.name: arm for arm in (PLANAR, ARM3D, VX300S)}


def load_arm_spec(arm: ArmModel) -> "mujoco.MjSpec":
    """The arm's model file as an MjSpec, reduced to what this scene simulates: the driven hinges (other
    joints removed, their bodies welded), no collision geometry or contacts (the scene has none), no
    actuators (the scene adds its own kind), and every moving body gravity-compensated."""
    mujoco = import_mujoco()
    spec = mujoco.MjSpec.from_file(str(model_path(arm)))
    # Contact options mean nothing without contacts; the table's defaults stand (no attach conflict).
    spec.option.cone, spec.option.impratio = mujoco.mjtCone.mjCONE_PYRAMIDAL, 1.0
    for joint in [j for j in spec.joints if j.name not in arm.joints]:
        spec.delete(joint)
    for body in [b for b in spec.bodies if b.name in arm.drop_bodies]:
        spec.delete(body)
    for site in [s for s in spec.sites if s.name in arm.drop_sites]:
        spec.delete(site)
    for geom in [g for g in spec.geoms if g.contype or g.conaffinity]:
        spec.delete(geom)
    for element in [*spec.actuators, *spec.excludes]:
        spec.delete(element)
    root = spec.body(arm.root_body)
    for body in _subtree(root)[1:]:
        body.gravcomp = 1.0
    return spec


def _subtree(body) -> list:
    """`body` and every body below it, parents before children."""
    return [body, *(b for child in body.bodies for b in _subtree(child))]


# --- the other arm's appearance: edits of its copy of the arm --------------------------------------
def _links(spec, arm: ArmModel) -> list:
    """The body each driven hinge moves, base to tip."""
    return [spec.joint(name).parent for name in arm.joints]


def recolor(spec, arm: ArmModel, rgba) -> None:
    """Paint every geom of the moving links (the base keeps its colour, as a pedestal would)."""
    for body in _subtree(_links(spec, arm)[0]):
        for geom in body.geoms:
            geom.material, geom.rgba = "", rgba


def _reflect_quat(quat, axis: int) -> np.ndarray:
    # S R S for the reflection S of `axis` is the rotation about -S u by the same angle:
    # the quaternion's vector part transforms as a pseudovector.
    q = np.array(quat, dtype=np.float64)
    q[1:] *= -1.0
    q[1 + axis] *= -1.0
    return q


def mirror(spec, arm: ArmModel) -> None:
    """Reflect the arm across its sagittal plane (the file frame's `sagittal_axis` -> minus itself).

    Positions reflect; hinge axes and orientations are pseudovectors (a -> -S a). Geoms keep their own
    shape: exact for capsules and for meshes symmetric about the arm's sagittal plane."""
    axis, sign = arm.sagittal_axis, np.ones(3)
    sign[axis] = -1.0
    for body in _subtree(spec.body(arm.root_body)):
        body.pos, body.quat = body.pos * sign, _reflect_quat(body.quat, axis)
        if body.explicitinertial:
            body.ipos, body.iquat = body.ipos * sign, _reflect_quat(body.iquat, axis)
        for joint in body.joints:
            joint.axis = -joint.axis * sign
        for element in [*body.geoms, *body.sites]:
            element.pos, element.quat = element.pos * sign, _reflect_quat(element.quat, axis)
        for geom in body.geoms:
            if not np.isnan(geom.fromto[0]):
                geom.fromto = geom.fromto * np.tile(sign, 2)


def scale_links(spec, arm: ArmModel, scale: tuple[float, ...]) -> None:
    """Scale driven link k (what its body holds and where its child bodies sit) by `scale[k]`: capsules
    lengthen (their radius stays), meshes scale as a whole."""
    for link, factor in zip(_links(spec, arm), scale):
        for child in link.bodies:
            child.pos = child.pos * factor
        for site in link.sites:
            site.pos = site.pos * factor
        if link.explicitinertial:
            link.ipos = link.ipos * factor
        for geom in link.geoms:
            geom.pos = geom.pos * factor
            if not np.isnan(geom.fromto[0]):
                geom.fromto = geom.fromto * factor
            if geom.meshname:
                mesh = spec.mesh(geom.meshname)
                mesh.scale = mesh.scale * factor


# --- the scene ----------------------------------------------------------------------------------
def _yaw_quat(yaw: float) -> np.ndarray:
    return np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])


def _yaw_matrix(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _look_at_xyaxes(pos, lookat, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    forward = np.subtract(lookat, pos).astype(float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-6:  # looking straight down: image up = forward (+y)
        right = np.cross(forward, (0.0, 1.0, 0.0))
    right /= np.linalg.norm(right)
    image_up = np.cross(right, forward)
    return np.concatenate([right, image_up])


def third_person_lookat(arm: ArmModel) -> tuple[float, float, float]:
    """Where the `third_person` camera looks, in the self arm's base frame: the arm's `third_person_aim` in
    the other's base frame (by default the point the other arm's own camera looks at: its workspace), seen
    from across the table."""
    other_in_self = np.subtract(BASE_POS["other"], BASE_POS["self"])
    turn = BASE_YAW["other"] - BASE_YAW["self"]
    x, y, z = arm.camera_lookat if arm.third_person_aim is None else arm.third_person_aim
    return (float(other_in_self[0] + math.cos(turn) * x - math.sin(turn) * y),
            float(other_in_self[1] + math.sin(turn) * x + math.cos(turn) * y), float(z))


def _six_digits(values) -> np.ndarray:
    return np.array([float(f"{float(v):.6g}") for v in values])


def _add_camera(body, name: str, pos, lookat, fovy: float, mount_yaw: float) -> None:
    """A fixed camera given in the scene's base frame, placed in a root body turned by `mount_yaw`.

    Its axes are kept to 6 significant digits, the precision the scenes were first written in as MJCF
    text, so the planar and 3-D arms' frames stay bit-identical to those scenes (tests/test_scene.py)."""
    mujoco = import_mujoco()
    to_root = _yaw_matrix(-mount_yaw)
    xyaxes = _six_digits(_look_at_xyaxes(pos, lookat))
    camera = body.add_camera(name=name, pos=to_root @ np.asarray(pos, float), fovy=fovy)
    camera.alt.type = mujoco.mjtOrientation.mjORIENTATION_XYAXES
    camera.alt.xyaxes = np.concatenate([to_root @ xyaxes[:3], to_root @ xyaxes[3:]])


def arm_copy(arm: ArmModel, role: str, other_appearance: str = "identical") -> "mujoco.MjSpec":
    """The arm's spec as `role` ("self" or "other") appears in the scene (the other's appearance applied)."""
    mujoco = import_mujoco()
    spec = load_arm_spec(arm)
    if arm.tip_body is not None:
        spec.body(arm.tip_body).add_site(name="fingertip", pos=arm.tip_pos, size=[0.012, 0, 0], rgba=TIP_RGBA,
                                         type=mujoco.mjtGeom.mjGEOM_SPHERE)
    if role == "other":
        if other_appearance in ("recolored", "held_out_color"):
            recolor(spec, arm, RECOLORED_RGBA if other_appearance == "recolored" else HELD_OUT_RGBA)
        elif other_appearance == "mirrored":
            mirror(spec, arm)
        elif other_appearance == "morphology":
            scale_links(spec, arm, arm.morphology_scale)
    return spec


def _add_arm_cameras(base, arm: ArmModel, role: str) -> None:
    """The arm camera `{role}_view` in the arm's base; the self base also carries `third_person`: the other
    arm watched from the self arm's side of the table (by default from its own camera position)."""
    _add_camera(base, f"{role}_view", arm.camera_pos, arm.camera_lookat, 45.0, arm.mount_yaw)
    if role == "self":
        pos = arm.camera_pos if arm.third_person_pos is None else arm.third_person_pos
        _add_camera(base, "third_person", pos, third_person_lookat(arm), arm.third_person_fovy, arm.mount_yaw)


def _add_actuators(spec, arm: ArmModel, action_mode: str, kp: tuple[float, ...], kv: float) -> None:
    """`{role}_motor{i}` on each driven hinge: a motor (ctrl in [-1, 1] x gear) or a position servo (ctrl
    the joint-angle target within the joint's range)."""
    mujoco = import_mujoco()
    for role in ARMS:
        for i, name in enumerate(arm.joints):
            joint = f"{role}_{name}"
            actuator = spec.add_actuator(name=f"{role}_motor{i}", target=joint,
                                         trntype=mujoco.mjtTrn.mjTRN_JOINT, ctrllimited=True)
            if action_mode == "torque":
                actuator.gear[0], actuator.ctrlrange = arm.gear[i], [-1.0, 1.0]
            else:
                actuator.set_to_position(kp=kp[i], kv=kv)
                actuator.ctrlrange = spec.joint(joint).range


def build_scene(arm: ArmModel, other_appearance: str = "identical", offscreen_size: int = 512,
                timestep: float = 0.005, action_mode: str = "position", position_kp: float | None = None,
                position_kv: float | None = None) -> "mujoco.MjSpec":
    """The table, both arms (the other's appearance applied), one mocap target per arm and the cameras.

    `action_mode="torque"`: motors, ctrl in [-1, 1] x the arm's gear. `"position"`: position servos, ctrl
    the joint-angle target (rad, within the joint's range), force kp (target - q) - kv qdot; kp and kv
    are the arm's own unless `position_kp`/`position_kv` set one value for every joint. Compile the
    returned spec (`.compile()`) for an `MjModel`."""
    if action_mode not in ACTION_MODES:
        raise ValueError(f"action_mode must be one of {ACTION_MODES}, got {action_mode!r}")
    if other_appearance not in OTHER_APPEARANCES:
        raise ValueError(f"other_appearance must be one of {OTHER_APPEARANCES}, got {other_appearance!r}")
    mujoco = import_mujoco()
    spec = mujoco.MjSpec.from_file(str(ASSETS / "table.xml"))
    spec.modelname = f"mirrorlab_{arm.name}"
    spec.option.timestep = timestep
    spec.visual.global_.offwidth = spec.visual.global_.offheight = int(offscreen_size)
    _add_camera(spec.worldbody, "scene", *SCENE_CAMERA, 48.0, 0.0)
    for role in ARMS:
        child = arm_copy(arm, role, other_appearance)
        child.body(arm.root_body).quat = _yaw_quat(arm.mount_yaw)
        frame = spec.worldbody.add_frame(pos=BASE_POS[role], quat=_yaw_quat(BASE_YAW[role]))
        base = frame.attach_body(child.body(arm.root_body), f"{role}_", "")
        _add_arm_cameras(base, arm, role)
    for role in ARMS:
        target = spec.worldbody.add_body(name=f"{role}_target", mocap=True, pos=BASE_POS[role])
        target.add_geom(name=f"{role}_target_geom", type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.015, 0, 0],
                        rgba=TARGET_RGBA, contype=0, conaffinity=0, density=500)
    kp = arm.servo_kp if position_kp is None else (float(position_kp),) * arm.n_joints
    _add_actuators(spec, arm, action_mode, kp, arm.servo_kv if position_kv is None else float(position_kv))
    return spec
