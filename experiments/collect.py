"""`mirrorlab collect`: paired perform/observe episodes of a demonstrator, plus self motor babbling, on disk.

Demo episode k (reset seed s_k): the *other* arm runs the demonstrator from `reset(seed=s_k)` and is
filmed from `other_view` (observe); the self arm replays the very same stored action array from
`reset(seed=s_k)` (same start pose and target in its own base frame) and is filmed from `self_view`
(perform). Babble episode j: the self arm under smooth random torques (an AR(1) process clipped to
[-1, 1]). The format is documented in `envs/paired.py`.

Shards of `episodes_per_shard` episodes run in parallel processes; each is written to a temp file
and renamed when complete, then listed in `manifest.json`. Rerunning the same command continues a
killed collection: listed shards that are intact are kept, the rest (temp files, truncated or
missing shards) are redone. The same config and seed give the same data.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from experiments.config import build_config
from experiments.errors import UserError
from experiments.provenance import atomic_write_json, provenance


@dataclass(frozen=True)
class CollectConfig:
    """Every default of a paired-episode collection."""

    env_id: str = "mirrorlab/PlanarReach-v0"
    demonstrator: str = "scripted"       # "scripted" or a `mirrorlab demo train` checkpoint folder
    episodes: int = 200                  # paired demonstrator episodes
    babble: int = 200                    # self motor-babbling episodes
    seed: int = 0
    frame_size: int = 64
    other_appearance: str = "identical"
    observe_camera: str = "other_view"
    perform_camera: str = "self_view"
    episodes_per_shard: int = 16
    babble_smoothing: float = 0.9        # AR(1) coefficient of the babbling torques (0 = white noise)
    babble_scale: float = 0.7            # stationary std of the babbling torques before clipping
    verify_episodes: int = 2             # per kind, re-simulated and compared bit for bit at the end
    workers: int = 0                     # 0: one per CPU core

    def validate(self) -> None:
        import envs
        from envs.reach import check_frame_size

        if self.env_id not in envs.ENV_IDS:
            raise UserError(f"config: unknown env {self.env_id!r}; expected one of {', '.join(envs.ENV_IDS)}")
        for name in ("episodes", "babble", "verify_episodes", "workers", "seed"):
            if getattr(self, name) < 0:
                raise UserError(f"config: {name} must be >= 0, got {getattr(self, name)}")
        if self.episodes + self.babble == 0:
            raise UserError("config: nothing to collect (episodes and babble are both 0)")
        if self.episodes_per_shard < 1:
            raise UserError(f"config: episodes_per_shard must be >= 1, got {self.episodes_per_shard}")
        try:
            check_frame_size(self.frame_size)
        except ValueError as err:
            raise UserError(f"config: {err}") from None
        if not 0 <= self.babble_smoothing < 1:
            raise UserError(f"config: babble_smoothing must be in [0, 1), got {self.babble_smoothing}")
        if self.babble_scale <= 0:
            raise UserError(f"config: babble_scale must be > 0, got {self.babble_scale}")

    def env_kwargs(self) -> dict[str, Any]:
        return {"frame_size": self.frame_size, "other_appearance": self.other_appearance}


def episode_seed(config_seed: int, kind: str, episode_id: int) -> int:
    """The reset seed of an episode: distinct per (collection seed, kind, id), reproducible."""
    stream = {"demo": 0, "babble": 1}[kind]
    return int(np.random.SeedSequence([config_seed, stream, episode_id]).generate_state(1)[0])


def babble_actions(config: CollectConfig, episode_id: int, n_steps: int, action_dim: int) -> np.ndarray:
    """Smooth random torques: a_t = rho a_{t-1} + sqrt(1 - rho^2) scale eps_t, clipped to [-1, 1]."""
    rng = np.random.default_rng([config.seed, 2, episode_id])
    rho, scale = config.babble_smoothing, config.babble_scale
    a = rng.normal(0.0, scale, action_dim)
    out = np.empty((n_steps, action_dim), np.float32)
    for t in range(n_steps):
        if t:
            a = rho * a + np.sqrt(1 - rho**2) * rng.normal(0.0, scale, action_dim)
        out[t] = np.clip(a, -1.0, 1.0)
    return out


def shard_plan(config: CollectConfig) -> list[tuple[int, str, list[int]]]:
    """(shard index, kind, episode ids): demo shards first, then babble; fixed by the config alone."""
    plan, index = [], 0
    for kind, count in (("demo", config.episodes), ("babble", config.babble)):
        for start in range(0, count, config.episodes_per_shard):
            plan.append((index, kind, list(range(start, min(start + config.episodes_per_shard, count)))))
            index += 1
    return plan


def collect_shard(config: CollectConfig, header_fields: dict[str, Any], index: int, kind: str,
                  episode_ids: list[int], out: str) -> dict[str, Any]:
    """Simulate and write one shard (runs in a worker process; builds its own envs)."""
    import torch

    from agents.demonstrator import load_demonstrator
    from envs.paired import Header, ShardWriter, record_side, replay_side, shard_name

    torch.set_num_threads(1)
    started = time.perf_counter()
    header = Header(**header_fields)
    T = header.max_steps
    self_env = header.make_env("self")
    other_env = header.make_env("other") if kind == "demo" else None
    policy = load_demonstrator(config.demonstrator, other_env) if other_env is not None else None
    writer = ShardWriter(Path(out) / shard_name(index), header, index, kind)
    try:
        for k in episode_ids:
            seed = episode_seed(config.seed, kind, k)
            if kind == "demo":
                def act(obs, _t):
                    return policy.predict(obs, deterministic=True)[0]

                observe = record_side(other_env, seed, header.observe_camera, act, T)
                perform = replay_side(self_env, seed, header.perform_camera, observe["actions"])
                writer.add_episode(k, seed, observe["actions"], {"observe": observe, "perform": perform})
            else:
                actions = babble_actions(config, k, T, header.action_dim)
                perform = replay_side(self_env, seed, header.perform_camera, actions)
                writer.add_episode(k, seed, actions, {"perform": perform})
        path = writer.commit()
    except BaseException:
        writer.abort()
        raise
    finally:
        self_env.close()
        if other_env is not None:
            other_env.close()
    return {"name": path.name, "kind": kind, "episode_ids": [episode_ids[0], episode_ids[-1]],
            "n_episodes": len(episode_ids), "size": path.stat().st_size,
            "wall_time_s": time.perf_counter() - started}


# Settings that change how a collection runs, not what it holds: a resumed run may change them.
_RUN_ONLY = ("workers", "verify_episodes")


def _shard_intact(path: Path, entry: dict[str, Any]) -> bool:
    from envs.paired import PairedDataError, open_shard, read_header

    if not path.is_file() or path.stat().st_size != entry.get("size"):
        return False
    try:
        with open_shard(path) as handle:
            read_header(handle, path)
            return int(handle.attrs.get("n_episodes", -1)) == entry.get("n_episodes")
    except (PairedDataError, OSError):
        return False


def _prepare(config: CollectConfig, out: Path, header_fields: dict[str, Any], force: bool) -> dict[str, Any]:
    """The manifest to continue from: a fresh one, or the earlier run's with damaged shards dropped."""
    from envs.paired import FORMAT, FORMAT_VERSION, MANIFEST

    path = out / MANIFEST
    now = json.loads(json.dumps(dataclasses.asdict(config)))
    if out.exists() and any(out.iterdir()):
        if force:
            shutil.rmtree(out)
        elif not path.is_file():
            raise UserError(f"{out} exists and is not a dataset folder (no {MANIFEST}); choose a new --out")
        else:
            try:
                manifest = json.loads(path.read_text())
                earlier = manifest["provenance"]["config"]
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise UserError(f"{path}: unreadable manifest ({err}); pass --force to start over") from None
            changed = sorted(k for k in set(earlier) | set(now)
                             if k not in _RUN_ONLY and earlier.get(k) != now.get(k))
            if changed:
                raise UserError(f"{out} holds a collection with a different config ({', '.join(changed)}); "
                                "rerun with the same settings to continue it, or pass --force to replace it")
            if manifest.get("format_version") != FORMAT_VERSION:
                raise UserError(f"{path}: format version {manifest.get('format_version')}, this mirrorlab writes "
                                f"{FORMAT_VERSION}; pass --force to recollect")
            for tmp in out.glob(".shard-*.h5.tmp"):  # partially written by a killed worker
                tmp.unlink()
            manifest["shards"] = {name: entry for name, entry in manifest["shards"].items()
                                  if _shard_intact(out / name, entry)}
            manifest["complete"] = False
            return manifest
    out.mkdir(parents=True, exist_ok=True)
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "header": header_fields,
            "provenance": provenance(config, seeds={"seed": config.seed}), "shards": {}, "complete": False}


