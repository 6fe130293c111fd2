"""Per-condition summaries of per-seed metric rows: mean and 95% interval, and the paired effect of training."""

from __future__ import annotations

from typing import Any, Iterable

from mirrorlab.analysis.intervals import mean_ci95


def summarise(rows: list[dict[str, Any]], conditions: Iterable[str], seeds: Iterable[int]) -> dict[str, Any]:
    """{condition: {"per_seed": rows in seed order, "summary": {metric: mean_ci95},
    "minus_untrained": {metric: mean_ci95 of the difference from the untrained row of the same seed}}}.

    Numeric metrics are those that are numbers in every row that has them; `seed` is not one.
    """
    by_cond: dict[str, dict[int, dict[str, Any]]] = {}
    for row in rows:
        by_cond.setdefault(row["condition"], {})[row["seed"]] = row
    numeric = sorted({k for row in rows for k, v in row.items()
                      if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "seed"})
    base = by_cond.get("untrained", {})
    out: dict[str, Any] = {}
    for cond in conditions:
        per_seed = [by_cond[cond][s] for s in seeds if s in by_cond.get(cond, {})]
        entry: dict[str, Any] = {
            "per_seed": per_seed,
            "summary": {k: mean_ci95([r[k] for r in per_seed if k in r]) for k in numeric},
        }
        if cond != "untrained" and base:
            paired = [r for r in per_seed if r["seed"] in base]
            entry["minus_untrained"] = {
                k: mean_ci95([r[k] - base[r["seed"]][k] for r in paired if k in r and k in base[r["seed"]]])
                for k in numeric
            }
        out[cond] = entry
    return out
