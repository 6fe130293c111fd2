"""The selectivity dose-response: mirror units and what a core can do, against the weight of a training term
that rewards (weight > 0) or penalises (< 0) each unit's perform-observe correlation (pure).

Rows in (one per (weight, seed): the measures of one trained core), tables, verdicts and text out. A core
is trained per weight on the same data from the same initialisation as the weight-0 core of its seed, so
each weight is compared with weight 0 paired by seed (`analysis.variants.compare_variant`).

The question the dose-response answers (Leavitt & Morcos 2021 asked it of class selectivity): do fewer
mirror units make watching or imitation worse, and do more make them better? For each side (the most
negative weights: fewer; the positive ones: more) and each outcome, over the weights of that sign that moved
the mirror-unit count that way (paired interval excluding zero):
- *not testable* when no weight did;
- *supported* when at every one of them the outcome moves the predicted way (worse with fewer, better with
  more; its paired interval excludes zero), and at no weight of the other sign does it move that same way
  (an outcome that falls whichever way the term pushes the units shows the term's cost, not mirroring's);
- *contradicted* when at every one of them it moves the other way;
- *not supported* otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mirrorlab.analysis.intervals import mean_ci95
from mirrorlab.analysis.variants import compare_variant

MIRROR = "n_mirror_fdr"
# The toy world's measures (the replication's held-out sequences), and the arm's (the analysis's held-out
# episodes; the imitation measures are added per method by the study's dose stage).
TOY_MEASURES = ((MIRROR, "significant mirror units"), ("n_anti_mirror_fdr", "anti-mirror units"),
                ("mean_r", "mean r"), ("inverse_accuracy", "inverse accuracy"), ("forward_mse", "forward MSE"))
ARM_MEASURES = ((MIRROR, "significant mirror units"), ("n_anti_mirror_fdr", "anti-mirror units"),
                ("mean_r", "mean r"), ("inverse_r2", "inverse R^2, demonstrations"),
                ("inverse_r2_babble", "inverse R^2, own babbling"), ("forward_mse", "forward error (pixel MSE)"),
                ("forward_action_sensitivity", "forward action sensitivity"))


def dose_response(rows: list[dict[str, Any]], measures=TOY_MEASURES) -> list[dict[str, Any]]:
    """rows: one per (selectivity_weight, seed) -> one per weight, each measure as mean_ci95 over seeds."""
    weights = sorted({r["selectivity_weight"] for r in rows})
    return [{"selectivity_weight": w, "n_seeds": sum(r["selectivity_weight"] == w for r in rows),
             **{m: mean_ci95([r[m] for r in rows if r["selectivity_weight"] == w]) for m, _ in measures}}
            for w in weights]


def dose_verdicts(rows: list[dict[str, Any]], outcomes: list[tuple[str, str, bool]]) -> list[dict[str, Any]]:
    """Per side ("fewer": the negative weights, "more": the positive ones) and outcome (name, label,
    higher_is_better): each weight's paired comparison with weight 0, of the mirror-unit count and of the
    outcome, and the side's verdict (module docstring). Without weight-0 rows there is nothing to compare."""
    weights = sorted({r["selectivity_weight"] for r in rows} - {0})
    control = [r for r in rows if r["selectivity_weight"] == 0]
    if not control:
        return []
    names = (MIRROR, *(name for name, _, _ in outcomes))
    compared = {w: compare_variant([r for r in rows if r["selectivity_weight"] == w], control, names)
                for w in weights}
    out = []
    for side, sign in (("fewer", -1), ("more", 1)):
        own = [w for w in weights if np.sign(w) == sign]
        if not own:
            continue
        moved = [w for w in own if _moved(compared[w][MIRROR]["difference"], sign)]
        others = [w for w in weights if np.sign(w) == -sign]
        for name, label, higher_is_better in outcomes:
            better = sign if higher_is_better else -sign  # the side an outcome moves if mirror units help it
            helped = [w for w in moved if _moved(compared[w][name]["difference"], better)]
            hurt = [w for w in moved if _moved(compared[w][name]["difference"], -better)]
            # moved the predicted way at a weight of the other sign too: the term's own effect, not mirroring
            both = [w for w in others if _moved(compared[w][name]["difference"], better)]
            if not moved:
                verdict, why = "not testable", "the term did not move the mirror-unit count this way"
            elif len(helped) == len(moved) and not both:
                verdict, why = "supported", "at every such weight"
            elif len(helped) == len(moved):
                verdict, why = "not supported", (f"it moves the same way at weight {both[0]:g} too, where mirror "
                                                 "units move the other way: the term's own cost")
            elif len(hurt) == len(moved):
                verdict, why = "contradicted", "at every such weight"
            else:
                verdict, why = "not supported", (f"moved as predicted at {len(helped)} of {len(moved)} weights "
                                                 "that moved mirror units")
            out.append({"side": side, "outcome": name, "label": label, "verdict": verdict, "why": why,
                        "by_weight": [{"weight": w, "mirror": compared[w][MIRROR]["difference"],
                                       "difference": compared[w][name]["difference"]} for w in own]})
    return out


