"""Imitation from observation: can the learner do what it watched the other arm do? (imitate, study)

For held-out episodes of the other arm reaching (never trained on), each method produces actions
for the self arm, started from the same initial pose with the same target (same reset seed):
| method              | how it acts                                                                |
|---------------------|----------------------------------------------------------------------------|
| `oracle`            | the demonstrator's true actions replayed (upper bound)                     |
| `random`            | uniform random torques (lower bound)                                       |
| `inverse_<cond>`    | a run's inverse head infers the actions from the video (recorded by        |
|                     | `analyze`), replayed open loop (`_selfvideo`: learnt from the self arm's video) |
| `bco`               | an inverse dynamics model learnt from the self arm's babbling labels the     |
|                     | training videos; a state policy is cloned from those labels (closed loop)   |
| `bc`                | a state policy cloned from the shared run's inferred labels (closed loop)   |
| `dagger`            | that policy improved by DAgger: the demonstrator labels the states the     |
|                     | learner visits (expert queries counted)                                     |
Scores per episode: success (within the radius at the last step), final fingertip distance, and
trajectory error (mean distance between the self fingertip and where the demonstrator's actions
take it). Output: imitation.csv, metrics.json, report.md.
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mirrorlab.agents.runs import Run, check_seed, read_run
from mirrorlab.analysis.intervals import mean_ci95
from mirrorlab.errors import UserError
from mirrorlab.experiments.runner import Job, resolve_workers, run_jobs
from mirrorlab.experiments.stages.measurement import mirror_measures_by_run, run_activations
from mirrorlab.files import atomic_write_json, atomic_write_text, claim_output_dir
from mirrorlab.provenance import provenance

SCORES = ("success", "final_distance", "trajectory_error")
MIRROR_MEASURES = ("n_mirror_fdr", "aligned_cka_debiased_excess", "decode_perform_to_observe_zscored")


@dataclass(frozen=True)
class ImitateConfig:
    """Every default of the imitation test."""

    episodes: int = 20            # held-out episodes scored per dataset (at most the runs' held-out set)
    seed: int = 0
    closed_loop: bool = True      # also BCO, BC and DAgger (state policies acting closed loop)
    policy_epochs: int = 150
    policy_lr: float = 3e-3
    idm_epochs: int = 10
    dagger_iterations: int = 3
    dagger_episodes: int = 4      # expert-labelled rollouts per DAgger iteration
    workers: int = 1              # datasets scored in parallel

    def validate(self) -> None:
        for name in ("episodes", "policy_epochs", "idm_epochs", "dagger_episodes"):
            if getattr(self, name) < 1:
                raise UserError(f"config: {name} must be >= 1, got {getattr(self, name)}")
        if self.dagger_iterations < 0:
            raise UserError(f"config: dagger_iterations must be >= 0, got {self.dagger_iterations}")
        if not (self.policy_lr > 0 and math.isfinite(self.policy_lr)):
            raise UserError(f"config: policy_lr must be a positive number, got {self.policy_lr}")
        check_seed(self.seed, "config: seed")
        resolve_workers(self.workers, "config: workers")


def _score(result: dict[str, Any], oracle_tips: np.ndarray) -> dict[str, float]:
    return {"success": float(result["success"]), "final_distance": float(result["distance"][-1]),
            "trajectory_error": float(np.linalg.norm(result["fingertip_pos"] - oracle_tips, axis=-1).mean())}


class DatasetTask:
    """What every method of one dataset shares: held-out episodes, training videos, the self env."""

    def __init__(self, data_path: Path, held_out_ids: list[int], train_ids: list[int], n_episodes: int):
        from mirrorlab.envs.paired import PairedDataset

        with PairedDataset(data_path) as data:
            self.header = data.header
            refs = {r.episode_id: r for r in data.episodes("demo")}
            self.held_out = [data.read_episode(refs[i]) for i in held_out_ids[:n_episodes]]
            self.train = [data.read_episode(refs[i]) for i in train_ids if i in refs]
            self.babble = [data.read_episode(r) for r in data.episodes("babble")]
        self.appearance = self.header.other_appearance
        self.env = self.header.make_env("self")

    @staticmethod
    def frames(episodes: list[dict], side: str) -> np.ndarray:
        return np.stack([e[side]["frames"] for e in episodes]).transpose(0, 1, 4, 2, 3)

    def score_all(self, act_for: dict[int, Any], oracle: dict[int, np.ndarray]) -> list[dict[str, float]]:
        """act_for[episode_id] -> act(obs, t); one score dict per held-out episode."""
        from mirrorlab.envs.episodes import rollout

        return [dict(_score(rollout(self.env, e["seed"], act_for[e["episode_id"]]), oracle[e["episode_id"]]),
                     episode_id=e["episode_id"]) for e in self.held_out]


def inverse_method(run: Run) -> str:
    """`inverse_<condition>`, marked when the inverse head learnt from the self arm's own video."""
    suffix = "" if run.config.inverse_data == "other" else f"_{run.config.inverse_data}video"
    return f"inverse_{run.config.condition}{suffix}"


