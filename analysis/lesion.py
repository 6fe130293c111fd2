"""Do mirror units matter? Which units to silence, the matched-random null, and the verdict (pure).

Arrays in, sets, numbers and text out; the lesions themselves run in agents/lesion.py.

- **Unit sets** (for each k in `K_VALUES` that the run has): the k significant mirror units with the
  largest r (upper tail, as `analysis.mirror_stats.MirrorTest.counts` defines them), the k most negative
  significant anti-mirror units, the k units with the largest inverse read-out weight norm (a positive
  control: what the inverse head reads must matter for watching), and >= 100 random sets of k
  non-mirror units matched to the mirror set on the unit's activity variance and read-out weight norms
  (the null, as Morcos et al. 2018 compare selective units with random ones, here also matched so that
  "loud" or "read" units are not mistaken for mirror units).
- **Effect** of a lesion: the damage to an outcome (a drop in R^2 or accuracy, a rise in error), so a
  larger effect is always more harm. Against the null: z = (effect - null mean) / null sd, the null's
  95th percentile, and the difference effect - null mean, paired by seed.
- **Verdict** ("mirror units are necessary for watching / doing"): supported when the mirror-set lesion
  exceeds the null's 95th percentile in >= 4 of 5 seeds (a fraction `MIN_EXCEED_FRACTION` of >= 5 seeds)
  and the paired interval over seeds of effect - null mean lies above zero; with fewer than 5 seeds it is
  not tested, and the numbers are still shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from mirrorlab.analysis.intervals import mean_ci95

K_VALUES = (2, 4, 8, 16, 32)
SET_KINDS = ("mirror", "anti_mirror", "readout", "matched_random")
MIN_NULL_SETS = 100
MIN_SEEDS = 5
MIN_EXCEED_FRACTION = 0.8   # 4 of 5 seeds


def mirror_units(r, p_greater, p_less, q_fdr, alpha: float, min_abs_r: float) -> np.ndarray:
    """Significant mirror units (upper tail, r >= min_abs_r), the largest r first: from the analysis's
    per-unit columns alone, so a command can size its work before it loads any core."""
    r = np.nan_to_num(np.asarray(r, float), nan=0.0)
    units = np.flatnonzero((np.asarray(q_fdr, float) < alpha) & (r >= min_abs_r)
                           & (np.asarray(p_greater, float) <= np.asarray(p_less, float)))
    return units[np.argsort(-r[units], kind="stable")]


@dataclass(frozen=True)
class UnitTable:
    """Per-unit results of one run's analysis, each [U], and what the null is matched on."""

    r: np.ndarray
    p_greater: np.ndarray
    p_less: np.ndarray
    q_fdr: np.ndarray
    features: np.ndarray   # [U, F]: activity variance (each mode), read-out weight norms
    readout: np.ndarray    # [U]: the inverse head's weight norm of each unit

    def _significant(self, alpha: float) -> np.ndarray:
        return np.asarray(self.q_fdr) < alpha

    def mirror(self, alpha: float, min_abs_r: float) -> np.ndarray:
        """Significant mirror units (upper tail, r >= min_abs_r), the largest r first."""
        return mirror_units(self.r, self.p_greater, self.p_less, self.q_fdr, alpha, min_abs_r)

    def anti_mirror(self, alpha: float, min_abs_r: float) -> np.ndarray:
        """Significant anti-mirror units (lower tail, r <= -min_abs_r), the most negative r first."""
        r = np.nan_to_num(np.asarray(self.r, float), nan=0.0)
        units = np.flatnonzero(self._significant(alpha) & (r <= -min_abs_r) & (self.p_greater > self.p_less))
        return units[np.argsort(r[units], kind="stable")]


@dataclass(frozen=True)
class UnitSet:
    kind: str          # one of SET_KINDS
    k: int
    units: np.ndarray  # unit indices


def rank_features(features: np.ndarray) -> np.ndarray:
    """Each feature column as ranks in [0, 1]: matching compares units, not raw scales or outliers."""
    features = np.asarray(features, float)
    ranks = np.argsort(np.argsort(features, axis=0, kind="stable"), axis=0, kind="stable")
    return ranks / max(1, len(features) - 1)


