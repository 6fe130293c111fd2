"""`mirrorlab study`: the main job. Every part of the study on a built-in preset, one page and one report.

0. The demonstrator: the SB3 policy the other arm runs, trained once and cached (or the scripted
   controller, for the `small` preset only), with its success rate on held-out targets.
1. The paper's toy experiment, replicated with its nulls (the `replicate` stage).
2. The embodied study: paired episodes of the demonstrator for each `other_appearance` (`collect`),
   the core trained under every condition and seed on the identical-looking other arm and under a
   subset of conditions on the other appearances, and the mirror measures of all runs (`analyze`,
   which also records every run's activations), each pixel R^2 beside its state ceiling.
3. Imitation from video by every run, with its baselines (`imitate`); lesions of the headline runs
   (`lesion`); the selectivity dose-response on the arm (`dose`: off unless the preset or a config file turns
   it on; `medium` does); seed 002's training variants (`variants`: replay at surprise, reward-modulated
   learning; likewise); the value-spillover test (`spillover`); one perform-vs-observe video per appearance (`video`).
4. report.md and index.html (`report`): the claim verdicts first, then every section.
Each stage keeps what it finished: rerunning the command resumes where it stopped. The training runs
(and collection shards, analyses, imitation datasets) go through the one runner, so `--ray-address`
spreads them over a cluster as `sweep` does its cells. The wall time of every stage is printed.

The config is one tree (`StudyConfig`): the plan (seeds, conditions, appearances, views, inverse_weights)
and one branch per stage (demonstrator, collect, train, analyze, imitate, lesion, dose, variants, spillover,
video).
`--preset` picks a built-in tree; `--config FILE.toml` changes any field of it, a branch as a table:

    seeds = [0, 1]
    [train]
    epochs = 5
    [imitate]
    episodes = 4
    [lesion]           # or `lesion = false` to skip the stage
    [dose]             # or `dose = true` for its defaults
    weights = [-0.3, 0.3]

then the flags below change it again. The study's config.json holds the whole tree.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from mirrorlab.agents.runs import DEVICES
from mirrorlab.config import build_config
from mirrorlab.experiments.stages.study import (  # noqa: F401  (the study's config and plan, re-exported)
    BUDGET_MIN,
    PRESETS,
    StudyConfig,
    run_plan,
    scenarios,
    study,
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("study", help="the main job: every part of the study on a preset, one page",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("results/study"),
                   help="output folder (default: %(default)s); an existing study there is resumed, not overwritten")
    p.add_argument("--preset", default="small", choices=tuple(PRESETS),
                   help="the study's size: the config tree that --config changes (default: small)")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="a .toml (or .json) file setting any field of the preset's tree, branches as tables")
    p.add_argument("--no-toy", action="store_true", help="skip the toy replication")
    p.add_argument("--fresh", action="store_true",
                   help="delete an earlier study in --out first and start again (only a folder the study made)")
    p.add_argument("--device", default=None, choices=DEVICES, help="where the cores train and run (default: the preset's)")
    p.add_argument("--demonstrator", default=None,
                   help="the other arm's policy: a checkpoint folder (`demo train`, or an earlier study's demo/), "
                        "'scripted' or 'sac' (default: the preset's)")
    p.add_argument("--ray-address", default=None, help="spread the training runs (and other jobs) over this Ray cluster")
    p.set_defaults(func=main)


def study_config(args: argparse.Namespace) -> StudyConfig:
    """The preset's tree <- the config file <- the flags, each layer checked by key and type, then validated."""
    flags = {"toy": False if args.no_toy else None, "device": args.device,
             "collect": {"demonstrator": args.demonstrator} if args.demonstrator else None}
    return build_config(PRESETS[args.preset], args.config, flags)


def main(args: argparse.Namespace) -> int:
    config = study_config(args)
    started = time.perf_counter()
    report = study(config, args.out, fresh=args.fresh, ray_address=args.ray_address,
                   origin={"preset": args.preset, "config_file": args.config})
    print(f"report: {report}")
    print(f"page: {report.parent / 'index.html'}")
    wall = time.perf_counter() - started
    budget = f", budget {BUDGET_MIN[args.preset]} min on 2 CPU cores" if args.preset in BUDGET_MIN else ""
    print(f"wall time: {wall:.0f} s = {wall / 60:.1f} min (preset {args.preset}{budget}, load average "
          f"{os.getloadavg()[0]:.1f})")
    return 0
