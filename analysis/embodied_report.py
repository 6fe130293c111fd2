"""The embodied study's outputs: units.csv, one section per group of runs (appearance, inverse data,
loss weight), a comparison across groups, figures, in the structure of the replication report, and,
where runs differ in the loss weight, every measure against the loss weight (the loss-weight map)."""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np

from mirrorlab.analysis import figures
from mirrorlab.analysis.intervals import mean_ci95
from mirrorlab.analysis.replication_report import (
    CLAIMS_INTRO,
    UNIT_COLUMNS,
    beyond_identity_table,
    condition_table,
    effect_table,
    fmt_stat,
    verdict_table,
)
from mirrorlab.analysis.sweep_figures import axis_profile_figure

EMBODIED_COLUMNS = [("frac_r_gt_0.75", True), ("frac_abs_r_gt_0.6", True), ("max_r", False), ("min_r", False),
                    ("n_mirror_fdr", False), ("n_mirror_bonferroni", False), ("n_anti_mirror_fdr", False),
                    ("inverse_r2", False), ("inverse_r2_ceiling", False), ("inverse_r2_of_ceiling", False),
                    ("inverse_r2_policy", False), ("inverse_r2_babble", False), ("forward_mse", False),
                    ("forward_action_sensitivity", False), ("decode_perform_to_observe", False),
                    ("decode_observe_to_perform", False), ("decode_chance", False)]

ACROSS_GROUPS = [("n_mirror_fdr", False), ("frac_abs_r_gt_0.6", True), ("aligned_cka_debiased_excess", False),
                 ("decode_perform_to_observe_zscored", False), ("inverse_r2", False), ("inverse_r2_ceiling", False),
                 ("inverse_r2_of_ceiling", False), ("inverse_r2_policy", False), ("inverse_r2_babble", False),
                 ("forward_action_sensitivity", False)]


# The loss-weight map: the measures drawn against the loss weight of the inverse objective.
WEIGHT_MEASURES = [("n_mirror_fdr", "significant mirror units (BH-FDR, r >= 0.4)"),
                   ("frac_abs_r_gt_0.6", "fraction of units with |r| > 0.6"),
                   ("aligned_cka_debiased_excess", "debiased CKA over its null"),
                   ("decode_perform_to_observe_zscored", "cross-mode decoding, perform -> observe (R^2)"),
                   ("inverse_r2", "inverse head R^2, held-out video"),
                   ("inverse_r2_babble", "inverse head R^2, the self arm's babbling"),
                   ("forward_mse", "forward head MSE (pixels)")]
WEIGHT_EFFECTS = [("shared", "untrained", "aligned_cka_debiased_excess"),
                  ("shared", "separate", "aligned_cka_debiased_excess")]


def weight_profiles(cells: dict[tuple[str, str, int], tuple[dict, dict]]) -> tuple[dict[str, bytes], list[str]]:
    """Figures and report lines for every (appearance, inverse data) whose runs span several inverse
    weights: each measure against the weight, one line per condition, 95% intervals over seeds. The
    untrained core never sees the loss, so its one set of runs is drawn at every weight."""
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row, _ in cells.values():
        by_key.setdefault((row["other_appearance"], row["inverse_data"]), []).append(row)
    outputs: dict[str, bytes] = {}
    lines: list[str] = []
    for (appearance, inverse_data), rows in by_key.items():
        weights = sorted({r["inverse_weight"] for r in rows if r["condition"] != "untrained"})
        if len(weights) < 2:
            continue
        conditions = list(dict.fromkeys(r["condition"] for r in rows))
        untrained = {r["seed"]: r for r in rows if r["condition"] == "untrained"}
        table = []
        for w in weights:
            for seed in sorted({r["seed"] for r in rows}):
                at = {r["condition"]: r for r in rows if r["seed"] == seed and r["inverse_weight"] == w}
                if seed in untrained:
                    at["untrained"] = untrained[seed]
                entry: dict[str, Any] = {"inverse_weight": w}
                for cond, row in at.items():
                    entry.update({f"{cond}_{col}": row.get(col) for col, _ in WEIGHT_MEASURES})
                for a, b, col in WEIGHT_EFFECTS:
                    if a in at and b in at:
                        entry[f"{a}_minus_{b}_{col}"] = at[a][col] - at[b][col]
                table.append(entry)
        path = f"figures/against_inverse_weight_{_slug(f'{appearance}_{inverse_data}')}.png"
        effects = [f"{a}_minus_{b}_{col}" for a, b, col in WEIGHT_EFFECTS if a in conditions and b in conditions]
        outputs[path] = axis_profile_figure(table, "inverse_weight", weights, conditions, WEIGHT_MEASURES, effects)
        lines += [f"## The loss-weight map: `{appearance}`, inverse data `{inverse_data}`", "",
                  "Each measure against `inverse_weight` (loss = forward + weight x inverse); mean [95% interval",
                  "over seeds]. The untrained core has no loss, so its values repeat at every weight.", "",
                  "| inverse_weight | condition | " + " | ".join(col for col, _ in WEIGHT_MEASURES) + " |",
                  "|---|---" + "|---" * len(WEIGHT_MEASURES) + "|"]
        for w in weights:
            for cond in conditions:
                cells_w = [e for e in table if e["inverse_weight"] == w and f"{cond}_inverse_r2" in e]
                stats = [fmt_stat(mean_ci95([e[f"{cond}_{col}"] for e in cells_w]), col.startswith("frac"))
                         for col, _ in WEIGHT_MEASURES]
                lines.append(f"| {w:g} | {cond} | " + " | ".join(stats) + " |")
        lines += ["", f"![every measure against the inverse weight]({path})", ""]
    return outputs, lines


