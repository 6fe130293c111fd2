"""Imitation from video, the task only in the video (imitate, study).

Having watched the other arm reach, can the learner do the same, and does its mirror system help? The
self arm starts where the other did (same reset seed: same start pose, same target in its own base
frame), but its observation carries no target: its state is joint angles and velocities only and no
target is drawn in its camera (`observe_target=False, visible_targets="other"`). The target is in the
other arm's video alone. The held-out episodes of the runs (never trained on) are split in two: the
first half are *fit* videos (what BC, BCO(alpha) and DAgger may learn from), the second half are
*test* videos, scored.

| method | what it sees | expert? | how it acts |
|---|---|---|---|
| `oracle` | the true actions | - | replays the demonstrator's actions (upper bound) |
| `random` | nothing | - | uniform random actions (lower bound) |
| `inverse_<cond>` | the video | no | the core's inverse head on the video (recorded by `analyze`), replayed open loop |
| `closed_<cond>` | own camera + the video | no | the core's observe path in closed loop: own frames up to t, the video's after |
| `mirror_<cond>` | the video | no | analysis by synthesis: actions whose forward-predicted frames match the video, re-planned every `replan_every` steps |
| `bco` | own camera + the video | no | inverse dynamics (a frame-window policy) from the self arm's own babbling, tracking the video in closed loop |
| `bco_alpha` | own camera + the video | no | BCO(alpha): the same model refitted on its own rollouts on the fit videos, `bco_iterations` times |
| `bc` | own camera + the video | no | the frame-window policy fitted on the fit videos labelled by the shared core's inverse head |
| `dagger` | own camera + the video | yes (queries counted) | BC improved by DAgger: the demonstrator, which sees the target, labels the learner's own windows |
| `goal_given` | the target | - | reference, not imitation: the demonstrator driving the self arm with the target in its state |

Scores per test episode: `success` (within the radius of the self arm's own target, which is the
demonstrated target: goal-level success, also across bodies), final distance, `trajectory_error` (mean
distance of the fingertip from where the demonstrator's actions take the self arm), `path_error` (mean
distance from the demonstrator's own fingertip path, both in their arm's base frame: meaningful when the
bodies differ). Per-seed means over the test videos, then mean and 95% interval over seeds; methods
without a run of their own (oracle, random, BCO, goal_given) are repeated for each seed of the runs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mirrorlab.agents.runs import DEVICES, Run, check_seed, read_run, resolve_device
from mirrorlab.analysis.intervals import mean_ci95
from mirrorlab.errors import UserError
from mirrorlab.experiments.runner import Job, resolve_workers, run_jobs
from mirrorlab.experiments.stages.measurement import mirror_measures_by_run, run_activations
from mirrorlab.files import atomic_write_bytes, atomic_write_json, atomic_write_text, claim_output_dir, csv_text
from mirrorlab.provenance import provenance

SCORES = ("success", "final_distance", "trajectory_error", "path_error")
MIRROR_MEASURES = ("n_mirror_fdr", "aligned_cka_debiased_excess", "decode_perform_to_observe_zscored")
MIN_HELD_OUT = 4


@dataclass(frozen=True)
class ImitateConfig:
    """Every default of the imitation test."""

    episodes: int = 20             # test videos scored per dataset (at most half the runs' held-out set)
    seed: int = 0
    learners: bool = True          # BC, DAgger, BCO, BCO(alpha) (learnt frame-window policies)
    mirror_conditions: tuple[str, ...] = ("shared", "separate", "untrained")  # runs imitated by synthesis
    policy_epochs: int = 20        # epochs of a frame-window policy's first fit
    refit_epochs: int = 10         # ... and of each DAgger / BCO(alpha) refit, which starts from the last policy
    policy_lr: float = 1e-3
    bco_iterations: int = 2        # BCO(alpha): refits on the learner's own rollouts
    dagger_iterations: int = 3
    dagger_episodes: int = 4       # expert-labelled rollouts per DAgger iteration
    plan_iterations: int = 150     # analysis by synthesis: Adam steps of the first plan
    replan_every: int = 25         # ... and of each re-plan every this many steps (0: never)
    replan_iterations: int = 40
    workers: int = 1               # (dataset, seed) jobs scored in parallel
    device: str = "cpu"            # where the cores and the frame policies run ("auto": a GPU if visible)

    def validate(self) -> None:
        for name in ("episodes", "policy_epochs", "refit_epochs", "dagger_episodes", "plan_iterations"):
            if getattr(self, name) < 1:
                raise UserError(f"config: {name} must be >= 1, got {getattr(self, name)}")
        for name in ("dagger_iterations", "bco_iterations", "replan_every", "replan_iterations"):
            if getattr(self, name) < 0:
                raise UserError(f"config: {name} must be >= 0, got {getattr(self, name)}")
        if not (self.policy_lr > 0 and math.isfinite(self.policy_lr)):
            raise UserError(f"config: policy_lr must be a positive number, got {self.policy_lr}")
        check_seed(self.seed, "config: seed")
        resolve_workers(self.workers, "config: workers")
        if self.device not in DEVICES:
            raise UserError(f"config: device must be one of {', '.join(DEVICES)}, got {self.device!r}")


def imitation_env(header):
    """The self arm with no target in its state or in any picture; pixels from its own camera."""
    return header.make_env("self", obs_mode="both", camera=header.perform_camera, observe_target=False,
                           visible_targets="other")


class Task:
    """What every method of one dataset shares: fit and test videos, babbling, the imitation env."""

    def __init__(self, data_path: Path, held_out: list[int], n_test: int):
        from mirrorlab.envs.paired import PairedDataset

        half = len(held_out) // 2
        fit_ids, test_ids = held_out[:half], held_out[half:][:n_test]
        with PairedDataset(data_path) as data:
            self.header = data.header
            refs = {r.episode_id: r for r in data.episodes("demo")}
            self.fit = [data.read_episode(refs[i]) for i in fit_ids]
            self.test = [data.read_episode(refs[i]) for i in test_ids]
            self.babble = [data.read_episode(r) for r in data.episodes("babble")]
        self.env = imitation_env(self.header)
        self.physics = self.env.unwrapped.physics
        self.oracle = {}
        for e in self.test:
            self.oracle[e["episode_id"]] = self.rollout(e, lambda _o, t, a=e["actions"]: a[t])["fingertip_pos"]

    def rollout(self, episode: dict[str, Any], act) -> dict[str, Any]:
        from mirrorlab.envs.episodes import rollout

        return rollout(self.env, episode["seed"], act)

    def score(self, episode: dict[str, Any], result: dict[str, Any]) -> dict[str, float]:
        tips = result["fingertip_pos"]
        demo_path = np.stack([self.physics.to_base_frame("other", p) for p in episode["observe"]["fingertip_pos"]])
        own_path = np.stack([self.physics.to_base_frame("self", p) for p in tips])
        return {"success": float(result["success"]), "final_distance": float(result["distance"][-1]),
                "trajectory_error": float(np.linalg.norm(tips - self.oracle[episode["episode_id"]], axis=-1).mean()),
                "path_error": float(np.linalg.norm(own_path - demo_path, axis=-1).mean()),
                "episode_id": episode["episode_id"]}

    def score_all(self, make_actor) -> list[dict[str, float]]:
        """make_actor(episode) -> act(obs, t); one score dict per test video."""
        return [self.score(e, self.rollout(e, make_actor(e))) for e in self.test]

    def close(self) -> None:
        self.env.close()


def _windows(episodes: list[dict[str, Any]], side: str) -> np.ndarray:
    from mirrorlab.agents.imitation import episode_windows

    frames = np.stack([e[side]["frames"] for e in episodes])
    return episode_windows(frames).reshape(-1, 3, 3, *frames.shape[2:4])


def _flat(episodes: list[dict[str, Any]], key) -> np.ndarray:
    return np.concatenate([key(e) for e in episodes])


def imitate_dataset(data_path: str, runs: list[str], analysis: str, config: ImitateConfig, seeds: list[int]
                    ) -> list[dict[str, Any]]:
    """Every method on the test videos of one dataset; one row per (method, seed, video): a runner job."""
    import torch
    from threadpoolctl import threadpool_limits

    from mirrorlab.agents.imitation import CoreTracker, SynthesisActor, TrackingActor, dagger, fit_frame_policy

    # Small CNNs: extra threads only spin against each other (and against parallel jobs).
    torch.set_num_threads(1)
    threadpool_limits(limits=1)
    device = resolve_device(config.device, "config: device")
    loaded = [read_run(r) for r in runs]
    held = loaded[0].test_episode_ids
    task = Task(Path(data_path), held, config.episodes)
    A = task.header.action_dim
    base = {"appearance": task.header.other_appearance, "data": data_path}
    rows: list[dict[str, Any]] = []

    def add(method: str, seed: int, scores: list[dict[str, float]], **extra: Any) -> None:
        rows.extend({**base, "method": method, "seed": seed, **extra, **s} for s in scores)

    def fit(windows, actions, policy, iteration, seed):
        epochs = config.policy_epochs if policy is None else config.refit_epochs
        return fit_frame_policy(windows, actions, epochs=epochs, lr=config.policy_lr, seed=seed * 100 + iteration,
                                policy=policy, device=device)

    oracle_scores = task.score_all(lambda e: (lambda _o, t, a=e["actions"]: a[t]))
    expert_action = make_expert(task)

    goal_scores = task.score_all(lambda e: expert_action)
    for seed in seeds:
        add("oracle", seed, oracle_scores)
        add("goal_given", seed, goal_scores)
        rng = np.random.default_rng([config.seed, seed, 1])
        add("random", seed, task.score_all(lambda e: (lambda _o, _t: rng.uniform(-1, 1, A))))
    for run in loaded:
        acts = run_activations(Path(analysis), run)
        inferred = dict(zip(acts.episode_ids.tolist(), acts.inferred))
        extra = {"run": str(run.dir), "condition": condition_label(run)}
        seed, cond = run.config.seed, extra["condition"]
        add(f"inverse_{cond}", seed, task.score_all(lambda e: (lambda _o, t, a=inferred[e["episode_id"]]: a[t])),
            **extra)
        model = run.load_core(device)
        window = tuple(run.config.observe_window)
        add(f"closed_{cond}", seed, task.score_all(lambda e: CoreTracker(model, window, e["observe"]["frames"])),
            **extra)
        if run.config.condition in config.mirror_conditions and run.config.inverse_data == "other":
            add(f"mirror_{cond}", seed, task.score_all(
                lambda e: SynthesisActor(model, e["observe"]["frames"], A, config.plan_iterations, config.replan_every,
                                         config.replan_iterations, seed=seed)), **extra)
        if not (config.learners and run.config.condition == "shared" and run.config.inverse_data == "other"):
            continue
        # BC on videos the labeller never trained on (the fit half of the held-out videos).
        labels = _flat(task.fit, lambda e: inferred[e["episode_id"]])
        fit_windows = _windows(task.fit, "observe")
        bc = fit(fit_windows, labels, None, 0, seed)
        add("bc", seed, task.score_all(lambda e: TrackingActor(bc.act, e["observe"]["frames"])), **extra)

        def expert_rollout(policy, episode_index):
            episode = task.fit[episode_index % len(task.fit)]
            seen: list[np.ndarray] = []
            labelled: list[np.ndarray] = []
            tracker = TrackingActor(policy.act, episode["observe"]["frames"], record=seen)

            def act(obs, t):
                labelled.append(np.asarray(expert_action(obs, t), np.float32))
                return tracker(obs, t)

            task.rollout(episode, act)
            return np.stack(seen), np.stack(labelled)

        schedule = [[i * config.dagger_episodes + j for j in range(config.dagger_episodes)]
                    for i in range(config.dagger_iterations)]
        improved, queries = dagger(bc, fit_windows, labels, expert_rollout, schedule,
                                   lambda w, a, p, i: fit(w, a, p, i, seed))
        add("dagger", seed, task.score_all(lambda e: TrackingActor(improved.act, e["observe"]["frames"])),
            expert_queries=queries, **extra)
    if config.learners and task.babble:
        babble_windows = _windows(task.babble, "perform")
        babble_actions = _flat(task.babble, lambda e: e["actions"])
        for seed in seeds:
            idm = fit(babble_windows, babble_actions, None, 0, seed)
            add("bco", seed, task.score_all(lambda e: TrackingActor(idm.act, e["observe"]["frames"])))
            windows, actions = [babble_windows], [babble_actions]
            for i in range(config.bco_iterations):  # BCO(alpha): its own rollouts on the fit videos, refit
                for e in task.fit:
                    seen: list[np.ndarray] = []
                    result = task.rollout(e, TrackingActor(idm.act, e["observe"]["frames"], record=seen))
                    windows.append(np.stack(seen))
                    actions.append(result["actions"])
                idm = fit(np.concatenate(windows), np.concatenate(actions), idm, i + 1, seed)
            add("bco_alpha", seed, task.score_all(lambda e: TrackingActor(idm.act, e["observe"]["frames"])))
    task.close()
    return rows


def condition_label(run: Run) -> str:
    """The run's condition as its methods are named: the run name's condition (`shared`,
    `shared_selfvideo`, ...), plus `+babble` when its inverse head also learnt from the self arm's babbling
    and `@w<weight>` for a weight other than 1, so runs that learnt differently are scored apart rather
    than pooled (the untrained core has no loss, so neither mark)."""
    label = run.name.split("__")[0]
    if run.config.condition == "untrained":
        return label
    if run.config.inverse_babble:
        label += "+babble"
    if run.config.inverse_weight != 1.0:
        label += f"@w{run.config.inverse_weight:g}"
    return label


def make_expert(task: Task):
    """The demonstrator acting for the self arm with the target it cannot see: the scripted controller reads
    the imitation env's physics; an SB3 policy gets the self arm's full state vector, target included."""
    from mirrorlab.agents.demonstrator import SCRIPTED, load_policy
    from mirrorlab.agents.scripted import ScriptedReacher

    if task.header.demonstrator == SCRIPTED:
        scripted = ScriptedReacher(task.env)
        return lambda _obs, _t: scripted.action()
    probe = task.header.make_env("self")  # the state layout the policy was trained on
    try:
        policy = load_policy(task.header.demonstrator, probe)
    finally:
        probe.close()
    u = task.env.unwrapped
    return lambda _obs, _t: policy.predict(u.state_vector(observe_target=True))[0]


def check_runs(runs: list[Path], analysis: Path) -> dict[str, list[Run]]:
    """Runs by dataset, checked before any work: analyzed, one held-out split per dataset, enough videos."""
    if not runs:
        raise UserError("--run: name at least one run folder")
    by_data: dict[str, list[Run]] = {}
    for path in runs:
        run = read_run(path)
        run_activations(analysis, run)  # every run must have been analyzed
        by_data.setdefault(str(run.data_path), []).append(run)
    for data_path, group in by_data.items():
        if len({tuple(r.test_episode_ids) for r in group}) != 1:
            raise UserError(f"runs on {data_path} disagree on the held-out episodes; train them with one test_fraction")
        if len(group[0].test_episode_ids) < MIN_HELD_OUT:
            raise UserError(f"runs on {data_path}: {len(group[0].test_episode_ids)} held-out episodes, imitation needs "
                            f"at least {MIN_HELD_OUT} (half to fit the learners, half to score)")
    return by_data


def imitate(runs: list[Path], out: Path, config: ImitateConfig, analysis: Path, force: bool = False,
            show_progress: bool = True, ray_address: str | None = None) -> dict[str, Any]:
    """Every dataset of the runs scored (in parallel over datasets and seeds), then summarised and reported."""
    from tqdm import tqdm

    config.validate()
    by_data = check_runs(runs, analysis)
    mirror = mirror_measures_by_run(analysis, MIRROR_MEASURES)
    claim_output_dir(out, "imitate", force=force)
    started = time.perf_counter()
    results: dict[str, list[dict[str, Any]]] = {}
    # One job per (dataset, seed): a seed's runs share nothing with another seed's, and a dataset with many
    # runs would otherwise keep one worker busy while the others idle.
    jobs = [Job(f"{d}#seed{seed}", imitate_dataset,
                (d, [str(r.dir) for r in group if r.config.seed == seed], str(analysis), config, [seed]),
                cost=sum(r.config.seed == seed for r in group))
            for d, group in by_data.items() for seed in sorted({r.config.seed for r in group})]
    with tqdm(total=len(jobs), desc="imitate", unit="job", disable=not show_progress) as bar:
        run_jobs(jobs, lambda job, rows: (results.__setitem__(job.key, rows), bar.update(1)),
                 workers=resolve_workers(config.workers), ray_address=ray_address)
    rows = [row for job in jobs for row in results[job.key]]  # in submission order: rows do not depend on timing
    metrics = provenance(config)
    metrics["imitation"] = metrics.pop("config")
    metrics["runs"] = [str(r) for r in runs]
    metrics["summary"] = summarise_imitation(rows)
    metrics["targets"] = targets(metrics["summary"])
    metrics["mirror_vs_imitation"] = correlate_with_mirroring(rows, mirror)
    metrics["mirror_vs_inverse"] = mirror_method_vs_inverse(rows)
    metrics["wall_time_s"] = time.perf_counter() - started
    atomic_write_text(out / "imitation.csv", _rows_csv(rows))
    atomic_write_json(out / "metrics.json", metrics)
    atomic_write_bytes(out / "figures" / "success_by_method.png", _figure(metrics["summary"]))
    atomic_write_text(out / "report.md", imitation_report(metrics))
    return {"metrics": metrics, "report": out / "report.md", "rows": rows}


def summarise_imitation(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{appearance: {method: {score: mean_ci95 over seeds of the per-seed mean over test videos, ...}}}.

    The same test videos are reused by every seed, so (seed, video) rows are not independent: each seed's
    videos are averaged first, and the interval is over seeds."""
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
            entry["per_seed_success"] = {str(s): v["success"] for s, v in per_seed.items()}
            summary[appearance][method] = entry
    return summary


