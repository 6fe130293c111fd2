"""Named, per-arm accessors on a MuJoCo model/data pair: task logic never indexes raw arrays.

As in dm_control, geometry questions are answered here (`fingertip_pos("other")`,
`fingertip_to_target("self")`, ...), and the env only composes them. Every accessor returns a
fresh array (never a view into `MjData`), so callers may keep what they get.
"""

from __future__ import annotations

import math

import numpy as np

from mirrorlab.envs._headless import import_mujoco
from mirrorlab.envs.scene import ARMS, BASE_POS, BASE_YAW

mujoco = import_mujoco()


def _as_slice(indices: list[int]) -> slice | np.ndarray:
    # Contiguous addresses (the usual case) index as a slice: a view, cheaper than fancy indexing.
    indices = [int(i) for i in indices]
    if indices == list(range(indices[0], indices[0] + len(indices))):
        return slice(indices[0], indices[0] + len(indices))
    return np.array(indices)


def check_arm(arm: str) -> str:
    if arm not in ARMS:
        raise ValueError(f"arm must be one of {ARMS}, got {arm!r}")
    return arm


class TwoArmPhysics:
    """Accessors for the self and other arm of one scene (`model`, `data`)."""

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, joints: tuple[str, ...],
                 mirrored: dict[str, bool], planar: bool):
        """`joints`: the driven hinges' names in the arm's model file (the scene prefixes them per arm)."""
        self.model, self.data = model, data
        self.n_joints = len(joints)
        self.planar = planar
        self.mirrored = dict(mirrored)
        name2id = mujoco.mj_name2id
        obj = mujoco.mjtObj
        self._qpos, self._dof, self._act, self._site, self._mocap = {}, {}, {}, {}, {}
        self._rot, self._base, self._range = {}, {}, {}
        for arm in ARMS:
            ids = [name2id(model, obj.mjOBJ_JOINT, f"{arm}_{name}") for name in joints]
            self._qpos[arm] = _as_slice([model.jnt_qposadr[j] for j in ids])
            self._dof[arm] = _as_slice([model.jnt_dofadr[j] for j in ids])
            self._range[arm] = model.jnt_range[ids].copy()
            self._act[arm] = _as_slice([name2id(model, obj.mjOBJ_ACTUATOR, f"{arm}_motor{i}")
                                        for i in range(self.n_joints)])
            self._site[arm] = name2id(model, obj.mjOBJ_SITE, f"{arm}_fingertip")
            self._mocap[arm] = model.body_mocapid[name2id(model, obj.mjOBJ_BODY, f"{arm}_target")]
            # Base frame -> world: yaw rotation, then (for a mirrored arm) the reflection x -> -x.
            c, s = np.cos(BASE_YAW[arm]), np.sin(BASE_YAW[arm])
            rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
            if mirrored.get(arm, False):
                rot = rot @ np.diag([-1.0, 1.0, 1.0])
            self._rot[arm] = rot
            self._base[arm] = np.array(BASE_POS[arm], dtype=np.float64)

    # --- proprioception -------------------------------------------------------------------
    def joint_angles(self, arm: str) -> np.ndarray:
        return self.data.qpos[self._qpos[check_arm(arm)]].copy()

    def joint_velocities(self, arm: str) -> np.ndarray:
        return self.data.qvel[self._dof[check_arm(arm)]].copy()

    def joint_ranges(self, arm: str) -> np.ndarray:
        """(n_joints, 2) lower and upper joint limits (rad), as the arm's model file declares them."""
        return self._range[check_arm(arm)].copy()

    def set_joint_state(self, arm: str, angles, velocities) -> None:
        self.data.qpos[self._qpos[check_arm(arm)]] = angles
        self.data.qvel[self._dof[arm]] = velocities

    def set_controls(self, arm: str, controls) -> None:
        self.data.ctrl[self._act[check_arm(arm)]] = controls

    # --- geometry (world frame) -----------------------------------------------------------
    def base_pos(self, arm: str) -> np.ndarray:
        return self._base[check_arm(arm)].copy()

    def fingertip_pos(self, arm: str) -> np.ndarray:
        return self.data.site_xpos[self._site[check_arm(arm)]].copy()

    def target_pos(self, arm: str) -> np.ndarray:
        return self.data.mocap_pos[self._mocap[check_arm(arm)]].copy()

    def set_target_pos(self, arm: str, pos) -> None:
        self.data.mocap_pos[self._mocap[check_arm(arm)]] = pos

    def fingertip_to_target(self, arm: str) -> np.ndarray:
        return self.target_pos(arm) - self.fingertip_pos(arm)

    def fingertip_distance(self, arm: str) -> float:
        d = self.fingertip_to_target(arm)
        return math.sqrt(float(d @ d))

    def fingertip_jacobian(self, arm: str) -> np.ndarray:
        """d fingertip_pos / d joint_angles (3 x n_joints, world frame) for that arm's joints."""
        jacp = np.zeros((3, self.model.nv))
        mujoco.mj_jacSite(self.model, self.data, jacp, None, self._site[check_arm(arm)])
        return jacp[:, self._dof[arm]]

    # --- the arm's own frame ----------------------------------------------------------------
    # Observations use the acting arm's base frame, so an episode of the other arm reads exactly
    # like the same episode of the self arm (a mirrored arm's frame is mirrored too).
    def to_base_frame(self, arm: str, world_pos) -> np.ndarray:
        return self._rot[check_arm(arm)].T @ (np.asarray(world_pos, float) - self._base[arm])

    def from_base_frame(self, arm: str, local_pos) -> np.ndarray:
        return self._base[check_arm(arm)] + self._rot[arm] @ np.asarray(local_pos, float)

    def vector_to_base_frame(self, arm: str, world_vec) -> np.ndarray:
        return self._rot[check_arm(arm)].T @ np.asarray(world_vec, float)

    def target_in_base_frame(self, arm: str) -> np.ndarray:
        return self.to_base_frame(arm, self.target_pos(arm))

    def fingertip_in_base_frame(self, arm: str) -> np.ndarray:
        return self.to_base_frame(arm, self.fingertip_pos(arm))
