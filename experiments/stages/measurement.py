"""Mirror measures of trained embodied runs: record each run's activations, measure, summarise (analyze, study).

For each run, the core is run over every episode of its dataset (the activations stage,
`mirrorlab.agents.activations`), the file is written under `OUT/activations/`, and the measures of the
toy study are applied to the held-out demo episodes (never trained on): perform (the episode's
torques) against observe (the other arm's video of the same torques), aligned by (episode, timestep),
with continuous actions (ridge R^2 decoding, preferred action directions). Runs are grouped by the
dataset's `other_appearance`, the inverse data and the loss weight; seeds give the intervals.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from mirrorlab.agents.activations import load_activations, record_run_activations, save_activations
from mirrorlab.agents.conditions import CONDITIONS
from mirrorlab.agents.runs import Run, TrainConfig, read_run, resolve_device
from mirrorlab.analysis.measures import MeasureSettings, min_sequences
from mirrorlab.errors import UserError
from mirrorlab.experiments.runner import Job, resolve_workers, run_jobs
from mirrorlab.files import atomic_write_json, claim_output_dir, read_json, write_outputs
from mirrorlab.provenance import provenance

AnalyzeConfig = MeasureSettings  # the analysis knobs of the embodied study are exactly the shared ones


def group_key(run: Run) -> str:
    """Runs that differ only by condition and seed form one group: what they watched (appearance, view), inverse
    data, loss weights, perform grounding."""
    c = run.config
    selectivity = f", selectivity={c.selectivity_weight:g}" if c.selectivity_weight else ""
    forward = f", forward_weight={c.forward_weight:g}" if c.forward_weight != TrainConfig.forward_weight else ""
    # The replay and reward training options (agents.replay, agents.reward) name their group only when they are on.
    replay = f", replay=surprise({c.replay_fraction:g}, {c.replay_buffer})" if c.replay == "surprise" else ""
    reward = f", reward={c.reward_modulation}({c.reward_strength:g})" if c.reward_modulation != "none" else ""
    return (f"{run.watched}, inverse_data={c.inverse_source}, inverse_weight={c.inverse_weight:g}{forward}, "
            f"grounding={c.perform_grounding}{selectivity}{replay}{reward}")


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "_", text).strip("_")


def activations_path(out: Path, run: Run) -> Path:
    return out / "activations" / slug(group_key(run)) / f"{run.config.condition}__seed{run.config.seed}.npz"


def check_runs(runs: list[Path], settings: MeasureSettings, data_path: Path | None) -> list[Run]:
    """Every cheap check of every run before any output or work: finished, enough held-out episodes,
    the dataset it was trained on, no two runs in one (group, condition, seed)."""
    from mirrorlab.envs.paired import PairedDataset

    if not runs:
        raise UserError("--runs: name at least one run folder")
    checked, seen = [], {}
    for path in runs:
        run = read_run(path)
        need = min_sequences(settings)
        if len(run.test_episode_ids) < need:
            raise UserError(f"run {run.dir}: {len(run.test_episode_ids)} held-out episodes, the analysis needs at "
                            f"least {need}; collect more episodes or train with a larger test_fraction")
        settings.validate(run.config.hidden_size, len(run.test_episode_ids), None, where=f"analysis of {run.dir}")
        with PairedDataset(data_path or run.data_path) as dataset:
            run.check_data(dataset)
        run.load_core()  # unreadable weights fail here, before any output
        key = (group_key(run), run.config.condition, run.config.seed)
        if key in seen:
            raise UserError(f"--runs: {run.dir} has the same condition, seed and group as {seen[key]}")
        seen[key] = run.dir
        checked.append(run)
    return checked


def analyze_run(run_dir: str, data_path: str, settings: MeasureSettings, act_path: str,
                device: str = "cpu") -> dict[str, Any]:
    """Record one run's activations (written to `act_path`) and measure them: a runner job."""
    from threadpoolctl import threadpool_limits

    from mirrorlab.analysis.measures import measure_mirroring
    from mirrorlab.envs.paired import PairedDataset

    run = read_run(run_dir)
    with threadpool_limits(limits=1), PairedDataset(data_path) as dataset:
        run.check_data(dataset)
        acts = record_run_activations(run, dataset, device=device)
        save_activations(act_path, acts)
        held = acts.split(held_out=True)
        measured, arrays = measure_mirroring(held["perform"].astype(np.float64), held["observe"].astype(np.float64),
                                             held["actions"], run.config.seed, settings)
    arrays.update(perform=held["perform"], observe=held["observe"], actions=held["actions"])
    row: dict[str, Any] = {"run": str(run.dir), "condition": run.config.condition, "seed": run.config.seed,
                           "other_appearance": run.watched, "inverse_data": run.config.inverse_source,
                           "inverse_weight": run.config.inverse_weight, "inverse_r2": acts.meta["inverse_r2"],
                           "inverse_r2_babble": acts.meta.get("inverse_r2_babble", float("nan")),
                           "forward_mse": acts.meta["forward_mse"],
                           "forward_action_sensitivity": acts.meta.get("forward_action_sensitivity", float("nan")),
                           "n_held_out": int(held["actions"].shape[0]),
                           "activations": str(act_path), **measured}
    return {"row": row, "arrays": arrays}


