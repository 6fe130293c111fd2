"""`mirrorlab study`: the main job. Every part of the study on a built-in preset, one linked report.

1. The seed paper's toy experiment, replicated with its nulls (`mirrorlab replicate`).
2. The embodied study on the planar arm: paired episodes of the scripted demonstrator for each
   `other_appearance` (`mirrorlab collect`), the core trained under every condition and seed on the
   identical-looking other arm and under a subset of conditions on the other appearances
   (`mirrorlab train`), and the mirror measures of all runs (`mirrorlab analyze`).
3. Imitation from observation by every run, with its baselines (`mirrorlab imitate`), and one
   perform-vs-observe video per appearance (`mirrorlab video`).
Each stage keeps what it finished: rerunning the command resumes where it stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.conditions import CONDITIONS
from experiments.errors import UserError
from experiments.provenance import atomic_write_json, atomic_write_text, ensure_writable_dir, provenance


@dataclass(frozen=True)
class StudyConfig:
    """The main job's knobs; `PRESETS` holds the built-in sizes."""

    toy: bool = True                       # run the toy replication (paper protocol, 5 seeds)
    env_id: str = "mirrorlab/PlanarReach-v0"
    frame_size: int = 32
    demonstrator: str = "scripted"
    episodes: int = 80                     # paired demonstrator episodes per appearance (25% held out)
    babble: int = 40
    seeds: tuple[int, ...] = (0, 1, 2)
    conditions: tuple[str, ...] = tuple(CONDITIONS)
    appearances: tuple[str, ...] = ("identical", "recolored", "mirrored", "morphology")
    appearance_conditions: tuple[str, ...] = ("shared", "untrained")  # conditions run for non-identical appearances
    epochs: int = 10
    self_video_inverse: bool = True        # also shared cores whose inverse head saw only the self arm's video
    imitate_episodes: int = 10             # held-out videos imitated per appearance
    video_size: int = 192                  # px per arm view in the perform-vs-observe videos
    workers: int = 0                       # 0: one per CPU core


PRESETS = {
    # About 10 minutes on 2 CPU cores.
    "small": StudyConfig(),
    # Hours on 2 CPU cores: 64 px frames, more data, 5 seeds, every condition for every appearance.
    "full": StudyConfig(frame_size=64, episodes=400, babble=200, seeds=(0, 1, 2, 3, 4), epochs=30,
                        appearance_conditions=tuple(CONDITIONS)),
}


def workers_for(config: StudyConfig) -> int:
    return config.workers or os.cpu_count() or 1


def _train_one(train_config: dict[str, Any], data: str, run_dir: str) -> dict[str, Any]:
    from experiments.train import TrainConfig, train

    return train(TrainConfig(**train_config), Path(data), Path(run_dir), show_progress=False)


def run_plan(config: StudyConfig, out: Path) -> list[tuple[str, dict[str, Any], Path]]:
    """(appearance, train config, run folder) for every run of the study."""
    from experiments.train import TrainConfig

    plan = []
    for appearance in config.appearances:
        conditions = config.conditions if appearance == "identical" else config.appearance_conditions
        for condition in conditions:
            for seed in config.seeds:
                tc = dataclasses.replace(TrainConfig(), condition=condition, seed=seed, epochs=config.epochs)
                plan.append((appearance, dataclasses.asdict(tc), out / "runs" / appearance / f"{condition}__seed{seed}"))
    if config.self_video_inverse and "identical" in config.appearances:
        # The transfer test: the inverse head learns from the self arm's own video only, then watches the other.
        for seed in config.seeds:
            tc = dataclasses.replace(TrainConfig(), condition="shared", seed=seed, epochs=config.epochs,
                                     inverse_data="self")
            run_dir = out / "runs" / "identical" / f"shared_selfvideo__seed{seed}"
            plan.append(("identical", dataclasses.asdict(tc), run_dir))
    return plan


