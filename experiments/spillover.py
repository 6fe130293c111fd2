"""`mirrorlab spillover`: the value-spillover test. Does value learnt on "me" spill over to "the other", and does
feedback remove it?

A linear value head is fitted to the self arm's reward from the latent of the core watching its own arm;
spillover is the value it then assigns when the core watches the other arm succeed, relative to its own
success, on held-out episodes; feedback that the other's success is worth nothing follows, and the decay
is recorded (see `mirrorlab.experiments.stages.spillover` and `mirrorlab.analysis.spillover`). The runs
must have been analyzed: their activations are read from `--analysis`. Output: metrics.json,
spillover.csv, report.md, figures/spillover_vs_feedback.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mirrorlab.config import build_config
from mirrorlab.experiments.stages.spillover import SpilloverConfig, spillover


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("spillover", help="value spillover: value learnt on self, applied to the other, and its decay",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=Path, nargs="+", required=True, help="run folders of `mirrorlab train`")
    p.add_argument("--analysis", type=Path, required=True, help="the `mirrorlab analyze` output for these runs")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--config", default=None, help="a .toml or .json file setting any SpilloverConfig field")
    p.add_argument("--force", action="store_true", help="replace results already in --out")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    config = build_config(SpilloverConfig(), args.config, {})
    result = spillover(args.runs, args.analysis, args.out, config, force=args.force)
    print(f"report: {result['report']}")
    return 0
