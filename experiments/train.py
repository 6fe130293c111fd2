"""`mirrorlab train`: train the embodied core on a paired dataset under one condition and seed.

Checkpoints every `checkpoint_every` epochs (atomically); rerunning the same command resumes from
the last one and ends with the same weights as an uninterrupted run: batch order and label
re-pairings are drawn from (seed, epoch), and the optimiser state is restored. A run is tied to its
dataset by the dataset's fingerprint: resuming on other data is refused. Losses go to TensorBoard
(`RUN/tb`) and to `RUN/history.csv`. A NaN loss stops training, naming the step and the last good
checkpoint. The run folder's files are listed in `mirrorlab.agents.runs`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mirrorlab.agents.conditions import CONDITIONS
from mirrorlab.agents.runs import INVERSE_DATA, TrainConfig
from mirrorlab.agents.training import train_run
from mirrorlab.config import build_config


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train the embodied core on a paired dataset (resumable)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="a dataset folder written by `mirrorlab collect`")
    p.add_argument("--condition", default=None, help=f"one of {', '.join(CONDITIONS)} (default: shared)")
    p.add_argument("--seed", type=int, default=None, help="seed of initialisation and batch order (default: 0)")
    p.add_argument("--out", type=Path, required=True, help="run folder; rerunning resumes from its last checkpoint")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: 20)")
    p.add_argument("--inverse-data", default=None, choices=INVERSE_DATA,
                   help="which arm's video trains the inverse head (default: other)")
    p.add_argument("--inverse-weight", type=float, default=None, help="weight of the inverse loss (default: 1.0)")
    p.add_argument("--inverse-babble", action="store_const", const=True, default=None,
                   help="the inverse head also learns from the self arm's labelled babbling (test_fraction of it held "
                        "out to score it)")
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"),
                   help="where the core runs (default: cpu, the bit-reproducible one; auto: a GPU if present)")
    p.add_argument("--config", default=None, help="a .toml or .json file setting any TrainConfig field")
    p.set_defaults(func=main)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return build_config(TrainConfig(), args.config, {
        "condition": args.condition, "seed": args.seed, "epochs": args.epochs, "inverse_data": args.inverse_data,
        "inverse_weight": args.inverse_weight, "inverse_babble": args.inverse_babble})


def main(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    started = time.perf_counter()
    summary = train_run(config, args.data, args.out, show_progress=True, device=args.device)
    print(f"run: {args.out} ({summary['epochs']} epochs, final {summary['final']}); "
          f"{time.perf_counter() - started:.1f} s")
    return 0
