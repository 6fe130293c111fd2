"""`mirrorlab report`: (re)write the browsable page of a study folder, index.html.

The page opens with a plain-language answer per question and the headline figures and videos, then the
claim verdicts (readable measure names, field names in a glossary), the toy replication, the embodied
study with its perform-vs-observe videos, imitation and spillover, rendered from the same numbers and
Markdown as the reports beside it; open it from disk, offline. It runs nothing a study folder holds:
Markdown is rendered with raw HTML shown as text, and every figure, link and video must lie inside the
folder. `mirrorlab study` writes it at the end of every run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mirrorlab.experiments.stages.page import write_study_page


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="write index.html, the browsable page of a study folder",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="a folder written by `mirrorlab study`")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    page = write_study_page(args.out)
    print(f"page: {page}")
    return 0
