"""Overimitation: demonstration pairs that differ only by a task-irrelevant detour, and how much of it is copied.

Children copy steps of a demonstration that do nothing for the task. Here the irrelevant step is
a detour: the other arm first heads for a *waypoint* off the direct path (a fixed fraction of the arm's
reach to the left of the direct reach's midpoint, in its base frame), then reaches the same target. Each
test video's reset seed (start pose, target) gives a *pair* of demonstrations by the scripted reacher
(`ScriptedReacher.action(goal=...)`), filmed from the dataset's own camera as `ImitationTask` films its
rendered appearances: the *direct* reach and the *detour*. Every method imitates both.

Scoring the *response* to the detour, not the path alone, matters: a learner that drifts sideways whatever
it watches (random actions do, from the planar arm's stretched start) would otherwise look like a copier.

| score | meaning | replay | direct |
|---|---|---|---|
| `overimitation` | gain g of (own detour - own direct path) on (detour - direct demo), least squares | 1 | 0 |
| `waypoint_index` | (closest approach to the waypoint: own direct - own detour) / (the same, demos) | 1 | 0 |
| `success`, `final_distance` | the imitation of the detour, against the target | | |
| `success_direct` | the imitation of the direct reach | | |

(replay: a method that replays each demonstration's actions; direct: one that reaches the target directly
whatever it watched.) The first is the share of the detour reproduced in time; the second counts late or
slow copies too.
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
class DetourPair:
    """Two demonstrations from one reset seed: `direct` reaches the target, `detour` passes `waypoint` first."""

    direct: Video
    detour: Video
    waypoint: np.ndarray  # [3] base frame

    @property
    def episode_id(self) -> int:
        return self.direct.episode_id


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


def response_gain(own_detour: np.ndarray, own_direct: np.ndarray, demo_detour: np.ndarray,
                  demo_direct: np.ndarray) -> float:
    """The gain g minimising sum_t |(own_detour - own_direct)_t - g (demo_detour - demo_direct)_t|^2 (paths
    [T+1, 3]): how much of the demonstrations' difference the imitations' difference reproduces."""
    shown = np.asarray(demo_detour, np.float64) - demo_direct
    scale = float(np.sum(shown ** 2))
    if scale <= 0:
        raise ValueError("the detour path equals the direct path: nothing to overimitate")
    return float(np.sum((np.asarray(own_detour, np.float64) - own_direct) * shown) / scale)


def waypoint_index(own_detour: np.ndarray, own_direct: np.ndarray, demo_detour: np.ndarray, demo_direct: np.ndarray,
                   waypoint: np.ndarray) -> float:
    """How much closer the imitation of the detour passes the waypoint than the imitation of the direct reach
    (closest approaches, any time), over the same for the demonstrations (a fixed, clearly positive scale:
    a ratio to the imitation's own approach explodes when it passes the waypoint by chance)."""
    closest = lambda path: float(np.linalg.norm(np.asarray(path) - waypoint, axis=-1).min())  # noqa: E731
    shown = closest(demo_direct) - closest(demo_detour)
    if shown <= 0:
        raise ValueError("the detour demonstration passes the waypoint no closer than the direct one")
    return (closest(own_direct) - closest(own_detour)) / shown


def _demonstrate(task: "ImitationTask", video: Video) -> DetourPair:
    """The scripted direct and detour reaches of the other arm from `video`'s reset seed, filmed."""
    from mirrorlab.agents.scripted import ScriptedReacher
    from mirrorlab.envs.episodes import rollout

    env = task.header.make_env("other", other_appearance=video.appearance)
    try:
        u = env.unwrapped
        reacher = ScriptedReacher(env)

        def film(act) -> Video:
            r = rollout(env, video.seed, act, camera=task.header.observe_camera)
            path = np.stack([u.physics.to_base_frame("other", p) for p in r["fingertip_pos"]])
            return Video(video.episode_id, video.seed, video.appearance, r["frames"], r["actions"], path, r["target"])

        direct = film(lambda _o, _t: reacher.action())
        workspace = u.arm_spec.workspace
        waypoint = detour_waypoint(direct.other_path[0], direct.target, DETOUR_OFFSET * workspace.radius[1],
                                   workspace.radius, np.asarray(workspace.center))
        goal, switch = u.physics.from_base_frame("other", waypoint), int(round(DETOUR_SHARE * len(direct.actions)))
        detour = film(lambda _o, t: reacher.action(goal if t < switch else None))
    finally:
        env.close()
    return DetourPair(direct, detour, waypoint)


def detour_pairs(task: "ImitationTask") -> list[DetourPair]:
    """One pair per test video of the dataset's own appearance (the one the cores trained on)."""
    return [_demonstrate(task, v) for v in task.test[task.appearance]]


def pair_scores(task: "ImitationTask", pair: DetourPair, direct: dict[str, Any], detour: dict[str, Any]
                ) -> dict[str, float]:
    """The scores of one method's imitations (`rollout` results of the self arm) of a pair's two videos."""
    own = {k: np.stack([task.physics.to_base_frame("self", p) for p in r["fingertip_pos"]])
           for k, r in (("direct", direct), ("detour", detour))}
    distance = lambda path: float(np.linalg.norm(path[-1] - pair.detour.target))  # noqa: E731
    return {"episode_id": pair.episode_id,
            "overimitation": response_gain(own["detour"], own["direct"], pair.detour.other_path,
                                           pair.direct.other_path),
            "waypoint_index": waypoint_index(own["detour"], own["direct"], pair.detour.other_path,
                                             pair.direct.other_path, pair.waypoint),
            "success": float(distance(own["detour"]) < task.success_radius), "final_distance": distance(own["detour"]),
            "success_direct": float(distance(own["direct"]) < task.success_radius)}


def demonstration_context(ctx: "Context", videos: list[Video]) -> "Context":
    """`ctx` whose task's test videos are `videos`, and whose core has watched none of them yet (a core caches
    what it watched by appearance and episode id, which these share with the test video of their seed)."""
    view = copy.copy(ctx.task)
    view.test = {ctx.task.appearance: list(videos)}
    core = None if ctx.core is None else dataclasses.replace(ctx.core, _watched={})
    return dataclasses.replace(ctx, task=view, core=core)


def overimitation_rows(method: "Method", ctx: "Context", pairs: list[DetourPair], base: dict[str, Any],
                       make: Callable[[Video], Any] | None = None) -> list[dict[str, Any]]:
    """Both videos of every pair imitated by one method. A learnt method reuses `make` (what its build returned
    for the test videos: a trained policy acts on any video); every other method is built on a view of the
    task whose test videos are the pair's direct (then detour) videos: planners plan the videos of their task,
    and nothing is trained."""
    def imitate(videos: list[Video]) -> list[dict[str, Any]]:
        act = make if make is not None and method.learner else method.build(demonstration_context(ctx, videos))[0]
        results = []
        for video in videos:
            options = method.options(video)
            results.append(ctx.task.rollout(video, act(video),
                                            options=None if options is None else ctx.task.reset_options(**options)))
        return results

    direct, detour = imitate([p.direct for p in pairs]), imitate([p.detour for p in pairs])
    return [{**base, "appearance": p.direct.appearance, "method": method.name, "seed": ctx.seed,
             **pair_scores(ctx.task, p, d, r)} for p, d, r in zip(pairs, direct, detour)]
