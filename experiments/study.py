"""`mirrorlab study`: the main job. Every part of the study on a built-in preset, one linked report.

1. The seed paper's toy experiment, replicated with its nulls (the `replicate` stage).
2. The embodied study on the planar arm: paired episodes of the demonstrator for each
   `other_appearance` (the `collect` stage), the core trained under every condition and seed on the
   identical-looking other arm and under a subset of conditions on the other appearances, and the
   mirror measures of all runs (the `analyze` stage, which also records every run's activations).
3. Imitation from observation by every run, with its baselines (`imitate`), and one
   perform-vs-observe video per appearance (`video`).
Each stage keeps what it finished: rerunning the command resumes where it stopped. The training runs
go through the one runner, so `--ray-address` spreads them over a cluster as `sweep` does its cells.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mirrorlab.agents.conditions import CONDITIONS, check_conditions
from mirrorlab.agents.runs import TrainConfig, check_seed
from mirrorlab.errors import UserError
from mirrorlab.experiments.runner import Job, resolve_workers, run_jobs
from mirrorlab.files import atomic_write_json, atomic_write_text, claim_output_dir, folder_owner
from mirrorlab.provenance import provenance


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

    def validate(self) -> None:
        from mirrorlab.envs.scene import OTHER_APPEARANCES

        check_conditions(self.conditions, "config: conditions")
        check_conditions(self.appearance_conditions, "config: appearance_conditions")
        if not self.appearances or any(a not in OTHER_APPEARANCES for a in self.appearances):
            raise UserError(f"config: appearances must name some of {', '.join(OTHER_APPEARANCES)}")
        for seed in self.seeds:
            check_seed(seed, "config: seeds")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise UserError(f"config: seeds must be distinct and at least one, got {list(self.seeds)}")
        resolve_workers(self.workers, "config: workers")


PRESETS = {
    # About 10 minutes on 2 CPU cores.
    "small": StudyConfig(),
    # Hours on 2 CPU cores: 64 px frames, more data, 5 seeds, every condition for every appearance.
    "full": StudyConfig(frame_size=64, episodes=400, babble=200, seeds=(0, 1, 2, 3, 4), epochs=30,
                        appearance_conditions=tuple(CONDITIONS)),
}


def run_plan(config: StudyConfig, out: Path) -> list[tuple[str, TrainConfig, Path]]:
    """(appearance, train config, run folder) for every run of the study."""
    plan = []
    for appearance in config.appearances:
        conditions = config.conditions if appearance == "identical" else config.appearance_conditions
        for condition in conditions:
            for seed in config.seeds:
                tc = dataclasses.replace(TrainConfig(), condition=condition, seed=seed, epochs=config.epochs)
                plan.append((appearance, tc, out / "runs" / appearance / f"{condition}__seed{seed}"))
    if config.self_video_inverse and "identical" in config.appearances:
        # The transfer test: the inverse head learns from the self arm's own video only, then watches the other.
        for seed in config.seeds:
            tc = dataclasses.replace(TrainConfig(), condition="shared", seed=seed, epochs=config.epochs,
                                     inverse_data="self")
            plan.append(("identical", tc, out / "runs" / "identical" / f"shared_selfvideo__seed{seed}"))
    return plan


def _train_job(config: TrainConfig, data: str, run_dir: str) -> dict[str, Any]:
    from mirrorlab.agents.training import train_run

    return train_run(config, data, run_dir)


def embodied(config: StudyConfig, out: Path, show_progress: bool = True,
             ray_address: str | None = None) -> dict[str, Any]:
    from tqdm import tqdm

    from mirrorlab.agents.collection import CollectConfig
    from mirrorlab.agents.runs import read_run
    from mirrorlab.experiments.stages.collection import collect
    from mirrorlab.experiments.stages.episode_video import write_episode_video
    from mirrorlab.experiments.stages.imitation import ImitateConfig, imitate
    from mirrorlab.experiments.stages.measurement import AnalyzeConfig, analyze

    workers = resolve_workers(config.workers)
    data_dirs = {}
    for appearance in config.appearances:
        cc = dataclasses.replace(CollectConfig(), env_id=config.env_id, demonstrator=config.demonstrator,
                                 episodes=config.episodes, babble=config.babble, frame_size=config.frame_size,
                                 other_appearance=appearance, workers=config.workers)
        data_dirs[appearance] = out / "data" / appearance
        collect(cc, data_dirs[appearance], show_progress=show_progress, ray_address=ray_address)
    plan = run_plan(config, out)
    jobs = [Job(str(run_dir), _train_job, (tc, str(data_dirs[a]), str(run_dir)), cost=tc.epochs)
            for a, tc, run_dir in plan]
    with tqdm(total=len(jobs), desc="train runs", unit="run", disable=not show_progress) as bar:
        run_jobs(jobs, lambda _job, _summary: bar.update(1), workers=workers, ray_address=ray_address,
                 done=lambda job: (Path(job.key) / "done.json").is_file(), on_skip=lambda _job: bar.update(1))
    runs = [r for _, _, r in plan]
    analysis_dir = out / "analysis"
    parts: dict[str, Any] = {"analysis": analyze(runs, analysis_dir, AnalyzeConfig(), force=True, workers=workers,
                                                 ray_address=ray_address, show_progress=show_progress)["report"]}
    parts["imitation"] = imitate(runs, out / "imitation", ImitateConfig(episodes=config.imitate_episodes,
                                                                         workers=config.workers),
                                 analysis=analysis_dir, force=True, show_progress=show_progress,
                                 ray_address=ray_address)["report"]
    videos = []
    for appearance in config.appearances:
        shared = [r for a, tc, r in plan if a == appearance and tc.condition == "shared" and tc.inverse_data == "other"]
        if shared:
            videos.append(write_episode_video(read_run(shared[0]), analysis_dir, 0,
                                              out / "videos" / f"{appearance}.mp4", size=config.video_size,
                                              force=True))
    parts["videos"] = videos
    return parts


def study(config: StudyConfig, out: Path, fresh: bool = False, show_progress: bool = True,
          ray_address: str | None = None) -> Path:
    from mirrorlab.experiments.stages.replication import ReplicateConfig, replicate

    config.validate()
    started = time.perf_counter()
    if fresh and out.exists() and folder_owner(out) == "study":
        shutil.rmtree(out)  # only a folder the study itself made (its marker says so); anything else is refused below
    claim_output_dir(out, "study", resume=True)
    atomic_write_json(out / "config.json", provenance(config, seeds=list(config.seeds)))
    parts: dict[str, Any] = {}
    if config.toy:
        rep_dir = out / "replicate"
        resume = folder_owner(rep_dir) == "replicate"
        parts["toy"] = replicate(dataclasses.replace(ReplicateConfig(), workers=config.workers), rep_dir,
                                 resume=resume, show_progress=show_progress, ray_address=ray_address)["report"]
    parts.update(embodied(config, out, show_progress, ray_address))
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
                   help="output folder (default: %(default)s); an existing study there is resumed, not overwritten")
    p.add_argument("--preset", default="small", choices=tuple(PRESETS), help="the study's size (default: small)")
    p.add_argument("--no-toy", action="store_true", help="skip the toy replication")
    p.add_argument("--fresh", action="store_true",
                   help="delete an earlier study in --out first and start again (only a folder the study made)")
    p.add_argument("--ray-address", default=None, help="spread the training runs (and other jobs) over this Ray cluster")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    config = PRESETS[args.preset]
    if args.no_toy:
        config = dataclasses.replace(config, toy=False)
    started = time.perf_counter()
    report = study(config, args.out, fresh=args.fresh, ray_address=args.ray_address)
    print(f"report: {report}")
    print(f"wall time: {time.perf_counter() - started:.0f} s")
    return 0
