"""`mirrorlab bench TARGET`: named benchmarks, each a module that parses its own flags."""

from __future__ import annotations

import argparse
import importlib

from mirrorlab.errors import UserError

# target name -> "module:function"; the function takes the remaining argv and returns an exit code.
TARGETS = {
    "envs": "mirrorlab.experiments.bench_envs:main",
    "limits": "mirrorlab.experiments.bench_limits:main",
    "replicate": "mirrorlab.experiments.bench_replicate:main",
    "study": "mirrorlab.experiments.bench_study:main",
    "train": "mirrorlab.experiments.bench_train:main",
}


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("bench", help="run a named benchmark (mirrorlab bench envs -h)",
                              description=f"Benchmarks: {', '.join(TARGETS)}.")
    p.add_argument("target", help=f"one of: {', '.join(TARGETS)}, or all (each with its defaults)")
    p.add_argument("options", nargs=argparse.REMAINDER, help="the target's own flags")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.target == "all":
        if args.options:
            raise UserError(f"bench all takes no options (each benchmark runs with its defaults); got "
                            f"{' '.join(args.options)}")
        for name in TARGETS:
            print(f"== mirrorlab bench {name}")
            _call(name, [])
        return 0
    if args.target not in TARGETS:
        raise UserError(f"unknown benchmark {args.target!r}; choose one of: {', '.join(TARGETS)}, all")
    return _call(args.target, args.options)


def _call(name: str, options: list[str]) -> int:
    module, function = TARGETS[name].split(":")
    return int(getattr(importlib.import_module(module), function)(options) or 0)
