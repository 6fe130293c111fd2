"""`mirrorlab replicate`: the paper's toy experiment under its own protocol, with the nulls it lacks.

Per seed, one toy world and one paired data set; every condition (shared, separate, forward_only,
shuffled_labels, untrained) is trained on it from the same initialisation and analyzed on the same
held-out sequences. Each (condition, seed) is a cell, saved atomically as it finishes, so a killed
run continues with `--resume`. Outputs: metrics.json, units.csv, report.md, figures 1-4, cells/.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mirrorlab.agents.conditions import CONDITIONS
from mirrorlab.config import build_config, parse_int_list
from mirrorlab.experiments.stages.replication import ReplicateConfig, replicate


def config_from_args(args: argparse.Namespace) -> ReplicateConfig:
    return build_config(ReplicateConfig(), args.config, {
        "seeds": None if args.seeds is None else parse_int_list(args.seeds, "--seeds"),
        "conditions": None if args.conditions is None else tuple(c.strip() for c in args.conditions.split(",")
                                                                 if c.strip()),
        "epochs": args.epochs, "workers": args.workers})


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "replicate", help="the paper's toy experiment, with untrained and sequence-level nulls",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("results/replicate"),
                   help="output folder for metrics.json, units.csv, report.md and figures (default: %(default)s)")
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default: 42,1,2,3,4)")
    p.add_argument("--conditions", default=None,
                   help=f"comma-separated conditions (default: all of {','.join(CONDITIONS)})")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: 20, the paper's)")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: one per CPU core)")
    p.add_argument("--ray-address", default=None, help="run the cells as tasks on this Ray cluster")
    p.add_argument("--config", default=None,
                   help="a .toml or .json file setting any ReplicateConfig field (flags override it)")
    p.add_argument("--force", action="store_true", help="replace the results already in --out")
    p.add_argument("--resume", action="store_true", help="continue a killed run in --out; finished cells are kept")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    started = time.perf_counter()
    result = replicate(config, args.out, force=args.force, resume=args.resume, ray_address=args.ray_address)
    print(f"report: {result['report']}")
    print(f"wall time: {time.perf_counter() - started:.1f} s")
    return 0
