"""`mirrorlab analyze`: mirror measures of trained embodied runs on their held-out paired episodes.

Each run's core is run over every episode of its dataset and the activations are written, one file
per run, under `OUT/activations/` (format: `mirrorlab.agents.activations`); `video`, `imitate` and
`spillover` read them. The held-out demo episodes (never trained on) are then measured: perform (the
episode's torques) against observe (the other arm's video of the same torques), aligned by (episode,
timestep), with every measure of the toy study. Runs are grouped by the dataset's other_appearance,
the inverse data and the loss weight; seeds give the intervals. Output: metrics.json, units.csv,
report.md, figures/, activations/.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mirrorlab.config import build_config
from mirrorlab.experiments.stages.measurement import AnalyzeConfig, analyze


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("analyze", help="mirror measures of embodied runs on held-out paired episodes",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=Path, nargs="+", required=True, help="run folders written by `mirrorlab train`")
    p.add_argument("--out", type=Path, required=True, help="output folder for metrics.json, units.csv, report.md")
    p.add_argument("--data", type=Path, default=None,
                   help="the dataset, if it moved (default: the one each run was trained on); must be the runs' own")
    p.add_argument("--workers", type=int, default=1, help="runs analyzed in parallel (default: 1; 0: one per core)")
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"),
                   help="where the core runs (default: cpu, the bit-reproducible one; auto: a GPU if present)")
    p.add_argument("--config", default=None,
                   help="a .toml or .json file setting any analysis.measures.MeasureSettings field")
    p.add_argument("--force", action="store_true", help="replace results already in --out")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    config = build_config(AnalyzeConfig(), args.config, {})
    result = analyze(args.runs, args.out, config, force=args.force, data_path=args.data, workers=args.workers,
                     show_progress=True, device=args.device)
    print(f"report: {result['report']}")
    return 0
