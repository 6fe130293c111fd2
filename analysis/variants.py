"""A training variant against its control, seed by seed: the paper's replay at surprise and reward-modulated
learning are judged so (same data, same initialisation, same number of updates; only the option differs).

Each metric's difference (variant minus control) is taken per seed and summarised by its mean and 95% interval
(analysis.intervals). A metric *rises* or *falls* when the interval excludes zero on that side, else it shows
*no difference*: a verdict per metric, since "better" means higher for mirror units and R^2 but lower for an
error. Rows are the per-seed rows of the analysis (`seed` and the metrics).
"""

from __future__ import annotations

from typing import Any

from mirrorlab.analysis.claims import paired_difference
from mirrorlab.analysis.intervals import mean_ci95


def direction(difference: dict[str, Any]) -> str:
    """`rises`, `falls` or `no difference`, from a paired difference's 95% interval."""
    lo, hi = difference["ci95"]
    if lo > 0:
        return "rises"
    if hi < 0:
        return "falls"
    return "no difference"


def compare_variant(variant: list[dict[str, Any]], control: list[dict[str, Any]], metrics: tuple[str, ...]
                    ) -> dict[str, dict[str, Any]]:
    """metric -> {variant, control: mean_ci95 over seeds; difference: paired by seed; direction}."""
    out = {}
    for metric in metrics:
        difference = paired_difference(variant, control, metric)
        out[metric] = {"variant": mean_ci95([r[metric] for r in variant]),
                       "control": mean_ci95([r[metric] for r in control]),
                       "difference": difference, "direction": direction(difference)}
    return out


def _cell(summary: dict[str, Any], digits: int) -> str:
    lo, hi = summary["ci95"]
    return f"{summary['mean']:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]" if summary["n"] > 1 else \
        f"{summary['mean']:+.{digits}f}"


def variant_table(comparisons: dict[str, dict[str, dict[str, Any]]], digits: dict[str, int]) -> list[str]:
    """Markdown rows, one per (variant, metric): variant and control means, the paired difference with its
    interval, and the direction. `comparisons`: variant name -> compare_variant's result."""
    lines = ["| variant | metric | variant mean | control mean | variant - control (paired) | verdict |",
             "|---|---|---|---|---|---|"]
    for name, result in comparisons.items():
        for metric, entry in result.items():
            d = digits.get(metric, 3)
            lines.append(f"| {name} | {metric} | {entry['variant']['mean']:.{d}f} | {entry['control']['mean']:.{d}f} | "
                         f"{_cell(entry['difference'], d)} (n={entry['difference']['n']}) | {entry['direction']} |")
    return lines
