"""The `mirrorlab` command line: one sub-command per study, each defined in its own leaf module.

Bad input of any kind (a flag argparse rejects, a config key, a file) ends in one line on stderr that
names it and says what was expected, and exit status 2; nothing is written before the check.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from mirrorlab.errors import UserError

# Each entry names a module that defines `add_parser(subparsers)` and whose parser sets `func`.
# Adding a command = writing its module and adding one line here.
COMMAND_MODULES = [
    "mirrorlab.experiments.replicate",
    "mirrorlab.experiments.sweep",
    "mirrorlab.experiments.demo",
    "mirrorlab.experiments.collect",
    "mirrorlab.experiments.train",
    "mirrorlab.experiments.analyze",
    "mirrorlab.experiments.curve",
    "mirrorlab.experiments.imitate",
    "mirrorlab.experiments.spillover",
    "mirrorlab.experiments.lesion",
    "mirrorlab.experiments.video",
    "mirrorlab.experiments.render",
    "mirrorlab.experiments.export",
    "mirrorlab.experiments.study",
    "mirrorlab.experiments.report",
    "mirrorlab.experiments.bench",
]


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the flag and what was expected), not usage + error, and no
    flag is taken for an abbreviation of another (`--seed` is not `--seeds`)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="mirrorlab",
        description="Test whether mirror units emerge in agents trained on forward and inverse prediction.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit status (0 ok, 2 bad input), also for --help and usage errors."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help (0) or a usage error (2, its one line already printed)
        return int(done.code or 0)
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"mirrorlab {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
