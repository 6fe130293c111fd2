"""Activation patching: does the state the core holds while watching a video carry that video's goal?

The core watches video A; its final observe-mode state is patched in as the goal of a perform-mode rollout
that starts where another demonstration, B, started (the goal-inference planner of
`agents.imitation_methods`, started from zero actions so nothing else of A reaches it). If the watched
state carries A's goal, the self arm ends nearer A's target than when the patched state comes from an
unrelated video C. Each row is one (A, B, C) triple: distances from the final fingertip to A's and to B's
target under the patch from A, and to A's target under the control patch from C.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mirrorlab.agents.imitation_methods import Core
from mirrorlab.agents.imitation_task import ImitationTask, Video


def _final_tip(task: ImitationTask, core: Core, goal_video: Video, host: Video, config, seed: int) -> np.ndarray:
    from mirrorlab.agents.imitation import PlanningActor, match_states

    states, _ = core.watch(goal_video)
    actor = PlanningActor(core.model, match_states(states, final_only=True), len(host.actions),
                          host.actions.shape[-1], iterations=config.plan_iterations, replan_every=config.replan_every,
                          replan_iterations=config.replan_iterations, seed=seed, lesion=core.lesion)
    tips = task.rollout(host, actor)["fingertip_pos"]
    return task.physics.to_base_frame("self", tips[-1])


def patch_rows(task: ImitationTask, core: Core, config, seed: int) -> list[dict[str, Any]]:
    """One row per test video A of the dataset's own appearance: patched into B = the next video's start, with
    C = the one after as the control source (cyclically; needs at least three videos)."""
    videos = task.test[task.appearance]
    if len(videos) < 3:
        return []
    rows = []
    for i, source in enumerate(videos):
        host, control = videos[(i + 1) % len(videos)], videos[(i + 2) % len(videos)]
        patched = _final_tip(task, core, source, host, config, seed)
        controlled = _final_tip(task, core, control, host, config, seed)
        rows.append({"source": source.episode_id, "host": host.episode_id, "control": control.episode_id,
                     "to_source": float(np.linalg.norm(patched - source.target)),
                     "to_host": float(np.linalg.norm(patched - host.target)),
                     "control_to_source": float(np.linalg.norm(controlled - source.target)),
                     "success_at_source": float(np.linalg.norm(patched - source.target) < task.success_radius)})
    return rows
