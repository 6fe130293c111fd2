"""How the cameras frame the arms (envs/framing.py), at the dataset's 32 px, 4x supersampled, self target hidden.

The `third_person` view must keep the watched (other) arm whole and unhidden over the scripted demonstrator's
episodes, and every target of its workspace in frame. Thresholds from the measurement (`python -m
tests.test_framing 16`: the dataset's demo episodes 0-15 of collection seed 0; README, "The published arm"):
on the planar, 3-D and new ViperX framings the other arm touched the frame's edge in 0% of frames, the self
arm covered 0.0% of the frame and hid none of the other, the other arm covered 2.3%, 3.3% and 4.9% of it, and
all of 1000 targets drawn from the workspace fell inside (the closest 4.1, 1.9 and 0.9 px from the edge). The
old ViperX framing (the self camera's place, fovy 30) failed each: the other arm touched the edge in 100% of
frames (its raised links leave the top), the self arm covered 5.4% of the frame and 29% of the targets fell
outside.
"""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

from mirrorlab.envs import MAX_EPISODE_STEPS
from mirrorlab.agents.collection import episode_seed
from mirrorlab.agents.scripted import ScriptedReacher
from mirrorlab.envs import scene
from mirrorlab.envs._headless import import_mujoco
from mirrorlab.envs.framing import FrameLabeller, arm_masks, inside, measure_framing, project, touches_edge
from mirrorlab.envs.reach import ViperXReachEnv

mujoco = import_mujoco()

ENV_IDS = {"planar": "mirrorlab/PlanarReach-v0", "arm3d": "mirrorlab/Arm3DReach-v0",
           "vx300s": "mirrorlab/ViperXReach-v0"}
DATASET_FRAMES = dict(frame_size=32, render_supersample=4, visible_targets="other")

# The ViperX as first published: `third_person` from the self camera's place aimed at the other's camera point,
# fovy 30, and the model file's two marker sites drawn.
OLD_VX300S = dataclasses.replace(scene.VX300S, third_person_pos=None, third_person_aim=None,
                                 third_person_fovy=scene.THIRD_PERSON_FOVY, drop_sites=())


class OldViperXEnv(ViperXReachEnv):
    arm_spec = OLD_VX300S


def _env(name: str, actor: str):
    if name == "vx300s_old":
        return OldViperXEnv(actor=actor, **DATASET_FRAMES)
    return gym.make(ENV_IDS[name], actor=actor, **DATASET_FRAMES)


def _third_person_over_demos(name: str, episodes: int = 4):
    env = _env(name, "other")
    reacher = ScriptedReacher(env)
    demos = [(episode_seed(0, "demo", k), lambda obs, t: reacher.predict(obs)[0]) for k in range(episodes)]
    try:
        return measure_framing(env, "third_person", demos, joints_every=0,
                               n_steps=MAX_EPISODE_STEPS[ENV_IDS[name.removesuffix("_old")]])
    finally:
        env.close()


def _targets_inside(name: str, n: int = 1000) -> float:
    """The fraction of `n` targets drawn from the other arm's workspace that project inside `third_person`."""
    env = _env(name, "other")
    try:
        u = env.unwrapped
        env.reset(seed=0)
        cam = mujoco.mj_name2id(u.model, mujoco.mjtObj.mjOBJ_CAMERA, "third_person")
        rng = np.random.default_rng(0)
        world = np.array([u.physics.from_base_frame("other", u.arm_spec.workspace.sample(rng)) for _ in range(n)])
        pixels = project(world, u.data.cam_xpos[cam], u.data.cam_xmat[cam], u.model.cam_fovy[cam], u.frame_size)
        return float(inside(pixels, u.frame_size).mean())
    finally:
        env.close()