def matched_random_sets(target: np.ndarray, candidates: np.ndarray, features: np.ndarray, n_sets: int,
                        rng: np.random.Generator, n_near: int = 5) -> np.ndarray:
    """[n_sets, k] random sets of distinct candidate units, each target unit replaced by one of the
    `n_near` candidates nearest to it in rank-feature space not yet in the set (targets in a random order)."""
    target, candidates = np.asarray(target, int), np.asarray(candidates, int)
    if len(candidates) < len(target):
        raise ValueError(f"{len(candidates)} candidate units cannot match a set of {len(target)}")
    ranked = rank_features(features)
    distance = np.linalg.norm(ranked[target][:, None, :] - ranked[candidates][None, :, :], axis=-1)
    nearest = np.argsort(distance, axis=1, kind="stable")   # [k, C] candidate positions, nearest first
    sets = np.empty((n_sets, len(target)), dtype=int)
    for s in range(n_sets):
        used = np.zeros(len(candidates), bool)
        for i in rng.permutation(len(target)):
            free = nearest[i][~used[nearest[i]]][:n_near]
            pick = free[rng.integers(len(free))]
            used[pick] = True
            sets[s, i] = candidates[pick]
    return sets


def choose_unit_sets(table: UnitTable, alpha: float, min_abs_r: float, rng: np.random.Generator,
                     ks: tuple[int, ...] = K_VALUES, n_random: int = MIN_NULL_SETS) -> list[UnitSet]:
    """Every set to silence in one run: for each k the run has mirror units for, the mirror set, its
    matched null and the positive control; the anti-mirror set where there are k anti-mirror units."""
    mirror, anti = table.mirror(alpha, min_abs_r), table.anti_mirror(alpha, min_abs_r)
    non_mirror = np.setdiff1d(np.arange(len(table.r)), mirror)
    by_readout = np.argsort(-np.asarray(table.readout, float), kind="stable")
    sets: list[UnitSet] = []
    for k in ks:
        if len(mirror) < k or len(non_mirror) < k:
            continue
        sets.append(UnitSet("mirror", k, mirror[:k]))
        sets.append(UnitSet("readout", k, by_readout[:k]))
        if len(anti) >= k:
            sets.append(UnitSet("anti_mirror", k, anti[:k]))
        for units in matched_random_sets(mirror[:k], non_mirror, table.features, n_random, rng):
            sets.append(UnitSet("matched_random", k, units))
    return sets


def compare_to_null(effect: float, null: np.ndarray) -> dict[str, float | bool]:
    """One lesion's effect against its matched-random null (the same k, run and outcome)."""
    null = np.asarray(null, float)
    mean, sd = float(null.mean()), float(null.std(ddof=1)) if len(null) > 1 else 0.0
    z = (effect - mean) / sd if sd > 0 else float("nan")
    p95 = float(np.percentile(null, 95))
    return {"effect": float(effect), "null_mean": mean, "null_sd": sd, "null_p95": p95, "z": float(z),
            "difference": float(effect - mean), "exceeds": bool(effect > p95)}


def necessity_verdict(per_seed: list[dict[str, Any]], n_seeds: int, min_seeds: int = MIN_SEEDS,
                      min_fraction: float = MIN_EXCEED_FRACTION) -> dict[str, Any]:
    """The rule over seeds. per_seed: `compare_to_null` results of the seeds that had the set; n_seeds:
    all seeds of the condition (a seed without k mirror units counts as not exceeding)."""
    n_exceed = sum(bool(c["exceeds"]) for c in per_seed)
    difference = mean_ci95([c["difference"] for c in per_seed])
    z = mean_ci95([c["z"] for c in per_seed])
    need = math.ceil(min_fraction * n_seeds)
    lo = difference["ci95"][0]
    if n_seeds < min_seeds:
        verdict = f"not tested ({n_seeds} seeds; the rule needs {min_seeds})"
    elif n_exceed >= need and np.isfinite(lo) and lo > 0:
        verdict = "supported"
    else:
        verdict = "not supported"
    return {"verdict": verdict, "n_exceed": n_exceed, "n_seeds": n_seeds, "n_with_set": len(per_seed),
            "need": need, "difference": difference, "z": z}


def headline_k(mirror_counts: list[int], ks: tuple[int, ...] = K_VALUES,
               min_fraction: float = MIN_EXCEED_FRACTION) -> int | None:
    """The largest k that enough seeds (the rule's fraction) have k mirror units for; None if no k."""
    need = math.ceil(min_fraction * len(mirror_counts))
    fits = [k for k in ks if sum(c >= k for c in mirror_counts) >= max(1, need)]
    return max(fits) if fits else None


def paired_difference(a: dict[int, float], b: dict[int, float]) -> dict[str, Any]:
    """mean_ci95 over the seeds both have of a[seed] - b[seed] (e.g. shared minus separate z)."""
    seeds = sorted(set(a) & set(b))
    return {**mean_ci95([a[s] - b[s] for s in seeds]), "seeds": seeds}


