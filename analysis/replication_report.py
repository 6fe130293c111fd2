"""The replication's outputs: units.csv, figures 1-4 and report.md (the paper's claims vs what was measured),
returned as {relative path: text or PNG bytes} for the caller to write."""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np

from mirrorlab.analysis import figures

# Every number the paper states, with the metric that measures it. (lo, hi) is the paper's range.
PAPER_CLAIMS = [
    ("units with r > 0.75", "shared", "frac_r_gt_0.75", (0.25, 0.30), "25-30% (28% at seed 42)"),
    ("units with |r| > 0.6", "shared", "frac_abs_r_gt_0.6", (0.35, 0.40), "35-40% (38% at seed 42)"),
    ("largest r", "shared", "max_r", (0.912, 0.912), "0.912"),
    ("strongest anti-mirror r", "shared", "min_r", (-0.791, -0.791), "-0.791 (unit 74)"),
    ("separate cores: units with |r| > 0.6", "separate", "frac_abs_r_gt_0.6", (0.0, 0.05), "near zero"),
    ("shuffled labels: units with |r| > 0.6", "shuffled_labels", "frac_abs_r_gt_0.6", (0.0, 0.05), "eliminated"),
]

_NA = {"mean": float("nan"), "ci95": [float("nan"), float("nan")]}

UNIT_COLUMNS = ["condition", "seed", "unit", "r", "p", "p_greater", "p_less", "q_fdr", "p_bonferroni", "r_time_locked_removed",
                "peak_lag", "peak_lag_r", "peak_lag_p"]


def fmt_stat(stat: dict[str, Any], pct: bool = False) -> str:
    scale, unit = (100.0, "%") if pct else (1.0, "")
    mean, (lo, hi) = stat["mean"], stat["ci95"]
    if not np.isfinite(mean):
        return "n/a"
    if not np.isfinite(lo):
        return f"{mean * scale:.3g}{unit}"
    return f"{mean * scale:.3g}{unit} [{lo * scale:.3g}, {hi * scale:.3g}]"


def _verdict(stat: dict[str, Any], lo: float, hi: float) -> str:
    """Reproduced when the 95% interval over seeds overlaps the paper's range (a point: contains it)."""
    mean, (clo, chi) = stat["mean"], stat["ci95"]
    if not np.isfinite(clo):
        clo = chi = mean
    if chi < lo:
        return "**not reproduced** (lower)"
    if clo > hi:
        return "**not reproduced** (higher)"
    return "consistent"