def test_projection_and_segmentation_agree():
    """A point on the camera's axis projects to the frame's centre; one behind it to NaN; the planar arm's
    fingertip, seen from above, projects onto a pixel the segmentation gives to that arm."""
    eye = np.eye(3)
    np.testing.assert_allclose(project([0, 0, -2.0], (0, 0, 0), eye, 45.0, 32), [[16.0, 16.0]])
    assert np.isnan(project([0, 0, 2.0], (0, 0, 0), eye, 45.0, 32)).all()
    assert not inside([[np.nan, np.nan], [32.0, 3.0]], 32).any() and inside([[0.0, 31.9]], 32).all()
    env = gym.make(ENV_IDS["planar"], actor="other", frame_size=32, render_supersample=1)
    env.reset(seed=3)
    labeller = FrameLabeller(env)
    try:
        view = labeller.view("other_view", "other")
        col, row = view.tip["other"].astype(int)
        assert view.masks["other"][row, col] and not view.masks["self"].any()
        assert view.alone.sum() == view.masks["other"].sum()  # nothing hides the arm from its own camera
    finally:
        labeller.close()
        env.close()


def test_arm_masks_and_edges_are_read_from_the_labels():
    geom_arm, site_arm = np.array([0, 1, 2]), np.array([2])
    geom, site = int(mujoco.mjtObj.mjOBJ_GEOM), int(mujoco.mjtObj.mjOBJ_SITE)
    segmentation = np.array([[[0, geom], [1, geom]], [[2, geom], [0, site]]])
    segmentation = np.concatenate([segmentation, [[[-1, -1], [-1, -1]]]], axis=0)  # a row of background
    masks = arm_masks(segmentation, geom_arm, site_arm)
    assert masks["self"].tolist() == [[False, True], [False, False], [False, False]]
    assert masks["other"].tolist() == [[False, False], [True, True], [False, False]]
    assert touches_edge(masks["other"]) and not touches_edge(np.pad(np.ones((2, 2), bool), 1))


@pytest.mark.parametrize("name", ["planar", "arm3d", "vx300s"])
def test_third_person_keeps_the_watched_arm_whole_unhidden_and_its_targets_in_frame(name):
    framing = _third_person_over_demos(name)
    assert framing.cut["other"] == 0.0, "the watched arm leaves the frame"
    assert framing.tip_inside == 1.0 and framing.target_inside == 1.0
    assert framing.share["self"] <= 0.005 and framing.occluded <= 0.01, "the self arm fills or hides the view"
    assert framing.share["other"] >= 0.015, "the watched arm is lost in the distance"
    assert _targets_inside(name) == 1.0


def test_the_first_viperx_framing_fails_the_checks():
    """What the checks above catch: the old ViperX framing, measured the same way."""
    framing = _third_person_over_demos("vx300s_old")
    assert framing.cut["other"] >= 0.9 and framing.share["self"] > 0.03
    assert _targets_inside("vx300s_old") < 0.9


def test_viperx_draws_no_marker_sites_of_its_model_file():
    """Only the scene's fingertips: the file's `right/gripper` site would float 15 cm beyond the flange."""
    model = scene.build_scene(scene.VX300S).compile()
    names = {mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_SITE, i) for i in range(model.nsite)}
    assert names == {"self_fingertip", "other_fingertip"}


def measure(names=("planar", "arm3d", "vx300s_old", "vx300s"), episodes: int = 40) -> None:
    """Print the measurement behind the thresholds: `third_person` over the scripted demonstrator (the other arm
    acts), `self_view` over the same actions replayed by the self arm (perform) and over motor babbling, the
    dataset's episodes 0..episodes-1 (`python -m tests.test_framing [EPISODES]`)."""
    from mirrorlab.agents.collection import CollectConfig, babble_actions

    for name in names:
        n_steps = MAX_EPISODE_STEPS[ENV_IDS[name.removesuffix("_old")]]
        for actor, camera, kind in (("other", "third_person", "demo"), ("self", "self_view", "demo"),
                                    ("self", "self_view", "babble")):
            env = _env(name, actor)
            if kind == "demo":
                reacher = ScriptedReacher(env)
                runs = [(episode_seed(0, kind, k), lambda obs, t: reacher.predict(obs)[0]) for k in range(episodes)]
            else:
                actions = [babble_actions(CollectConfig(), k, n_steps, env.action_space.shape[0])
                           for k in range(episodes)]
                runs = [(episode_seed(0, kind, k), lambda obs, t, a=a: a[t]) for k, a in enumerate(actions)]
            print(f"{name:>10} {kind:>6}", measure_framing(env, camera, runs, n_steps=n_steps).line(), flush=True)
            env.close()


if __name__ == "__main__":
    import sys

    measure(episodes=int(sys.argv[1]) if len(sys.argv) > 1 else 40)
