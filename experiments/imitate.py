"""`mirrorlab imitate`: can the learner imitate the other arm from video alone?

Every method acts on the self arm, whose own observation carries no target, for held-out videos of the
other arm; the methods (oracle, random, the core's inverse head open and closed loop, imitation by the
mirror system's forward model, BCO and BCO(alpha), BC, DAgger, and a goal-given reference), what each
sees, and the scores are described in `mirrorlab.experiments.stages.imitation`. The runs must have been analyzed (`--analysis`, the output of
`mirrorlab analyze`): their recorded activations and mirror measures are read from there.
Resumable: rerunning with the same config continues, keeping every (dataset, seed) job saved after its runs
and the analysis were last written.
Output: imitation.csv, metrics.json, report.md, config.json, jobs/ (one result per job).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mirrorlab.config import build_config
from mirrorlab.experiments.stages.imitation import ImitateConfig, imitate


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("imitate", help="imitate the other arm from video: inverse heads vs baselines",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, nargs="+", required=True,
                   help="run folders of `mirrorlab train` (any conditions; runs of one dataset share its episodes)")
    p.add_argument("--analysis", type=Path, required=True, help="the output folder of `mirrorlab analyze` for these runs")
    p.add_argument("--episodes", type=int, default=None, help="held-out episodes per dataset (default: 20)")
    p.add_argument("--out", type=Path, required=True, help="output folder (an earlier imitation there resumes)")
    p.add_argument("--no-learners", action="store_true", help="skip BC, DAgger, BCO and BCO(alpha)")
    p.add_argument("--workers", type=int, default=None,
                   help="(dataset, seed) jobs scored in parallel (default: 1; 0: one per core)")
    p.add_argument("--device", default=None, choices=("auto", "cpu", "cuda"),
                   help="where the cores and frame policies run (default: cpu, the bit-reproducible one)")
    p.add_argument("--ray-address", default=None, help="score the datasets as tasks on this Ray cluster")
    p.add_argument("--config", default=None, help="a .toml or .json file setting any ImitateConfig field")
    p.add_argument("--force", action="store_true", help="replace results already in --out")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    config = build_config(ImitateConfig(), args.config,
                          {"episodes": args.episodes, "learners": False if args.no_learners else None,
                           "workers": args.workers, "device": args.device})
    result = imitate(args.run, args.out, config, analysis=args.analysis, force=args.force,
                     ray_address=args.ray_address)
    print(f"report: {result['report']}")
    return 0