def collect(config: CollectConfig, out: Path, force: bool = False, show_progress: bool = True) -> dict[str, Any]:
    """Collect every shard not yet on disk, in parallel; returns the final manifest."""
    from tqdm import tqdm

    from agents.demonstrator import SCRIPTED, load_demonstrator
    from envs.paired import MANIFEST, make_header, shard_name, verify_pairing

    config.validate()
    header = make_header(config.env_id, config.env_kwargs(), config.demonstrator,
                         config.observe_camera, config.perform_camera)
    if config.demonstrator != SCRIPTED and config.episodes:
        probe = header.make_env("other")
        try:
            load_demonstrator(config.demonstrator, probe)  # a bad checkpoint fails here, before any work
        finally:
            probe.close()
    header_fields = dataclasses.asdict(header)
    manifest = _prepare(config, out, header_fields, force)
    plan = shard_plan(config)
    todo = [(i, kind, ids) for i, kind, ids in plan if shard_name(i) not in manifest["shards"]]
    total = config.episodes + config.babble
    started = time.perf_counter()
    bar = tqdm(total=total, desc="collect", unit="episode", disable=not show_progress)
    bar.update(total - sum(len(ids) for _, _, ids in todo))

    def done(entry: dict[str, Any]) -> None:
        manifest["shards"][entry["name"]] = entry
        atomic_write_json(out / MANIFEST, manifest)
        bar.update(entry["n_episodes"])

    atomic_write_json(out / MANIFEST, manifest)
    workers = min(config.workers or os.cpu_count() or 1, max(len(todo), 1))
    if workers == 1:
        for i, kind, ids in todo:
            done(collect_shard(config, header_fields, i, kind, ids, str(out)))
    elif todo:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = [pool.submit(collect_shard, config, header_fields, i, kind, ids, str(out))
                       for i, kind, ids in todo]
            for fut in as_completed(futures):
                done(fut.result())
    bar.close()
    wall = time.perf_counter() - started
    collected = sum(len(ids) for _, _, ids in todo)
    manifest["complete"] = len(manifest["shards"]) == len(plan)
    manifest["last_run"] = {"episodes_collected": collected, "wall_time_s": wall,
                            "episodes_per_s": collected / wall if wall > 0 else None, "workers": workers}
    if config.verify_episodes:
        kinds = tuple(k for k, n in (("demo", config.episodes), ("babble", config.babble)) if n)
        manifest["verified"] = verify_pairing(out, n_episodes=config.verify_episodes, seed=config.seed,
                                              kinds=kinds)["episodes_checked"]
    atomic_write_json(out / MANIFEST, manifest)
    return manifest


