"""Imitation scores summarised: bootstrap intervals over videos and seeds, the targets, the report (pure).

Rows are one imitation each: (`view`, `trained_on`, `appearance`, `method`, `core`, `seed`, `episode_id`, scores).
The same test videos are imitated under every seed, so (seed, video) cells are crossed, not independent:
intervals come from a two-way bootstrap that resamples seeds and videos independently (percentile
intervals of a mean of scores in [0, 1] stay inside [0, 1]).
"""

from __future__ import annotations

from typing import Any

import numpy as np

SCORES = ("success", "success_specular", "final_distance", "final_distance_specular", "trajectory_error",
          "path_error")
KEY = ("view", "trained_on", "appearance")
# Methods that imitate from the video alone: neither the true actions nor the target nor an expert.
FROM_VIDEO_FAMILIES = ("baseline", "core", "mirror system")


def bootstrap_mean(values: np.ndarray, n: int, seed: int = 0, level: float = 0.95) -> dict[str, float]:
    """Mean of values [seeds, videos] with a percentile interval from resampling seeds and videos (crossed)."""
    values = np.asarray(values, np.float64)
    S, V = values.shape
    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, S, size=(n, S))
    videos = rng.integers(0, V, size=(n, V))
    means = np.array([values[np.ix_(s, v)].mean() for s, v in zip(seeds, videos)])
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return {"mean": float(values.mean()), "low": float(low), "high": float(high), "n_seeds": S, "n_videos": V}


def method_label(method: str, core: str | None) -> str:
    """A row of the table: the method, and the core it ran on (condition and training marks) if any."""
    return f"{method} [{core}]" if core else method


def cell_matrix(rows: list[dict[str, Any]], score: str) -> np.ndarray:
    """[seeds, videos] of one score, seeds and videos sorted; every (seed, video) must be present once."""
    seeds = sorted({r["seed"] for r in rows})
    videos = sorted({r["episode_id"] for r in rows})
    out = np.full((len(seeds), len(videos)), np.nan)
    for r in rows:
        out[seeds.index(r["seed"]), videos.index(r["episode_id"])] = r[score]
    if np.isnan(out).any():
        raise ValueError(f"imitation rows of one method miss {int(np.isnan(out).sum())} (seed, video) cells")
    return out


def summarise(rows: list[dict[str, Any]], n_boot: int, seed: int = 0) -> dict[str, dict[str, dict[str, Any]]]:
    """{"view | trained_on -> appearance": {method label: {score: bootstrap_mean, "expert_queries": ...}}}."""
    groups: dict[tuple, dict[str, list[dict[str, Any]]]] = {}
    for r in rows:
        setting = tuple(r[k] for k in KEY)
        groups.setdefault(setting, {}).setdefault(method_label(r["method"], r.get("core")), []).append(r)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for setting, methods in groups.items():
        table = out.setdefault(setting_name(*setting), {})
        for label, group in methods.items():
            entry: dict[str, Any] = {s: bootstrap_mean(cell_matrix(group, s), n_boot, seed) for s in SCORES}
            entry["method"], entry["core"] = group[0]["method"], group[0].get("core")
            queries = [r["expert_queries"] for r in group if r.get("expert_queries") is not None]
            if queries:
                entry["expert_queries"] = float(np.mean(queries))
            table[label] = entry
    return out


def setting_name(view: str, trained_on: str, appearance: str) -> str:
    return f"{view} | trained on {trained_on} -> watching {appearance}"


def _best(table: dict[str, dict[str, Any]], records: dict[str, dict[str, Any]], families: tuple[str, ...],
          score: str) -> tuple[str | None, float]:
    candidates = {k: e[score]["mean"] for k, e in table.items()
                  if records[e["method"]]["family"] in families and not records[e["method"]]["expert"]}
    if not candidates:
        return None, float("nan")
    best = max(candidates, key=candidates.get)
    return best, candidates[best]


# Where the other's body differs, its actions replayed are no bound (a morphology's land elsewhere): the
# reference of the demonstrated target is then the goal-given one.
OTHER_BODIES = ("mirrored", "morphology")


