"""Seed 003's spillover test on analyzed runs (spillover, study): value learnt on "me", applied to "the other".

Per run, from the activations `mirrorlab analyze` recorded: a linear value head is fitted by SGD to the
self arm's shaped reward from the latent of the core watching its *own* arm (training demo episodes
and babbling); spillover is that head's value while the core watches the *other* arm reach, on the
held-out episodes (analysis.spillover). Then feedback: training continues on self examples mixed 1:1
with observe-mode examples of the other labelled 0 (its success is worth nothing to self), and
spillover is recorded after every `every` updates; the decay is summarised by its half-life.
Runs are grouped by appearance and condition; seeds give the intervals.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mirrorlab.agents.runs import read_run
from mirrorlab.analysis.intervals import mean_ci95
from mirrorlab.errors import UserError
from mirrorlab.experiments.stages.measurement import mirror_measures_by_run, run_activations
from mirrorlab.files import atomic_write_bytes, atomic_write_json, atomic_write_text, claim_output_dir, csv_text
from mirrorlab.provenance import provenance

MIN_HELD_OUT = 5
MIRROR_MEASURES = ("n_mirror_fdr", "aligned_cka_debiased_excess", "decode_perform_to_observe_zscored")


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
    """The spillover of one run's recorded activations: measures at the start and the feedback curve."""
    from mirrorlab.analysis.spillover import init_head, measure_spillover, sgd, shaped_reward, transience

    rng = np.random.default_rng([seed, 3])
    train, test = acts.split(held_out=False), acts.split(held_out=True)
    reward = lambda d: shaped_reward(d[:, 1:], config.reward_scale)  # noqa: E731 (step t: the state after a_t)
    self_z = np.concatenate([train["self_observe"], acts.babble_self_observe]).astype(np.float64)
    self_r = np.concatenate([reward(train["perform_distance"]), reward(acts.babble_distance)])
    head = sgd(init_head(self_z), self_z.reshape(-1, self_z.shape[-1]), self_r.ravel(), config.fit_updates, rng,
               lr=config.lr)
    other_test = (test["observe"].astype(np.float64), reward(test["observe_distance"]))
    self_test = (test["self_observe"].astype(np.float64), reward(test["perform_distance"]))
    at_start = measure_spillover(head, *other_test, *self_test, rng, config.n_permutations)
    curve = transience(head, (self_z, self_r), train["observe"].astype(np.float64), other_test, self_test, rng,
                       config.feedback_updates, config.every, lr=config.lr)
    return {"r": at_start.r, "p": at_start.p, "null_mean": at_start.null_mean, "relative": at_start.relative,
            "value_at_other_success": at_start.value_at_success,
            "value_at_own_success": at_start.self_value_at_success,
            "curve_updates": curve["updates"].tolist(), "curve_relative": curve["relative"].tolist(),
            "curve_r": curve["r"].tolist()}


def check_runs(runs: list[Path], analysis: Path) -> list[tuple[Any, Any]]:
    """(run, activations) of every run, checked before any work: analyzed, enough held-out episodes, and
    one dataset per appearance."""
    if not runs:
        raise UserError("--runs: name at least one run folder")
    loaded, datasets = [], {}
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
        loaded.append((run, acts))
    return loaded


def spillover(runs: list[Path], analysis: Path, out: Path, config: SpilloverConfig, force: bool = False
              ) -> dict[str, Any]:
    from mirrorlab.analysis.spillover import half_life

    config.validate()
    loaded = check_runs(runs, analysis)
    mirror = mirror_measures_by_run(analysis, MIRROR_MEASURES)
    claim_output_dir(out, "spillover", force=force)
    started = time.perf_counter()
    rows = []
    for run, acts in loaded:
        result = spill_run(acts, run.config.seed, config)
        result["half_life"] = half_life(np.array(result["curve_updates"]), np.array(result["curve_relative"]))
        rows.append({"run": str(run.dir), "appearance": run.watched, "condition": run.label,
                     "seed": run.config.seed, **result, **mirror.get(str(run.dir), {})})
    metrics = provenance(config)
    metrics["spillover"] = metrics.pop("config")
    metrics["runs"] = rows
    metrics["groups"] = summarise(rows)
    metrics["comparisons"] = compare(rows)
    metrics["mirror_vs_spillover"] = correlate(rows)
    metrics["wall_time_s"] = time.perf_counter() - started
    atomic_write_json(out / "metrics.json", metrics)
    atomic_write_text(out / "spillover.csv", _csv(rows))
    atomic_write_bytes(out / "figures" / "spillover_vs_feedback.png", _figure(rows))
    atomic_write_text(out / "report.md", report(metrics, config))
    return {"metrics": metrics, "report": out / "report.md"}


