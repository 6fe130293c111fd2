"""The embodied study's outputs: units.csv, one section per group of runs (appearance, inverse data,
loss weight), a comparison across groups, and figures, in the structure of the replication report."""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np

from mirrorlab.analysis import figures
from mirrorlab.analysis.replication_report import (
    CLAIMS_INTRO,
    UNIT_COLUMNS,
    beyond_identity_table,
    condition_table,
    effect_table,
    fmt_stat,
    verdict_table,
)

EMBODIED_COLUMNS = [("frac_r_gt_0.75", True), ("frac_abs_r_gt_0.6", True), ("max_r", False), ("min_r", False),
                    ("n_mirror_fdr", False), ("n_mirror_bonferroni", False), ("n_anti_mirror_fdr", False),
                    ("inverse_r2", False), ("inverse_r2_ceiling", False), ("inverse_r2_of_ceiling", False),
                    ("inverse_r2_policy", False), ("forward_mse", False), ("decode_perform_to_observe", False),
                    ("decode_observe_to_perform", False), ("decode_chance", False)]

ACROSS_GROUPS = [("n_mirror_fdr", False), ("frac_abs_r_gt_0.6", True), ("aligned_cka_debiased_excess", False),
                 ("decode_perform_to_observe_zscored", False), ("inverse_r2", False), ("inverse_r2_ceiling", False),
                 ("inverse_r2_of_ceiling", False), ("inverse_r2_policy", False)]


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
    groups = metrics["groups"]
    lines = [
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
        "than reading the movement.",
        f"Git commit {metrics.get('git_commit')}; analysis wall time {metrics['wall_time_s']:.0f} s.",
        "",
        "## Across groups (shared core)",
        "",
        "| group | " + " | ".join(c for c, _ in ACROSS_GROUPS) + " |",
        "|---" * (len(ACROSS_GROUPS) + 1) + "|",
    ]
    for g, entry in groups.items():
        shared = entry["conditions"].get("shared")
        if shared:
            lines.append(f"| {g} | " + " | ".join(fmt_stat(shared["summary"][c], pct) for c, pct in ACROSS_GROUPS)
                         + " |")
    lines.append("")
    for g, entry in groups.items():
        conds = entry["conditions"]
        slug = _slug(g)
        fig_paths = []
        conditions = list(conds)
        seeds = sorted({k[2] for k in cells if k[0] == g})
        main_cond = "shared" if "shared" in conds else conditions[0]
        example = cells[(g, main_cond, seeds[0])][1]
        r_seed0 = {c: cells[(g, c, seeds[0])][1]["r"] for c in conditions if (g, c, seeds[0]) in cells}
        pooled = {c: np.concatenate([cells[(g, c, s)][1]["r"] for s in seeds if (g, c, s) in cells]) for c in conditions}
        per_seed = {c: conds[c]["per_seed"] for c in conditions}
        fig_paths.append(f"figures/{slug}_emergence.png")
        outputs[fig_paths[-1]] = figures.figure_emergence(r_seed0, example, pooled, seeds[0])
        fig_paths.append(f"figures/{slug}_ablations.png")
        outputs[fig_paths[-1]] = figures.figure_ablations(pooled, per_seed)
        lines += [
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
    outputs["report.md"] = "\n".join(lines)
    return outputs
