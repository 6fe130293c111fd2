"""The study as a stage: its config tree and presets, the plan of datasets and runs, and every stage run in
order (the `mirrorlab study` command and `mirrorlab bench study`, which profiles this very code, share it).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mirrorlab.agents.collection import CollectConfig
from mirrorlab.agents.conditions import CONDITIONS, check_conditions
from mirrorlab.agents.demonstrator import SCRIPTED, DemoTrainConfig
from mirrorlab.agents.runs import DEVICES, TrainConfig, check_seed
from mirrorlab.errors import UserError
from mirrorlab.experiments.runner import Job, config_changes, resolve_workers, run_jobs
from mirrorlab.experiments.stages.dose import DoseConfig
from mirrorlab.experiments.stages.variants import VariantsConfig
from mirrorlab.experiments.stages.episode_video import VideoConfig
from mirrorlab.experiments.stages.imitation import ImitateConfig
from mirrorlab.experiments.stages.lesion import LesionConfig
from mirrorlab.experiments.stages.measurement import AnalyzeConfig
from mirrorlab.experiments.stages.spillover import SpilloverConfig
from mirrorlab.files import atomic_write_json, atomic_write_text, claim_output_dir, folder_owner
from mirrorlab.provenance import provenance

SAC = "sac"  # `collect.demonstrator` naming no checkpoint: the study trains SAC once (the `demonstrator` branch)


@dataclass(frozen=True)
class StudyConfig:
    """The study's config tree: what it plans (seeds, conditions, appearances, views, loss weights) and one
    branch per stage, each handed to its stage as it is, plus what the plan decides per dataset or run
    (listed in `PLANNED`). `PRESETS` holds the built-in trees; `mirrorlab study --config FILE.toml` sets any
    field of one, a branch's as a TOML table (`[train]` then `epochs = 5`)."""

    toy: bool = True                       # run the toy replication (paper protocol, 5 seeds)
    # The plan. Cameras the other arm is watched from: the first is the headline view (every appearance and
    # condition); each further view (the egocentric-equivalent `other_view`: the video is what the self arm
    # would see of itself) runs the identical arm under `appearance_conditions`, as a contrast.
    seeds: tuple[int, ...] = (0, 1, 2)
    conditions: tuple[str, ...] = tuple(CONDITIONS)
    appearances: tuple[str, ...] = ("identical", "recolored", "mirrored", "morphology")
    views: tuple[str, ...] = ("third_person", "other_view")
    appearance_conditions: tuple[str, ...] = ("shared", "untrained")  # conditions run for non-identical appearances
    inverse_weights: tuple[float, ...] = (1.0,)  # the loss weight between forward and inverse; several map it
    self_video_inverse: bool = False       # also shared cores whose inverse head saw only the self arm's video
    # The stages, in the order they run. `collect.demonstrator` is "scripted", "sac" (trained here once, by the
    # `demonstrator` branch, then cached) or a checkpoint folder.
    demonstrator: DemoTrainConfig = field(default_factory=DemoTrainConfig)
    collect: CollectConfig = field(default_factory=lambda: CollectConfig(episodes=60, babble=30))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=10))
    analyze: AnalyzeConfig = field(default_factory=AnalyzeConfig)
    # The small preset's imitation: the shared core plans, the learnt baselines fit on a third of the training
    # videos with short fits (their CNN fits were most of imitation's CPU time: README, bench study).
    imitate: ImitateConfig = field(default_factory=lambda: ImitateConfig(
        episodes=6, mirror_conditions=("shared",), policy_epochs=5, refit_epochs=3, dagger_iterations=1,
        dagger_episodes=2, bco_iterations=1, learner_episodes=15, plan_iterations=100))
    # Do mirror units matter? Unit sets silenced inside the recurrence of the headline runs (the first view, the
    # first appearance: every condition). None: skipped (a config file says `lesion = false`).
    lesion: LesionConfig | None = field(default_factory=lambda: LesionConfig(ks=(2, 4, 8)))
    # Do fewer mirror units make imitation worse? Shared cores of the headline dataset trained with the
    # selectivity term at each weight, measured and imitated (experiments/stages/dose.py). None: skipped (the
    # default: it trains a run per weight and seed; `dose = true` in a config file runs it).
    dose: DoseConfig | None = None
    # Seed 002's future work: replay at surprise and reward-modulated learning, each trained as a variant of the
    # headline shared cores and compared with them seed by seed (experiments/stages/variants.py). None: skipped.
    variants: VariantsConfig | None = None
    spillover: SpilloverConfig | None = field(default_factory=SpilloverConfig)  # value spillover, on every run
    video: VideoConfig = field(default_factory=lambda: VideoConfig(size=192))
    # How the study runs, not what it computes: every stage's jobs use them.
    workers: int = 0                       # 0: one per CPU core
    device: str = "cpu"

    def validate(self) -> None:
        """Every check before any work, each message naming its key in the tree (`config: imitate.episodes`)."""
        self._validate_plan()
        for name in BRANCHES:
            branch = getattr(self, name)
            if name == "collect" and branch.demonstrator == SAC:  # not a checkpoint yet: trained by the study
                branch = dataclasses.replace(branch, demonstrator=SCRIPTED)
            if branch is not None:
                within(name, branch.validate)
        check_planned(self)
        for name in ("dose", "variants"):
            if getattr(self, name) is not None and "shared" not in self.conditions:
                raise UserError(f"config: {name} needs the shared condition in `conditions` (its control cores)")
        if self.dose is not None and self.train.selectivity_weight:
            raise UserError("config: dose needs train.selectivity_weight 0 (the study's shared runs are its weight 0)")
        self._check_demonstrator_acts_in_the_arm_collected()

    def _validate_plan(self) -> None:
        from mirrorlab.envs.scene import OTHER_APPEARANCES

        check_conditions(self.conditions, "config: conditions")
        check_conditions(self.appearance_conditions, "config: appearance_conditions")
        if not self.appearances or any(a not in OTHER_APPEARANCES for a in self.appearances):
            raise UserError(f"config: appearances must name some of {', '.join(OTHER_APPEARANCES)}")
        if not self.views or len(set(self.views)) != len(self.views) or any(v not in WATCH_CAMERAS for v in self.views):
            raise UserError(f"config: views must name distinct cameras among {', '.join(WATCH_CAMERAS)}")
        for seed in self.seeds:
            check_seed(seed, "config: seeds")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise UserError(f"config: seeds must be distinct and at least one, got {list(self.seeds)}")
        if not self.inverse_weights or min(self.inverse_weights) < 0:
            raise UserError(f"config: inverse_weights must be numbers >= 0, got {list(self.inverse_weights)}")
        if self.device not in DEVICES:
            raise UserError(f"config: device must be one of {', '.join(DEVICES)}")
        resolve_workers(self.workers, "config: workers")

    def _check_demonstrator_acts_in_the_arm_collected(self) -> None:
        """SAC trained here must learn on the env and actions the study collects (a checkpoint is checked by
        the collect branch's own validate)."""
        collect, demo = self.collect, self.demonstrator
        for key in ("env_id", "action_mode"):
            if collect.demonstrator == SAC and getattr(demo, key) != getattr(collect, key):
                raise UserError(f"config: demonstrator.{key} {getattr(demo, key)!r} is not collect.{key} "
                                f"{getattr(collect, key)!r}; the demonstrator trained here acts in the arm collected")


