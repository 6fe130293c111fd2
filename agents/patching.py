"""Activation patching: does the state the core holds while watching a video carry that video's goal?

The core watches video A; its final observe-mode state is patched in as the goal of a perform-mode plan
that starts where another demonstration, B, started (the goal-inference planner of
`agents.imitation_methods`, from zero actions, so nothing else of A reaches it). If the watched state
carries A's goal, the self arm ends nearer A's target than when the patched state comes from an
unrelated video C. Each row is one (A, B, C) triple: distances from the final fingertip to A's and to B's
target under the patch from A, and to A's target under the control patch from C.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mirrorlab.agents.imitation_methods import Context, plan_videos
from mirrorlab.agents.imitation_task import Replay


def patch_rows(ctx: Context) -> list[dict[str, Any]]:
    """One row per test video A of the dataset's own appearance: patched into B = the next video's start, with
    C = the one after as the control source (cyclically; needs at least three videos)."""
    task = ctx.task
    videos = task.test[task.appearance]
    n = len(videos)
    if n < 3:
        return []
    hosts = [videos[(i + 1) % n] for i in range(n)]
    controls = [videos[(i + 2) % n] for i in range(n)]
    plans = plan_videos("goal_inference", ctx, videos + controls, hosts + hosts)

    def final_tip(host, plan) -> np.ndarray:
        tips = task.rollout(host, Replay(plan))["fingertip_pos"]
        return task.physics.to_base_frame("self", tips[-1])

    rows = []
    for i, (source, host, control) in enumerate(zip(videos, hosts, controls)):
        patched, controlled = final_tip(host, plans[i]), final_tip(host, plans[n + i])
        rows.append({"source": source.episode_id, "host": host.episode_id, "control": control.episode_id,
                     "to_source": float(np.linalg.norm(patched - source.target)),
                     "to_host": float(np.linalg.norm(patched - host.target)),
                     "control_to_source": float(np.linalg.norm(controlled - source.target)),
                     "success_at_source": float(np.linalg.norm(patched - source.target) < task.success_radius)})
    return rows
