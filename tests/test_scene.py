"""Scenes from model files (MjSpec, one arm attached twice) against the text scenes they replace.

`_legacy_scene_xml` is the f-string generator that built the planar and 3-D scenes before the arms became
model files (envs/scene.py until this change), kept here as the reference: the new scenes must simulate
and render the same, bit for bit. The one stated difference: the 3-D arm's `morphology` link lengths are
exact products now, where the text printed them to 6 digits (0.14 x 1.25 = 0.17500000000000002 vs 0.175),
so its joint trajectories agree to 1e-15 rad, not bitwise; its frames are still identical.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mirrorlab.envs import scene
from mirrorlab.envs._headless import import_mujoco
from mirrorlab.envs.physics import TwoArmPhysics

mujoco = import_mujoco()

# --- the reference: today's text scenes ------------------------------------------------------------
LEGACY = {  # name: (axes, offsets, tip, ranges, link radius, gear, damping, armature, morphology scale, camera)
    "planar": (((0, 0, 1), (0, 0, 1)), ((0, 0, 0.02), (0, 0.12, 0)), (0, 0.12, 0),
               ((-math.pi, math.pi), (-2.6, 2.6)), 0.012, 0.05, 0.01, 0.002, (1.2, 0.65),
               ((0, 0.07, 0.6), (0, 0.07, 0))),
    "arm3d": (((0, 0, 1), (1, 0, 0), (1, 0, 0), (1, 0, 0)), ((0, 0, 0), (0, 0, 0.08), (0, 0.14, 0), (0, 0.12, 0)),
              (0, 0.06, 0), ((-2.5, 2.5), (-1.2, 1.8), (-2.6, 2.6), (-2.0, 2.0)), 0.014, 0.1, 0.02, 0.004,
              (1.0, 1.25, 0.75, 1.0), ((0, -0.12, 0.55), (0, 0.13, 0.04))),
}


BASE = {"self": ((0.0, -0.45, 0.0), 0.0), "other": ((0.0, 0.45, 0.0), math.pi)}  # position, yaw
COLOURS = {"recolored": "0.90 0.50 0.10 1", "held_out_color": "0.70 0.20 0.65 1"}
BLUE = "0.20 0.45 0.85 1"


def _fmt(values) -> str:
    return " ".join(f"{float(v):.6g}" for v in values)


def _xyaxes(pos, lookat) -> str:
    forward = np.subtract(lookat, pos).astype(float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, (0.0, 0.0, 1.0))
    if np.linalg.norm(right) < 1e-6:
        right = np.cross(forward, (0.0, 1.0, 0.0))
    right /= np.linalg.norm(right)
    return _fmt([*right, *np.cross(right, forward)])


def _third_person_lookat(lookat):
    (x, y, z), turn = lookat, math.pi
    return (0.0 + math.cos(turn) * x - math.sin(turn) * y, 0.9 + math.sin(turn) * x + math.cos(turn) * y, z)


def _legacy_cameras(role, camera) -> str:
    pos = _fmt(camera[0])
    xml = f'<camera name="{role}_view" pos="{pos}" fovy="45" xyaxes="{_xyaxes(*camera)}"/>'
    if role == "self":
        xyaxes = _xyaxes(camera[0], _third_person_lookat(camera[1]))
        xml += f'<camera name="third_person" pos="{pos}" fovy="30" xyaxes="{xyaxes}"/>'
    return xml


def _legacy_arm(name, role, rgba, mirror, scale):
    axes, offsets, tip, ranges, radius, *_, camera = LEGACY[name]
    if scale is not None:
        points = [tuple(np.multiply(p, s)) for p, s in zip([*offsets[1:], tip], scale)]
        offsets, tip = (offsets[0], *points[:-1]), points[-1]
    m = lambda p: _fmt((mirror * p[0], p[1], p[2]))  # noqa: E731
    pos, yaw = BASE[role]
    out = [f'<body name="{role}_base" pos="{_fmt(pos)}" quat="{_fmt((math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)))}">',
           _legacy_cameras(role, camera),
           f'<geom name="{role}_pedestal" type="cylinder" size="0.03 0.01" pos="0 0 0.01" rgba="0.25 0.25 0.25 1"/>']
    for i, axis in enumerate(axes):
        end = offsets[i + 1] if i + 1 < len(axes) else tip
        axis = axis if mirror > 0 else (axis[0], -axis[1], -axis[2])
        out += [f'<body name="{role}_link{i}" pos="{m(offsets[i])}" gravcomp="1">',
                f'<joint name="{role}_joint{i}" axis="{_fmt(axis)}" range="{_fmt(ranges[i])}"/>',
                f'<geom name="{role}_link{i}_geom" type="capsule" size="{radius:.6g}" fromto="0 0 0 {m(end)}" '
                f'rgba="{rgba}"/>']
    out.append(f'<site name="{role}_fingertip" pos="{m(tip)}" size="0.012" rgba="0.95 0.95 0.95 1" type="sphere"/>')
    return "\n".join(out + ["</body>"] * (len(axes) + 1))


def _legacy_actuators(name: str, action_mode: str) -> str:
    axes, _, _, ranges, _, gear, *_ = LEGACY[name]
    if action_mode == "torque":
        return "".join(f'<motor name="{r}_motor{i}" joint="{r}_joint{i}" gear="{gear:.6g}" ctrlrange="-1 1" '
                       f'ctrllimited="true"/>' for r in BASE for i in range(len(axes)))
    return "".join(f'<position name="{r}_motor{i}" joint="{r}_joint{i}" kp="30" kv="0.6" '
                   f'ctrlrange="{_fmt(ranges[i])}" ctrllimited="true"/>' for r in BASE for i in range(len(axes)))


def _legacy_scene_xml(name: str, appearance: str, action_mode: str) -> str:
    *_, damping, armature, morph, _ = LEGACY[name]
    targets = "".join(f'<body name="{r}_target" mocap="true" pos="{_fmt(BASE[r][0])}"><geom name="{r}_target_geom" '
                      f'type="sphere" size="0.015" rgba="0.15 0.75 0.25 1"/></body>' for r in BASE)
    other = _legacy_arm(name, "other", COLOURS.get(appearance, BLUE), -1.0 if appearance == "mirrored" else 1.0,
                        morph if appearance == "morphology" else None)
    return f"""<mujoco model="mirrorlab_{name}"><compiler angle="radian" autolimits="true"/>
  <option timestep="0.005" integrator="implicitfast"/>
  <visual><global offwidth="512" offheight="512"/>
    <quality shadowsize="0" offsamples="0" numslices="12" numstacks="6" numquads="1"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.35 0.35 0.35" specular="0 0 0"/></visual>
  <default><joint type="hinge" damping="{damping:.6g}" armature="{armature:.6g}" limited="true"/>
    <geom contype="0" conaffinity="0" density="500"/><site group="0"/></default>
  <worldbody>
    <light name="top" pos="0 0 2.5" dir="0 0 -1" directional="true" castshadow="false" diffuse="0.5 0.5 0.5"
           specular="0.1 0.1 0.1"/>
    <geom name="floor" type="plane" size="3 3 0.1" pos="0 0 -0.75" rgba="0.32 0.34 0.38 1"/>
    <geom name="table" type="box" size="0.4 0.8 0.02" pos="0 0 -0.02" rgba="0.62 0.52 0.42 1"/>
    <camera name="scene" pos="0.75 0 1" fovy="48" xyaxes="{_xyaxes((0.75, 0, 1), (0, 0, 0))}"/>
    {_legacy_arm(name, "self", BLUE, 1.0, None)}
    {other}
    {targets}
  </worldbody><actuator>{_legacy_actuators(name, action_mode)}</actuator></mujoco>"""


# --- the comparison ---------------------------------------------------------------------------------
def _trajectory(model, steps=24, seed=0):
    """Joint positions every step and frames of every camera every 8th step, under seeded random controls."""
    data = mujoco.MjData(model)
    rng = np.random.default_rng(seed)
    renderer = mujoco.Renderer(model, 48, 48)
    for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION):
        renderer.scene.flags[flag] = 0
    data.qpos[:] = rng.uniform(-0.5, 0.5, model.nq)
    data.mocap_pos[:] = [[0.05, -0.3, 0.05], [0.02, 0.3, 0.1]]
    qpos, frames = [], []
    for t in range(steps):
        data.ctrl[:] = rng.uniform(-1, 1, model.nu)
        mujoco.mj_step(model, data, nstep=4)
        qpos.append(data.qpos.copy())
        if t % 8 == 0:
            for camera in scene.CAMERAS:
                renderer.update_scene(data, camera=camera)
                frames.append(renderer.render().copy())
    renderer.close()
    return np.array(qpos), np.array(frames)


@pytest.mark.parametrize("name", ["planar", "arm3d"])
@pytest.mark.parametrize("appearance", scene.OTHER_APPEARANCES)
@pytest.mark.parametrize("action_mode", scene.ACTION_MODES)
def test_model_file_scenes_simulate_and_render_as_the_text_scenes(name, appearance, action_mode):
    old = mujoco.MjModel.from_xml_string(_legacy_scene_xml(name, appearance, action_mode))
    new = scene.build_scene(scene.ARM_MODELS[name], appearance, action_mode=action_mode).compile()
    for field in ("nq", "nu", "nbody", "ngeom", "nsite", "ncam"):
        assert getattr(old, field) == getattr(new, field), field
    rounded_lengths = (name, appearance) == ("arm3d", "morphology")  # the one stated difference (docstring)
    for field in ("body_mass", "geom_size", "dof_armature", "dof_damping", "jnt_range", "actuator_gainprm",
                  "actuator_biasprm", "actuator_ctrlrange", "actuator_gear", "geom_rgba", "cam_fovy"):
        assert rounded_lengths or np.array_equal(getattr(old, field), getattr(new, field)), field
    qpos_old, frames_old = _trajectory(old)
    qpos_new, frames_new = _trajectory(new)
    if rounded_lengths:
        np.testing.assert_allclose(qpos_new, qpos_old, rtol=0, atol=1e-15)
    else:
        assert qpos_new.tobytes() == qpos_old.tobytes()
    assert np.abs(qpos_new[-1] - qpos_new[0]).max() > 1e-2  # the controls moved the arms
    assert frames_new.tobytes() == frames_old.tobytes()


def test_names_come_from_the_model_files():
    planar = scene.build_scene(scene.PLANAR).compile()
    viperx = scene.build_scene(scene.VX300S).compile()
    name = lambda m, obj, i: mujoco.mj_id2name(m, obj, i)  # noqa: E731
    assert [name(planar, mujoco.mjtObj.mjOBJ_JOINT, i) for i in range(planar.njnt)] == [
        "self_joint0", "self_joint1", "other_joint0", "other_joint1"]
    assert [name(viperx, mujoco.mjtObj.mjOBJ_JOINT, i) for i in range(viperx.njnt)] == [
        f"{role}_{joint}" for role in scene.ARMS for joint in scene.VX300S.joints]
    assert {name(viperx, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(viperx.ncam)} == set(scene.CAMERAS)
    # The arm's own meshes, six per arm, each drawn once (the file's collision twins are dropped).
    assert viperx.nmesh == 12 and (viperx.geom_type == mujoco.mjtGeom.mjGEOM_MESH).sum() == 12
    assert not viperx.geom_contype.any() and not viperx.geom_conaffinity.any()  # no contacts, as the home-made arms


def test_the_published_arm_ships_in_an_installed_package():
    path = scene.model_path(scene.VX300S)
    assert path.is_file() and "site-packages" in str(path) and "robosuite_models" in str(path)
    assert (path.parent / "meshes" / "vx300s_3_upper_arm.stl").is_file()


def _tip_in_base_frame(arm, appearance, qpos):
    model = scene.build_scene(arm, appearance).compile()
    data = mujoco.MjData(model)
    physics = TwoArmPhysics(model, data, arm.joints, mirrored={"other": appearance == "mirrored"}, planar=arm.planar)
    physics.set_joint_state("other", qpos, np.zeros(arm.n_joints))
    mujoco.mj_forward(model, data)
    return physics.fingertip_in_base_frame("other"), physics.fingertip_jacobian("other")


@pytest.mark.parametrize("name", ["arm3d", "vx300s"])
def test_mirrored_arm_is_the_reflection_of_the_identical_one(name):
    """Same joint angles: the mirrored arm's fingertip, read in its mirrored base frame, is where the identical
    arm's is, and the x column of each Jacobian row flips (a planted asymmetric pose: waist turned)."""
    arm = scene.ARM_MODELS[name]
    qpos = np.array(arm.init_qpos) + np.linspace(0.3, 0.1, arm.n_joints)
    tip, jac = _tip_in_base_frame(arm, "identical", qpos)
    tip_m, jac_m = _tip_in_base_frame(arm, "mirrored", qpos)
    assert abs(tip[0]) > 0.02  # the pose is off the sagittal plane, so a wrong reflection would show
    np.testing.assert_allclose(tip_m, tip, atol=1e-9)
    # World x of the other arm (facing -y) is minus its base x: the mirrored Jacobian's x row is negated.
    np.testing.assert_allclose(jac_m[0], -jac[0], atol=1e-9)
    np.testing.assert_allclose(jac_m[1:], jac[1:], atol=1e-9)


