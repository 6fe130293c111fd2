"""`mirrorlab curve`: can the core read actions from video, and predict what its actions do? Held-out inverse R^2
against data, pixels and window; the forward head's action sensitivity against updates and its form.

The learning curve behind the presets' defaults. Around one base setting (the presets' learner), one
axis varies at a time: the number of training episodes (for each action representation: torques, and
joint-target offsets a camera sees better), the frame size, and the frames stacked per step; and, on the
small preset's number of training episodes, the training epochs (`epochs`) and the forward model's form
(`forward`: what the perform path starts from and predicts, and the forward loss weight), each point
scored by `forward_action_sensitivity` (the forward error with another held-out episode's actions over
the error with the true ones: 1 when the forward head ignores the actions). Each point
is a shared core trained on the identical-looking other arm's paired episodes and scored on the same
held-out episodes, beside its ceiling: an inverse model on the observed arm's true joint state over
the same window and training episodes (`mirrorlab.analysis.ceiling`). Output: curve.csv, report.md,
figures/learning_curve.png, and the datasets and runs it made (resumable: rerun to continue).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mirrorlab.agents.runs import TrainConfig
from mirrorlab.errors import UserError
from mirrorlab.experiments.runner import Job, resolve_workers, run_jobs
from mirrorlab.files import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    claim_output_dir,
    csv_text,
    read_json,
)
from mirrorlab.provenance import provenance


FORWARD_AXES = ("epochs", "forward")  # scored by the forward head's action sensitivity too
CURVE_AXES = ("train_episodes", "frame_size", "window") + FORWARD_AXES


@dataclass(frozen=True)
class CurveConfig:
    """The base setting and the values each axis takes."""

    env_id: str = "mirrorlab/PlanarReach-v0"
    episodes: int = 200                     # paired episodes collected (25% held out); the most any point trains on
    babble: int = 60
    base_action_mode: str = "position"
    base_frame_size: int = 32
    render_supersample: int = 4
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        epochs=20, observe_window=(-1, 0, 1), cnn_strides=(2, 1, 2, 1), cnn_channels=16, augment_shift=2))
    train_episodes: tuple[int, ...] = (25, 50, 100, 150)
    action_modes: tuple[str, ...] = ("position", "torque")
    frame_sizes: tuple[int, ...] = (32, 64)
    windows: tuple[tuple[int, ...], ...] = ((1,), (0, 1), (-1, 0, 1), (-1, 0, 1, 2))
    # The forward model's axes, on `forward_train_episodes` (the small preset's 45 training demonstrations).
    epochs: tuple[int, ...] = (10, 40, 160)
    forward_variants: tuple[tuple[str, float], ...] = (("start_frame_change", 10.0), ("start_frame", 10.0),
                                                       ("start_frame_change", 1.0), ("none", 10.0))
    forward_train_episodes: int = 45
    forward_epochs: int = 80
    axes: tuple[str, ...] = CURVE_AXES
    seeds: tuple[int, ...] = (0,)
    workers: int = 0



def plan(config: CurveConfig) -> list[dict[str, Any]]:
    """Every point: its axis, the value, and the (action mode, frame size, train config) it trains."""
    base = config.train
    top = max(config.train_episodes)
    points = []
    for mode in config.action_modes:
        for n in config.train_episodes:
            points.append({"axis": "train_episodes", "value": n, "action_mode": mode,
                           "frame_size": config.base_frame_size, "train": dataclasses.replace(base, train_episodes=n)})
    for size in config.frame_sizes:
        points.append({"axis": "frame_size", "value": size, "action_mode": config.base_action_mode,
                       "frame_size": size, "train": dataclasses.replace(base, train_episodes=top)})
    for window in config.windows:
        points.append({"axis": "window", "value": ",".join(map(str, window)), "action_mode": config.base_action_mode,
                       "frame_size": config.base_frame_size,
                       "train": dataclasses.replace(base, train_episodes=top, observe_window=window)})
    small = dataclasses.replace(base, train_episodes=config.forward_train_episodes)
    for epochs in config.epochs:
        points.append({"axis": "epochs", "value": epochs, "action_mode": config.base_action_mode,
                       "frame_size": config.base_frame_size, "train": dataclasses.replace(small, epochs=epochs)})
    for grounding, weight in config.forward_variants:
        points.append({"axis": "forward", "value": f"{grounding} fw{weight:g}", "action_mode": config.base_action_mode,
                       "frame_size": config.base_frame_size,
                       "train": dataclasses.replace(small, epochs=config.forward_epochs, perform_grounding=grounding,
                                                    forward_weight=weight)})
    # A point on several axes (the base point, the forward default at forward_epochs) shares one key: trained once.
    return [{**p, "seed": s, "train": dataclasses.replace(p["train"], seed=s)} for p in points for s in config.seeds
            if p["axis"] in config.axes]


def _key(point: dict[str, Any]) -> str:
    t = point["train"]
    return (f"{point['action_mode']}-{point['frame_size']}px-n{t.train_episodes}-w{'_'.join(map(str, t.observe_window))}"
            f"-e{t.epochs}-{t.perform_grounding}-fw{t.forward_weight:g}-s{point['seed']}")


def measure_point(point: dict[str, Any], data: str, run_dir: str) -> dict[str, Any]:
    """Train one core and score its inverse head and the state ceiling on the held-out episodes: a job."""
    from mirrorlab.agents.activations import record_run_activations
    from mirrorlab.agents.runs import read_run
    from mirrorlab.agents.training import train_run
    from mirrorlab.envs.paired import PairedDataset
    from mirrorlab.experiments.stages.measurement import state_ceiling

    started = time.perf_counter()
    train_run(point["train"], data, run_dir)
    seconds = time.perf_counter() - started
    run = read_run(run_dir)
    with PairedDataset(data) as dataset:
        meta = record_run_activations(run, dataset).meta
    ceiling = state_ceiling(data, tuple(run.config.observe_window), run.train_episode_ids, run.test_episode_ids)
    return {"inverse_r2": meta["inverse_r2"], "ceiling": ceiling["ceiling"], "train_seconds": seconds,
            "forward_action_sensitivity": meta["forward_action_sensitivity"], "forward_mse": meta["forward_mse"],
            "n_train": len(run.train_episode_ids), "n_held_out": len(run.test_episode_ids)}


def curve(config: CurveConfig, out: Path, show_progress: bool = True) -> dict[str, Any]:
    from tqdm import tqdm

    from mirrorlab.agents.collection import CollectConfig
    from mirrorlab.agents.runs import split_episodes
    from mirrorlab.experiments.stages.collection import collect

    points = plan(config)
    if not points:
        raise UserError(f"config: no points on the axes {list(config.axes)}")
    available = len(split_episodes(list(range(config.episodes)), config.train.test_fraction)[0])
    most = max(p["train"].train_episodes for p in points)
    if most > available:
        raise UserError(f"config: {most} training episodes asked for; {config.episodes} collected "
                        f"leave {available} beside the held-out ones")
    workers = resolve_workers(config.workers)
    claim_output_dir(out, "curve", resume=True)
    atomic_write_json(out / "config.json", provenance(config, seeds=list(config.seeds)))
    started = time.perf_counter()
    datasets = {}
    for mode, size in sorted({(p["action_mode"], p["frame_size"]) for p in points}):
        folder = out / "data" / f"{mode}-{size}px"
        collect(dataclasses.replace(CollectConfig(), env_id=config.env_id, episodes=config.episodes, babble=config.babble,
                                    frame_size=size, action_mode=mode, render_supersample=config.render_supersample,
                                    workers=config.workers, verify_episodes=1), folder, show_progress=show_progress)
        datasets[(mode, size)] = str(folder)
    results_dir = out / "points"
    unique = {_key(p): p for p in points}
    jobs = [Job(key, measure_point, (p, datasets[(p["action_mode"], p["frame_size"])], str(out / "runs" / key)),
                cost=p["train"].train_episodes * p["frame_size"] ** 2) for key, p in unique.items()]

    def saved(job: Job, result: dict[str, Any]) -> None:
        atomic_write_json(results_dir / f"{job.key}.json", result)
        bar.update(1)

    with tqdm(total=len(jobs), desc="curve", unit="point", disable=not show_progress) as bar:
        run_jobs(jobs, saved, workers=workers, done=lambda job: (results_dir / f"{job.key}.json").is_file(),
                 on_skip=lambda _job: bar.update(1))
    rows = []
    for p in points:
        result = read_json(results_dir / f"{_key(p)}.json")
        rows.append({"axis": p["axis"], "value": p["value"], "action_mode": p["action_mode"],
                     "frame_size": p["frame_size"], "window": ",".join(map(str, p["train"].observe_window)),
                     "train_episodes": result["n_train"], "epochs": p["train"].epochs,
                     "perform_grounding": p["train"].perform_grounding, "forward_weight": p["train"].forward_weight,
                     "seed": p["seed"], **{k: result[k] for k in ("inverse_r2", "ceiling", "forward_action_sensitivity",
                                                                  "forward_mse", "train_seconds")}})
    wall = time.perf_counter() - started
    atomic_write_text(out / "curve.csv", csv_text(rows, list(rows[0])))
    if any(r["axis"] not in FORWARD_AXES for r in rows):
        atomic_write_bytes(out / "figures" / "learning_curve.png", _figure(rows))
    if any(r["axis"] in FORWARD_AXES for r in rows):
        from mirrorlab.analysis.figures import forward_curve

        atomic_write_bytes(out / "figures" / "forward_curve.png", forward_curve(rows))
    atomic_write_text(out / "report.md", _report(rows, config, wall))
    return {"rows": rows, "wall_time_s": wall, "report": out / "report.md"}


def _figure(rows: list[dict[str, Any]]) -> bytes:
    from mirrorlab.analysis.figures import learning_curve

    return learning_curve(rows)


def _report(rows: list[dict[str, Any]], config: CurveConfig, wall: float) -> str:
    t = config.train
    lines = ["# Learning curve: reading actions from video", "",
             f"Base: planar arm, {config.base_action_mode} actions, {config.base_frame_size} px frames rendered "
             f"{config.render_supersample}x and averaged, window {t.observe_window}, CNN strides {t.cnn_strides} x "
             f"{t.cnn_channels} channels, random shifts of {t.augment_shift} px, {t.epochs} epochs; shared core; "
             f"{len(config.seeds)} seed(s) per point. R^2 on the held-out episodes (the same ones for every point) beside "
             "the ceiling (true joint state over the same window and training episodes).", "",
             "The forward axes (`epochs`, `forward`) also score the forward head: its held-out pixel error and its "
             "action sensitivity (error with another held-out episode's actions over the error with the true ones, "
             "same start; 1: the actions are ignored).", "",
             "| axis | value | action mode | frame size | window | training episodes | epochs | held-out R^2 | "
             "ceiling | of ceiling | forward MSE | action sensitivity | train s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['axis']} | {r['value']} | {r['action_mode']} | {r['frame_size']} | {r['window']} | "
                     f"{r['train_episodes']} | {r['epochs']} | {r['inverse_r2']:.3f} | {r['ceiling']:.3f} | "
                     f"{r['inverse_r2'] / r['ceiling']:.2f} | {r['forward_mse']:.5f} | "
                     f"{r['forward_action_sensitivity']:.2f} | {r['train_seconds']:.0f} |")
    lines += ["", f"Wall time {wall:.0f} s on {resolve_workers(config.workers)} worker(s), load average "
                  f"{os.getloadavg()[0]:.1f}.", "", "![learning curve](figures/learning_curve.png)", ""]
    return "\n".join(lines)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("curve", help="learning curve: held-out inverse R^2 vs data, frame size and window",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("results/curve"),
                   help="output folder (default: %(default)s); an earlier curve there is continued")
    p.add_argument("--seeds", type=int, default=1, help="seeds per point (default: 1)")
    p.add_argument("--axes", default=",".join(CURVE_AXES),
                   help=f"comma-separated axes to measure, of {', '.join(CURVE_AXES)} (default: all)")
    p.add_argument("--workers", type=int, default=0, help="parallel processes (default: one per CPU core)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if not 1 <= args.seeds <= 20:
        raise UserError(f"--seeds must be in 1..20, got {args.seeds}")
    resolve_workers(args.workers)
    axes = tuple(a.strip() for a in args.axes.split(",") if a.strip())
    if not axes or any(a not in CURVE_AXES for a in axes):
        raise UserError(f"--axes must list axes of {', '.join(CURVE_AXES)}, got {args.axes!r}")
    config = dataclasses.replace(CurveConfig(), seeds=tuple(range(args.seeds)), workers=args.workers, axes=axes)
    result = curve(config, args.out)
    print(f"report: {result['report']}")
    print(f"wall time: {result['wall_time_s']:.0f} s")
    return 0