def imitate_dataset(data_path: str, runs: list[str], analysis: str, config: ImitateConfig) -> list[dict[str, Any]]:
    """Every method on the held-out episodes of one dataset; one row per (method, run, episode): a runner job."""
    import torch
    from threadpoolctl import threadpool_limits

    from mirrorlab.agents.demonstrator import load_demonstrator
    from mirrorlab.agents.imitation import dagger, fit_inverse_dynamics, fit_policy
    from mirrorlab.envs.episodes import policy_actor, replay, rollout

    # Small MLPs and CNNs: extra threads only spin against each other (and against parallel jobs).
    torch.set_num_threads(1)
    threadpool_limits(limits=1)
    loaded = [read_run(r) for r in runs]
    splits = {tuple(run.test_episode_ids) for run in loaded}
    if len(splits) != 1:
        raise UserError(f"runs on {data_path} disagree on the held-out episodes; train them with one test_fraction")
    task = DatasetTask(Path(data_path), list(next(iter(splits))), loaded[0].train_episode_ids, config.episodes)
    base = {"appearance": task.appearance, "data": data_path}
    rows: list[dict[str, Any]] = []

    def add(method: str, scores: list[dict[str, float]], **extra: Any) -> None:
        rows.extend({**base, "method": method, **extra, **s} for s in scores)

    # The oracle's rollouts are both its own scores and the reference trajectories of every method.
    oracle_runs = {e["episode_id"]: replay(task.env, e["seed"], e["actions"]) for e in task.held_out}
    oracle = {i: r["fingertip_pos"] for i, r in oracle_runs.items()}
    add("oracle", [dict(_score(r, oracle[i]), episode_id=i) for i, r in oracle_runs.items()])
    rng = np.random.default_rng([config.seed, 1])
    random_actions = {e["episode_id"]: rng.uniform(-1, 1, e["actions"].shape) for e in task.held_out}
    add("random", task.score_all({i: (lambda _o, t, a=a: a[t]) for i, a in random_actions.items()}, oracle))
    train_frames = task.frames(task.train, "observe")
    train_states = np.concatenate([e["observe"]["state"][:-1] for e in task.train])
    for run in loaded:
        acts = run_activations(Path(analysis), run)
        inferred = dict(zip(acts.episode_ids.tolist(), acts.inferred))
        act_for = {e["episode_id"]: (lambda _o, t, a=inferred[e["episode_id"]]: a[t]) for e in task.held_out}
        extra = {"run": str(run.dir), "condition": run.config.condition, "seed": run.config.seed}
        add(inverse_method(run), task.score_all(act_for, oracle), **extra)
        if not (config.closed_loop and run.config.condition == "shared" and run.config.inverse_data == "other"):
            continue
        labels = np.concatenate([inferred[e["episode_id"]] for e in task.train])
        policy = fit_policy(train_states, labels, epochs=config.policy_epochs, lr=config.policy_lr, seed=config.seed)
        add("bc", task.score_all({e["episode_id"]: policy_actor(policy) for e in task.held_out}, oracle), **extra)
        expert = load_demonstrator(task.header.demonstrator, task.env)

        def expert_rollout(pol, seed):
            """The learner acts; the expert is asked what it would do in every state visited."""
            labelled: list[np.ndarray] = []

            def act(obs, _t):
                labelled.append(expert.predict(obs)[0])
                return pol.predict(obs)[0]

            return rollout(task.env, seed, act)["state"][:-1], np.stack(labelled)

        train_seeds = [e["seed"] for e in task.train]
        schedule = [[train_seeds[(i * config.dagger_episodes + j) % len(train_seeds)]
                     for j in range(config.dagger_episodes)] for i in range(config.dagger_iterations)]
        improved, queries = dagger(policy, train_states, labels, expert_rollout, schedule,
                                   epochs=config.policy_epochs, lr=config.policy_lr, seed=config.seed)
        add("dagger", task.score_all({e["episode_id"]: policy_actor(improved) for e in task.held_out}, oracle),
            expert_queries=queries, **extra)
    if config.closed_loop and task.babble:
        idm = fit_inverse_dynamics(task.frames(task.babble, "perform"), np.stack([e["actions"] for e in task.babble]),
                                   epochs=config.idm_epochs, seed=config.seed)
        labels = idm.label(train_frames)
        policy = fit_policy(train_states, labels.reshape(-1, labels.shape[-1]), epochs=config.policy_epochs,
                            lr=config.policy_lr, seed=config.seed)
        add("bco", task.score_all({e["episode_id"]: policy_actor(policy) for e in task.held_out}, oracle))
    task.env.close()
    return rows


