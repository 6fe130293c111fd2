"""The selectivity dose-response: mirror units and what a core can do, against the weight of a training term
that rewards (weight > 0) or penalises (< 0) each unit's perform-observe correlation (pure).

Rows in (one per (weight, seed): the measures of one trained core), tables, verdicts and text out. A core
is trained per weight on the same data from the same initialisation as the weight-0 core of its seed, so
each weight is compared with weight 0 paired by seed (`analysis.variants.compare_variant`).

The question the dose-response answers (Leavitt & Morcos 2021 asked it of class selectivity): do fewer
mirror units make watching or imitation worse, and do more make them better? For each side (the most
negative weight: fewer; the most positive: more) and each outcome:
- *not testable* when the term did not move the mirror-unit count that way (its paired interval does not
  exclude zero on that side);
- *supported* when the outcome moves the same way (worse with fewer, better with more: its paired interval
  excludes zero on that side);
- *contradicted* when it moves the other way;
- *not supported* otherwise (the count moved, the outcome did not).
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
    """Per side ("fewer": the most negative weight, "more": the most positive) and outcome (name, label,
    higher_is_better): the paired comparison with weight 0 of the mirror-unit count and of the outcome, and
    the verdict (module docstring). Sides without a weight, or without weight-0 rows, give nothing."""
    weights = sorted({r["selectivity_weight"] for r in rows})
    control = [r for r in rows if r["selectivity_weight"] == 0]
    if not control:
        return []
    sides = [("fewer", weights[0], -1)] if weights[0] < 0 else []
    sides += [("more", weights[-1], 1)] if weights[-1] > 0 else []
    out = []
    for side, weight, sign in sides:
        variant = [r for r in rows if r["selectivity_weight"] == weight]
        names = (MIRROR, *(name for name, _, _ in outcomes))
        compared = compare_variant(variant, control, names)
        mirror_moved = _moved(compared[MIRROR]["difference"], sign)
        for name, label, higher_is_better in outcomes:
            difference = compared[name]["difference"]
            better = sign if higher_is_better else -sign  # the side an outcome moves if mirror units help it
            if not mirror_moved:
                verdict = "not testable"
            elif _moved(difference, better):
                verdict = "supported"
            elif _moved(difference, -better):
                verdict = "contradicted"
            else:
                verdict = "not supported"
            out.append({"side": side, "weight": weight, "outcome": name, "label": label,
                        "mirror": compared[MIRROR]["difference"], "difference": difference, "verdict": verdict})
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
        lines += ["", "### Verdicts (each extreme weight against weight 0, paired by seed)", "",
                  "*Supported*: the outcome is worse with fewer mirror units (better with more), its paired 95%",
                  "interval excluding 0; *contradicted*: it moves the other way; *not supported*: mirror units moved,",
                  "the outcome did not; *not testable*: the term did not move the mirror-unit count that way.", "",
                  "| question | weight | mirror units, change [95% CI] | outcome | change [95% CI] | seeds | verdict |",
                  "|---|---|---|---|---|---|---|"]
        for v in verdicts:
            lines.append(f"| {QUESTIONS[v['side']]} | {v['weight']:g} | {_fmt(v['mirror'])} | {v['label']} | "
                         f"{_fmt(v['difference'])} | {v['difference']['n']} | **{v['verdict']}** |")
    return "\n".join(lines + [""])
