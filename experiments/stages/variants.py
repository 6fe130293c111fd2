"""Training variants of the study's headline shared cores, measured and imitated beside them (study).

Seed 002's future work (replay at surprise, reward-modulated learning) and the selectivity dose-response
(`experiments/stages/dose.py`) each ask what one training option does to mirror units, watching and
imitation. Each answers it the same way, here: the study's headline shared runs (first view, first
appearance, one per seed) are the controls; for each variant, a core per seed is trained on the same data
from the same initialisation with the same number of updates, only the named `TrainConfig` fields changed;
every core (controls included) is measured as the study measures its runs (`mirrorlab analyze`: mirror
units, inverse R^2 on held-out demonstrations and babbling, forward error and action sensitivity) and
imitates the first `imitation_videos` test videos with the core-based methods of the imitation test, rolled
out on the self arm. The `variants` stage compares each variant with its control seed by seed
(`analysis.variants`: a measure rises or falls when the paired 95% interval excludes zero).

A stage's folder (`OUT/variants/`, `OUT/dose/`) holds `runs/<label>/` (the new cores), `analysis/` (of these
cores alone, so adding a variant leaves the study's own analysis, and the imitation and lesions measured from
it, as they were), `results/` (one imitation result per core, saved as it arrives, kept while newer than its
run and the analysis; all dropped when the branch's settings change, while the cores, which `train_run`
checks against their config, are kept), `metrics.json`, `report.md`, `figures/`.
"""

from __future__ import annotations

import dataclasses
import re
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

# What a variant may not change: the study plans them (condition, seed) or they would change the data or the
# updates rather than the learning (the held-out split, the number of episodes, epochs, batch size).
FIXED = ("condition", "seed", "test_fraction", "train_episodes", "epochs", "batch_size", "threads", "cache_mib",
         "checkpoint_every")


@dataclass(frozen=True)
class MeasuredCores:
    """How every core of a variants stage is imitated (shared by `VariantsConfig` and `DoseConfig`)."""

    imitation_methods: tuple[str, ...] = ("inverse", "closed_loop")  # core methods (planners cost ~10x more)
    imitation_videos: int = 20               # the test videos each core imitates (the imitation stage's split)
    plan_iterations: int = 100               # the planners' Adam steps, if imitation_methods names a planner
    workers: int = 0                         # 0: one per CPU core

    def validate(self) -> None:
        from mirrorlab.agents.imitation_methods import METHODS

        core_rows = [m.name for m in METHODS if m.per_run]
        if not self.imitation_methods or any(m not in core_rows for m in self.imitation_methods):
            raise UserError(f"config: imitation_methods must name some of {', '.join(core_rows)} (the core-based "
                            f"methods), got {list(self.imitation_methods)}")
        for name in ("imitation_videos", "plan_iterations"):
            if getattr(self, name) < 1:
                raise UserError(f"config: {name} must be >= 1, got {getattr(self, name)}")
        resolve_workers(self.workers, "config: workers")


@dataclass(frozen=True)
class VariantsConfig(MeasuredCores):
    """Every default of the `variants` stage: each variant is `key=value[,key=value]` over `TrainConfig`'s
    fields, as in a config file (strings quoted or bare)."""

    variants: tuple[str, ...] = ("replay=surprise", "reward_modulation=self", "reward_modulation=other")

    def validate(self) -> None:
        super().validate()
        if not self.variants or len(set(self.variants)) != len(self.variants):
            raise UserError(f"config: variants must be distinct and at least one, got {list(self.variants)}")
        for text in self.variants:
            apply_variant(TrainConfig(), parse_variant(text))


def parse_variant(text: str) -> dict[str, Any]:
    """`replay=surprise,replay_fraction=0.5` -> {"replay": "surprise", "replay_fraction": 0.5}: each value read
    as TOML reads it (a bare word is a string)."""
    import tomllib

    out = {}
    for part in text.split(","):
        key, sep, value = (s.strip() for s in part.partition("="))
        if not sep or not re.fullmatch(r"[a-z_]+", key) or not value:
            raise UserError(f"config: variants: expected key=value pairs such as replay=surprise, got {text!r}")
        try:
            out[key] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = value
    return out


