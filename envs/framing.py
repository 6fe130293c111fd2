"""How a camera frames the arms: the share of each frame an arm covers, whether it is cut by the frame's
edge or hidden behind the other arm, and where its fingertip and target fall.

MuJoCo's segmentation rendering labels every pixel with the geom (or site) drawn there; each label
belongs to the self arm, the other arm or neither (table, targets). `frame_view` reads one state of
an env from one camera; `measure_framing` runs episodes (the scripted demonstrator, babbling: any
actor) and summarises every frame as a `Framing`. The statistics (`arm_masks`, `project`,
`summarise`) are pure functions of arrays. Frames are labelled at the env's frame size times its
`render_supersample`, the resolution the dataset's frames are rendered at before averaging down.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Callable, Sequence

import numpy as np

from mirrorlab.envs._headless import import_mujoco
from mirrorlab.envs.scene import ARMS

Actor = Callable[[Any, int], np.ndarray]
# Each arm's geoms are moved to a group of their own in a copy of the model, so one arm can be drawn alone.
ARM_GROUP = {"self": 3, "other": 4}


def project(points, cam_pos, cam_mat, fovy: float, size: int) -> np.ndarray:
    """World points [N, 3] -> pixel coordinates [N, 2] (column right, row down; the frame spans [0, size)) in a
    square frame of a MuJoCo camera at `cam_pos` with orientation `cam_mat` (3x3; it looks along its -z, +y
    up) and vertical field of view `fovy` (degrees). A point behind the camera maps to NaN."""
    local = (np.atleast_2d(points) - np.asarray(cam_pos)) @ np.asarray(cam_mat).reshape(3, 3)
    depth = -local[:, 2]
    focal = size / 2 / np.tan(np.radians(fovy) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        pixels = np.stack([size / 2 + focal * local[:, 0] / depth, size / 2 - focal * local[:, 1] / depth], axis=1)
    pixels[depth <= 0] = np.nan
    return pixels


def inside(pixels, size: int) -> np.ndarray:
    """Which pixel coordinates [N, 2] fall inside a square frame of `size` (NaN: no)."""
    pixels = np.atleast_2d(pixels)
    with np.errstate(invalid="ignore"):
        return np.all((pixels >= 0) & (pixels < size), axis=1)


def arm_masks(segmentation: np.ndarray, geom_arm: np.ndarray, site_arm: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks [H, W] of the pixels showing each arm, from a segmentation render [H, W, 2] (object id,
    object type) and each geom's and site's arm (0 none, 1 self, 2 other)."""
    mujoco = import_mujoco()
    ids, types = segmentation[..., 0], segmentation[..., 1]
    owner = np.zeros(ids.shape, np.int64)
    for kind, table in ((mujoco.mjtObj.mjOBJ_GEOM, geom_arm), (mujoco.mjtObj.mjOBJ_SITE, site_arm)):
        hit = (types == int(kind)) & (ids >= 0)
        owner[hit] = table[ids[hit]]
    return {arm: owner == i + 1 for i, arm in enumerate(ARMS)}


def touches_edge(mask: np.ndarray) -> bool:
    """Whether a mask has a pixel on the frame's border (so part of what it shows may lie outside)."""
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


@dataclasses.dataclass(frozen=True)
class FrameView:
    """One state seen from one camera: each arm's mask (with both arms drawn), the acting arm's mask drawn
    alone, and each arm's fingertip and target in pixel coordinates of the frame size."""

    masks: dict[str, np.ndarray]
    alone: np.ndarray
    tip: dict[str, np.ndarray]
    target: dict[str, np.ndarray]
    joint_change: np.ndarray | None = None