# The stage branches of the tree, in the order the stages run.
BRANCHES = ("demonstrator", "collect", "train", "analyze", "imitate", "lesion", "dose", "variants", "spillover",
            "video")
# Fields of a branch that the study sets per dataset or run (from the plan) or for every stage (workers,
# device): the top-level key that sets each.
PLANNED = {
    "collect": {"other_appearance": "appearances", "observe_camera": "views", "workers": "workers"},
    "train": {"condition": "conditions", "seed": "seeds", "inverse_weight": "inverse_weights",
              "inverse_data": "self_video_inverse"},
    "imitate": {"workers": "workers", "device": "device"},
    "lesion": {"workers": "workers"},
    "dose": {"workers": "workers"},
    "variants": {"workers": "workers"},
}


def within(name: str, check: Callable[[], None]) -> None:
    """Run a branch's own `validate`, its message naming the key inside the tree (`config: train.epochs`)."""
    try:
        check()
    except UserError as err:
        text = str(err)
        raise UserError(text.replace("config: ", f"config: {name}.", 1) if text.startswith("config: ")
                        else f"config: {name}: {text}") from None


def check_planned(config: StudyConfig) -> None:
    """Refuse a planned field set in a branch (it would be silently replaced) and name the key that plans it."""
    for name, keys in PLANNED.items():
        branch = getattr(config, name)
        if branch is None:
            continue
        default = type(branch)()
        for key, planner in keys.items():
            if getattr(branch, key) != getattr(default, key):
                raise UserError(f"config: {name}.{key} is set by the study (per dataset or run, or for every "
                                f"stage); set `{planner}` instead")


