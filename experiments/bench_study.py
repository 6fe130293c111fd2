"""`mirrorlab bench study`: where a study's time goes, beside what this machine can do.

Prints, in one run, with the load average beside every absolute time:
1. the machine's limit and how much of it embodied training reaches (`bench limits`), and the arm env's
   step+render rate against the bare MuJoCo loop on the same scene (`bench envs`);
2. the study run in this process, one worker (so one stack holds all of it), under a stack sampler
   (`bench_profile`): seconds and shares by stage (the study's own clock), then, from the samples, by
   kind of work (training steps, episode reads, rendering, env steps, policy fits, planning through the
   core, ...); inside imitation by method and by kind of work; and the top functions by own time.
By default the preset is *reduced* (one seed, the shared and untrained conditions, the identical arm from
the headline view, few episodes and epochs, short imitation fits; listed in the output), so the profile
takes minutes; `--imitation-as-is` keeps the preset's episodes and imitation settings (one imitation job
then does the work of one of the preset's jobs); `--as-is` runs the preset unchanged (the medium preset
takes over an hour on 2 cores).
Stage shares of a reduced run are not those of the full preset: the lists say what each stage is made of.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from mirrorlab.errors import UserError
from mirrorlab.experiments.bench_profile import Rule, StackSampler, breakdown, label_of, own_function, table
from mirrorlab.experiments.cli import OneLineParser

# The outermost of these frames names a sample's stage (as the study's own timings name it).
STAGES = [
    Rule("toy_and_demonstrator", "experiments/stages/study.py", "first_stage"),
    Rule("collect", "experiments/stages/collection.py", "collect"),
    Rule("train", "agents/training.py", "train_run"),
    Rule("analyze", "experiments/stages/measurement.py", "analyze"),
    Rule("imitate", "experiments/stages/imitation.py", "imitate"),
    Rule("spillover", "experiments/stages/spillover.py", "spillover"),
    Rule("lesion", "experiments/stages/lesion.py"),
    Rule("dose", "experiments/stages/dose.py", "dose"),
    Rule("variants", "experiments/stages/variants.py", "variants"),
    Rule("videos", "experiments/stages/episode_video.py"),
    Rule("report and page", "experiments/stages/page.py"),
]
# The innermost of these frames names a sample's kind of work (the first rule matching that frame wins).
KINDS = [
    Rule("rendering (MuJoCo + supersampling)", "mujoco/render"),
    Rule("rendering (MuJoCo + supersampling)", "envs/reach.py", "render_camera"),
    Rule("writing video files", "imageio"),
    Rule("policy fits (frame CNN: BC, BCO, DAgger, what-then-how)", "agents/imitation.py", "fit_frame_policy"),
    Rule("planning through the core (synthesis, latent, goal)", "agents/imitation.py", "plan_through_core"),
    Rule("planning through the core (synthesis, latent, goal)", "agents/imitation.py", "PlanningActor"),
    Rule("core inference in rollouts (closed loop)", "agents/imitation.py", "CoreTracker"),
    Rule("core watching videos", "agents/imitation.py", "watch"),
    Rule("frame-policy inference", "agents/imitation.py", "FramePolicy.act"),
    Rule("frame-policy inference", "agents/imitation.py", "TrackingActor"),
    Rule("frame-policy inference", "agents/imitation_methods.py", "_infer"),
    Rule("SB3 policy (demonstrator, expert)", "stable_baselines3/"),
    Rule("scripted controller", "agents/scripted.py"),
    Rule("episode reads (HDF5, checks, decode)", "agents/batches.py", "__getitem__"),
    Rule("episode reads (HDF5, checks, decode)", "envs/paired.py"),
    Rule("training: forward + loss", "agents/training.py", "embodied_batch_loss"),
    Rule("training: backward + Adam + bookkeeping", "agents/training.py", "train_run"),
    Rule("toy replication", "stages/replication.py"),
    Rule("recording activations", "agents/activations.py"),
    Rule("lesions (silenced units)", "agents/lesion.py"),
    Rule("lesions (silenced units)", "stages/lesion.py"),
    Rule("spillover value heads", "analysis/spillover.py"),
    Rule("mirror statistics", "/analysis/"),
    Rule("analysis: orchestration, state ceilings", "stages/measurement.py"),
    Rule("env step (physics + bookkeeping)", "envs/"),
    Rule("env step (physics + bookkeeping)", "gymnasium/"),
    Rule("writing files", "mirrorlab/files.py"),
    Rule("figures", "matplotlib/"),
    Rule("imports", "<frozen importlib._bootstrap"),
]
IMITATION_SCORE = ("experiments/stages/imitation.py", "_score")  # its local `method` names a sample's method
# Inside imitate, outside any method's scoring: the innermost of these frames names the phase.
IMITATION_PHASES = [
    Rule("task setup (read videos, render held-out appearances)", "agents/imitation_task.py", "ImitationTask.__init__"),
    Rule("activation patching", "agents/patching.py"),
    Rule("overimitation", "agents/overimitation.py"),
    Rule("oracle rollouts and the rest of each job", "experiments/stages/imitation.py", "imitate_dataset"),
    Rule("summary, bootstrap, figure, report", "experiments/stages/imitation.py", "imitate"),
]


def method_tag(frames) -> str | None:
    """The imitation method a sample works for: the `method` of the stage's `_score` frame, if on the stack."""
    for frame in frames:
        code = frame.f_code
        if code.co_name == IMITATION_SCORE[1] and code.co_filename.replace("\\", "/").endswith(IMITATION_SCORE[0]):
            method = frame.f_locals.get("method")
            return getattr(method, "name", None)
    return None