def apply_variant(config: TrainConfig, changes: dict[str, Any]) -> TrainConfig:
    """The control's config with a variant's fields, type-checked and validated, each error naming the key."""
    from mirrorlab.config import replace_checked

    fixed = [k for k in changes if k in FIXED]
    if fixed:
        raise UserError(f"config: variants: {fixed[0]} is the same for a variant and its control "
                        f"(fixed: {', '.join(FIXED)})")
    changed = replace_checked(config, changes, "config: variants")
    changed.validate("config: variants")
    return changed


def variant_label(changes: dict[str, Any]) -> str:
    """A variant's folder name and row label: `replay=surprise` -> `replay_surprise`."""
    return "__".join(re.sub(r"[^A-Za-z0-9.+-]+", "_", f"{k}_{v}") for k, v in changes.items())


def imitate_core(run_dir: str, methods: tuple[str, ...], n_videos: int, plan_iterations: int) -> dict[str, Any]:
    """A runner job: one core's imitation of its dataset's first `n_videos` test videos, intact (the lesion
    stage's rollouts with no unit silenced): each method's success and final distance, means over the videos."""
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
    out: dict[str, Any] = {"run": run_dir, "seed": run.config.seed, "n_videos": len(probe.videos)}
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


def measure_variants(base_runs: list[Path], control: str, variants: dict[str, dict[str, Any]], data_path: Path,
                     out: Path, command: str, config: MeasuredCores, analyze_settings: AnalyzeConfig,
                     device: str = "cpu", show_progress: bool = False, ray_address: str | None = None
                     ) -> list[dict[str, Any]]:
    """Train every variant of every base run (label -> TrainConfig changes), analyse and imitate all the cores
    (each step resumable) in `out`, claimed for `command`; one row per core, its `variant` the label (`control`
    for the base runs)."""
    from tqdm import tqdm

    from mirrorlab.agents.runs import read_run
    from mirrorlab.agents.training import train_run
    from mirrorlab.experiments.stages.measurement import analysis_is_current, analyze

    if not base_runs:
        raise UserError(f"{command}: the study has no headline shared runs to start from")
    changed = config_changes(out, config)
    claim_output_dir(out, command, resume=True)
    if changed:  # the imitation results were measured otherwise; the cores (checked by train_run) are kept
        shutil.rmtree(out / "results", ignore_errors=True)
    atomic_write_json(out / "config.json", provenance(config))
    workers = resolve_workers(config.workers)
    cores = [(control, read_run(run).config, Path(run)) for run in base_runs]
    cores += [(label, apply_variant(base.config, changes), out / "runs" / label / Path(base.dir).name)
              for base in map(read_run, base_runs) for label, changes in variants.items()]
    jobs = [Job(str(run_dir), train_run, (tc, str(data_path), str(run_dir), False, None, device), cost=tc.epochs)
            for label, tc, run_dir in cores if label != control]
    with tqdm(total=len(jobs), desc=f"{command}: train", unit="run", disable=not show_progress) as bar:
        run_jobs(jobs, lambda _job, _summary: bar.update(1), workers=workers, ray_address=ray_address,
                 done=lambda job: (Path(job.key) / "done.json").is_file(), on_skip=lambda _job: bar.update(1))
    runs = [run for _, _, run in cores]
    analysis = out / "analysis"
    if not analysis_is_current(analysis, runs, analyze_settings):
        analyze(runs, analysis, analyze_settings, force=True, workers=workers, device=device,
                show_progress=show_progress, ray_address=ray_address)
    saved = SavedResults(out, f"{command} result", lambda job: [Path(job.args[0]) / "done.json",
                                                                analysis / "metrics.json"], folder="results")
    jobs = [Job(f"{label}_seed{tc.seed}", imitate_core, (str(run), config.imitation_methods, config.imitation_videos,
                                                         config.plan_iterations)) for label, tc, run in cores]
    with tqdm(total=len(jobs), desc=f"{command}: imitate", unit="core", disable=not show_progress) as bar:
        run_jobs(jobs, lambda job, result: (saved.save(job, result), bar.update(1)), workers=workers,
                 ray_address=ray_address, done=saved.done, on_skip=lambda _job: bar.update(1))
    measured = analysis_rows(analysis)
    return [{**measured[str(read_run(run).dir)], **saved.load(job), "variant": label}
            for (label, _, run), job in zip(cores, jobs)]