class FrameLabeller:
    """Segmentation renders of an env's scene (a copy of its model with each arm in its own geom group)."""

    def __init__(self, env, size: int | None = None):
        mujoco = import_mujoco()
        u = env.unwrapped
        self.env, self.size = u, int(u.frame_size if size is None else size)
        self.scale = int(u.render_supersample)
        self.model = copy.copy(u.model)
        root = self.model.body_rootid
        arm_of_body = np.zeros(self.model.nbody, np.int64)
        for i, arm in enumerate(ARMS):
            base = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, f"{arm}_base")
            arm_of_body[root == root[base]] = i + 1
        self.geom_arm, self.site_arm = arm_of_body[self.model.geom_bodyid], arm_of_body[self.model.site_bodyid]
        for i, arm in enumerate(ARMS):
            self.model.geom_group[self.geom_arm == i + 1] = ARM_GROUP[arm]
            self.model.site_group[self.site_arm == i + 1] = ARM_GROUP[arm]
        big = self.size * self.scale
        self.model.vis.global_.offwidth = max(self.model.vis.global_.offwidth, big)
        self.model.vis.global_.offheight = max(self.model.vis.global_.offheight, big)
        self.renderer = mujoco.Renderer(self.model, big, big)
        self.renderer.enable_segmentation_rendering()
        self.turned = mujoco.MjData(self.model)  # the state with one joint turned (the env's data is never touched)

    def _segment(self, camera: str, arms: tuple[str, ...], data=None) -> np.ndarray:
        mujoco = import_mujoco()
        option = mujoco.MjvOption()
        for arm in ARMS:
            option.geomgroup[ARM_GROUP[arm]] = option.sitegroup[ARM_GROUP[arm]] = arm in arms
        self.renderer.update_scene(self.env.data if data is None else data, camera=camera, scene_option=option)
        return self.renderer.render()

    def joint_change(self, camera: str, acting: str, alone: np.ndarray, delta: float) -> np.ndarray:
        """Per driven joint of `acting`: the fraction of the frame that turns into or out of the arm (drawn
        alone) when that joint alone turns by `delta` rad from the env's current state."""
        mujoco = import_mujoco()
        out = []
        for name in self.env.arm_spec.joints:
            joint = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, f"{acting}_{name}")
            self.turned.qpos[:] = self.env.data.qpos
            self.turned.mocap_pos[:] = self.env.data.mocap_pos
            self.turned.qpos[self.model.jnt_qposadr[joint]] += delta
            mujoco.mj_kinematics(self.model, self.turned)
            mujoco.mj_camlight(self.model, self.turned)
            turned = arm_masks(self._segment(camera, (acting,), self.turned), self.geom_arm, self.site_arm)[acting]
            out.append((turned ^ alone).mean())
        return np.array(out)

    def view(self, camera: str, acting: str, delta: float | None = None) -> FrameView:
        """The env's current state from `camera`, `acting` the arm whose movement is watched; with `delta`,
        also how much of the frame each of its joints turning by `delta` rad changes (`joint_change`)."""
        mujoco = import_mujoco()
        masks = arm_masks(self._segment(camera, ARMS), self.geom_arm, self.site_arm)
        alone = arm_masks(self._segment(camera, (acting,)), self.geom_arm, self.site_arm)[acting]
        cam = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        data, fovy = self.env.data, float(self.model.cam_fovy[cam])
        physics = self.env.physics
        at = lambda points: project(points, data.cam_xpos[cam], data.cam_xmat[cam], fovy, self.size)[0]  # noqa: E731
        return FrameView(masks=masks, alone=alone, tip={arm: at(physics.fingertip_pos(arm)) for arm in ARMS},
                         target={arm: at(physics.target_pos(arm)) for arm in ARMS},
                         joint_change=None if delta is None else self.joint_change(camera, acting, alone, delta))

    def close(self) -> None:
        self.renderer.close()