def embodied(config: StudyConfig, out: Path, show_progress: bool = True) -> dict[str, Any]:
    from tqdm import tqdm

    from experiments.analyze import AnalyzeConfig, analyze
    from experiments.collect import CollectConfig, collect
    from experiments.imitate import ImitateConfig, imitate
    from experiments.video import write_episode_video

    data_dirs = {}
    for appearance in config.appearances:
        cc = dataclasses.replace(CollectConfig(), env_id=config.env_id, demonstrator=config.demonstrator,
                                 episodes=config.episodes, babble=config.babble, frame_size=config.frame_size,
                                 other_appearance=appearance, workers=config.workers)
        data_dirs[appearance] = out / "data" / appearance
        collect(cc, data_dirs[appearance], show_progress=show_progress)
    plan = run_plan(config, out)
    todo = [p for p in plan if not (p[2] / "done.json").is_file()]
    workers = min(workers_for(config), max(1, len(todo)))
    with tqdm(total=len(plan), initial=len(plan) - len(todo), desc="train runs", unit="run",
              disable=not show_progress) as bar:
        if workers == 1:
            for appearance, tc, run_dir in todo:
                _train_one(tc, str(data_dirs[appearance]), str(run_dir))
                bar.update(1)
        elif todo:
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = [pool.submit(_train_one, tc, str(data_dirs[a]), str(r)) for a, tc, r in todo]
                for fut in as_completed(futures):
                    fut.result()
                    bar.update(1)
    runs = [r for _, _, r in plan]
    parts = {"analysis": analyze(runs, out / "analysis", AnalyzeConfig(), force=True)["report"]}
    parts["imitation"] = imitate(runs, out / "imitation", ImitateConfig(episodes=config.imitate_episodes),
                                 analysis=out / "analysis", force=True, show_progress=show_progress,
                                 workers=workers_for(config))["report"]
    videos = []
    for appearance in config.appearances:
        shared = [r for a, tc, r in plan if a == appearance and tc["condition"] == "shared"]
        if shared:
            videos.append(write_episode_video(shared[0], 0, out / "videos" / f"{appearance}.mp4",
                                              size=config.video_size))
    parts["videos"] = videos
    return parts


def study(config: StudyConfig, out: Path, fresh: bool = False, show_progress: bool = True) -> Path:
    from experiments.replicate import ReplicateConfig, replicate

    started = time.perf_counter()
    if fresh and out.exists():
        shutil.rmtree(out)
    ensure_writable_dir(out, "--out")
    atomic_write_json(out / "config.json", provenance(config, seeds=list(config.seeds)))
    parts: dict[str, Any] = {}
    if config.toy:
        rep_dir = out / "replicate"
        resume = rep_dir.exists() and any(rep_dir.iterdir())
        parts["toy"] = replicate(ReplicateConfig(), rep_dir, resume=resume, show_progress=show_progress)["report"]
    parts.update(embodied(config, out, show_progress))
    lines = [
        "# mirrorlab study report",
        "",
        f"Wall time {time.perf_counter() - started:.0f} s (stages finished by an earlier run are not redone).",
        "",
    ]
    if "toy" in parts:
        lines += ["## Part 1: the seed paper's toy experiment, replicated with nulls", "",
                  f"[Report]({parts['toy'].relative_to(out)}): the paper's claims vs measured values, the claim",
                  "verdicts, every condition and null, figures 1-4.", ""]
    lines += ["## Part 2: the embodied study (planar arms, video, continuous torques)", "",
              f"[Report]({parts['analysis'].relative_to(out)}): mirror measures of the core on held-out paired",
              f"episodes, for {len(config.appearances)} appearances of the other arm "
              f"({', '.join(config.appearances)}), {len(config.seeds)} seeds each.", "",
              "## Part 3: imitation from observation", "",
              f"[Report]({parts['imitation'].relative_to(out)}): the inverse heads imitate held-out videos of the other",
              "arm on the self arm, against oracle, random, BCO, BC and DAgger, for each appearance; and whether",
              "imitation tracks the mirror measures across runs.", "",
              "## Videos: self performing, other observed, live traces of the top mirror and an anti-mirror unit", "",
              *[f"- [{v.stem}]({v.relative_to(out)})" for v in parts["videos"]], ""]
    report = out / "report.md"
    atomic_write_text(report, "\n".join(lines))
    return report


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("study", help="the main job: every part of the study on a preset, one report",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("results/study"),
                   help="output folder (default: %(default)s); an existing one is resumed, not overwritten")
    p.add_argument("--preset", default="small", help=f"one of {', '.join(PRESETS)} (default: small)")
    p.add_argument("--no-toy", action="store_true", help="skip the toy replication")
    p.add_argument("--fresh", action="store_true", help="delete everything in --out first and start again")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if args.preset not in PRESETS:
        raise UserError(f"--preset: unknown preset {args.preset!r}; expected one of {', '.join(PRESETS)}")
    config = PRESETS[args.preset]
    if args.no_toy:
        config = dataclasses.replace(config, toy=False)
    started = time.perf_counter()
    report = study(config, args.out, fresh=args.fresh)
    print(f"report: {report}")
    print(f"wall time: {time.perf_counter() - started:.0f} s")
    return 0