PRESETS = {
    # The whole `make study` on a fresh 2-core machine, setup included: its budget is BUDGET_MIN (times: README).
    "small": StudyConfig(),
    # The README's embodied headline numbers: >= 5 seeds, every condition on the identical-looking arm, the
    # SB3 demonstrator. The inverse head learns from the other's demonstrations and the self arm's own
    # labelled babbling (180 episodes, 135 of them trained on): with babbling 60 and demonstrations only,
    # it read demonstrations but not random movements (README). Its budget is BUDGET_MIN (times: README).
    # The learnt baselines fit 10 epochs first and refit 3: their fits were 85% of imitation's time, and on
    # medium's data 10 epochs reach held-out R^2 0.955 (BC) and 0.82 (BCO's inverse dynamics) against 0.966
    # and 0.886 at 20 (`scripts/policy_fit_curve.py`, README "Presets and their cost").
    "medium": StudyConfig(seeds=(0, 1, 2, 3, 4), collect=CollectConfig(demonstrator=SAC, episodes=200, babble=180),
                          train=TrainConfig(inverse_babble=True),
                          imitate=ImitateConfig(episodes=20, mirror_conditions=("shared",), policy_epochs=10,
                                                refit_epochs=3),
                          lesion=LesionConfig(), dose=DoseConfig(), variants=VariantsConfig()),
    # The 3-D arm, identical-looking other arm, 5 seeds, on the general learner (the inverse head also learns
    # from the self arm's babbling, as in medium), a short imitation test (no learnt baselines).
    "arm3d": StudyConfig(toy=False, seeds=(0, 1, 2, 3, 4), appearances=("identical",),
                         demonstrator=DemoTrainConfig(env_id="mirrorlab/Arm3DReach-v0", timesteps=40_000),
                         collect=CollectConfig(env_id="mirrorlab/Arm3DReach-v0", demonstrator=SAC, episodes=200,
                                               babble=180),
                         train=TrainConfig(inverse_babble=True),
                         imitate=ImitateConfig(episodes=10, learners=False, mirror_conditions=())),
    # The published arm (ViperX 300s, ALOHA's arm; 5 joints, 100-step episodes) on the general learner, sized for
    # about 30 min on 2 CPU cores. The scripted controller demonstrates (97/100 held-out targets): SAC on 5
    # joints would cost more than the whole budget (the 4-joint arm's 40,000 steps took 950 s) for no better
    # reach. 90 + 60 training episodes of 100 steps are as many frames as medium's 150 + 135 of 50; a run costs
    # about 6.5 CPU-s an epoch. The identical-looking other arm only, shared and untrained cores: a second
    # appearance (0.8x links, a smaller arm of the same make) or separate / forward-only / shuffled cores would
    # each double the training (README); the imitation test adds a held-out colour.
    "viperx": StudyConfig(toy=False, seeds=(0, 1, 2, 3, 4), conditions=("shared", "untrained"),
                          appearances=("identical",), views=("third_person",),
                          collect=CollectConfig(env_id="mirrorlab/ViperXReach-v0", episodes=120, babble=80),
                          train=TrainConfig(inverse_babble=True),
                          imitate=ImitateConfig(episodes=10, learners=False, mirror_conditions=("shared",),
                                                plan_iterations=100),
                          lesion=LesionConfig(ks=(2, 4, 8))),
    # The loss-weight map on the embodied core: the weight between the forward and inverse objectives, for
    # shared, separate and untrained cores on the identical-looking other arm. Three seeds (27 runs; five
    # would be 45), on the learner before `inverse_babble` (demonstrations only).
    "tuning": StudyConfig(toy=False, seeds=(0, 1, 2), conditions=("shared", "separate", "untrained"),
                          appearances=("identical",), inverse_weights=(0.0, 0.25, 1.0, 4.0),
                          collect=CollectConfig(demonstrator=SAC, episodes=200, babble=60), train=TrainConfig(),
                          imitate=ImitateConfig(episodes=20, learners=False, mirror_conditions=()), spillover=None,
                          lesion=None),
    # For a GPU: 64 px, more data, every condition for every appearance.
    "full": StudyConfig(seeds=(0, 1, 2, 3, 4), appearance_conditions=tuple(CONDITIONS), self_video_inverse=True,
                        collect=CollectConfig(frame_size=64, demonstrator=SAC, episodes=400, babble=200),
                        train=TrainConfig(epochs=30, inverse_babble=True), imitate=ImitateConfig(episodes=40),
                        lesion=LesionConfig(), device="auto"),
}