def test_mirror_is_an_involution_and_scale_moves_the_tip():
    arm = scene.VX300S
    spec = scene.load_arm_spec(arm)
    before = [(b.name, b.pos.copy(), b.quat.copy()) for b in spec.bodies]
    axes = [j.axis.copy() for j in spec.joints]
    scene.mirror(spec, arm)
    assert not all(np.array_equal(a, j.axis) for a, j in zip(axes, spec.joints))
    scene.mirror(spec, arm)
    for (name, pos, quat), body in zip(before, spec.bodies):
        assert name == body.name and np.array_equal(pos, body.pos) and np.array_equal(quat, body.quat)
    assert all(np.array_equal(a, j.axis) for a, j in zip(axes, spec.joints))
    tip, _ = _tip_in_base_frame(arm, "identical", np.array(arm.init_qpos))
    tip_m, _ = _tip_in_base_frame(arm, "morphology", np.array(arm.init_qpos))
    assert np.linalg.norm(tip_m - tip) > 0.02


def test_recolour_paints_the_moving_links_only():
    model = scene.build_scene(scene.VX300S, "recolored").compile()
    geom_body = model.geom_bodyid
    other_root = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "other_base")
    other_mount = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "other_right_arm_mount")
    orange = np.all(np.isclose(model.geom_rgba, scene.RECOLORED_RGBA), axis=1)
    moving_other = np.array([model.body_rootid[b] == other_root and b not in (other_root, other_mount)
                             for b in geom_body])
    assert orange.any() and np.array_equal(orange, moving_other)