def reduced(config, demonstrator: str | None, keep_imitation: bool = False):
    """A few-minute version of a study preset that still runs every stage and every imitation method: one
    seed, the shared and untrained cores, one dataset, few epochs. With `keep_imitation`, the preset's
    episodes and imitation settings stay, so one imitation job does the work of one of the preset's."""
    im, tc, cc = config.imitate, config.train, config.collect
    sac = cc.demonstrator == "sac"
    config = dataclasses.replace(
        config, toy=False, seeds=config.seeds[:1], views=config.views[:1], appearances=("identical",),
        conditions=tuple(c for c in config.conditions if c in ("shared", "untrained")),
        collect=dataclasses.replace(cc, demonstrator=demonstrator or ("scripted" if sac else cc.demonstrator)),
        video=dataclasses.replace(config.video, size=min(config.video.size, 96)),
        train=dataclasses.replace(tc, epochs=min(tc.epochs, 2)))
    if keep_imitation:
        return config
    return dataclasses.replace(
        config, collect=dataclasses.replace(config.collect, episodes=min(cc.episodes, 24), babble=min(cc.babble, 12)),
        imitate=dataclasses.replace(
            im, episodes=min(im.episodes, 3), policy_epochs=min(im.policy_epochs, 3),
            refit_epochs=min(im.refit_epochs, 2), dagger_iterations=min(im.dagger_iterations, 1),
            bco_iterations=min(im.bco_iterations, 1), plan_iterations=min(im.plan_iterations, 30),
            replan_iterations=min(im.replan_iterations, 10), bootstrap=min(im.bootstrap, 200)))


def changes(before, after, prefix: str = "") -> list[str]:
    """`field: old -> new` for every field a reduction changed (nested configs by their dotted names)."""
    out = []
    for f in dataclasses.fields(before):
        old, new = getattr(before, f.name), getattr(after, f.name)
        if dataclasses.is_dataclass(old) and dataclasses.is_dataclass(new):
            out += changes(old, new, f"{prefix}{f.name}.")
        elif old != new:
            out.append(f"{prefix}{f.name}: {old!r} -> {new!r}")
    return out


def limits_lines(frame_size: int, env_id: str) -> list[str]:
    """`bench limits` on one thread, and the env's step+render rate against bare MuJoCo's."""
    import torch

    from mirrorlab.agents.runs import TrainConfig
    from mirrorlab.envs.benchmark import bench_env
    from mirrorlab.experiments.bench_limits import SIGNATURE, measure, report

    torch.set_num_threads(1)
    config, signature = TrainConfig(), {**SIGNATURE, "frame_size": frame_size}
    lines = report(measure(config, signature, rounds=2), config, signature, 1)[:-1]
    env = bench_env(env_id, frame_size, steps=300, rounds=3)
    return lines + [f"{env_id} at {frame_size} px: env.step+render {env.env_fps:.0f} steps/s, bare MuJoCo loop "
                    f"{env.floor_fps:.0f} steps/s, ratio {env.ratio:.2f} (by CPU time {env.cpu_ratio:.2f}; "
                    f"load average {os.getloadavg()[0]:.1f})"]


def profile_study(config, out: Path, interval: float) -> tuple[StackSampler, dict[str, Any]]:
    """The study in this process (one worker) under the stack sampler; its own stage timings."""
    from mirrorlab.experiments.stages.study import study  # the command's own code, not a copy
    from mirrorlab.files import read_json

    with StackSampler(interval, tagger=method_tag) as sampler:
        study(dataclasses.replace(config, workers=1), out, show_progress=False, log=lambda _line: None)
    return sampler, read_json(out / "timings.json")