WATCH_CAMERAS = ("third_person", "other_view")  # the views the other arm can be watched from


def scenarios(config: StudyConfig) -> list[tuple[str, str, tuple[str, ...]]]:
    """(view, appearance, conditions) of every dataset the study collects and trains on."""
    out = [(config.views[0], a, config.conditions if a == "identical" else config.appearance_conditions)
           for a in config.appearances]
    return out + [(v, "identical", config.appearance_conditions) for v in config.views[1:]
                  if "identical" in config.appearances]


# Time budgets in minutes on 2 CPU cores, printed beside a run's wall time (small's includes setup, which
# `make study` times).
BUDGET_MIN = {"small": 15, "medium": 60, "viperx": 30}


def scenario_dir(view: str, appearance: str) -> Path:
    """A scenario's place under the study's data/ and runs/ folders."""
    return Path(view) / appearance


def run_plan(config: StudyConfig, out: Path) -> list[tuple[Path, TrainConfig, Path]]:
    """(scenario folder, train config, run folder) for every run of the study."""
    plan = []
    several = len(config.inverse_weights) > 1

    def add(where: Path, condition: str, seed: int, weight: float, inverse_data: str = "other") -> None:
        tc = dataclasses.replace(config.train, condition=condition, seed=seed, inverse_weight=weight,
                                 inverse_data=inverse_data,
                                 inverse_babble=config.train.inverse_babble and inverse_data == "other")
        name = f"{condition}{'_selfvideo' if inverse_data == 'self' else ''}__seed{seed}"
        folder = out / "runs" / where / (f"w{weight:g}" if several else "") / name
        plan.append((where, tc, folder))

    for view, appearance, conditions in scenarios(config):
        for condition in conditions:
            # The untrained core never sees the loss, so one set serves every weight.
            for weight in (config.inverse_weights if condition != "untrained" else config.inverse_weights[:1]):
                for seed in config.seeds:
                    add(scenario_dir(view, appearance), condition, seed, weight)
    if config.self_video_inverse and "identical" in config.appearances:
        # The transfer test: the inverse head learns from the self arm's own video only, then watches the other.
        for seed in config.seeds:
            add(scenario_dir(config.views[0], "identical"), "shared", seed, config.inverse_weights[0],
                inverse_data="self")
    return plan


def _train_job(config: TrainConfig, data: str, run_dir: str, device: str) -> dict[str, Any]:
    from mirrorlab.agents.training import train_run

    return train_run(config, data, run_dir, device=device)


