"""The learnt imitation baselines' fit against its epochs: where `policy_epochs` stops paying.

The learnt baselines (BC, BCO, BCO(alpha), DAgger, handover) are most of the imitation stage's time (README,
"Where the study's time goes"), nearly all of it in `fit_frame_policy`. This script fits their two kinds of
first fit on one dataset, as the imitation stage does (the same windows, seeds and settings), and scores
the policy after every epoch on held-out episodes: BC (the other's video windows -> the demonstrator's
actions; held out: the dataset's held-out demonstrations) and BCO's inverse dynamics (the self arm's own
babbling; held out: the held-out babbling). R^2 is 1 - MSE / the held-out actions' variance, over all
action dimensions. One fit of E epochs shows every shorter fit (nothing in the fit depends on E).

    python scripts/policy_fit_curve.py DATA_DIR [--epochs 20] [--videos 0] [--seed 0]

DATA_DIR is a collected dataset (a study's data/<view>/<appearance>); `--videos N` fits on the first N
training videos (0: all, as the medium preset's `learner_episodes = 0`).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mirrorlab.agents.imitation import fit_frame_policy, step_windows  # noqa: E402
from mirrorlab.agents.runs import TrainConfig, split_episodes  # noqa: E402
from mirrorlab.envs.paired import PairedDataset  # noqa: E402


def r2_after_epochs(train: tuple[np.ndarray, np.ndarray], held: tuple[np.ndarray, np.ndarray], epochs: int,
                    seed: int) -> list[dict[str, float]]:
    """Held-out R^2 and the fit's CPU seconds after every epoch of one fit."""
    x_held = torch.from_numpy(np.ascontiguousarray(held[0]))
    variance = float(held[1].var(axis=0).sum())
    curve, started = [], time.process_time()

    def score(epoch: int, policy) -> None:
        spent = time.process_time() - started
        with torch.no_grad():
            predicted = torch.cat([policy(x_held[i:i + 512]) for i in range(0, len(x_held), 512)]).numpy()
        mse = float(((predicted - held[1]) ** 2).mean(axis=0).sum())
        curve.append({"epoch": epoch, "r2": 1.0 - mse / variance, "fit_cpu_s": round(spent, 1)})
        print(f"  epoch {epoch:3d}: held-out R^2 {curve[-1]['r2']:.3f}  ({spent:.0f} CPU-s of fitting)", flush=True)

    fit_frame_policy(*train, epochs=epochs, seed=seed, after_epoch=score)
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--videos", type=int, default=0, help="training videos fitted on (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the curves here as JSON")
    args = parser.parse_args()
    torch.set_num_threads(1)
    fraction = TrainConfig().test_fraction
    with PairedDataset(args.data) as data:
        demos = {r.episode_id: r for r in data.episodes("demo")}
        babbles = {r.episode_id: r for r in data.episodes("babble")}
        train_ids, held_ids = split_episodes(list(demos), fraction)
        train_ids = train_ids[:args.videos] if args.videos else train_ids
        demo = {i: data.read_episode(demos[i]) for i in train_ids + held_ids}
        b_train, b_held = split_episodes(list(babbles), fraction, "babble")
        babble = {i: data.read_episode(babbles[i]) for i in b_train + b_held}
    # The same training pairs as the imitation stage's BC and BCO (agents.imitation.step_windows).
    bc = [step_windows(np.stack([demo[i]["observe"]["frames"] for i in ids]), [demo[i]["actions"] for i in ids])
          for ids in (train_ids, held_ids)]
    idm = [step_windows(np.stack([babble[i]["perform"]["frames"] for i in ids]), [babble[i]["actions"] for i in ids])
           for ids in (b_train, b_held)]
    curves = {}
    for name, (train, held) in {"bc": bc, "bco_inverse_dynamics": idm}.items():
        print(f"{name}: {len(train[0])} training windows, {len(held[0])} held out", flush=True)
        curves[name] = r2_after_epochs(train, held, args.epochs, args.seed * 100)
    if args.out:
        args.out.write_text(json.dumps({"data": str(args.data), "videos": args.videos, "seed": args.seed,
                                        "curves": curves}, indent=1))


if __name__ == "__main__":
    main()
