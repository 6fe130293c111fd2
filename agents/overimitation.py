"""Overimitation: demonstrations with a task-irrelevant detour, and how much of the detour an imitator copies.

Children copy steps of a demonstration that do nothing for the task (seed 001). Here the irrelevant step is
a detour: the other arm first heads for a *waypoint* off the direct path (beside the midpoint of the direct
reach, a fixed fraction of the arm's reach to the left of it, in its base frame), then reaches the same
target. The demonstrator is the scripted reacher (`ScriptedReacher.action(goal=...)`), from the test video's
own reset seed (same start pose, same target), filmed from the dataset's own camera as `ImitationTask`
films its rendered appearances. The same controller reaching directly gives the *direct* path, the
reference of a learner that ignores the detour.

Scores of one imitation (the self arm's fingertip path `own`, base frame), beside `success`:

| score | meaning | replays the detour | reaches directly |
|---|---|---|---|
| `overimitation` | gain g of `own - direct` on `detour - direct` (least squares over the steps) | 1 | 0 |
| `waypoint_index` | `1 - min_t |own_t - waypoint| / min_t |direct_t - waypoint|` | 1 | 0 |

The first is the share of the detour reproduced in time; the second how much closer than the direct reach
the imitation passes the waypoint at any time (late or slow copies of the detour still count).

`overimitation_rows` is the one call the imitation stage makes per (task, method, core).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from mirrorlab.agents.imitation_task import Video

if TYPE_CHECKING:
    from mirrorlab.agents.imitation_methods import Context, Method
    from mirrorlab.agents.imitation_task import ImitationTask

# The detour: the waypoint's distance beside the direct path (a fraction of the arm's longest reach: 6 cm for
# the planar arm, whose success radius is 2 cm) and the share of the episode spent heading for it.
DETOUR_OFFSET = 0.3
DETOUR_SHARE = 0.4


@dataclass
class DetourVideo(Video):
    """A demonstration with a detour; `other_path` is the detour path, `direct_path` the direct reach's."""

    waypoint: np.ndarray = None      # [3] base frame
    direct_path: np.ndarray = None   # [T+1, 3] base frame: the same controller reaching directly


def detour_waypoint(start: np.ndarray, target: np.ndarray, offset: float,
                    radius: tuple[float, float], center: np.ndarray) -> np.ndarray:
    """A base-frame point `offset` to the left of the midpoint of start -> target (horizontal plane), kept in
    the workspace shell `radius` around `center` so the arm can reach it."""
    start, target, center = (np.asarray(p, np.float64) for p in (start, target, center))
    direction = (target - start)[:2]
    norm = np.linalg.norm(direction)
    side = np.array([1.0, 0.0]) if norm < 1e-9 else np.array([-direction[1], direction[0]]) / norm
    point = (start + target) / 2
    point[:2] += offset * side
    away = point - center
    distance = np.linalg.norm(away)
    return center + away * np.clip(distance, *radius) / max(distance, 1e-12)


def detour_gain(own: np.ndarray, direct: np.ndarray, detour: np.ndarray) -> float:
    """The gain g minimising sum_t |(own_t - direct_t) - g (detour_t - direct_t)|^2 over paths [T+1, 3]."""
    deviation = np.asarray(detour, np.float64) - direct
    scale = float(np.sum(deviation ** 2))
    if scale <= 0:
        raise ValueError("the detour path equals the direct path: nothing to overimitate")
    return float(np.sum((np.asarray(own, np.float64) - direct) * deviation) / scale)


def waypoint_index(own: np.ndarray, direct: np.ndarray, waypoint: np.ndarray) -> float:
    """1 - (own path's closest approach to the waypoint) / (the direct path's)."""
    closest = lambda path: float(np.linalg.norm(np.asarray(path) - waypoint, axis=-1).min())  # noqa: E731
    return 1.0 - closest(own) / max(closest(direct), 1e-12)


def _demonstrate(task: "ImitationTask", video: Video) -> DetourVideo:
    """The scripted detour and direct reaches of the other arm from `video`'s reset seed."""
    from mirrorlab.agents.scripted import ScriptedReacher
    from mirrorlab.envs.episodes import rollout

    env = task.header.make_env("other", other_appearance=video.appearance)
    try:
        u = env.unwrapped
        reacher = ScriptedReacher(env)
        base = lambda r: np.stack([u.physics.to_base_frame("other", p) for p in r["fingertip_pos"]])  # noqa: E731
        direct = base(rollout(env, video.seed, lambda _o, _t: reacher.action()))
        workspace = u.arm_spec.workspace
        waypoint = detour_waypoint(direct[0], video.target, DETOUR_OFFSET * workspace.radius[1], workspace.radius,
                                   np.asarray(workspace.center))
        goal = u.physics.from_base_frame("other", waypoint)
        switch = int(round(DETOUR_SHARE * (len(direct) - 1)))
        result = rollout(env, video.seed, lambda _o, t: reacher.action(goal if t < switch else None),
                         camera=task.header.observe_camera)
    finally:
        env.close()
    return DetourVideo(video.episode_id, video.seed, video.appearance, result["frames"], result["actions"],
                       base(result), result["target"], waypoint=waypoint, direct_path=direct)


def detour_videos(task: "ImitationTask") -> list[DetourVideo]:
    """One detour demonstration per test video of the dataset's own appearance (the one the cores trained on)."""
    return [_demonstrate(task, v) for v in task.test[task.appearance]]


def detour_scores(task: "ImitationTask", video: DetourVideo, result: dict[str, Any]) -> dict[str, float]:
    """The scores of one imitation of a detour video (a `rollout` result of the self arm)."""
    own = np.stack([task.physics.to_base_frame("self", p) for p in result["fingertip_pos"]])
    distance = float(np.linalg.norm(own[-1] - video.target))
    return {"episode_id": video.episode_id, "success": float(distance < task.success_radius),
            "final_distance": distance,
            "overimitation": detour_gain(own, video.direct_path, video.other_path),
            "waypoint_index": waypoint_index(own, video.direct_path, video.waypoint)}


def overimitation_rows(method: "Method", ctx: "Context", detours: list[DetourVideo], base: dict[str, Any],
                       make: Callable[[Video], Any] | None = None) -> list[dict[str, Any]]:
    """Every detour video imitated by one method. A learnt method reuses `make` (what its build returned for
    the test videos: a trained policy acts on any video); every other method is built on a view of the task
    whose test videos are the detours (planners plan the videos of their task, nothing is trained)."""
    if make is None or not method.learner:
        make = method.build(detour_context(ctx, detours))[0]
    rows = []
    for video in detours:
        options = method.options(video)
        result = ctx.task.rollout(video, make(video),
                                  options=None if options is None else ctx.task.reset_options(**options))
        rows.append({**base, "appearance": video.appearance, "method": method.name, "seed": ctx.seed,
                     **detour_scores(ctx.task, video, result)})
    return rows


def detour_context(ctx: "Context", detours: list[DetourVideo]) -> "Context":
    """`ctx` whose task's test videos are the detours, and whose core has read none of them yet (a core caches
    what it watched by appearance and episode id, which a detour video shares with its test video)."""
    view = copy.copy(ctx.task)
    view.test = {ctx.task.appearance: list(detours)}
    core = None if ctx.core is None else dataclasses.replace(ctx.core, _watched={})
    return dataclasses.replace(ctx, task=view, core=core)