# --- across runs: one row per (group, ablation, outcome, condition, k), verdicts, the claim's predictions ---
def _effects(result: dict[str, Any], ablation: str, outcome: str, kind: str, k: int) -> list[float] | None:
    for row in result["effects"]:
        if (row["ablation"], row["outcome"], row["kind"], row["k"]) == (ablation, outcome, kind, k):
            return row["effects"]
    return None


def _compared(result: dict[str, Any], ablation: str, outcome: str, kind: str, k: int) -> dict[str, Any] | None:
    effect, null = _effects(result, ablation, outcome, kind, k), _effects(result, ablation, outcome, "matched_random", k)
    return None if effect is None or null is None else compare_to_null(effect[0], np.asarray(null))


def _cell(runs: list[dict[str, Any]], ablation: str, outcome: str, k: int) -> dict[str, Any]:
    by_kind = {kind: [c for c in (_compared(r, ablation, outcome, kind, k) for r in runs) if c is not None]
               for kind in ("mirror", "readout", "anti_mirror")}
    mirror = by_kind["mirror"]
    return {"n_with_set": len(mirror), "n_exceed": sum(c["exceeds"] for c in mirror),
            "mirror": mean_ci95([c["effect"] for c in mirror]),
            "null_mean": mean_ci95([c["null_mean"] for c in mirror]),
            "null_p95": mean_ci95([c["null_p95"] for c in mirror]),
            **{f"{kind}_effect": mean_ci95([c["effect"] for c in cs]) for kind, cs in by_kind.items() if kind != "mirror"},
            **{f"z_{kind}": mean_ci95([c["z"] for c in cs]) for kind, cs in by_kind.items()}}


def summarise_lesions(results: list[dict[str, Any]], questions: dict[str, str], ks: tuple[int, ...] = K_VALUES
                      ) -> dict[str, list[dict[str, Any]]]:
    """results: one per run ({group, condition, seed, n_mirror, effects: [{ablation, outcome, kind, k,
    effects}]}); questions: outcome -> the question it answers ("watching", "doing", ...). Returns the
    cells (every k), the verdicts (at each condition's headline k) and the claim's two predictions."""
    cells, verdicts = [], []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["group"], r["condition"]), []).append(r)
    order = {o: i for i, o in enumerate(questions)}   # the outcomes' own order (watching, doing, imitation)
    combos = sorted({(row["ablation"], row["outcome"]) for r in results for row in r["effects"]
                     if row["outcome"] in questions}, key=lambda c: (c[0], order[c[1]]))
    for (group, condition), runs in groups.items():
        k_star = headline_k([r["n_mirror"] for r in runs], ks)
        for ablation, outcome in combos:
            if k_star is not None and not any(outcome in r.get("intact", {}) for r in runs):
                continue  # not measured in this condition (imitation's planners plan only in some)
            key = {"group": group, "ablation": ablation, "outcome": outcome, "question": questions[outcome],
                   "condition": condition}
            for k in ks:
                cell = _cell(runs, ablation, outcome, k)
                if cell["n_with_set"]:
                    cells.append({**key, "k": k, **cell})
            per_seed = [] if k_star is None else \
                [c for c in (_compared(r, ablation, outcome, "mirror", k_star) for r in runs) if c is not None]
            verdict = necessity_verdict(per_seed, len(runs))
            if k_star is None:
                verdict["verdict"] = "not tested (too few significant mirror units for k = 2)"
            verdicts.append({**key, "k": k_star, "seeds": sorted(r["seed"] for r in runs), **verdict})
    return {"cells": cells, "verdicts": verdicts, "predictions": predictions(results, questions, ks)}


def _z_by_seed(runs: list[dict[str, Any]], ablation: str, outcome: str, k: int) -> dict[int, float]:
    out = {}
    for r in runs:
        c = _compared(r, ablation, outcome, "mirror", k)
        if c is not None and np.isfinite(c["z"]):
            out[r["seed"]] = c["z"]
    return out


