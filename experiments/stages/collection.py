"""Collect a paired dataset folder: plan its shards, run the missing ones, keep the manifest, verify (collect, study).

Shards of `episodes_per_shard` episodes run as runner jobs; each is written to a temp file and renamed
when complete, then listed in `manifest.json` with its size and SHA-256. Rerunning the same command
continues a killed collection: listed shards whose bytes are unchanged are kept, the rest (temp
files, truncated, edited or missing shards) are redone. The same config and seed give the same data.
The folder's lock is held throughout, so a second `collect` on the same `--out` is refused at once
(it would otherwise redo the first one's shards and delete its temp files under it).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from mirrorlab.agents.collection import CollectConfig, collect_shard, header_kwargs, shard_plan
from mirrorlab.envs.paired import (
    FORMAT,
    FORMAT_VERSION,
    PairedDataError,
    dataset_fingerprint,
    make_header,
    read_manifest,
    shard_intact,
    shard_name,
    verify_pairing,
    write_manifest,
)
from mirrorlab.errors import UserError
from mirrorlab.experiments.runner import Job, resolve_workers, run_jobs
from mirrorlab.files import locked_output_dir
from mirrorlab.provenance import provenance

# Settings that change how a collection runs, not what it holds: a resumed run may change them.
RUN_ONLY = ("workers", "verify_episodes")


def _continued_manifest(config: CollectConfig, out: Path, header_fields: dict[str, Any]) -> dict[str, Any]:
    """The manifest to continue from: a fresh one, or the earlier run's with damaged shards dropped."""
    if not (out / "manifest.json").is_file():
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "header": header_fields,
                "provenance": provenance(config, seeds={"seed": config.seed}), "shards": {}, "complete": False}
    try:
        manifest = read_manifest(out)
        earlier = manifest["provenance"]["config"]
        if not isinstance(earlier, dict):
            raise TypeError("provenance.config is not an object")
    except (PairedDataError, KeyError, TypeError) as err:
        raise UserError(f"{out}: unreadable manifest ({err}); pass --force to start over") from None
    now = json.loads(json.dumps(dataclasses.asdict(config)))
    changed = sorted(k for k in set(earlier) | set(now) if k not in RUN_ONLY and earlier.get(k) != now.get(k))
    if changed:
        raise UserError(f"{out} holds a collection with a different config ({', '.join(changed)}); rerun with the "
                        "same settings to continue it, or pass --force to replace it")
    planned = {shard_name(index) for index, _kind, _ids in shard_plan(config)}  # never a path the file names
    manifest["shards"] = {name: entry for name, entry in manifest["shards"].items()
                          if name in planned and isinstance(entry, dict) and shard_intact(out / name, entry)}
    manifest["complete"] = False
    return manifest


def collect(config: CollectConfig, out: Path, force: bool = False, show_progress: bool = True,
            ray_address: str | None = None) -> dict[str, Any]:
    """Collect every shard not yet on disk (in parallel), holding the folder's lock; returns the final manifest."""
    from mirrorlab.agents.demonstrator import SCRIPTED, load_demonstrator

    config.validate()
    header = make_header(**header_kwargs(config))
    if config.demonstrator != SCRIPTED and config.episodes:
        probe = header.make_env("other")
        try:
            load_demonstrator(config.demonstrator, probe)  # a bad checkpoint fails here, before any work
        finally:
            probe.close()
    with locked_output_dir(out, "collect", resume=True, force=force):
        return _collect_shards(config, out, dataclasses.asdict(header), show_progress, ray_address)


def _collect_shards(config: CollectConfig, out: Path, header_fields: dict[str, Any], show_progress: bool,
                    ray_address: str | None) -> dict[str, Any]:
    from tqdm import tqdm

    from mirrorlab.envs.paired import Header

    manifest = _continued_manifest(config, out, header_fields)
    plan = shard_plan(config)
    total = config.episodes + config.babble
    started = time.perf_counter()
    write_manifest(out, manifest)
    jobs = [Job(shard_name(i), collect_shard, (config, header_fields, i, kind, ids, str(out)), cost=len(ids))
            for i, kind, ids in plan]
    with tqdm(total=total, desc="collect", unit="episode", disable=not show_progress) as bar:
        def saved(job: Job, entry: dict[str, Any]) -> None:
            manifest["shards"][entry["name"]] = entry
            write_manifest(out, manifest)
            bar.update(entry["n_episodes"])

        ran = run_jobs(jobs, saved, workers=resolve_workers(config.workers), ray_address=ray_address,
                       done=lambda job: job.key in manifest["shards"],
                       on_skip=lambda job: bar.update(len(job.args[4])))
    wall = time.perf_counter() - started
    collected = sum(len(job.args[4]) for job in ran)
    digests = {key: h for entry in manifest["shards"].values() for key, h in entry["episodes"].items()}
    manifest["fingerprint"] = dataset_fingerprint(Header(**header_fields), digests)
    manifest["last_run"] = {"episodes_collected": collected, "wall_time_s": wall,
                            "episodes_per_s": collected / wall if wall > 0 else None,
                            "workers": resolve_workers(config.workers)}
    if config.verify_episodes:  # before the manifest says complete: a dataset that fails this is never marked so
        kinds = tuple(k for k, n in (("demo", config.episodes), ("babble", config.babble)) if n)
        manifest["verified"] = verify_pairing(out, n_episodes=config.verify_episodes, seed=config.seed, kinds=kinds,
                                              require_complete=False)["episodes_checked"]
    manifest["complete"] = len(manifest["shards"]) == len(plan)
    write_manifest(out, manifest)
    return manifest