MEASURES = ("n_mirror_fdr", "aligned_cka_debiased_excess", "inverse_r2", "inverse_r2_babble", "forward_mse",
            "forward_action_sensitivity")
DIGITS = {"n_mirror_fdr": 1, "forward_mse": 5}


def variants(base_runs: list[Path], data_path: Path, out: Path, config: VariantsConfig,
             analyze_settings: AnalyzeConfig, device: str = "cpu", show_progress: bool = False,
             ray_address: str | None = None) -> dict[str, Any]:
    """The `variants` stage: every variant against its control, paired by seed; metrics.json and report.md."""
    from mirrorlab.analysis.figures import variant_effects
    from mirrorlab.analysis.variants import compare_variant, variant_table

    config.validate()
    started = time.perf_counter()
    changes = {variant_label(c): c for c in map(parse_variant, config.variants)}
    rows = measure_variants(base_runs, "control", changes, data_path, out, "variants", config, analyze_settings,
                            device, show_progress, ray_address)
    imitation = [name for name, _, _ in imitation_measures(config.imitation_methods)]
    measures = (*MEASURES, *imitation)
    control = [r for r in rows if r["variant"] == "control"]
    comparisons = {label: compare_variant([r for r in rows if r["variant"] == label], control, measures)
                   for label in changes}
    wall_s = time.perf_counter() - started
    n_videos = sorted({int(r["n_videos"]) for r in rows})
    lines = ["## Training variants against their control (the study's headline shared cores)", "",
             "Each variant retrains the control's core per seed on the same data from the same initialisation with",
             "the same number of updates, only the named training options changed (README: seed 002's future",
             "work). Measured on held-out episodes; imitation: each core on "
             f"{', '.join(map(str, n_videos))} test videos ({', '.join(config.imitation_methods)}, rolled out on",
             "the self arm). A measure *rises* or *falls* when its paired 95% interval over seeds excludes 0.", "",
             *(f"- `{label}`: {', '.join(f'{k} = {v!r}' for k, v in c.items())}" for label, c in changes.items()), "",
             *variant_table(comparisons, {**DIGITS, **{m: 3 for m in imitation}}), "",
             f"This invocation's wall time: {wall_s:.0f} s for {len(rows)} cores (the study's own and those trained "
             "here; cores, analysis and imitation finished by an earlier invocation are kept, not redone)."]
    shown = [("n_mirror_fdr", "significant mirror units"), ("inverse_r2", "inverse R^2, demonstrations"),
             ("inverse_r2_babble", "inverse R^2, own babbling"), *((n, label) for n, label, _ in
                                                                    imitation_measures(config.imitation_methods))]
    atomic_write_bytes(out / "figures" / "variants.png", variant_effects(comparisons, shown))
    lines += ["", "![Each variant minus its control, paired by seed: mirror units, watching and imitation]"
              "(figures/variants.png)"]
    atomic_write_text(out / "report.md", "\n".join(lines) + "\n")
    metrics = provenance(config)
    metrics["variants"] = metrics.pop("config")
    metrics.update(comparisons=comparisons, wall_time_s=wall_s,
                   cores=[{k: r.get(k, float("nan")) for k in ("run", "seed", "variant", *measures)} for r in rows])
    atomic_write_json(out / "metrics.json", metrics)
    return {"metrics": metrics, "report": out / "report.md"}