@dataclasses.dataclass(frozen=True)
class Framing:
    """How a camera frames the acting arm over episodes (means over frames unless said otherwise).

    | field          | meaning                                                                          |
    |----------------|----------------------------------------------------------------------------------|
    | `share`        | per arm: the fraction of the frame's pixels that show it                        |
    | `cut`          | per arm: the fraction of frames in which it touches the frame's edge             |
    | `occluded`     | the fraction of the acting arm's pixels (drawn alone) that the other arm hides   |
    | `tip_inside`   | the fraction of frames with the acting arm's fingertip inside the frame          |
    | `target_inside`| the fraction of episodes with the acting arm's target inside the frame           |
    | `tip_step_px`  | the mean distance its fingertip moves in the image per step (pixels at `size`)   |
    | `change`       | the mean fraction of the frame that turns into or out of the acting arm per step |
    | `joint_change` | per joint: the same when that joint alone turns by one position action (0.1 rad)|
    """

    camera: str
    acting: str
    size: int
    frames: int
    share: dict[str, float]
    cut: dict[str, float]
    occluded: float
    tip_inside: float
    target_inside: float
    tip_step_px: float
    change: float
    joint_change: tuple[float, ...]

    def line(self) -> str:
        return (f"{self.camera:>12} {self.acting:>5} acts: share self {self.share['self']:.3f} other "
                f"{self.share['other']:.3f} | acting arm cut {self.cut[self.acting]:.2f}, occluded "
                f"{self.occluded:.3f}, tip inside {self.tip_inside:.2f}, target inside {self.target_inside:.2f}, "
                f"tip step {self.tip_step_px:.2f} px, change {self.change:.4f}, per joint "
                + " ".join(f"{c:.4f}" for c in self.joint_change))


def summarise(episodes: Sequence[Sequence[FrameView]], camera: str, acting: str, size: int) -> Framing:
    """A `Framing` of episodes of consecutive views (every view of one episode one step apart)."""
    views = [v for episode in episodes for v in episode]
    alone = np.array([v.alone.sum() for v in views], float)
    hidden = np.array([(v.alone & ~v.masks[acting]).sum() for v in views], float)
    steps = [np.linalg.norm(b.tip[acting] - a.tip[acting]) for ep in episodes for a, b in zip(ep, ep[1:])]
    change = [(a.masks[acting] ^ b.masks[acting]).mean() for ep in episodes for a, b in zip(ep, ep[1:])]
    return Framing(
        camera=camera, acting=acting, size=size, frames=len(views),
        share={arm: float(np.mean([v.masks[arm].mean() for v in views])) for arm in ARMS},
        cut={arm: float(np.mean([touches_edge(v.masks[arm]) for v in views])) for arm in ARMS},
        occluded=float(hidden.sum() / max(alone.sum(), 1.0)),
        tip_inside=float(np.mean(inside(np.array([v.tip[acting] for v in views]), size))),
        target_inside=float(np.mean(inside(np.array([ep[0].target[acting] for ep in episodes]), size))),
        tip_step_px=float(np.nanmean(steps)) if steps else float("nan"),
        change=float(np.mean(change)) if change else float("nan"),
        joint_change=tuple(float(c) for c in np.mean([v.joint_change for v in views if v.joint_change is not None]
                                                      or [[np.nan]], axis=0)))


def measure_framing(env, camera: str, episodes: Sequence[tuple[int, Actor]], size: int | None = None,
                    joints_every: int = 10, n_steps: int | None = None) -> Framing:
    """Run each (reset seed, actor) episode on `env` (its acting arm; `actor(obs, t)` gives the action) for
    `n_steps` (default: the env's time limit), viewing every state from `camera` at `size` (default the env's
    frame size); every `joints_every`-th state also turns each joint by one position action (`joint_change`;
    0: never)."""
    u = env.unwrapped
    labeller = FrameLabeller(env, size)
    n_steps = env.spec.max_episode_steps if n_steps is None else int(n_steps)
    try:
        runs = []
        for seed, act in episodes:
            obs, _ = env.reset(seed=int(seed))
            turn = lambda t: u.position_scale if joints_every and t % joints_every == 0 else None  # noqa: E731
            views = [labeller.view(camera, u.actor, turn(0))]
            for t in range(n_steps):
                obs, *_ = env.step(np.asarray(act(obs, t), dtype=np.float32))
                views.append(labeller.view(camera, u.actor, turn(t + 1)))
            runs.append(views)
    finally:
        labeller.close()
    return summarise(runs, camera, u.actor, labeller.size)
