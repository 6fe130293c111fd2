"""`mirrorlab export`: a paired dataset in a format other tools load; today Farama's Minari.

Every side of every paired episode becomes one Minari episode (perform, observe, babble), with frames and
the acting arm's state as a Dict observation, the shared actions, and the pairing in the dataset's
metadata; see `mirrorlab.envs.export` for the layout. The dataset is written under Minari's datasets
folder (`--minari-root`, else $MINARI_DATASETS_PATH, else ~/.minari/datasets) and loads without
mirrorlab: `minari.load_dataset(NAME)`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

FORMATS = ("minari",)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="write a paired dataset as a Minari dataset",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="a dataset folder written by `mirrorlab collect`")
    p.add_argument("--format", default="minari", choices=FORMATS, help="the output format (default: minari)")
    p.add_argument("--out", required=True, help="the Minari dataset id, [namespace/]name-vN, e.g. mirrorlab/planar-v0")
    p.add_argument("--minari-root", type=Path, default=None,
                   help="Minari's datasets folder (default: $MINARI_DATASETS_PATH or ~/.minari/datasets)")
    p.add_argument("--force", action="store_true", help="replace a Minari dataset of the same id")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from mirrorlab.envs.export import export_minari

    summary = export_minari(args.data, args.out, root=args.minari_root, force=args.force)
    print(f"minari dataset {summary['dataset_id']}: {summary['episodes']} episodes ({summary['sides']['perform']} "
          f"perform + {summary['sides']['observe']} observe, paired; {summary['sides']['babble']} babble) at "
          f"{summary['path']}")
    print(f"load it without mirrorlab: minari.load_dataset({summary['dataset_id']!r})")
    return 0
