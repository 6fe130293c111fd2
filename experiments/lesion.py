"""`mirrorlab lesion`: do mirror units matter? Silence them inside the recurrence and measure the damage.

For each analyzed run: the k significant mirror units (k in 2, 4, 8, 16, 32 where the run has them),
>= 100 random sets of k non-mirror units matched on activity variance and read-out weight norms (the
null), the top-k units by inverse read-out weight (a positive control) and the top-k anti-mirror units
are silenced after every GRU step (mean-ablation by default; zero and resample in the config), and the
damage to the held-out inverse R^2 (demonstrations and babbling) and the forward error is scored
against the null. With `--toy`, the toy world's shared, separate and untrained cores too (retrained under
the replication's protocol: it keeps no cores) on inverse accuracy and forward error, and, with
`selectivity_weights` in the config, the selectivity dose-response. A verdict per question ("necessary
for watching / for doing") by the rule in `mirrorlab.analysis.lesion`. Resumable: rerunning continues.
Output: metrics.json, report.md, figures/, runs/ (one result per run or toy core).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mirrorlab.config import build_config
from mirrorlab.experiments.stages.lesion import LesionConfig, lesion


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("lesion", help="silence mirror units inside the recurrence, against a matched null",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=Path, nargs="+", default=[], help="run folders of `mirrorlab train`")
    p.add_argument("--analysis", type=Path, default=None, help="the `mirrorlab analyze` output for these runs")
    p.add_argument("--out", type=Path, required=True, help="output folder (an earlier lesion study there resumes)")
    p.add_argument("--toy", action="store_true", default=None, help="also lesion the toy world's cores")
    p.add_argument("--workers", type=int, default=None, help="jobs in parallel (default: 0, one per CPU core)")
    p.add_argument("--config", default=None, help="a .toml or .json file setting any LesionConfig field")
    p.add_argument("--force", action="store_true", help="replace results already in --out")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    config = build_config(LesionConfig(), args.config, {"toy": args.toy, "workers": args.workers})
    result = lesion(args.runs, args.analysis, args.out, config, force=args.force, show_progress=True)
    print(f"report: {result['report']}")
    return 0