def config_from_args(args: argparse.Namespace) -> CollectConfig:
    names = ("env_id", "demonstrator", "episodes", "babble", "seed", "frame_size", "other_appearance",
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
    p.add_argument("--frame-size", dest="frame_size", type=int, default=None, help="frame side in pixels (default: 64)")
    p.add_argument("--other-appearance", dest="other_appearance", default=None,
                   help="identical | recolored | mirrored | morphology (default: identical)")
    p.add_argument("--episodes-per-shard", dest="episodes_per_shard", type=int, default=None,
                   help="episodes per shard file (default: 16)")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: one per CPU core)")
    p.add_argument("--verify-episodes", dest="verify_episodes", type=int, default=None,
                   help="episodes per kind re-simulated and compared bit for bit at the end (default: 2)")
    p.add_argument("--config", default=None, help="a .toml or .json file setting any CollectConfig field")
    p.add_argument("--force", action="store_true", help="replace a dataset already in --out")
    p.add_argument("--check-only", dest="check_only", action="store_true",
                   help="collect nothing: check every episode of --out (structure, shared-action hashes) and "
                        "replay --verify-episodes episodes per kind bit for bit")
    p.set_defaults(func=main)


def check_dataset(out: Path, verify_episodes: int) -> None:
    from envs.paired import PairedDataset, verify_pairing

    with PairedDataset(out) as dataset:
        n = dataset.check()
        kinds = tuple(sorted({r.kind for r in dataset.refs}))
    print(f"{out}: {n} episodes, structure and shared-action hashes OK")
    if verify_episodes:
        checked = verify_pairing(out, n_episodes=verify_episodes, kinds=kinds)["episodes_checked"]
        print(f"pairing verified by replay on {len(checked)} episodes")


def main(args: argparse.Namespace) -> int:
    if args.check_only:
        check_dataset(args.out, 2 if args.verify_episodes is None else args.verify_episodes)
        return 0
    config = config_from_args(args)
    manifest = collect(config, args.out, force=args.force)
    run = manifest["last_run"]
    print(f"dataset: {args.out} ({config.episodes} paired + {config.babble} babbling episodes, "
          f"{len(manifest['shards'])} shards)")
    if run["episodes_collected"]:
        print(f"collected {run['episodes_collected']} episodes in {run['wall_time_s']:.1f} s "
              f"({run['episodes_per_s']:.2f} episodes/s, {run['workers']} workers)")
    if manifest.get("verified"):
        print(f"pairing verified by replay on {len(manifest['verified'])} episodes")
    return 0
