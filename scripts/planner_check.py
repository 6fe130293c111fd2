"""Why analysis by synthesis leaves a good estimate: the match loss of the demonstrated actions, of the inverse
head's estimate and of the planned actions, on a run's held-out videos.

Usage: python scripts/planner_check.py RUN [RUN ...] [--videos N] [--iterations K]

For each run: its first N held-out demonstrations as videos (the dataset's own view and appearance), the
inverse head's open-loop estimate from each video, then `plan_through_core` with `match_frames` (the
synthesis method's planner, K Adam iterations from that estimate, from the own first frame). Prints the pixel
match loss of the demonstrated actions, the estimate and the plan, and each one's mean absolute error to the
demonstrated actions. If the demonstrated actions do not have the lowest loss, the objective, not the search,
is what leads the planner away.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from mirrorlab.agents.embodied import observed_input
from mirrorlab.agents.imitation import match_frames, plan_through_core
from mirrorlab.agents.runs import read_run
from mirrorlab.envs.paired import PairedDataset


def check(path: str, videos: int, iterations: int) -> str:
    run = read_run(path)
    model = run.load_core("cpu")
    held = set(run.test_episode_ids)
    with PairedDataset(run.data_path) as data:
        episodes = [data.read_episode(r) for r in data.episodes("demo") if r.episode_id in held][:videos]
    actions = np.stack([e["actions"] for e in episodes]).astype(np.float32)
    video = np.stack([e["observe"]["frames"] for e in episodes])            # [N, T+1, S, S, 3]
    own_start = np.stack([e["perform"]["frames"][0] for e in episodes])      # [N, S, S, 3]
    window = tuple(run.config.observe_window)
    with torch.no_grad():
        estimate = model.observe(torch.from_numpy(observed_input(video.transpose(0, 1, 4, 2, 3), window))).prediction
    estimate = estimate.numpy()
    match = match_frames(video, model)
    start = torch.from_numpy(own_start.transpose(0, 3, 1, 2))

    def loss(a: np.ndarray) -> float:
        with torch.no_grad():
            return float(match(model.perform(torch.from_numpy(np.asarray(a, np.float32)), start), 0))

    planned = plan_through_core(model, match, estimate, iterations=iterations, start_frames=own_start)
    error = {name: float(np.abs(a - actions).mean()) for name, a in (("estimate", estimate), ("planned", planned))}
    return (f"{run.dir.name} ({run.label}, {run.watched}): match loss demonstrated {loss(actions):.5f}, estimate "
            f"{loss(estimate):.5f}, planned {loss(planned):.5f}; action error estimate {error['estimate']:.3f}, "
            f"planned {error['planned']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--iterations", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for path in args.runs:
        print(check(path, args.videos, args.iterations))


if __name__ == "__main__":
    main()