# The from-video methods the targets are about (BCO is what they must beat; DAgger asks an expert).
FROM_VIDEO = ("inverse_", "closed_", "mirror_")


def targets(summary: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The issue's targets, measured: the best from-video method against the oracle and BCO per appearance,
    and DAgger's share of BC's gap to the oracle."""
    out = {}
    for appearance, methods in summary.items():
        oracle = methods.get("oracle", {}).get("success", {}).get("mean", float("nan"))
        candidates = {m: e["success"]["mean"] for m, e in methods.items() if m.startswith(FROM_VIDEO) or m == "bc"}
        best = max(candidates, key=candidates.get) if candidates else None
        entry: dict[str, Any] = {"oracle_success": oracle}
        if best is not None:
            entry.update(best_from_video=best, best_success=candidates[best],
                         best_of_oracle=candidates[best] / oracle if oracle else float("nan"),
                         beats_bco=candidates[best] > max(methods.get(b, {}).get("success", {}).get("mean", -1)
                                                          for b in ("bco", "bco_alpha")))
        if "bc" in methods and "dagger" in methods:
            bc, dg = methods["bc"]["success"]["mean"], methods["dagger"]["success"]["mean"]
            gap = oracle - bc
            entry.update(dagger_closes=(dg - bc) / gap if gap > 0 else float("nan"),
                         dagger_queries=methods["dagger"].get("expert_queries"))
        out[appearance] = entry
    return out


def correlate_with_mirroring(rows: list[dict[str, Any]], mirror: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """Across runs: Pearson r (95% CI, Fisher z) between each run's mean success (inverse head, open and
    closed loop) and each of its mirror measures, over all runs and over trained runs only (training
    itself improves both, so the untrained runs alone can make a correlation)."""
    from scipy import stats

    out = []
    for prefix in ("inverse_", "closed_"):
        per_run: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            if row["method"].startswith(prefix) and row.get("run") in mirror:
                per_run.setdefault(row["run"], []).append(row)
        subsets = {"all runs": sorted(per_run),
                   "trained runs": sorted(r for r in per_run if per_run[r][0]["condition"] != "untrained")}
        for subset, runs in subsets.items():
            for s in ("success", "trajectory_error"):
                y = np.array([np.mean([r[s] for r in per_run[run]]) for run in runs])
                for m in MIRROR_MEASURES:
                    x = np.array([mirror[run].get(m, np.nan) for run in runs])
                    ok = np.isfinite(x) & np.isfinite(y)
                    entry = {"method": prefix.rstrip("_"), "runs": subset, "score": s, "mirror_measure": m,
                             "n_runs": int(ok.sum())}
                    if ok.sum() >= 4 and np.std(x[ok]) > 0 and np.std(y[ok]) > 0:
                        res = stats.pearsonr(x[ok], y[ok])
                        ci = res.confidence_interval(0.95)
                        entry.update(r=float(res.statistic), ci95=[float(ci.low), float(ci.high)],
                                     p=float(res.pvalue))
                    out.append(entry)
    return out


def mirror_method_vs_inverse(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The mirror system's imitation against the same core's inverse head (open loop), paired by run."""
    by = {}
    for row in rows:
        if row.get("run"):
            by.setdefault((row["appearance"], row["condition"], row["run"], row["method"].split("_")[0]), []).append(row)
    out = []
    for appearance, condition in sorted({(k[0], k[1]) for k in by}):
        pairs = [(np.mean([r["success"] for r in by[(a, c, run, "mirror")]]),
                  np.mean([r["success"] for r in by[(a, c, run, "inverse")]]))
                 for (a, c, run, m) in by if (a, c, m) == (appearance, condition, "mirror")
                 and (a, c, run, "inverse") in by]
        if pairs:
            out.append({"appearance": appearance, "condition": condition, "n_runs": len(pairs),
                        "mirror_minus_inverse_success": mean_ci95([m - i for m, i in pairs])})
    return out