def predictions(results: list[dict[str, Any]], questions: dict[str, str], ks: tuple[int, ...] = K_VALUES
                ) -> list[dict[str, Any]]:
    """The mirror claim's two predictions, paired by seed at the shared core's headline k: a larger z in
    shared than in separate cores (each outcome), and on watching more than on doing (shared core)."""
    out = []
    for group in sorted({r["group"] for r in results}):
        of = lambda c: [r for r in results if r["group"] == group and r["condition"] == c]  # noqa: E731
        shared = of("shared")
        k = headline_k([r["n_mirror"] for r in shared], ks) if shared else None
        if k is None:
            continue
        combos = sorted({(row["ablation"], row["outcome"]) for r in shared for row in r["effects"]})
        for ablation, outcome in combos:
            if outcome in questions and of("separate"):
                out.append({"group": group, "ablation": ablation, "k": k, "prediction": "shared > separate",
                            "outcome": outcome, **paired_difference(_z_by_seed(shared, ablation, outcome, k),
                                                                   _z_by_seed(of("separate"), ablation, outcome, k))})
        for ablation in sorted({a for a, _ in combos}):
            first = {q: next((o for a, o in combos if a == ablation and questions.get(o) == q), None)
                     for q in ("watching", "doing")}
            if all(first.values()):
                out.append({"group": group, "ablation": ablation, "k": k, "prediction": "watching > doing",
                            "outcome": f"{first['watching']} - {first['doing']}",
                            **paired_difference(_z_by_seed(shared, ablation, first["watching"], k),
                                                _z_by_seed(shared, ablation, first["doing"], k))})
    return out


def _fmt(stat: dict[str, Any]) -> str:
    mean, (lo, hi) = stat["mean"], stat["ci95"]
    if not np.isfinite(mean):
        return "n/a"
    return f"{mean:.3g}" if not np.isfinite(lo) else f"{mean:.3g} [{lo:.3g}, {hi:.3g}]"


def lesion_report(summary: dict[str, list[dict[str, Any]]], outcome_names: dict[str, str], n_random: int,
                  figures: dict[str, str], notes: list[str] = ()) -> str:
    """The report section: the verdict per question first (whatever it is), then every k, then the two
    predictions. outcome_names: outcome -> how the report names it; figures: caption -> relative path;
    notes: lines after the rule (what an outcome measured differently)."""
    lines = ["## Do mirror units matter? Lesions inside the recurrence", "",
             "Units are silenced after every GRU step (so they stay silent and stop feeding later steps). The",
             "*effect* is the damage to an outcome (drop in R^2 or accuracy, rise in error): larger = more harm.",
             f"Each mirror-unit lesion is compared with {n_random} random sets of as many non-mirror units,",
             "matched on activity variance and read-out weight norms (the null); `readout` silences the units",
             "the inverse head weights most (a positive control), `anti_mirror` the most negative ones.",
             "**Rule**: mirror units are *necessary* for an outcome when their lesion exceeds the null's 95th",
             "percentile in >= 4 of 5 seeds and the paired interval of (effect - null mean) over seeds lies",
             "above zero; verdicts use each condition's largest k that 4 of 5 seeds have (headline k).", *notes, "",
             "| question | outcome | group | condition | ablation | k | seeds above null p95 | effect - null mean | z | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for v in summary["verdicts"]:
        k = "-" if v["k"] is None else v["k"]
        lines.append(f"| {v['question']} | {outcome_names.get(v['outcome'], v['outcome'])} | {v['group']} | "
                     f"{v['condition']} | {v['ablation']} | {k} | {v['n_exceed']} of {v['n_seeds']} | "
                     f"{_fmt(v['difference'])} | {_fmt(v['z'])} | **{v['verdict']}** |")
    lines += ["", "### Every k (means [95% CI] over the seeds that have k mirror units)", "",
              "| outcome | group | condition | ablation | k | seeds | mirror effect | null mean | null p95 | z mirror | "
              "z readout | z anti-mirror |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in summary["cells"]:
        lines.append(f"| {outcome_names.get(c['outcome'], c['outcome'])} | {c['group']} | {c['condition']} | "
                     f"{c['ablation']} | {c['k']} | {c['n_with_set']} | {_fmt(c['mirror'])} | {_fmt(c['null_mean'])} | "
                     f"{_fmt(c['null_p95'])} | {_fmt(c['z_mirror'])} | {_fmt(c['z_readout'])} | "
                     f"{_fmt(c['z_anti_mirror'])} |")
    lines += ["", "### The claim's predictions (z paired by seed at the shared core's headline k)", ""]
    if summary["predictions"]:
        lines += ["| group | prediction | outcome | ablation | k | difference of z | seeds | holds |",
                  "|---|---|---|---|---|---|---|---|"]
        for p in summary["predictions"]:
            lo = p["ci95"][0]
            holds = "yes" if np.isfinite(lo) and lo > 0 else "no"
            lines.append(f"| {p['group']} | {p['prediction']} | {p['outcome']} | {p['ablation']} | {p['k']} | "
                         f"{_fmt(p)} | {len(p['seeds'])} | {holds} |")
    else:
        lines.append("Not testable: no shared core with at least 2 significant mirror units in enough seeds.")
    lines.append("")
    lines += [f"![{caption}]({path})" for caption, path in figures.items()]
    return "\n".join(lines + [""])