def imitate(runs: list[Path], out: Path, config: ImitateConfig, analysis: Path, force: bool = False,
            show_progress: bool = True, ray_address: str | None = None) -> dict[str, Any]:
    """Every dataset of the runs scored (in parallel over datasets), then summarised and reported."""
    from tqdm import tqdm

    config.validate()
    if not runs:
        raise UserError("--run: name at least one run folder")
    by_data: dict[str, list[str]] = {}
    for path in runs:
        run = read_run(path)
        run_activations(analysis, run)  # every run must have been analysed: fail here, before any work
        by_data.setdefault(str(run.data_path), []).append(str(run.dir))
    mirror = mirror_measures_by_run(analysis, MIRROR_MEASURES)
    claim_output_dir(out, "imitate", force=force)
    started = time.perf_counter()
    results: dict[str, list[dict[str, Any]]] = {}
    jobs = [Job(d, imitate_dataset, (d, r, str(analysis), config)) for d, r in by_data.items()]
    with tqdm(total=len(jobs), desc="imitate", unit="dataset", disable=not show_progress) as bar:
        run_jobs(jobs, lambda job, rows: (results.__setitem__(job.key, rows), bar.update(1)),
                 workers=resolve_workers(config.workers), ray_address=ray_address)
    rows = [row for d in by_data for row in results[d]]  # in submission order: rows do not depend on timing
    metrics = provenance(config)
    metrics["imitation"] = metrics.pop("config")
    metrics["runs"] = [str(r) for r in runs]
    metrics["summary"] = summarise_imitation(rows)
    metrics["mirror_vs_imitation"] = correlate_with_mirroring(rows, mirror)
    metrics["wall_time_s"] = time.perf_counter() - started
    atomic_write_text(out / "imitation.csv", _rows_csv(rows))
    atomic_write_json(out / "metrics.json", metrics)
    atomic_write_text(out / "report.md", imitation_report(metrics))
    return {"metrics": metrics, "report": out / "report.md", "rows": rows}