def units_csv(cells: dict[tuple[str, int], tuple[dict, dict]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(UNIT_COLUMNS)
    for (cond, seed), (_, arrays) in cells.items():
        for u in range(arrays["r"].size):
            writer.writerow([cond, seed, u, *(f"{arrays[c][u]:.6g}" for c in UNIT_COLUMNS[3:])])
    return buf.getvalue()


def paper_claims_table(conds: dict[str, Any], first_seed: int) -> list[str]:
    lines = ["| the paper says | paper | condition | measured, mean [95% CI over seeds] | seed "
             f"{first_seed} | untrained network, same data | verdict |", "|---|---|---|---|---|---|---|"]
    for label, cond, metric, (lo, hi), paper in PAPER_CLAIMS:
        if cond not in conds:
            continue
        pct = metric.startswith("frac")
        stat = conds[cond]["summary"][metric]
        seed_row = next((r for r in conds[cond]["per_seed"] if r["seed"] == first_seed), None)
        seed_val = "n/a" if seed_row is None else fmt_stat({"mean": seed_row[metric], "ci95": [np.nan, np.nan]}, pct)
        base = fmt_stat(conds["untrained"]["summary"][metric], pct) if "untrained" in conds else "not run"
        cell = label.replace("|", "\\|")  # a bare | in a cell splits the Markdown table row
        lines.append(f"| {cell} | {paper} | {cond} | {fmt_stat(stat, pct)} | {seed_val} | {base} | "
                     f"{_verdict(stat, lo, hi)} |")
    return lines


TOY_COLUMNS = [("frac_r_gt_0.75", True), ("frac_abs_r_gt_0.6", True), ("max_r", False), ("min_r", False),
               ("n_mirror_fdr", False), ("n_mirror_bonferroni", False), ("n_anti_mirror_fdr", False),
               ("inverse_accuracy", True), ("forward_mse", False), ("decode_perform_to_observe", True),
               ("decode_observe_to_perform", True), ("decode_chance", True)]


def condition_table(conds: dict[str, Any], cols: list[tuple[str, bool]] = TOY_COLUMNS) -> list[str]:
    """One row per condition, one column per (metric, shown as percent) with mean [95% CI]."""
    lines = ["| condition | " + " | ".join(c for c, _ in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for cond, entry in conds.items():
        lines.append(f"| {cond} | " + " | ".join(fmt_stat(entry["summary"][c], pct) for c, pct in cols) + " |")
    return lines


def beyond_identity_table(conds: dict[str, Any]) -> list[str]:
    cols = [("aligned_hungarian", False), ("aligned_procrustes", False), ("aligned_cca", False),
            ("aligned_cka", False), ("aligned_cka_debiased", False), ("frac_abs_r_gt_0.6_time_locked_removed", True),
            ("n_mirror_fdr_time_locked_removed", False), ("congruence", True), ("congruence_matched", True),
            ("decode_perform_to_observe_zscored", True), ("frac_peak_lag_zero", True)]
    lines = ["| condition | " + " | ".join(c for c, _ in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for cond, entry in conds.items():
        lines.append(f"| {cond} | " + " | ".join(fmt_stat(entry["summary"][c], pct) for c, pct in cols) + " |")
    null_cols = [("aligned_cka_debiased_null_mean", False), ("aligned_procrustes_null_mean", False),
                 ("congruence_null_mean", True), ("decode_chance_zscored", True)]
    lines += ["", "Their sequence-level nulls (mean over seeds of each null's mean):", "",
              "| condition | " + " | ".join(c for c, _ in null_cols) + " |", "|---" * (len(null_cols) + 1) + "|"]
    for cond, entry in conds.items():
        lines.append(f"| {cond} | " + " | ".join(fmt_stat(entry["summary"][c], pct) for c, pct in null_cols) + " |")
    return lines


CLAIMS_INTRO = [
    "Each row compares two conditions seed by seed (same data, same initialisation). *Supported*: every",
    "metric is higher with an interval above zero; *contradicted*: some metric's interval lies wholly",
    "below zero; otherwise *not supported*. Metrics: `n_mirror_fdr` (the paper's per-unit notion,",
    "significant against the sequence-level null); `aligned_cka_debiased_excess` and",
    "`aligned_procrustes_excess` (alignment-invariant similarity of perform and observe activity, fitted",
    "and scored on disjoint sequences so fair to separate cores, minus the mean of its own sequence-level",
    "null, because the nulls differ between conditions); `decode_perform_to_observe_zscored` (an action",
    "read-out fitted on perform states, tested on observe states, each mode z-scored).",
]


def verdict_table(claims: list[dict[str, Any]]) -> list[str]:
    lines = ["| claim | comparison | metric: difference, mean [95% CI over seeds] | verdict |", "|---|---|---|---|"]
    for c in claims:
        diffs = "; ".join(f"{m}: {fmt_stat(d)}" for m, d in c["differences"].items())
        lines.append(f"| {c['claim']} | {c['condition']} minus {c['compared_with']} | {diffs} | **{c['verdict']}** |")
    return lines


def effect_table(conds: dict[str, Any]) -> list[str]:
    cols = [("frac_abs_r_gt_0.6", True), ("n_mirror_fdr", False), ("aligned_cka_debiased_excess", False),
            ("decode_perform_to_observe_zscored", False)]
    lines = ["| condition minus untrained (paired by seed) | " + " | ".join(c for c, _ in cols) + " |",
             "|---" * (len(cols) + 1) + "|"]
    for cond, entry in conds.items():
        if "minus_untrained" in entry:
            lines.append(f"| {cond} | " + " | ".join(fmt_stat(entry["minus_untrained"][c], pct) for c, pct in cols) + " |")
    return lines


def replication_outputs(config: Any, metrics: dict[str, Any],
                        cells: dict[tuple[str, int], tuple[dict, dict]]) -> dict[str, str | bytes]:
    """{relative path: content} of the replication's outputs: report.md, units.csv, figures 1-4."""
    figs = replication_figures(config, metrics["conditions"], cells)
    lines = [
        "# Replication of the paper's toy experiment",
        "",
        protocol_line(config, metrics),
        "",
        *report_body(config, metrics),
        "## Figures",
        "",
        *[f"![{name.split('/')[-1][:-4]}]({name})" for name in figs],
        "",
        "Files: `metrics.json` (every number, per seed, with the protocol, versions and git commit), "
        "`units.csv` (one row per condition, seed and unit), `cells/` (per-cell arrays).",
        "",
    ]
    return {"units.csv": units_csv(cells), "report.md": "\n".join(lines), **figs}


def replication_figures(config: Any, conds: dict[str, Any], cells: dict[tuple[str, int], tuple[dict, dict]]
                        ) -> dict[str, bytes]:
    """Figures 1-4: emergence (first seed, pooled), the null of the strongest unit, ablations, lags."""
    seed0 = config.seeds[0]
    r_seed0 = {c: cells[(c, seed0)][1]["r"] for c in config.conditions}
    pooled = {c: np.concatenate([cells[(c, s)][1]["r"] for s in config.seeds]) for c in config.conditions}
    per_seed = {c: conds[c]["per_seed"] for c in config.conditions}
    main_cond = "shared" if "shared" in config.conditions else config.conditions[0]
    example = cells[(main_cond, seed0)][1]
    r_main = np.nan_to_num(example["r"])
    top = int(np.argmax(np.abs(r_main)))
    return {
        "figures/fig1_emergence.png": figures.figure_emergence(r_seed0, example, pooled, seed0),
        "figures/fig2_robustness.png": figures.figure_robustness(example["null_example"], float(r_main[top]),
                                                                 f"{main_cond} unit {top}, seed {seed0}", per_seed),
        "figures/fig3_ablations.png": figures.figure_ablations(pooled, per_seed),
        "figures/fig4_temporal.png": figures.figure_temporal(example.get("peak_lag"), example["r"], example,
                                                             config.max_lag),
    }


def protocol_line(config: Any, metrics: dict[str, Any]) -> str:
    """The protocol as run, the significance test and where the numbers come from, in one paragraph."""
    return (
        f"Protocol: K={config.n_actions} actions, effects ~ N(0, I) in R^{config.sensory_dim}, "
        f"s_t = {config.decay} s_(t-1) + effect(a_t) + N(0, {config.noise_sigma}^2 I), T={config.seq_len}, "
        f"{config.n_train} train / {config.n_test} test sequences, GRU hidden {config.hidden_size}, "
        f"Adam {config.lr}, batch {config.batch_size}, {config.epochs} epochs, loss = "
        f"{config.forward_weight} forward + {config.inverse_weight} inverse. Seeds: "
        f"{', '.join(map(str, config.seeds))} (seed {config.seeds[0]} first). Significance: sequence-level null "
        f"with B={config.n_permutations} re-pairings of whole sequences, each tail tested against the null's own "
        f"tail (p = 2 min(p_greater, p_less), corrected over units); mirror unit = BH-FDR (or Bonferroni) "
        f"< {config.alpha} in the upper tail and r >= {config.mirror_min_abs_r} (anti-mirror: lower tail, "
        f"r <= -{config.mirror_min_abs_r}). Wall time {metrics['wall_time_s']:.0f} s. "
        f"Git commit {metrics.get('git_commit')}.")


def report_body(config: Any, metrics: dict[str, Any]) -> list[str]:
    """The paper's claims against the measured values, every condition, the effect of training, the
    verdicts and the measures beyond identity pairing."""
    conds = metrics["conditions"]
    return [
        "## The paper's claims vs what was measured",
        "",
        *paper_claims_table(conds, config.seeds[0]),
        "",
        "A claim is *consistent* when the 95% interval over seeds overlaps the paper's range; the untrained",
        "column is the same network before any training step on the same data, the baseline any",
        "'emergence' has to beat.",
        "",
        "## All conditions (mean [95% CI] over seeds)",
        "",
        *condition_table(conds),
        "",
        f"`inverse_accuracy` is scored on the *true* held-out actions in every condition (chance "
        f"1/{config.n_actions} = {1 / config.n_actions:.1%}); the shuffled-labels core learns from another "
        "sequence's labels (a fresh derangement each epoch), so it should sit at chance.",
        "",
        "## Effect of training: each condition minus the untrained network of the same seed",
        "",
        *effect_table(conds),
        "",
        "## Does the claim hold?",
        "",
        *CLAIMS_INTRO,
        "",
        *verdict_table(metrics.get("claims", [])),
        "",
        "## Beyond identity pairing: aligned similarity, time-locked activity removed, congruence, lags",
        "",
        *beyond_identity_table(conds),
        "",
    ]
