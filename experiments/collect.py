"""`mirrorlab collect`: paired perform/observe episodes of a demonstrator, plus self motor babbling, on disk.

Demo episode k: the *other* arm runs the demonstrator from `reset(seed=s_k)` and is filmed from
`other_view` (observe); the self arm replays the very same stored action array from the same reset
and is filmed from `self_view` (perform). Babble episode j: the self arm under smooth random torques.
The format is documented in `mirrorlab.envs.paired` (HDF5, readable with plain h5py).

Shards run in parallel processes (or on a Ray cluster); rerunning the same command continues a killed
collection (shards whose bytes are unchanged are kept, the rest redone). Until it finishes, the
manifest says `complete: false` and every reader refuses the folder; a second `collect` on the same
`--out` is refused while the first holds the folder's lock. `--check-only` collects nothing: it
checks every episode's hashes (frames included) and replays some bit for bit.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mirrorlab.agents.collection import CollectConfig
from mirrorlab.config import build_config
from mirrorlab.envs.scene import ACTION_MODES, OTHER_APPEARANCES
from mirrorlab.experiments.stages.collection import collect


def config_from_args(args: argparse.Namespace) -> CollectConfig:
    names = ("env_id", "demonstrator", "episodes", "babble", "seed", "frame_size", "other_appearance", "action_mode",
             "episodes_per_shard", "workers", "verify_episodes")
    return build_config(CollectConfig(), args.config, {n: getattr(args, n, None) for n in names})


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("collect", help="paired perform/observe episodes of a demonstrator, plus motor babbling",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", dest="env_id", default=None, help="env id (default: mirrorlab/PlanarReach-v0)")
    p.add_argument("--demonstrator", default=None,
                   help="'scripted' or a checkpoint folder from `mirrorlab demo train` (default: scripted)")
    p.add_argument("--episodes", type=int, default=None, help="paired demonstrator episodes (default: 200)")
    p.add_argument("--babble", type=int, default=None, help="self motor-babbling episodes (default: 200)")
    p.add_argument("--out", type=Path, default=Path("results/data"), help="dataset folder (default: %(default)s)")
    p.add_argument("--seed", type=int, default=None, help="collection seed (default: 0)")
    p.add_argument("--frame-size", dest="frame_size", type=int, default=None, help="frame side in pixels (default: 32)")
    p.add_argument("--other-appearance", dest="other_appearance", default=None,
                   help=f"{' | '.join(OTHER_APPEARANCES)} (default: identical)")
    p.add_argument("--action-mode", dest="action_mode", choices=ACTION_MODES, default=None,
                   help="the arms' actions: joint-target offsets, which a camera sees better, or torques (default: position)")
    p.add_argument("--episodes-per-shard", dest="episodes_per_shard", type=int, default=None,
                   help="episodes per shard file (default: 16)")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: one per CPU core)")
    p.add_argument("--ray-address", default=None, help="run the shards as tasks on this Ray cluster")
    p.add_argument("--verify-episodes", dest="verify_episodes", type=int, default=None,
                   help="episodes per kind re-simulated and compared bit for bit at the end (default: 2)")
    p.add_argument("--config", default=None, help="a .toml or .json file setting any CollectConfig field")
    p.add_argument("--force", action="store_true", help="replace a dataset already in --out")
    p.add_argument("--check-only", dest="check_only", action="store_true",
                   help="collect nothing: check every episode of --out (every hash, frames included) and "
                        "replay --verify-episodes episodes per kind bit for bit")
    p.set_defaults(func=main)


def check_dataset(out: Path, verify_episodes: int) -> None:
    from mirrorlab.envs.paired import PairedDataset, verify_pairing
    from mirrorlab.errors import UserError

    if verify_episodes < 0:
        raise UserError(f"--verify-episodes must be >= 0, got {verify_episodes}")
    with PairedDataset(out) as dataset:
        n = dataset.check()
        kinds = tuple(sorted({r.kind for r in dataset.refs}))
        fingerprint = dataset.fingerprint
    print(f"{out}: {n} episodes, every hash (actions, frames, proprioception) OK; fingerprint {fingerprint[:16]}")
    if verify_episodes:
        checked = verify_pairing(out, n_episodes=verify_episodes, kinds=kinds)["episodes_checked"]
        print(f"pairing verified by replay on {len(checked)} episodes")


def main(args: argparse.Namespace) -> int:
    if args.check_only:
        check_dataset(args.out, 2 if args.verify_episodes is None else args.verify_episodes)
        return 0
    config = config_from_args(args)
    manifest = collect(config, args.out, force=args.force, ray_address=args.ray_address)
    run = manifest["last_run"]
    print(f"dataset: {args.out} ({config.episodes} paired + {config.babble} babbling episodes, "
          f"{len(manifest['shards'])} shards; fingerprint {manifest['fingerprint'][:16]})")
    if run["episodes_collected"]:
        print(f"collected {run['episodes_collected']} episodes in {run['wall_time_s']:.1f} s "
              f"({run['episodes_per_s']:.2f} episodes/s, {run['workers']} workers)")
    if manifest.get("verified"):
        print(f"pairing verified by replay on {len(manifest['verified'])} episodes")
    return 0