SUMMARY = ("relative", "r", "half_life")


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """{appearance: {condition: {measure: mean_ci95 over seeds}}} (a half-life of inf counts as missing)."""
    out: dict[str, Any] = {}
    for row in rows:
        out.setdefault(row["appearance"], {}).setdefault(row["condition"], []).append(row)
    return {a: {c: {**{m: mean_ci95([r[m] for r in group if np.isfinite(r[m])]) for m in SUMMARY},
                    "never_halved": sum(1 for r in group if r["half_life"] == float("inf")), "n_seeds": len(group)}
                for c, group in conds.items()} for a, conds in out.items()}


def compare(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Shared core minus the untrained and the separate cores of the same seed and appearance."""
    by = {(r["appearance"], r["condition"], r["seed"]): r for r in rows}
    out = []
    for appearance in sorted({r["appearance"] for r in rows}):
        for other in ("untrained", "separate"):
            pairs = [(by[(appearance, "shared", s)], by[(appearance, other, s)]) for (a, c, s) in by
                     if a == appearance and c == "shared" and (appearance, other, s) in by]
            if pairs:
                out.append({"appearance": appearance, "comparison": f"shared minus {other}", "n_seeds": len(pairs),
                            **{m: mean_ci95([a[m] - b[m] for a, b in pairs]) for m in ("relative", "r")}})
    return out


def correlate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Across runs: Pearson r (95% CI) of spillover (relative) with each mirror measure."""
    from scipy import stats

    out = []
    for m in MIRROR_MEASURES:
        pairs = [(r[m], r["relative"]) for r in rows if m in r and np.isfinite(r[m]) and np.isfinite(r["relative"])]
        entry: dict[str, Any] = {"mirror_measure": m, "n_runs": len(pairs)}
        if len(pairs) >= 4 and np.std([p[0] for p in pairs]) > 0 and np.std([p[1] for p in pairs]) > 0:
            res = stats.pearsonr(*zip(*pairs))
            ci = res.confidence_interval(0.95)
            entry.update(r=float(res.statistic), ci95=[float(ci.low), float(ci.high)], p=float(res.pvalue))
        out.append(entry)
    return out


def _csv(rows: list[dict[str, Any]]) -> str:
    return csv_text(rows, ["appearance", "condition", "seed", "relative", "r", "p", "null_mean", "half_life",
                           "value_at_other_success", "value_at_own_success", *MIRROR_MEASURES, "run"])


def _figure(rows: list[dict[str, Any]]) -> bytes:
    from mirrorlab.analysis.figures import spillover_curves

    curves = {}
    for r in rows:
        curves.setdefault((r["appearance"], r["condition"]), []).append((r["curve_updates"], r["curve_relative"]))
    return spillover_curves(curves)


def report(metrics: dict[str, Any], config: SpilloverConfig) -> str:
    from mirrorlab.analysis.replication_report import fmt_stat

    lines = ["# Spillover: does value learnt on me spill over to the other, and only for a while? (seed 003)", "",
             "A linear value head reads the core's latent while it watches its own arm (training episodes and",
             f"babbling) and predicts the self arm's reward exp(-distance / {config.reward_scale} m). *Spillover*",
             "(`relative`) is the value it assigns when the *other* arm is at its target (minus when it is far),",
             "as a fraction of the value at the self arm's own success, on held-out episodes: 1 = the other's",
             "success is worth as much as one's own, 0 = nothing. `r` is the correlation of that value with the",
             "other's reward (p from re-paired reward sequences). Then feedback: self examples mixed 1:1 with",
             "observe-mode examples of the other labelled 0; `half_life` is the number of SGD updates until",
             "`relative` first falls to half. Mean [95% CI over seeds].", ""]
    for appearance, conds in metrics["groups"].items():
        lines += [f"## other_appearance = {appearance}", "",
                  "| condition | spillover (relative) | r with the other's reward | half-life (updates) | never halved | seeds |",
                  "|---|---|---|---|---|---|"]
        for cond, e in conds.items():
            lines.append(f"| {cond} | {fmt_stat(e['relative'])} | {fmt_stat(e['r'])} | {fmt_stat(e['half_life'])} | "
                         f"{e['never_halved']} | {e['n_seeds']} |")
        lines.append("")
    if metrics["comparisons"]:
        lines += ["## Shared core against the untrained and separate cores (paired by seed)", "",
                  "| appearance | comparison | relative | r | seeds |", "|---|---|---|---|---|"]
        for c in metrics["comparisons"]:
            lines.append(f"| {c['appearance']} | {c['comparison']} | {fmt_stat(c['relative'])} | {fmt_stat(c['r'])} | "
                         f"{c['n_seeds']} |")
        lines.append("")
    lines += ["## Does spillover track the mirror measures? (across runs)", "",
              "| mirror measure | runs | Pearson r [95% CI] |", "|---|---|---|"]
    for c in metrics["mirror_vs_spillover"]:
        r = f"{c['r']:.2f} [{c['ci95'][0]:.2f}, {c['ci95'][1]:.2f}]" if "r" in c else "n/a (too few runs)"
        lines.append(f"| {c['mirror_measure']} | {c['n_runs']} | {r} |")
    lines += ["", "![spillover against feedback updates](figures/spillover_vs_feedback.png)", ""]
    return "\n".join(lines)