def _demonstrator_job(config: DemoTrainConfig, folder: str) -> dict[str, Any]:
    """Train the SB3 demonstrator into `folder` and score it on 100 held-out targets (a runner job)."""
    from mirrorlab.agents.demonstrator import (
        evaluate_policy_on_seeds,
        load_demonstrator,
        make_other_env,
        train_demonstrator,
    )

    train_demonstrator(config, Path(folder), show_progress=False)
    result = evaluate_policy_on_seeds(lambda: make_other_env(config.env_id, action_mode=config.action_mode),
                                      lambda env: load_demonstrator(folder, env), list(range(10**6, 10**6 + 100)))
    success = {k: result[k] for k in ("n_episodes", "success_rate", "final_distance_mean")}
    atomic_write_json(Path(folder) / "success.json", success)
    return success


def first_stage(config: StudyConfig, out: Path, show_progress: bool, ray_address: str | None,
                log: Callable[[str], None]) -> tuple[str, str, Path | None]:
    """The toy replication's cells and (for `collect.demonstrator = "sac"`) the demonstrator's training, as one
    set of runner jobs: they are independent, so a 2-core machine trains SAC on one core while the other
    runs the toy cells. Returns the demonstrator to collect with, a line describing it, and the
    replication's report."""
    from tqdm import tqdm

    from mirrorlab.experiments.stages.replication import ReplicateConfig, finish_replication, prepare_replication

    jobs, rep = [], None
    if config.toy:
        rep_dir = out / "replicate"
        rep = prepare_replication(dataclasses.replace(ReplicateConfig(), workers=config.workers), rep_dir,
                                  resume=folder_owner(rep_dir) == "replicate")
        jobs += rep.jobs
    demonstrator, folder = config.collect.demonstrator, out / "demo"
    if demonstrator == SAC:
        demonstrator = str(folder)
        if not (folder / "success.json").is_file():
            claim_output_dir(folder, "demo", force=True)  # a half-trained demonstrator is started over
        jobs.append(Job("demo", _demonstrator_job, (config.demonstrator, str(folder)), cost=1e9))

    def done(job: Job) -> bool:
        return (folder / "success.json").is_file() if job.key == "demo" else rep.done(job)

    with tqdm(total=len(jobs), desc="toy cells + demonstrator", unit="job", disable=not show_progress) as bar:
        run_jobs(jobs, lambda job, result: (None if job.key == "demo" else rep.save(job, result), bar.update(1)),
                 workers=resolve_workers(config.workers), ray_address=ray_address, done=done,
                 on_skip=lambda _job: bar.update(1))
    described = describe_demonstrator(config, folder)
    log(f"demonstrator: {described}")
    return demonstrator, described, finish_replication(rep)["report"] if rep else None


def describe_demonstrator(config: StudyConfig, folder: Path) -> str:
    """One line for the report: which policy the other arm ran, and how well SAC trained here reaches."""
    from mirrorlab.files import read_json

    if config.collect.demonstrator == SAC:
        success = read_json(folder / "success.json")
        return (f"SAC ({config.demonstrator.action_mode} actions, {config.demonstrator.timesteps} steps): "
                f"{success['success_rate']:.0%} success on {success['n_episodes']} held-out targets (final "
                f"distance {success['final_distance_mean'] * 1000:.1f} mm)")
    if config.collect.demonstrator == SCRIPTED:
        return ("the scripted controller (an operational-space reach on the simulator's state), not an SB3 "
                "policy: the small and viperx presets use it; medium, arm3d and full train SAC")
    return f"the checkpoint {config.collect.demonstrator}"


class StageClock:
    """Each stage's wall time, logged with the load average as it ends (the study's `timings.json`)."""

    def __init__(self, log: Callable[[str], None], timings: dict[str, float]):
        self.log, self.timings, self.started = log, timings, time.perf_counter()

    def lap(self, stage: str) -> None:
        self.timings[stage] = time.perf_counter() - self.started
        self.started = time.perf_counter()
        self.log(f"stage {stage}: {self.timings[stage]:.0f} s (load average {os.getloadavg()[0]:.1f})")


