"""`mirrorlab bench TARGET`: named benchmarks, each a module that parses its own flags."""

from __future__ import annotations

import argparse
import importlib

from experiments.errors import UserError

# target name -> "module:function"; the function takes the remaining argv and returns an exit code.
TARGETS = {
    "envs": "experiments.bench_envs:main",
    "replicate": "experiments.bench_replicate:main",
}


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("bench", help="run a named benchmark (mirrorlab bench envs -h)",
                              description=f"Benchmarks: {', '.join(TARGETS)}.")
    p.add_argument("target", help=f"one of: {', '.join(TARGETS)}")
    p.add_argument("options", nargs=argparse.REMAINDER, help="the target's own flags")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.target not in TARGETS:
        raise UserError(f"unknown benchmark {args.target!r}; choose one of: {', '.join(TARGETS)}")
    module, function = TARGETS[args.target].split(":")
    return int(getattr(importlib.import_module(module), function)(args.options) or 0)