def _rows_csv(rows: list[dict[str, Any]]) -> str:
    return csv_text(rows, ["appearance", "method", "condition", "seed", "run", "episode_id", *SCORES,
                           "expert_queries", "data"])


def _figure(summary: dict[str, dict[str, Any]]) -> bytes:
    from mirrorlab.analysis.figures import imitation_success

    return imitation_success({a: {m: e["success"] for m, e in methods.items()} for a, methods in summary.items()})


INPUTS = {"oracle": "the true actions", "random": "nothing", "inverse": "the video", "closed": "own camera + video",
          "mirror": "the video", "bco": "own camera + video", "bco_alpha": "own camera + video (+ own rollouts)",
          "bc": "own camera + video", "dagger": "own camera + video; expert labels", "goal_given": "the target"}


def _inputs(method: str) -> str:
    return INPUTS.get(method, INPUTS.get(method.split("_")[0], ""))


def imitation_report(metrics: dict[str, Any]) -> str:
    from mirrorlab.analysis.replication_report import fmt_stat

    lines = ["# Imitation from video: the task only in the video", "",
             "The self arm starts where the other did, but nothing it sees holds the target: no target in its state",
             "and none drawn in its camera. The target is only in the other arm's video. Scored on held-out test",
             "videos (never trained on, and not used to fit BC, BCO(alpha) or DAgger). Mean [95% CI over seeds] of",
             "each seed's mean over the test videos. `success`: within the radius of the self arm's own target (the",
             "demonstrated target, so goal-level also when bodies differ); `trajectory_error`: from where the",
             "demonstrator's actions take the self arm; `path_error`: from the demonstrator's own fingertip path",
             "(both in their arm's base frame). `goal_given` is a reference that sees the target, not imitation.", ""]
    for appearance, methods in metrics["summary"].items():
        lines += [f"## other_appearance = {appearance}", "",
                  "| method | sees | success | final distance (m) | trajectory error (m) | path error (m) | expert "
                  "queries | seeds x videos |", "|---|---|---|---|---|---|---|---|"]
        for method, e in methods.items():
            lines.append(f"| {method} | {_inputs(method)} | {fmt_stat(e['success'], True)} | "
                         f"{fmt_stat(e['final_distance'])} | {fmt_stat(e['trajectory_error'])} | "
                         f"{fmt_stat(e['path_error'])} | {e.get('expert_queries', '')} | {e['n_seeds']} x "
                         f"{e['n_episodes']} |")
        t = metrics["targets"].get(appearance, {})
        if "best_from_video" in t:
            lines += ["", f"Best from-video method: `{t['best_from_video']}`, {t['best_success']:.0%} success = "
                          f"{t['best_of_oracle']:.0%} of the oracle's ({t['oracle_success']:.0%}); "
                          f"{'beats' if t['beats_bco'] else 'does not beat'} BCO."]
        if "dagger_closes" in t:
            lines.append(f"DAgger closes {t['dagger_closes']:.0%} of BC's gap to the oracle with "
                         f"{t['dagger_queries']:.0f} expert queries.")
        lines.append("")
    lines += ["![success by method and appearance](figures/success_by_method.png)", ""]
    if metrics.get("mirror_vs_inverse"):
        lines += ["## Does the mirror system help? Imitation by synthesis minus the same core's inverse head", "",
                  "| appearance | condition | runs | success difference |", "|---|---|---|---|"]
        for c in metrics["mirror_vs_inverse"]:
            lines.append(f"| {c['appearance']} | {c['condition']} | {c['n_runs']} | "
                         f"{fmt_stat(c['mirror_minus_inverse_success'], True)} |")
        lines.append("")
    if metrics.get("mirror_vs_imitation"):
        lines += ["## Does imitation track the mirror measures? (across runs)", "",
                  "| method | runs | imitation score | mirror measure | n | Pearson r [95% CI] |", "|---|---|---|---|---|---|"]
        for c in metrics["mirror_vs_imitation"]:
            r = f"{c['r']:.2f} [{c['ci95'][0]:.2f}, {c['ci95'][1]:.2f}]" if "r" in c else "n/a (too few runs or no spread)"
            lines.append(f"| {c['method']} | {c['runs']} | {c['score']} | {c['mirror_measure']} | {c['n_runs']} | {r} |")
        lines.append("")
    return "\n".join(lines)