def test_workspaces_draw_the_targets_the_envs_drew_before():
    """The planar and 3-D targets, written out as the envs drew them before arms had a `Workspace`."""
    def planar(rng):
        radius, azimuth = rng.uniform(0.07, 0.20), rng.uniform(-np.pi / 2, np.pi / 2)
        return np.array([radius * np.sin(azimuth), radius * np.cos(azimuth), 0.02])

    def arm3d(rng):
        radius, azimuth, elevation = rng.uniform(0.12, 0.26), rng.uniform(-np.pi / 2, np.pi / 2), rng.uniform(-0.2, 0.6)
        return np.array([0.0, 0.0, 0.08]) + radius * np.array(
            [np.cos(elevation) * np.sin(azimuth), np.cos(elevation) * np.cos(azimuth), np.sin(elevation)])

    for arm, before in ((scene.PLANAR, planar), (scene.ARM3D, arm3d)):
        for seed in range(200):
            drawn = arm.workspace.sample(np.random.default_rng(seed))
            assert drawn.tobytes() == before(np.random.default_rng(seed)).tobytes()


def test_reading_the_scene_constants_imports_no_mujoco():
    """Commands validate flags against OTHER_APPEARANCES, CAMERAS, ...; that must not probe a GL backend."""
    import subprocess
    import sys

    code = "import sys, mirrorlab.envs.scene; sys.exit('mujoco' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