def _moved(difference: dict[str, Any], sign: int) -> bool:
    """Whether a paired difference's 95% interval lies wholly on the side `sign` of zero."""
    lo, hi = difference["ci95"]
    return bool(np.isfinite(lo) and (lo > 0 if sign > 0 else hi < 0))


def _fmt(stat: dict[str, Any]) -> str:
    mean, (lo, hi) = stat["mean"], stat["ci95"]
    if not np.isfinite(mean):
        return "n/a"
    return f"{mean:.3g}" if not np.isfinite(lo) else f"{mean:.3g} [{lo:.3g}, {hi:.3g}]"


QUESTIONS = {"fewer": "do fewer mirror units make it worse?", "more": "do more mirror units make it better?"}


def dose_report(table: list[dict[str, Any]], measures=TOY_MEASURES, setting: str = "toy world, shared core",
                verdicts: list[dict[str, Any]] = (), notes: list[str] = ()) -> str:
    """The dose-response section: every measure against the selectivity term's weight, then the verdicts."""
    if not table:
        return ""
    lines = [f"## Selectivity dose-response ({setting})", "",
             "Trained with an extra term, weight x (minus the mean per-unit perform-observe r of each batch):",
             "weight > 0 rewards mirror-like units, < 0 penalises them, 0 is the protocol without the term.",
             "Measured on held-out data; mean [95% CI] over seeds. If mirror units carried watching or",
             "imitation, fewer of them (negative weights) would come with worse scores.", *notes, "",
             "| weight | seeds | " + " | ".join(label for _, label in measures) + " |",
             "|---|---|" + "---|" * len(measures)]
    for row in table:
        lines.append(f"| {row['selectivity_weight']:g} | {row['n_seeds']} | "
                     + " | ".join(_fmt(row[m]) for m, _ in measures) + " |")
    if verdicts:
        lines += ["", "### Verdicts (each weight against weight 0, paired by seed)", "",
                  "*Supported*: at every weight of that sign that moved the mirror-unit count (paired 95% interval",
                  "excluding 0), the outcome is worse with fewer mirror units (better with more), its interval",
                  "excluding 0, and it does not move the same way at a weight of the other sign (that would be the",
                  "term's own cost, whichever way it pushes the units); *contradicted*: it moves the other way at every",
                  "such weight; *not testable*: no weight of that sign moved the count that way.", "",
                  "| question | outcome | per weight: mirror units -> outcome, change [95% CI] | seeds | verdict |",
                  "|---|---|---|---|---|"]
        for v in verdicts:
            per = "; ".join(f"{b['weight']:g}: {_fmt(b['mirror'])} -> {_fmt(b['difference'])}" for b in v["by_weight"])
            lines.append(f"| {QUESTIONS[v['side']]} | {v['label']} | {per} | {v['by_weight'][0]['difference']['n']} | "
                         f"**{v['verdict']}** ({v['why']}) |")
    return "\n".join(lines + [""])