def run_settings(config: StudyConfig, name: str) -> Any:
    """A stage's branch as the stage gets it: with the study's `workers` (and `device`) wherever it has them."""
    branch = getattr(config, name)
    keys = {k: getattr(config, k) for k in ("workers", "device") if k in PLANNED.get(name, {})}
    return dataclasses.replace(branch, **keys) if branch is not None and keys else branch


def collect_config(config: StudyConfig, view: str, appearance: str, demonstrator: str) -> CollectConfig:
    """The collect branch as one dataset's collection gets it: the plan's view and appearance, the
    demonstrator resolved (SAC trained in the first stage), the study's workers."""
    return dataclasses.replace(run_settings(config, "collect"), demonstrator=demonstrator,
                               other_appearance=appearance, observe_camera=view)


def collect_all(config: StudyConfig, out: Path, demonstrator: str, show_progress: bool,
                ray_address: str | None) -> dict[Path, Path]:
    """Every dataset of the plan collected (or resumed); {scenario folder: dataset folder}."""
    from mirrorlab.experiments.stages.collection import collect

    data_dirs = {}
    for view, appearance, _ in scenarios(config):
        where = scenario_dir(view, appearance)
        data_dirs[where] = out / "data" / where
        collect(collect_config(config, view, appearance, demonstrator), data_dirs[where], show_progress=show_progress,
                ray_address=ray_address)
    return data_dirs


def train_all(config: StudyConfig, plan: list[tuple[Path, TrainConfig, Path]], data_dirs: dict[Path, Path],
              show_progress: bool, ray_address: str | None) -> None:
    """Every run of the plan trained through the runner; finished runs (`done.json`) are kept."""
    from tqdm import tqdm

    jobs = [Job(str(run_dir), _train_job, (tc, str(data_dirs[where]), str(run_dir), config.device),
                cost=tc.epochs if tc.condition != "untrained" else 0) for where, tc, run_dir in plan]
    with tqdm(total=len(jobs), desc="train runs", unit="run", disable=not show_progress) as bar:
        run_jobs(jobs, lambda _job, _summary: bar.update(1), workers=resolve_workers(config.workers),
                 ray_address=ray_address, done=lambda job: (Path(job.key) / "done.json").is_file(),
                 on_skip=lambda _job: bar.update(1))


def headline_runs(config: StudyConfig, plan: list[tuple[Path, TrainConfig, Path]]) -> list[Path]:
    """The runs on the first view and appearance (every condition): the ones the lesions silence."""
    return [run for where, _, run in plan if where == scenario_dir(config.views[0], config.appearances[0])]


def headline_shared_runs(config: StudyConfig, plan: list[tuple[Path, TrainConfig, Path]]) -> list[Path]:
    """The shared cores of the first view and appearance (inverse head on the other's video, the first inverse
    weight), one per seed: the controls the dose-response and the training variants retrain."""
    where = scenario_dir(config.views[0], config.appearances[0])
    return [run for w, tc, run in plan if w == where and tc.condition == "shared" and tc.inverse_data == "other"
            and tc.inverse_weight == config.inverse_weights[0]]


def write_videos(config: StudyConfig, out: Path, plan: list[tuple[Path, TrainConfig, Path]],
                 data_dirs: dict[Path, Path], analysis_dir: Path) -> list[Path]:
    """One perform-vs-observe video per dataset, of its first shared core (inverse head on the other's video)."""
    from mirrorlab.agents.runs import read_run
    from mirrorlab.experiments.stages.episode_video import write_episode_video

    videos, v = [], config.video
    for where in data_dirs:
        shared = [r for w, tc, r in plan if w == where and tc.condition == "shared" and tc.inverse_data == "other"]
        if shared:
            videos.append(write_episode_video(read_run(shared[0]), analysis_dir, v.episode,
                                              out / "videos" / f"{where.parent.name}_{where.name}.mp4", size=v.size,
                                              n_units=v.units, fps=v.fps, force=True))
    atomic_write_json(out / "videos" / "index.json", videos)
    return [Path(video["path"]) for video in videos]