def settings(rows: list[dict[str, Any]]) -> dict[str, str]:
    """{setting name: the appearance watched in it}."""
    return {setting_name(*(r[k] for k in KEY)): r["appearance"] for r in rows}


def targets(summary: dict[str, dict[str, dict[str, Any]]], records: dict[str, dict[str, Any]],
            watched: dict[str, str]) -> dict[str, Any]:
    """Per setting and declared goal: the best from-video method against its reference (the oracle, or the
    goal-given reference for another body and for the specular goal), against the baselines, and the best
    mirror-system method's gap to the best."""
    out: dict[str, Any] = {}
    for setting, table in summary.items():
        entry: dict[str, Any] = {}
        target_reference = "goal_given" if watched.get(setting) in OTHER_BODIES else "oracle"
        for goal, score, reference in (("target", "success", target_reference),
                                       ("specular", "success_specular", "goal_given_specular")):
            if reference not in table:
                continue
            best, value = _best(table, records, FROM_VIDEO_FAMILIES, score)
            mirror, mirror_value = _best(table, records, ("mirror system",), score)
            ref = table[reference][score]["mean"]
            baselines = {b: table[b][score]["mean"] for b in ("bco", "bco_alpha", "dagger", "what_then_how")
                         if b in table and b != best}
            entry[goal] = {"reference": reference, "reference_success": ref, "best": best, "best_success": value,
                           "best_of_reference": value / ref if ref > 0 else float("nan"),
                           "baselines": baselines, "beats": {b: value > v for b, v in baselines.items()},
                           "best_mirror": mirror, "best_mirror_success": mirror_value,
                           "mirror_gap_points": 100 * (value - mirror_value) if mirror else float("nan")}
        out[setting] = entry
    return out


def fmt_interval(stat: dict[str, float], percent: bool = True) -> str:
    if percent:
        return f"{stat['mean']:.0%} [{stat['low']:.0%}, {stat['high']:.0%}]"
    return f"{stat['mean']:.3f} [{stat['low']:.3f}, {stat['high']:.3f}]"