def summarise_imitation(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{appearance: {method: {score: mean_ci95 over seeds of the per-seed mean over episodes, ...}}}.

    The same held-out episodes are reused by every seed, so (seed, episode) rows are not independent:
    each seed's episodes are averaged first, and the interval is over seeds."""
    out: dict[str, dict[str, dict[Any, list[dict[str, Any]]]]] = {}
    for row in rows:
        out.setdefault(row["appearance"], {}).setdefault(row["method"], {}).setdefault(row.get("seed"), []).append(row)
    summary: dict[str, dict[str, Any]] = {}
    for appearance, methods in out.items():
        summary[appearance] = {}
        for method, by_seed in methods.items():
            per_seed = {s: {k: float(np.mean([r[k] for r in group])) for k in SCORES} for s, group in by_seed.items()}
            entry: dict[str, Any] = {k: mean_ci95([v[k] for v in per_seed.values()]) for k in SCORES}
            queries = [r["expert_queries"] for group in by_seed.values() for r in group if "expert_queries" in r]
            if queries:
                entry["expert_queries"] = float(np.mean(queries))
            entry["n_seeds"] = len(per_seed)
            entry["n_episodes"] = len(next(iter(by_seed.values())))
            summary[appearance][method] = entry
    return summary


def correlate_with_mirroring(rows: list[dict[str, Any]], mirror: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """Across runs: Pearson r (95% CI, Fisher z) between each run's mean imitation score (its inverse
    head, open loop) and each of its mirror measures, over all runs and over trained runs only
    (training itself improves both, so the untrained runs alone can make a correlation)."""
    from scipy import stats

    per_run: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["method"].startswith("inverse_") and row.get("run") in mirror:
            per_run.setdefault(row["run"], []).append(row)
    out = []
    subsets = {"all runs": sorted(per_run),
               "trained runs": sorted(r for r in per_run if per_run[r][0]["condition"] != "untrained")}
    for subset, runs in subsets.items():
        for s in SCORES:
            y = np.array([np.mean([r[s] for r in per_run[run]]) for run in runs])
            for m in MIRROR_MEASURES:
                x = np.array([mirror[run].get(m, np.nan) for run in runs])
                ok = np.isfinite(x) & np.isfinite(y)
                entry = {"runs": subset, "score": s, "mirror_measure": m, "n_runs": int(ok.sum())}
                if ok.sum() >= 4 and np.std(x[ok]) > 0 and np.std(y[ok]) > 0:
                    res = stats.pearsonr(x[ok], y[ok])
                    ci = res.confidence_interval(0.95)
                    entry.update(r=float(res.statistic), ci95=[float(ci.low), float(ci.high)], p=float(res.pvalue))
                out.append(entry)
    return out


def _rows_csv(rows: list[dict[str, Any]]) -> str:
    keys = ["appearance", "method", "condition", "seed", "run", "episode_id", *SCORES, "expert_queries", "data"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def imitation_report(metrics: dict[str, Any]) -> str:
    from mirrorlab.analysis.replication_report import fmt_stat

    lines = ["# Imitation from observation", "",
             "Held-out videos of the other arm; the self arm starts where the other did, with the same target.",
             "Mean [95% CI over seeds] of each seed's mean over the held-out episodes. Success: within the env's",
             "radius at the last step.",
             "The oracle replays the demonstrator's torques on the self arm, and trajectory error is measured",
             "against that replay: when the other arm's body differs (`morphology`), the same torques no longer",
             "reach the target, so a goal-directed learner (BC, DAgger with an expert acting on the self arm) can",
             "beat the oracle there: copying actions is not the same as imitating the goal.",
             ""]
    for appearance, methods in metrics["summary"].items():
        lines += [f"## other_appearance = {appearance}", "",
                  "| method | success | final distance (m) | trajectory error (m) | expert queries | seeds x episodes |",
                  "|---|---|---|---|---|---|"]
        for method, e in methods.items():
            lines.append(f"| {method} | {fmt_stat(e['success'], True)} | {fmt_stat(e['final_distance'])} | "
                         f"{fmt_stat(e['trajectory_error'])} | {e.get('expert_queries', '')} | "
                         f"{e['n_seeds']} x {e['n_episodes']} |")
        lines.append("")
    if metrics.get("mirror_vs_imitation"):
        lines += ["## Does imitation track the mirror measures? (across runs, inverse heads)", "",
                  "| runs | imitation score | mirror measure | n | Pearson r [95% CI] | p |",
                  "|---|---|---|---|---|---|"]
        for c in metrics["mirror_vs_imitation"]:
            r = f"{c['r']:.2f} [{c['ci95'][0]:.2f}, {c['ci95'][1]:.2f}]" if "r" in c else "n/a (too few runs)"
            lines.append(f"| {c['runs']} | {c['score']} | {c['mirror_measure']} | {c['n_runs']} | {r} | "
                         f"{c.get('p', float('nan')):.3g} |")
        lines.append("")
    return "\n".join(lines)