def embodied(config: StudyConfig, out: Path, demonstrator: str, show_progress: bool = True,
             ray_address: str | None = None, log: Callable[[str], None] = print,
             timings: dict[str, float] | None = None) -> dict[str, Any]:
    """Collect, train, analyze, imitate, lesion, spillover and videos in order, each stage given its own
    branch of the tree; returns each stage's report (and the videos)."""
    from mirrorlab.experiments.stages.dose import dose
    from mirrorlab.experiments.stages.imitation import imitate
    from mirrorlab.experiments.stages.lesion import lesion
    from mirrorlab.experiments.stages.measurement import analysis_is_current, analyze
    from mirrorlab.experiments.stages.spillover import spillover
    from mirrorlab.experiments.stages.variants import variants

    clock = StageClock(log, {} if timings is None else timings)
    run_opts = {"show_progress": show_progress, "ray_address": ray_address}
    data_dirs = collect_all(config, out, demonstrator, **run_opts)
    clock.lap("collect")
    plan = run_plan(config, out)
    train_all(config, plan, data_dirs, **run_opts)
    clock.lap("train")
    runs, analysis_dir = [r for _, _, r in plan], out / "analysis"
    if analysis_is_current(analysis_dir, runs, config.analyze):  # a resumed study measures each run once
        log(f"analyze: kept {analysis_dir} (these runs and settings, analysed after every run finished)")
        parts: dict[str, Any] = {"analysis": analysis_dir / "report.md"}
    else:
        parts = {"analysis": analyze(runs, analysis_dir, config.analyze, force=True,
                                     workers=resolve_workers(config.workers), device=config.device,
                                     **run_opts)["report"]}
    clock.lap("analyze")
    # Imitation and lesions keep each job's saved result that is newer than its runs and the analysis (an
    # hour each at `medium`); a stage whose settings changed starts again.
    settings = run_settings(config, "imitate")
    parts["imitation"] = imitate(runs, out / "imitation", settings, analysis=analysis_dir,
                                 force=bool(config_changes(out / "imitation", settings)), **run_opts)["report"]
    clock.lap("imitate")
    if config.lesion is not None:
        settings = run_settings(config, "lesion")
        parts["lesion"] = lesion(headline_runs(config, plan), analysis_dir, out / "lesion", settings,
                                 force=bool(config_changes(out / "lesion", settings)), **run_opts)["report"]
        clock.lap("lesion")
    headline = data_dirs[scenario_dir(config.views[0], config.appearances[0])]
    for name, stage in (("dose", dose), ("variants", variants)):
        if getattr(config, name) is not None:
            parts[name] = stage(headline_shared_runs(config, plan), headline, out / name, run_settings(config, name),
                                config.analyze, device=config.device, **run_opts)["report"]
            clock.lap(name)
    if config.spillover is not None:
        parts["spillover"] = spillover(runs, analysis_dir, out / "spillover", config.spillover, force=True)["report"]
        clock.lap("spillover")
    parts["videos"] = write_videos(config, out, plan, data_dirs, analysis_dir)
    clock.lap("videos")
    return parts


