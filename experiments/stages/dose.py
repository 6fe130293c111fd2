"""Do fewer mirror units make imitation worse? The selectivity dose-response on the arm (study).

The study's headline shared runs (first view, first appearance, one per seed) are the weight-0 cores. For
each weight of the `dose` branch, a shared core is trained per seed on the same dataset from the same
initialisation and config, with the selectivity term at that weight (`TrainConfig.selectivity_weight`:
weight x minus the mean per-unit perform-observe r of each demo batch). Every core (weight 0 included) is
then measured as the study measures its runs (`mirrorlab analyze`: mirror units, inverse R^2 on held-out
demonstrations and babbling, forward error and action sensitivity) and imitates the first
`imitation_videos` test videos with the core-based methods of the imitation test, rolled out on the self
arm. The verdicts (`analysis.dose`) compare each extreme weight with weight 0, paired by seed.

Everything lands under `OUT/dose/`: `runs/` (the new cores), `analysis/` (the analysis of these cores
alone, so that adding the dose-response leaves the study's own analysis, and the imitation and lesions
measured from it, as they were), `results/` (one imitation result per core, saved as it arrives, kept
while newer than its run and the analysis; all dropped when the branch's settings change, while the cores,
which `train_run` checks against their config, are kept), `metrics.json`, `report.md`, `figures/`.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mirrorlab.agents.runs import TrainConfig
from mirrorlab.errors import UserError
from mirrorlab.experiments.runner import Job, SavedResults, config_changes, resolve_workers, run_jobs
from mirrorlab.experiments.stages.measurement import AnalyzeConfig
from mirrorlab.files import atomic_write_bytes, atomic_write_json, atomic_write_text, claim_output_dir, read_json
from mirrorlab.provenance import provenance


@dataclass(frozen=True)
class DoseConfig:
    """Every default of the arm's dose-response. The weights are sized on medium's data (a pilot, seed 0): at
    +-0.1 the term already moves nearly every unit (0 mirror units and 91 anti-mirror, or 93 mirror units,
    of 96; 19 and 15 without it), so the steps below it show the way there."""

    weights: tuple[float, ...] = (-0.1, -0.01, 0.01, 0.1)  # besides 0 (the study's own shared runs)
    imitation_methods: tuple[str, ...] = ("inverse", "closed_loop")  # core methods (planners cost ~10x more)
    imitation_videos: int = 20               # the test videos each core imitates (the imitation stage's split)
    plan_iterations: int = 100               # the planners' Adam steps, if imitation_methods names a planner
    workers: int = 0                         # 0: one per CPU core

    def validate(self) -> None:
        from mirrorlab.agents.imitation_methods import METHODS

        if not self.weights or any(not math.isfinite(w) or w == 0 for w in self.weights) or \
                len(set(self.weights)) != len(self.weights):
            raise UserError(f"config: weights must be distinct nonzero numbers (0 is the study's own shared runs), "
                            f"got {list(self.weights)}")
        core_rows = [m.name for m in METHODS if m.per_run]
        if not self.imitation_methods or any(m not in core_rows for m in self.imitation_methods):
            raise UserError(f"config: imitation_methods must name some of {', '.join(core_rows)} (the core-based "
                            f"methods), got {list(self.imitation_methods)}")
        for name in ("imitation_videos", "plan_iterations"):
            if getattr(self, name) < 1:
                raise UserError(f"config: {name} must be >= 1, got {getattr(self, name)}")
        resolve_workers(self.workers, "config: workers")


def dose_plan(base_runs: list[Path], out: Path, weights: tuple[float, ...]) -> list[tuple[TrainConfig, Path]]:
    """(train config, run folder) of every new core: each base run's own config with the term's weight."""
    from mirrorlab.agents.runs import read_run

    plan = []
    for base in base_runs:
        config = read_run(base).config
        for w in weights:
            plan.append((dataclasses.replace(config, selectivity_weight=float(w)),
                         out / "runs" / f"w{w:g}" / f"{config.condition}__seed{config.seed}"))
    return plan


def imitate_core(run_dir: str, methods: tuple[str, ...], n_videos: int, plan_iterations: int) -> dict[str, Any]:
    """A runner job: one core's imitation of its dataset's first `n_videos` test videos, intact (the lesion
    stage's rollouts with no unit silenced), {method: {success, final_distance}} as means over the videos."""
    import torch

    from mirrorlab.agents.lesion import imitation_probe
    from mirrorlab.agents.runs import read_run

    torch.set_num_threads(1)
    run = read_run(run_dir)
    model = run.load_core()
    probe = imitation_probe(run, model, methods, 0, n_videos, plan_iterations)
    try:
        scored = probe.score_set(torch.zeros(run.config.hidden_size, dtype=torch.bool), "zero", {}, run.config.seed)
    finally:
        probe.close()
    out: dict[str, Any] = {"run": run_dir, "seed": run.config.seed,
                           "selectivity_weight": run.config.selectivity_weight, "n_videos": len(probe.videos)}
    for (method, measure), value in scored.items():
        out[f"imitation_{measure}_{method}"] = value
    return out


def imitation_measures(methods: tuple[str, ...]) -> list[tuple[str, str, bool]]:
    """(row key, label, higher is better) of each method's imitation success and final distance."""
    from mirrorlab.experiments.stages.lesion import IMITATION_LABELS

    return [(f"imitation_{measure}_{m}", f"imitation {label}: {IMITATION_LABELS.get(m, m)}", measure == "success")
            for m in methods for measure, label in (("success", "success"), ("final_distance", "final distance (m)"))]


def analysis_rows(analysis: Path) -> dict[str, dict[str, Any]]:
    """run folder -> its per-seed row of the analysis (mirror units, R^2, forward error)."""
    metrics = read_json(analysis / "metrics.json", "analysis")
    return {row["run"]: row for group in metrics["groups"].values() for entry in group["conditions"].values()
            for row in entry["per_seed"]}


def dose(base_runs: list[Path], data_path: Path, out: Path, config: DoseConfig, analyze_settings: AnalyzeConfig,
         device: str = "cpu", show_progress: bool = False, ray_address: str | None = None) -> dict[str, Any]:
    """The arm's dose-response (a study stage): train, analyse, imitate (each resumable), then the summary."""
    from tqdm import tqdm

    from mirrorlab.agents.runs import read_run
    from mirrorlab.agents.training import train_run
    from mirrorlab.experiments.stages.measurement import analysis_is_current, analyze

    config.validate()
    if not base_runs:
        raise UserError("dose: the study has no headline shared runs to start the dose-response from")
    changed = config_changes(out, config)
    claim_output_dir(out, "dose", resume=True)
    if changed:  # the imitation results were measured otherwise; the cores (checked by train_run) are kept
        shutil.rmtree(out / "results", ignore_errors=True)
    atomic_write_json(out / "config.json", provenance(config))
    started = time.perf_counter()
    workers = resolve_workers(config.workers)
    plan = dose_plan(base_runs, out, config.weights)
    jobs = [Job(str(run_dir), train_run, (tc, str(data_path), str(run_dir), False, None, device), cost=tc.epochs)
            for tc, run_dir in plan]
    with tqdm(total=len(jobs), desc="dose: train", unit="run", disable=not show_progress) as bar:
        run_jobs(jobs, lambda _job, _summary: bar.update(1), workers=workers, ray_address=ray_address,
                 done=lambda job: (Path(job.key) / "done.json").is_file(), on_skip=lambda _job: bar.update(1))
    cores = [(read_run(run).config.selectivity_weight, run) for run in base_runs]  # weight 0 in the study
    cores += [(tc.selectivity_weight, run_dir) for tc, run_dir in plan]
    runs = [run for _, run in cores]
    analysis = out / "analysis"
    if not analysis_is_current(analysis, runs, analyze_settings):
        analyze(runs, analysis, analyze_settings, force=True, workers=workers, device=device,
                show_progress=show_progress, ray_address=ray_address)
    saved = SavedResults(out, "dose result", lambda job: [Path(job.args[0]) / "done.json", analysis / "metrics.json"],
                         folder="results")
    jobs = [Job(f"w{w:g}_seed{read_run(run).config.seed}", imitate_core,
                (str(run), config.imitation_methods, config.imitation_videos, config.plan_iterations))
            for w, run in cores]
    with tqdm(total=len(jobs), desc="dose: imitate", unit="core", disable=not show_progress) as bar:
        run_jobs(jobs, lambda job, result: (saved.save(job, result), bar.update(1)), workers=workers,
                 ray_address=ray_address, done=saved.done, on_skip=lambda _job: bar.update(1))
    measured = analysis_rows(analysis)
    rows = [{**measured[str(read_run(run).dir)], **saved.load(job)} for run, job in zip(runs, jobs)]
    return write_summary(out, config, rows, time.perf_counter() - started)


def write_summary(out: Path, config: DoseConfig, rows: list[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    """metrics.json, report.md and the figure, from one row per core."""
    from mirrorlab.analysis.dose import ARM_MEASURES, MIRROR, dose_report, dose_response, dose_verdicts
    from mirrorlab.analysis.figures import dose_response as dose_figure

    imitation = imitation_measures(config.imitation_methods)
    measures = [*ARM_MEASURES, *((name, label) for name, label, _ in imitation)]
    table = dose_response(rows, measures)
    outcomes = [("inverse_r2", "inverse R^2, demonstrations", True),
                ("inverse_r2_babble", "inverse R^2, own babbling", True), *imitation]
    verdicts = dose_verdicts(rows, outcomes)
    shown = [(MIRROR, "significant mirror units"), ("inverse_r2", "inverse R^2, demonstrations"),
             ("inverse_r2_babble", "inverse R^2, own babbling"), *((n, l) for n, l, _ in imitation)]
    atomic_write_bytes(out / "figures" / "dose_response.png", dose_figure(table, shown))
    n_videos = sorted({int(r["n_videos"]) for r in rows})
    notes = [f"Each core imitates {', '.join(map(str, n_videos))} test videos of its dataset "
             f"({', '.join(config.imitation_methods)}; rolled out on the self arm); success is the share reached."]
    report = dose_report(table, measures, "the arm, shared cores of the study's headline dataset", verdicts, notes)
    atomic_write_text(out / "report.md", report + "\n![The dose-response: mirror units, watching and imitation "
                      "against the selectivity weight](figures/dose_response.png)\n")
    metrics = provenance(config)
    metrics["dose"] = metrics.pop("config")
    keep = ("run", "seed", "selectivity_weight", *(m for m, _ in measures))
    metrics.update(table=table, verdicts=verdicts, wall_time_s=wall_s,
                   cores=[{k: r.get(k, float("nan")) for k in keep} for r in rows])
    atomic_write_json(out / "metrics.json", metrics)
    return {"metrics": metrics, "report": out / "report.md"}