def profile_lines(sampler: StackSampler, timings: dict[str, Any], top: int) -> list[str]:
    """The tables: stages (the study's clock), kinds of work, imitation by method and kind, own time; each
    with the profiled thread's CPU seconds beside the wall seconds."""
    from collections import Counter

    stage = lambda s, _t: label_of(s, STAGES, innermost=False)  # noqa: E731
    kind = lambda s, _t: label_of(s, KINDS, innermost=True)  # noqa: E731
    in_imitation = lambda s, t: stage(s, t) == "imitate"  # noqa: E731
    phase = lambda s, t: t or label_of(s, IMITATION_PHASES, innermost=True)  # noqa: E731

    def both(title, key, within=lambda _s, _t: True, n=None):
        return table(breakdown(sampler, key, within), title, n, breakdown(sampler, key, within, cpu=True))

    lines = [f"wall time {sampler.wall:.1f} s (load average {os.getloadavg()[0]:.1f}), sampled {sampler.total:.1f} s, "
             f"{sampler.total_cpu:.1f} CPU s of the profiled thread"]
    clock = Counter({k: float(v) for k, v in timings["stages_s"].items()})
    lines += table(clock, "by stage (the study's clock; CPU s from the samples)",
                   cpu=breakdown(sampler, stage, cpu=True))
    lines += both("by kind of work (samples; innermost labelled frame)", kind)
    for name in ("train", "analyze", "collect"):
        lines += both(f"inside {name}, by kind", kind, lambda s, t, n=name: stage(s, t) == n, 6)
    lines += both("inside imitate, by method (or phase)", phase, in_imitation)
    lines += both("inside imitate, by kind of work", kind, in_imitation)
    lines += both("inside imitate, top functions by own time", own_function, in_imitation, top)
    lines += both("whole study, top functions by own time", own_function, n=top)
    return lines


def main(argv: list[str]) -> int:
    from mirrorlab.experiments.stages.study import PRESETS

    parser = OneLineParser(prog="mirrorlab bench study", description=__doc__)
    parser.add_argument("--preset", default="small", choices=tuple(PRESETS), help="the study preset (default: small)")
    parser.add_argument("--as-is", action="store_true", help="run the preset unreduced (the medium preset: > 1 h)")
    parser.add_argument("--imitation-as-is", action="store_true",
                        help="reduce the rest, but keep the preset's episodes and imitation settings")
    parser.add_argument("--demonstrator", default=None,
                        help="the demonstrator: a checkpoint folder, 'scripted' or 'sac' (default: the preset's; "
                             "a reduced run uses the scripted controller instead of training SAC)")
    parser.add_argument("--out", type=Path, default=None, help="keep the study here (default: a temporary folder)")
    parser.add_argument("--interval", type=float, default=0.005, help="seconds between stack samples")
    parser.add_argument("--top", type=int, default=12, help="lines of the top-function tables")
    parser.add_argument("--no-limits", action="store_true", help="skip the machine-limit and env measurements")
    args = parser.parse_args(argv)
    if not 0.0005 <= args.interval <= 1:
        raise UserError(f"--interval must be in 0.0005..1 seconds, got {args.interval}")
    if not 1 <= args.top <= 200:
        raise UserError(f"--top must be in 1..200, got {args.top}")
    if args.out is not None and args.out.exists():
        raise UserError(f"--out {args.out}: exists; name a new folder (the bench measures a fresh study)")
    base = PRESETS[args.preset]
    config = base if args.as_is else reduced(base, args.demonstrator, args.imitation_as_is)
    if args.demonstrator:
        config = dataclasses.replace(config, collect=dataclasses.replace(config.collect, demonstrator=args.demonstrator))
    config.validate()
    print(f"mirrorlab bench study: preset {args.preset}, " + ("as is" if args.as_is else "REDUCED: " +
          "; ".join(changes(base, config))) + f"; one worker, in this process; {os.cpu_count()} CPUs")
    if not args.no_limits:
        print("\n".join(limits_lines(config.collect.frame_size, config.collect.env_id)))
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        sampler, timings = profile_study(config, args.out or Path(tmp) / "study", args.interval)
        print(f"study done in {time.perf_counter() - started:.0f} s")
        print("\n".join(profile_lines(sampler, timings, args.top)))
    return 0