def study(config: StudyConfig, out: Path, fresh: bool = False, show_progress: bool = True,
          ray_address: str | None = None, log: Callable[[str], None] = print,
          origin: dict[str, Any] | None = None) -> Path:
    """The whole study into `out` (resumed if a study is there; `fresh` deletes it first); `config.json`
    holds the whole tree and `origin` (the preset and config file it came from). Returns the report."""
    from mirrorlab.experiments.stages.page import write_study_page

    config.validate()
    started = time.perf_counter()
    if fresh and out.exists() and folder_owner(out) == "study":
        shutil.rmtree(out)  # only a folder the study itself made (its marker says so); anything else is refused below
    claim_output_dir(out, "study", resume=True)
    atomic_write_json(out / "config.json", {**provenance(config, seeds=list(config.seeds)), **(origin or {})})
    parts: dict[str, Any] = {}
    timings: dict[str, float] = {}
    demonstrator, described, toy_report = first_stage(config, out, show_progress, ray_address, log)
    atomic_write_json(out / "demonstrator.json", {"demonstrator": demonstrator, "described": described})
    if toy_report is not None:
        parts["toy"] = toy_report
    timings["toy_and_demonstrator"] = time.perf_counter() - started
    log(f"stage toy_and_demonstrator: {timings['toy_and_demonstrator']:.0f} s")
    parts.update(embodied(config, out, demonstrator, show_progress, ray_address, log, timings))
    wall = time.perf_counter() - started
    report = out / "report.md"
    atomic_write_text(report, "\n".join(report_lines(config, out, parts, timings, wall, described)))
    write_study_page(out)
    atomic_write_json(out / "timings.json", {"wall_time_s": wall, "stages_s": timings,
                                             "workers": resolve_workers(config.workers)})
    return report


def report_lines(config: StudyConfig, out: Path, parts: dict[str, Any], timings: dict[str, float], wall: float,
                 described: str) -> list[str]:
    """The study's report.md: its time, the demonstrator, and one linked section per stage that ran."""
    lines = [
        "# mirrorlab study report",
        "",
        f"Wall time {wall:.0f} s on {resolve_workers(config.workers)} worker(s) (stages finished by an earlier "
        f"run are not redone): " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()) + ".",
        "Open `index.html` for everything on one page: verdicts, tables, figures and videos.",
        "",
        f"The other arm's demonstrator: {described}.",
        "",
    ]
    if "toy" in parts:
        lines += ["## Part 1: the paper's toy experiment, replicated with nulls", "",
                  f"[Report]({parts['toy'].relative_to(out)}): the paper's claims vs measured values, the claim",
                  "verdicts, every condition and null, figures 1-4.", ""]
    lines += ["## Part 2: the embodied study (arms, video, continuous actions)", "",
              f"[Report]({parts['analysis'].relative_to(out)}): mirror measures of the core on held-out paired",
              f"episodes, for {len(config.appearances)} appearances of the other arm "
              f"({', '.join(config.appearances)}), {len(config.seeds)} seeds each; the inverse head's R^2 beside",
              "its state ceiling.", "",
              "## Part 3: imitation from video", "",
              f"[Report]({parts['imitation'].relative_to(out)}): every method imitates held-out videos of the other",
              "arm with the self arm, the task only in the video; and whether imitation tracks the mirror measures.", ""]
    if "lesion" in parts:
        lines += ["## Part 3b: do mirror units matter? Lesions inside the recurrence", "",
                  f"[Report]({parts['lesion'].relative_to(out)}): the significant mirror units, anti-mirror units, the",
                  "top read-out units and matched-random sets silenced at every step; effects on watching and doing.", ""]
    if "dose" in parts:
        lines += ["## Part 3c: do fewer mirror units make imitation worse? The selectivity dose-response", "",
                  f"[Report]({parts['dose'].relative_to(out)}): shared cores trained with a term rewarding or",
                  "penalising per-unit perform-observe correlation; mirror units, watching and imitation against it.",
                  ""]
    if "variants" in parts:
        lines += ["## Part 3d: seed 002's future work: replay at surprise, reward-modulated learning", "",
                  f"[Report]({parts['variants'].relative_to(out)}): shared cores retrained with each option, compared",
                  "with the study's own seed by seed: mirror units, watching and imitation.", ""]
    if "spillover" in parts:
        lines += ["## Part 4: value spillover from self to other", "",
                  f"[Report]({parts['spillover'].relative_to(out)}): value learnt on the self arm's own video, applied "
                  "to the other's, and its decay under feedback.", ""]
    lines += ["## Videos: self performing, other observed, live traces of the top mirror and an anti-mirror unit", "",
              *[f"- [{v.stem}]({v.relative_to(out)})" for v in parts["videos"]], ""]
    return lines