def embodied_units_csv(cells: dict[tuple[str, str, int], tuple[dict, dict]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["group", *UNIT_COLUMNS])
    for (group, cond, seed), (_, arrays) in cells.items():
        for u in range(arrays["r"].size):
            writer.writerow([group, cond, seed, u, *(f"{arrays[c][u]:.6g}" for c in UNIT_COLUMNS[3:])])
    return buf.getvalue()


def _slug(group: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in group).strip("_")


def embodied_outputs(metrics: dict[str, Any], cells: dict[tuple[str, str, int], tuple[dict, dict]]
                     ) -> dict[str, str | bytes]:
    """{relative path: content} of the embodied study's outputs: report.md, units.csv, figures."""
    outputs: dict[str, str | bytes] = {"units.csv": embodied_units_csv(cells)}
    lines = report_intro(metrics) + across_groups_table(metrics["groups"])
    for g, entry in metrics["groups"].items():
        group_figures = group_figures_of(g, entry["conditions"], cells)
        outputs.update(group_figures)
        lines += group_section(g, entry, list(group_figures))
    weight_figures, weight_lines = weight_profiles(cells)
    outputs.update(weight_figures)
    outputs["report.md"] = "\n".join(lines + weight_lines)
    return outputs


def report_intro(metrics: dict[str, Any]) -> list[str]:
    """What perform and observe are, what each inverse-head column means, and where the numbers come from."""
    return [
        "# Embodied study: mirror measures on held-out paired episodes",
        "",
        "Perform: the core driven by an episode's actions (self arm). Observe: the core watching the other arm",
        "execute the same actions (CNN-encoded video). Aligned by (episode, timestep); every measure as in the",
        "toy replication, with continuous actions (decoding is ridge R^2 across modes, chance from re-paired",
        "sequences; congruence compares preferred action directions). Means and 95% intervals over seeds.",
        "",
        "`inverse_r2`: the inverse head's R^2 on the held-out video. `inverse_r2_ceiling`: the best R^2 an",
        "inverse model on the watched arm's true joint state over the same frames reaches (the information",
        "the episode holds); `inverse_r2_of_ceiling` their ratio. `inverse_r2_policy`: R^2 from the state",
        "*before* each action alone (angles, velocities, target): a demonstrator's actions are largely",
        "predictable from it, so an inverse R^2 at or below it could come from knowing the policy rather",
        "than reading the movement. `inverse_r2_babble`: the inverse head on the self arm's own motor babbling",
        "(random actions, never an input of the inverse head's training): no policy to recognise there, so",
        "this R^2 comes only from reading the movement (in another body's view than the one it learnt from).",
        "`forward_action_sensitivity`: the forward head's pixel error when each held-out episode is performed",
        "from its own start with another held-out episode's actions, over its error with the true actions (1:",
        "the prediction ignores the actions; a forward model that knows where the arm starts should be well above).",
        f"Git commit {metrics.get('git_commit')}; analysis wall time {metrics['wall_time_s']:.0f} s.",
        "",
    ]


def across_groups_table(groups: dict[str, Any]) -> list[str]:
    """The shared core of every group side by side, one row per group."""
    lines = ["## Across groups (shared core)", "",
             "| group | " + " | ".join(c for c, _ in ACROSS_GROUPS) + " |",
             "|---" * (len(ACROSS_GROUPS) + 1) + "|"]
    for g, entry in groups.items():
        shared = entry["conditions"].get("shared")
        if shared:
            lines.append(f"| {g} | " + " | ".join(fmt_stat(shared["summary"][c], pct) for c, pct in ACROSS_GROUPS)
                         + " |")
    return lines + [""]


def group_figures_of(g: str, conds: dict[str, Any], cells: dict[tuple[str, str, int], tuple[dict, dict]]
                     ) -> dict[str, bytes]:
    """A group's emergence figure (its first seed, the shared core's units) and ablation figure (seeds pooled)."""
    slug, conditions = _slug(g), list(conds)
    seeds = sorted({k[2] for k in cells if k[0] == g})
    main_cond = "shared" if "shared" in conds else conditions[0]
    example = cells[(g, main_cond, seeds[0])][1]
    r_seed0 = {c: cells[(g, c, seeds[0])][1]["r"] for c in conditions if (g, c, seeds[0]) in cells}
    pooled = {c: np.concatenate([cells[(g, c, s)][1]["r"] for s in seeds if (g, c, s) in cells]) for c in conditions}
    per_seed = {c: conds[c]["per_seed"] for c in conditions}
    return {f"figures/{slug}_emergence.png": figures.figure_emergence(r_seed0, example, pooled, seeds[0]),
            f"figures/{slug}_ablations.png": figures.figure_ablations(pooled, per_seed)}


def group_section(g: str, entry: dict[str, Any], fig_paths: list[str]) -> list[str]:
    """One group's tables (conditions, verdicts, beyond identity, effect of training) and its figures."""
    conds = entry["conditions"]
    return [
        f"## Group `{g}`",
        "",
        *condition_table(conds, EMBODIED_COLUMNS),
        "",
        "### Does the claim hold?",
        "",
        *CLAIMS_INTRO,
        "",
        *verdict_table(entry["claims"]),
        "",
        "### Beyond identity pairing",
        "",
        *beyond_identity_table(conds),
        "",
        "### Effect of training (minus the untrained core of the same seed)",
        "",
        *effect_table(conds),
        "",
        *[f"![{p.split('/')[-1][:-4]}]({p})" for p in fig_paths],
        "",
    ]
