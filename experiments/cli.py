"""The `mirrorlab` command line: one sub-command per study, each defined in its own module."""

from __future__ import annotations

import argparse
import importlib
import sys

from experiments.errors import UserError

# Each entry names a module that defines `add_parser(subparsers)` and whose parser sets `func`.
# Adding a study = writing its module and adding one line here.
COMMAND_MODULES = [
    "experiments.replicate",
    "experiments.demo",
    "experiments.collect",
    "experiments.train",
    "experiments.analyze",
    "experiments.imitate",
    "experiments.study",
    "experiments.render",
    "experiments.bench",
    "experiments.sweep",
    "experiments.video",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mirrorlab",
        description="Test whether mirror units emerge in agents trained on forward and inverse prediction.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"mirrorlab {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
