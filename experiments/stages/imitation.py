"""Imitation from video, the task only in the video (imitate, study): every method on every test video.

Having watched the other arm reach, can the learner do the same, and does its mirror system help? The
task, the videos and the declared goals are `agents.imitation_task`; the methods, one record each, are
`agents.imitation_methods`; the statistics are `analysis.imitation`. This stage only orchestrates: one
runner job per (dataset, seed) rolls out every method for that seed (nothing is computed once and copied
to other seeds), then the rows are summarised, written and reported. Each job's rows are saved as it
finishes (`jobs/`), so a killed command or study resumes where it stopped (at `medium`, the stage is
an hour).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from mirrorlab.agents.imitation_methods import METHOD_RECORDS, METHODS, Context, Core, ImitateConfig, Method
from mirrorlab.agents.imitation_task import imitation_env  # noqa: F401  (the imitation env, re-exported for tests)
from mirrorlab.agents.overimitation import detour_pairs, overimitation_rows
from mirrorlab.agents.runs import Run, read_run, resolve_device
from mirrorlab.analysis.across_runs import MIRROR_MEASURES, correlate_across_runs
from mirrorlab.errors import UserError
from mirrorlab.experiments.runner import Job, SavedResults, check_resumed_config, resolve_workers, run_jobs
from mirrorlab.experiments.stages.measurement import mirror_measures_by_run, run_activations
from mirrorlab.files import atomic_write_bytes, atomic_write_json, atomic_write_text, claim_output_dir, csv_text
from mirrorlab.provenance import provenance

MIN_HELD_OUT = 4
__all__ = ["ImitateConfig", "imitate", "imitate_dataset"]


def _skip(method: Method, config: ImitateConfig, task, run: Run | None = None) -> bool:
    if method.learner and (not config.learners or not task.fit or (method.name.startswith("bco") and not task.babble)):
        return True
    if method.name == "goal_given_specular":
        return "mirrored" not in task.test
    return method.planner and run is not None and run.config.condition not in config.mirror_conditions


def _score(method: Method, ctx: Context, oracle_tips: dict, base: dict[str, Any], pairs: list = (),
           overimitated: list | None = None) -> list[dict[str, Any]]:
    """Every test video of the task imitated by one method (built once for this seed and core); with detour
    `pairs` (`overimitation`), the method's imitations of them go to `overimitated`."""
    task = ctx.task
    make, extra = method.build(ctx)
    rows = []
    for appearance, videos in task.test.items():
        for video in videos:
            options = method.options(video)
            if options is not None:
                options = task.reset_options(**options)
            result = task.rollout(video, make(video), options=options)
            rows.append({**base, "appearance": appearance, "method": method.name, "seed": ctx.seed,
                         **task.score(video, result, oracle_tips[(appearance, video.episode_id)]), **extra})
    if pairs:
        overimitated += overimitation_rows(method, ctx, pairs, base, make)
    return rows


