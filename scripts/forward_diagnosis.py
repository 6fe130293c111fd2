"""Why a forward head ignores its actions: one trained run's held-out pixel error beside simple baselines.

Usage: python scripts/forward_diagnosis.py RUN [--episodes N]

Prints, on the run's held-out demonstrations (at most N), the forward head's pixel error with the true actions,
with another held-out episode's actions (the ratio is `forward_action_sensitivity`, as `mirrorlab analyze`
reports it) and with zero actions, beside three baselines that use no actions: copying the start frame, the
mean frame of the held-out episodes at each step, and another episode's true frames; then the same errors at
four steps along the episode. A head whose error with the true actions is above the mean frame's has not
learnt the arm's movement, whatever its sensitivity.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from mirrorlab.agents.core import record
from mirrorlab.agents.embodied import observed_input, perform_start
from mirrorlab.agents.runs import read_run
from mirrorlab.encoders.cnn import frames_as_targets
from mirrorlab.envs.paired import PairedDataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--episodes", type=int, default=32)
    args = parser.parse_args()
    run = read_run(args.run)
    model = run.load_core("cpu")
    held = set(run.test_episode_ids)
    with PairedDataset(run.data_path) as data:
        episodes = [data.read_episode(r) for r in data.episodes("demo") if r.episode_id in held][:args.episodes]
    actions = np.stack([e["actions"] for e in episodes]).astype(np.float32)
    own = np.stack([e["perform"]["frames"] for e in episodes]).transpose(0, 1, 4, 2, 3)
    target = frames_as_targets(torch.from_numpy(own[:, 1:])).numpy()
    start, window = perform_start(model, own), tuple(run.config.observe_window)

    def predicted(acts: np.ndarray) -> np.ndarray:
        return record(model, acts, observed_input(own, window), 16, start).forward_prediction

    first = frames_as_targets(torch.from_numpy(own[:, :1])).numpy()
    rows = {"true actions": predicted(actions), "another episode's actions": predicted(np.roll(actions, 1, 0)),
            "zero actions": predicted(np.zeros_like(actions)),
            "baseline: copy the start frame": np.broadcast_to(first, target.shape),
            "baseline: mean held-out frame per step": np.broadcast_to(target.mean(0, keepdims=True), target.shape),
            "baseline: another episode's true frames": np.roll(target, 1, 0)}
    steps = sorted({0, target.shape[1] // 4, target.shape[1] // 2, target.shape[1] - 1})
    print(f"run {run.dir}: {len(episodes)} held-out episodes, pixel MSE overall and at steps {steps}")
    for name, prediction in rows.items():
        error = ((prediction - target) ** 2).mean(axis=(0, 2, 3, 4))
        print(f"{name:42s} {error.mean():.5f}   " + "  ".join(f"{error[t]:.5f}" for t in steps))
    true, other = (((rows[k] - target) ** 2).mean() for k in ("true actions", "another episode's actions"))
    print(f"action sensitivity {other / true:.3f}")


if __name__ == "__main__":
    main()
