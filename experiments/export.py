"""`mirrorlab export`: a paired dataset in a format other tools load: Farama's Minari or LeRobot v3.0.

`--format minari` (the default): every side of every paired episode becomes one Minari episode (perform,
observe, babble), frames and the acting arm's state as a Dict observation, the shared actions, the pairing in
the dataset's metadata (`mirrorlab.envs.export`). `--out` is a dataset id, written under Minari's datasets
folder (`--minari-root`, else $MINARI_DATASETS_PATH, else ~/.minari/datasets); load it without mirrorlab:
`minari.load_dataset(NAME)`.

`--format lerobot`: a LeRobotDataset v3.0 folder at `--out`, each paired episode one LeRobot episode with
perform and observe as two cameras (`mirrorlab.envs.lerobot_export`); load it with
`LeRobotDataset(REPO_ID, root=OUT)`.

Either is written to a temporary name and renamed only once complete; `--force` replaces an existing one
only then.
"""

from __future__ import annotations

import argparse
from pathlib import Path

FORMATS = ("minari", "lerobot")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="write a paired dataset as a Minari or LeRobot v3.0 dataset",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="a dataset folder written by `mirrorlab collect`")
    p.add_argument("--format", default="minari", choices=FORMATS, help="the output format (default: minari)")
    p.add_argument("--out", required=True, help="minari: the dataset id, [namespace/]name-vN, e.g. "
                   "mirrorlab/planar-v0; lerobot: a new folder")
    p.add_argument("--minari-root", type=Path, default=None,
                   help="Minari's datasets folder (default: $MINARI_DATASETS_PATH or ~/.minari/datasets)")
    p.add_argument("--force", action="store_true", help="replace an existing dataset of the same id or folder")
    p.set_defaults(func=main)


def _minari(args: argparse.Namespace) -> None:
    from mirrorlab.envs.export import export_minari

    summary = export_minari(args.data, args.out, root=args.minari_root, force=args.force)
    print(f"minari dataset {summary['dataset_id']}: {summary['episodes']} episodes ({summary['sides']['perform']} "
          f"perform + {summary['sides']['observe']} observe, paired; {summary['sides']['babble']} babble) at "
          f"{summary['path']}")
    print(f"load it without mirrorlab: minari.load_dataset({summary['dataset_id']!r})")


def _lerobot(args: argparse.Namespace) -> None:
    from mirrorlab.envs.lerobot_export import export_lerobot
    from mirrorlab.errors import UserError

    if args.minari_root is not None:
        raise UserError("--minari-root: only for --format minari")
    summary = export_lerobot(args.data, args.out, force=args.force)
    print(f"lerobot v3.0 dataset: {summary['episodes']} paired episodes, {summary['frames']} frames at "
          f"{summary['fps']:g} fps, cameras observation.images.perform and observation.images.observe, at "
          f"{summary['path']}")
    print(f"load it without mirrorlab: LeRobotDataset('mirrorlab/{Path(args.out).name}', root={summary['path']!r})")


def main(args: argparse.Namespace) -> int:
    (_lerobot if args.format == "lerobot" else _minari)(args)
    return 0