def imitate_dataset(data_path: str, runs: list[str], config: ImitateConfig, seed: int) -> dict[str, list]:
    """Every method on the test videos of one dataset for one seed (a runner job): rows of scores, the
    activation-patching rows of the cores that plan, and (`overimitation`) every method on detour pairs."""
    import torch
    from threadpoolctl import threadpool_limits

    from mirrorlab.agents.imitation_task import ImitationTask, Replay
    from mirrorlab.agents.patching import patch_rows

    # Small CNNs: extra threads only spin against each other (and against parallel jobs).
    torch.set_num_threads(1)
    threadpool_limits(limits=1)
    device = resolve_device(config.device, "config: device")
    loaded = [read_run(r) for r in runs]
    task = ImitationTask(Path(data_path), loaded[0].train_episode_ids, loaded[0].test_episode_ids, config.episodes,
                         config.appearances)
    try:
        oracle_tips = {(a, v.episode_id): task.rollout(v, Replay(v.actions))["fingertip_pos"]
                       for a, videos in task.test.items() for v in videos}
        ctx = Context(task, config, seed, device, make_expert(task))
        base = {"view": task.header.observe_camera, "trained_on": task.appearance, "data": data_path}
        rows: list[dict[str, Any]] = []
        patches: list[dict[str, Any]] = []
        pairs, overimitated = (detour_pairs(task) if config.overimitation else []), []
        for method in METHODS:
            if not method.per_run and not _skip(method, config, task):
                rows += _score(method, ctx, oracle_tips, base, pairs, overimitated)
        for run in loaded:
            ctx.core = Core(run.load_core(device), run.label, run.config.condition,
                            tuple(run.config.observe_window))
            for method in METHODS:
                if method.per_run and not _skip(method, config, task, run):
                    rows += _score(method, ctx, oracle_tips, {**base, "core": ctx.core.label, "run": str(run.dir)},
                                   pairs, overimitated)
            if config.patching and run.config.condition in config.mirror_conditions:
                patches += [{**base, "appearance": task.appearance, "core": ctx.core.label, "run": str(run.dir),
                             "seed": seed, **p} for p in patch_rows(ctx)]
        return {"rows": rows, "patching": patches, "overimitation": overimitated}
    finally:
        task.close()


def make_expert(task):
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
    """Runs by dataset, checked before any work: analyzed, one split per dataset, enough held-out videos."""
    if not runs:
        raise UserError("--run: name at least one run folder")
    by_data: dict[str, list[Run]] = {}
    for path in runs:
        run = read_run(path)
        run_activations(analysis, run)  # every run must have been analyzed
        by_data.setdefault(str(run.data_path), []).append(run)
    for data_path, group in by_data.items():
        if len({(tuple(r.train_episode_ids), tuple(r.test_episode_ids)) for r in group}) != 1:
            raise UserError(f"runs on {data_path} disagree on the held-out episodes; train them with one test_fraction")
        if len(group[0].test_episode_ids) < MIN_HELD_OUT:
            raise UserError(f"runs on {data_path}: {len(group[0].test_episode_ids)} held-out episodes, imitation needs "
                            f"at least {MIN_HELD_OUT} (half to fit the learners, half to score)")
    return by_data


