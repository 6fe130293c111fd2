"""The value-spillover test on analyzed runs (spillover, study): value learnt on "me", applied to "the other".

Per run, from the activations `mirrorlab analyze` recorded: a linear value head is fitted by SGD to the
self arm's shaped reward from the latent of the core watching its *own* arm (training demo episodes
and babbling); spillover is that head's value while the core watches the *other* arm reach, on the
held-out episodes (analysis.spillover). Then feedback: training continues on self examples mixed 1:1
with observe-mode examples of the other labelled 0 (its success is worth nothing to self), and
spillover is recorded after every `every` updates; the decay is summarised by its half-life.
Runs are grouped by appearance and label (`agents.runs.run_label`: condition and how the core was trained),
so runs that differ in loss weight or grounding are never pooled; seeds give the intervals. This stage
only orchestrates: the statistics, the figure and the report are `analysis.spillover`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mirrorlab.agents.runs import Run, read_run, run_label
from mirrorlab.analysis import spillover as stats
from mirrorlab.analysis.across_runs import MIRROR_MEASURES
from mirrorlab.errors import UserError
from mirrorlab.experiments.stages.measurement import mirror_measures_by_run, run_activations
from mirrorlab.files import atomic_write_bytes, atomic_write_json, atomic_write_text, claim_output_dir, csv_text
from mirrorlab.provenance import provenance

MIN_HELD_OUT = 5


@dataclass(frozen=True)
class SpilloverConfig:
    """Every default of the spillover test."""

    reward_scale: float = 0.05       # r = exp(-distance / scale), metres
    fit_updates: int = 3000          # SGD steps of the value head on self examples
    feedback_updates: int = 6000     # SGD steps with feedback that the other's success is worth nothing
    every: int = 300                 # spillover recorded after every `every` feedback updates
    lr: float = 1.0                  # normalised-LMS step (stable in (0, 2)): see analysis.spillover.sgd
    n_permutations: int = 500        # the sequence-level null of r

    def validate(self) -> None:
        if not (self.reward_scale > 0 and math.isfinite(self.reward_scale)):
            raise UserError(f"config: reward_scale must be a positive number, got {self.reward_scale}")
        for name in ("fit_updates", "feedback_updates", "every", "n_permutations"):
            if getattr(self, name) < 1:
                raise UserError(f"config: {name} must be >= 1, got {getattr(self, name)}")
        if not (0 < self.lr < 2):
            raise UserError(f"config: lr must be in (0, 2) (a normalised step), got {self.lr}")


def spill_run(acts, seed: int, config: SpilloverConfig) -> dict[str, Any]:
    """The spillover of one run's recorded activations: its latents and shaped rewards handed to
    `analysis.spillover.spill` (measures at the start, the feedback curve, the half-life)."""
    rng = np.random.default_rng([seed, 3])
    train, test = acts.split(held_out=False), acts.split(held_out=True)
    reward = lambda d: stats.shaped_reward(d[:, 1:], config.reward_scale)  # noqa: E731 (step t: the state after a_t)
    self_z = np.concatenate([train["self_observe"], acts.babble_self_observe]).astype(np.float64)
    self_r = np.concatenate([reward(train["perform_distance"]), reward(acts.babble_distance)])
    other_test = (test["observe"].astype(np.float64), reward(test["observe_distance"]))
    self_test = (test["self_observe"].astype(np.float64), reward(test["perform_distance"]))
    return stats.spill((self_z, self_r), train["observe"].astype(np.float64), other_test, self_test, rng,
                       config.fit_updates, config.feedback_updates, config.every, lr=config.lr,
                       n_permutations=config.n_permutations)


def check_runs(runs: list[Path], analysis: Path) -> list[tuple[Any, Any]]:
    """(run, activations) of every run, checked before any work: analyzed, enough held-out episodes, one
    dataset per appearance, and one run per (appearance, label, seed), which would otherwise be pooled."""
    if not runs:
        raise UserError("--runs: name at least one run folder")
    loaded, datasets, seen = [], {}, {}
    for path in runs:
        run = read_run(path)
        acts = run_activations(analysis, run)
        held = int(acts.held_out.sum())
        if held < MIN_HELD_OUT:
            raise UserError(f"run {run.dir}: {held} held-out episodes, spillover needs at least {MIN_HELD_OUT}")
        if len(acts.episode_ids) - held < 2:
            raise UserError(f"run {run.dir}: fewer than 2 training episodes to fit a value head on")
        first = datasets.setdefault(run.watched, (run.data_fingerprint, run.dir))
        if first[0] != run.data_fingerprint:
            raise UserError(f"--runs: {run.dir} and {first[1]} show the other arm as {run.watched} but come "
                            "from different datasets; give one dataset per appearance")
        twin = seen.setdefault((run.watched, run.label, run.config.seed), run.dir)
        if twin != run.dir:
            raise UserError(f"--runs: {run.dir} and {twin} are both {run.label}, seed {run.config.seed}, on "
                            f"{run.watched}; give each once")
        loaded.append((run, acts))
    return loaded


def counterparts(run: Run) -> dict[str, str]:
    """{condition: the label this run would have under it}: the cores a shared one is compared with are
    those trained the same way (the untrained core has no training, so its label carries none)."""
    return {c: run_label(dataclasses.replace(run, config=dataclasses.replace(run.config, condition=c)))
            for c in stats.COMPARED_WITH}


def spillover(runs: list[Path], analysis: Path, out: Path, config: SpilloverConfig, force: bool = False
              ) -> dict[str, Any]:
    """Every run's spillover, then the groups, comparisons and correlations written and reported."""
    config.validate()
    loaded = check_runs(runs, analysis)
    mirror = mirror_measures_by_run(analysis, MIRROR_MEASURES)
    claim_output_dir(out, "spillover", force=force)
    started = time.perf_counter()
    rows = [{"run": str(run.dir), "appearance": run.watched, "label": run.label, "condition": run.config.condition,
             "seed": run.config.seed, "counterparts": counterparts(run), **spill_run(acts, run.config.seed, config),
             **mirror.get(str(run.dir), {})} for run, acts in loaded]
    metrics = provenance(config)
    metrics["spillover"] = metrics.pop("config")
    metrics["runs"] = rows
    metrics["groups"] = stats.summarise(rows)
    metrics["comparisons"] = stats.compare(rows)
    metrics["mirror_vs_spillover"] = stats.correlate(rows)
    metrics["wall_time_s"] = time.perf_counter() - started
    atomic_write_json(out / "metrics.json", metrics)
    atomic_write_text(out / "spillover.csv", csv_text(rows, list(stats.CSV_COLUMNS)))
    atomic_write_bytes(out / "figures" / "spillover_vs_feedback.png", stats.figure(rows))
    atomic_write_text(out / "report.md", stats.report(metrics, config.reward_scale))
    return {"metrics": metrics, "report": out / "report.md"}