def state_ceiling(data_path: str, window: tuple[int, ...], train_ids: list[int], test_ids: list[int]
                  ) -> dict[str, float]:
    """The inverse model on the observed arm's true joint state over `window`, and the policy baseline on
    the state before each action (see analysis.ceiling): trained on the run's training episodes, scored
    on its held-out ones."""
    from mirrorlab.analysis.ceiling import inverse_ceiling, policy_baseline
    from mirrorlab.envs.paired import PairedDataset

    with PairedDataset(data_path) as data:
        refs = {r.episode_id: r for r in data.episodes("demo")}

        def part(ids):
            eps = [data.read_episode(refs[i], frames=False) for i in ids]
            side = {k: np.stack([e["observe"][k] for e in eps]) for k in ("joint_angles", "joint_velocities")}
            return (side["joint_angles"], side["joint_velocities"], np.stack([e["target"] for e in eps]),
                    np.stack([e["actions"] for e in eps]))

        train, test = part(train_ids), part(test_ids)
        out = inverse_ceiling(train[:2] + train[3:], test[:2] + test[3:], window)
        out["policy"] = policy_baseline(train, test)
        return out


def analyze(runs: list[Path], out: Path, settings: MeasureSettings, force: bool = False,
            data_path: Path | None = None, workers: int = 1, ray_address: str | None = None,
            show_progress: bool = False, device: str = "cpu") -> dict[str, Any]:
    """Measure every run, then write metrics.json, units.csv, report.md, figures and the activations."""
    from tqdm import tqdm

    from mirrorlab.analysis.claims import assess_claims
    from mirrorlab.analysis.embodied_report import embodied_outputs
    from mirrorlab.analysis.summary import summarise

    settings.validate()
    device = resolve_device(device)
    checked = check_runs(runs, settings, data_path)
    workers = resolve_workers(workers)
    claim_output_dir(out, "analyze", force=force)
    started = time.perf_counter()
    jobs = [Job(str(run.dir), analyze_run, (str(run.dir), str(data_path or run.data_path), settings,
                                            str(activations_path(out, run)), device)) for run in checked]
    # One ceiling per (dataset, window, split): every run that shares them shares it.
    ceiling_keys = {run.dir: (str(data_path or run.data_path), tuple(run.config.observe_window),
                              tuple(run.train_episode_ids), tuple(run.test_episode_ids)) for run in checked}
    jobs += [Job(f"ceiling:{k}", state_ceiling, (k[0], k[1], list(k[2]), list(k[3]))) for k in set(ceiling_keys.values())]
    results: dict[str, dict[str, Any]] = {}
    with tqdm(total=len(jobs), desc="analyze", unit="job", disable=not show_progress) as bar:
        run_jobs(jobs, lambda job, result: (results.__setitem__(job.key, result), bar.update(1)),
                 workers=workers, ray_address=ray_address)
    cells: dict[tuple[str, str, int], tuple[dict, dict]] = {}
    for run in checked:
        result = results[str(run.dir)]
        ceiling = results[f"ceiling:{ceiling_keys[run.dir]}"]
        result["row"].update(inverse_r2_ceiling=ceiling["ceiling"], inverse_r2_ceiling_ridge=ceiling["ridge"],
                             inverse_r2_ceiling_mlp=ceiling["mlp"], inverse_r2_policy=ceiling["policy"],
                             inverse_r2_of_ceiling=result["row"]["inverse_r2"] / ceiling["ceiling"])
        cells[(group_key(run), run.config.condition, run.config.seed)] = (result["row"], result["arrays"])
    groups: dict[str, Any] = {}
    for g in sorted({k[0] for k in cells}):
        rows = [row for (gg, _, _), (row, _) in cells.items() if gg == g]
        conditions = [c for c in CONDITIONS if any(r["condition"] == c for r in rows)]
        seeds = sorted({r["seed"] for r in rows})
        conds = summarise(rows, conditions, seeds)
        groups[g] = {"conditions": conds, "claims": assess_claims({c: e["per_seed"] for c, e in conds.items()})}
    metrics = provenance(settings)
    metrics["analysis"] = metrics.pop("config")
    metrics["runs"] = {str(run.dir): {"group": group_key(run), "activations": str(activations_path(out, run)),
                                      "data_fingerprint": run.data_fingerprint} for run in checked}
    metrics["groups"] = groups
    metrics["wall_time_s"] = time.perf_counter() - started
    write_outputs(out, embodied_outputs(metrics, cells))
    atomic_write_json(out / "metrics.json", metrics)
    return {"metrics": metrics, "report": out / "report.md"}