def imitate(runs: list[Path], out: Path, config: ImitateConfig, analysis: Path, force: bool = False,
            show_progress: bool = True, ray_address: str | None = None) -> dict[str, Any]:
    """Every dataset of the runs scored (in parallel over datasets and seeds), then summarised and reported."""
    from tqdm import tqdm

    from mirrorlab.analysis import imitation as stats
    from mirrorlab.analysis import overimitation

    config.validate()
    resolve_workers(config.workers, "config: workers")
    by_data = check_runs(runs, analysis)
    mirror = mirror_measures_by_run(analysis, MIRROR_MEASURES)
    if not force:
        check_resumed_config(out, config, "imitate")
    claim_output_dir(out, "imitate", resume=not force, force=force)
    atomic_write_json(out / "config.json", provenance(config))
    started = time.perf_counter()
    jobs = [Job(f"{d}#seed{seed}", imitate_dataset,
                (d, [str(r.dir) for r in group if r.config.seed == seed], config, seed),
                cost=sum(r.config.seed == seed for r in group))
            for d, group in by_data.items() for seed in sorted({r.config.seed for r in group})]
    saved = saved_results(out, analysis)
    with tqdm(total=len(jobs), desc="imitate", unit="job", disable=not show_progress) as bar:
        run_jobs(jobs, lambda job, result: (saved.save(job, {"runs": job.args[1], **result}), bar.update(1)),
                 workers=resolve_workers(config.workers), ray_address=ray_address,
                 done=lambda job: saved.done(job) and saved.load(job).get("runs") == job.args[1],
                 on_skip=lambda _: bar.update(1))
    results = {job.key: saved.load(job) for job in jobs}
    # In submission order: rows do not depend on timing.
    rows = [row for job in jobs for row in results[job.key]["rows"]]
    patches = [row for job in jobs for row in results[job.key]["patching"]]
    detours = [row for job in jobs for row in results[job.key]["overimitation"]]
    metrics = provenance(config)
    metrics["imitation"] = metrics.pop("config")
    metrics["runs"] = [str(r) for r in runs]
    metrics["methods"] = METHOD_RECORDS
    metrics["summary"] = stats.summarise(rows, config.bootstrap, config.seed)
    metrics["targets"] = stats.targets(metrics["summary"], METHOD_RECORDS, stats.settings(rows))
    metrics["mirror_vs_imitation"] = correlate_with_mirroring(rows, mirror)
    metrics["patching"] = stats.patching_summary(patches, config.bootstrap, config.seed)
    if detours:
        metrics["overimitation"] = overimitation.summarise(detours, config.bootstrap, config.seed)
        metrics["mirror_vs_overimitation"] = correlate_with_mirroring(detours, mirror, "overimitation")
    metrics["wall_time_s"] = time.perf_counter() - started
    atomic_write_text(out / "imitation.csv", csv_text(rows, ["view", "trained_on", "appearance", "method", "core",
                                                             "seed", "run", "episode_id", *stats.SCORES,
                                                             "expert_queries", "expert_driven_steps",
                                                             "learner_driven_steps", "data"]))
    atomic_write_json(out / "metrics.json", metrics)
    atomic_write_bytes(out / "figures" / "success_by_method.png", _figure(metrics["summary"]))
    if patches:
        atomic_write_text(out / "patching.csv", csv_text(patches, list(patches[0])))
    report = stats.report(metrics["summary"], metrics["targets"], METHOD_RECORDS, metrics["mirror_vs_imitation"],
                          metrics["patching"])
    if detours:
        atomic_write_text(out / "overimitation.csv", csv_text(detours, ["view", "trained_on", "appearance", "method",
                                                                        "core", "seed", "run", "episode_id",
                                                                        *overimitation.SCORES, "data"]))
        report += "\n" + overimitation.report(metrics["overimitation"], METHOD_RECORDS) + "\n" + "\n".join(
            stats.correlation_section(metrics["mirror_vs_overimitation"],
                                      "Does overimitation track the mirror measures? (across runs)"))
    atomic_write_text(out / "report.md", report)
    return {"metrics": metrics, "report": out / "report.md", "rows": rows, "patching": patches}


def saved_results(out: Path, analysis: Path) -> SavedResults:
    """One job's rows per (dataset, seed) under `jobs/`, stale once one of its runs or the analysis is newer."""
    metrics = analysis / "metrics.json" if analysis.is_dir() else analysis
    return SavedResults(out, "imitation result", lambda job: [*(Path(r) / "done.json" for r in job.args[1]), metrics],
                        folder="jobs")


def correlate_with_mirroring(rows: list[dict[str, Any]], mirror: dict[str, dict[str, float]], score: str = "success"
                             ) -> list[dict[str, Any]]:
    """Across trained runs, each core method's mean `score` (success; a detour's overimitation) on its dataset's
    own videos against each mirror measure (training itself improves both, so untrained cores are left out)."""
    out = []
    for method in sorted({r["method"] for r in rows if r.get("run")}):
        per_run: dict[str, list[float]] = {}
        for r in rows:
            if r["method"] == method and r.get("run") and r["appearance"] == r["trained_on"] and \
                    not r["core"].startswith("untrained"):
                per_run.setdefault(r["run"], []).append(r[score])
        means = {run: float(np.mean(v)) for run, v in per_run.items()}
        for measure in MIRROR_MEASURES:
            out.append({"method": method, "runs": "trained runs", **correlate_across_runs(means, mirror, measure)})
    return out


def _figure(summary: dict[str, dict[str, Any]]) -> bytes:
    from mirrorlab.analysis.figures import imitation_success

    return imitation_success({setting: {label: {"mean": e["success"]["mean"],
                                                "ci95": [e["success"]["low"], e["success"]["high"]]}
                                        for label, e in table.items()} for setting, table in summary.items()})