def patching_summary(rows: list[dict[str, Any]], n_boot: int, seed: int = 0) -> list[dict[str, Any]]:
    """Per (view, trained_on, core): the distance to the source video's target under the patch from it, under
    the control patch from an unrelated video, and their paired difference (control minus patched: > 0 when
    the watched state carries the source's goal), each with a crossed bootstrap over seeds and sources."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["view"], r["trained_on"], r["core"]), []).append(r)
    out = []
    for (view, trained_on, core), group in groups.items():
        for r in group:
            r["effect"] = r["control_to_source"] - r["to_source"]
        matrix = lambda key: cell_matrix([{**r, "episode_id": r["source"]} for r in group], key)  # noqa: E731
        out.append({"view": view, "trained_on": trained_on, "core": core,
                    **{k: bootstrap_mean(matrix(k), n_boot, seed) for k in
                       ("to_source", "control_to_source", "to_host", "effect", "success_at_source")}})
    return out


INTRO = ["# Imitation from video: the task only in the video", "",
         "The self arm starts where the other did, but nothing it sees holds the target: no target in its",
         "state and none drawn in its camera, in training as at test. The target is only in the other arm's",
         "video. Test videos are held-out demonstrations (never trained on), in the dataset's own appearance",
         "and in appearances no core trained on. `success`: within the radius of the demonstrated target in the",
         "self arm's own base frame (goal-level; for a mirrored arm this is the anatomical goal, where the same",
         "joint movement takes the self arm); `success_specular`: of the mirror image of that target (what a",
         "visual copier of a mirrored arm reaches; the same goal for every other appearance). The oracle replays",
         "the demonstrator's actions, so it is no bound where the bodies differ (morphology). Mean [95% interval",
         "of a bootstrap over seeds and videos, crossed]; n = seeds x videos.", ""]


def report(summary: dict[str, dict[str, dict[str, Any]]], goals: dict[str, Any],
           records: dict[str, dict[str, Any]], correlations: list[dict[str, Any]],
           patching: list[dict[str, Any]] = ()) -> str:
    """The Markdown report: one table per setting with its goals, then patching and the correlations."""
    lines = list(INTRO)
    for setting, table in summary.items():
        lines += setting_section(setting, table, goals.get(setting, {}), records)
    if patching:
        lines += patching_section(patching)
    if correlations:
        lines += correlation_section(correlations)
    return "\n".join(lines)


def setting_section(setting: str, table: dict[str, dict[str, Any]], goals: dict[str, Any],
                    records: dict[str, dict[str, Any]]) -> list[str]:
    """Every method's scores in one setting, then each declared goal's best method against its reference."""
    lines = [f"## {setting}", "",
             "| method | family | sees | expert | success | success (specular goal) | final distance (m) | "
             "path error (m) | expert queries | n |", "|---|---|---|---|---|---|---|---|---|---|"]
    for label, e in table.items():
        r = records[e["method"]]
        n = f"{e['success']['n_seeds']} x {e['success']['n_videos']}"
        lines.append(f"| {label} | {r['family']} | {r['sees']} | {'yes' if r['expert'] else 'no'} | "
                     f"{fmt_interval(e['success'])} | {fmt_interval(e['success_specular'])} | "
                     f"{fmt_interval(e['final_distance'], False)} | {fmt_interval(e['path_error'], False)} | "
                     f"{e.get('expert_queries', '')} | {n} |")
    for goal, t in goals.items():
        if t["best"] is None:
            continue
        beats = ", ".join(f"{'beats' if ok else 'does not beat'} {b} ({t['baselines'][b]:.0%})"
                          for b, ok in t["beats"].items())
        lines += ["", f"{goal.capitalize()} goal: best from-video method `{t['best']}` {t['best_success']:.0%} = "
                      f"{t['best_of_reference']:.2f}x `{t['reference']}` ({t['reference_success']:.0%}); {beats}."]
        if t["best_mirror"]:
            lines.append(f"Best mirror-system method `{t['best_mirror']}` {t['best_mirror_success']:.0%}: "
                         f"{t['mirror_gap_points']:.0f} points below the best.")
    return lines + [""]


def patching_section(patching: list[dict[str, Any]]) -> list[str]:
    """Activation patching: the distance to the patched-from video's target against the control patch's."""
    lines = ["## Activation patching: does the watched state carry the watched goal?", "",
             "The core's final observe-mode state while watching video A, patched in as the goal of the",
             "goal-inference planner from another demonstration's start (B); the control patches the state of",
             "an unrelated video C. Distances (m) from the final fingertip to A's target; the effect is the",
             "control's distance minus the patched one (> 0: the state steers toward A's goal).", "",
             "| view | trained on | core | to A (patched from A) | to A (patched from C) | effect | success at A "
             "| to B's own target | n |", "|---|---|---|---|---|---|---|---|---|"]
    for p in patching:
        lines.append(f"| {p['view']} | {p['trained_on']} | {p['core']} | {fmt_interval(p['to_source'], False)} | "
                     f"{fmt_interval(p['control_to_source'], False)} | {fmt_interval(p['effect'], False)} | "
                     f"{fmt_interval(p['success_at_source'])} | {fmt_interval(p['to_host'], False)} | "
                     f"{p['effect']['n_seeds']} x {p['effect']['n_videos']} |")
    return lines + [""]


def correlation_section(correlations: list[dict[str, Any]],
                        title: str = "Does imitation track the mirror measures? (across runs)") -> list[str]:
    """Each core method's score (success; overimitation) against each mirror measure, across runs."""
    lines = [f"## {title}", "",
             "| method | runs | mirror measure | n | Pearson r [95% CI] |", "|---|---|---|---|---|"]
    for c in correlations:
        r = f"{c['r']:.2f} [{c['ci95'][0]:.2f}, {c['ci95'][1]:.2f}]" if "r" in c else "n/a (too few runs or no spread)"
        lines.append(f"| {c['method']} | {c['runs']} | {c['mirror_measure']} | {c['n_runs']} | {r} |")
    return lines + [""]