def analysis_is_current(out: Path, runs: list[Path], settings: MeasureSettings) -> bool:
    """Whether `out` already holds this analysis: of exactly these runs, with these settings, every run
    finished before it and every activations file in place. A resumed study keeps such an analysis rather
    than measuring again (at `medium`, minutes); anything else (a run retrained since, another run set,
    other settings, a missing file) is analysed afresh."""
    path = out / "metrics.json"
    if not path.is_file():
        return False
    try:
        metrics = read_analysis(out)
    except UserError:
        return False
    recorded = metrics["runs"]
    if set(recorded) != {str(r) for r in runs}:
        return False
    if metrics.get("analysis") != json.loads(json.dumps(dataclasses.asdict(settings))):
        return False
    written = path.stat().st_mtime_ns
    for run in runs:
        done, acts = Path(run) / "done.json", recorded[str(run)].get("activations")
        if not done.is_file() or done.stat().st_mtime_ns > written or not acts or not Path(acts).exists():
            return False
    return True


def read_analysis(analysis: Path) -> dict[str, Any]:
    """The metrics.json of an `analyze` output folder (or the file itself), checked."""
    path = analysis / "metrics.json" if analysis.is_dir() else analysis
    metrics = read_json(path, "--analysis")
    if not isinstance(metrics, dict) or not isinstance(metrics.get("runs"), dict) or "groups" not in metrics:
        raise UserError(f"--analysis {path}: not the metrics.json of `mirrorlab analyze`")
    return metrics


def run_activations(analysis: Path, run: Run):
    """The recorded activations of `run` in an analysis folder, checked to be that run's on its dataset."""
    metrics = read_analysis(analysis)
    entry = metrics["runs"].get(str(run.dir))
    if entry is None:
        raise UserError(f"--analysis {analysis}: has no activations of run {run.dir}; analyze the run first")
    acts = load_activations(entry["activations"])
    if acts.meta.get("data_fingerprint") != run.data_fingerprint or acts.meta.get("run") != str(run.dir):
        raise UserError(f"activations file {entry['activations']}: recorded for another run or dataset than {run.dir}")
    return acts


def mirror_measures_by_run(analysis: Path, measures: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """run folder -> its mirror measures (per-seed rows of the analysis)."""
    metrics = read_analysis(analysis)
    out = {}
    for group in metrics["groups"].values():
        for entry in group["conditions"].values():
            for row in entry["per_seed"]:
                out[row["run"]] = {m: row[m] for m in measures if m in row}
    return out
