"""Overimitation summarised: how much of a task-irrelevant detour each imitation method copies (pure).

Rows are one method's imitations of one demonstration pair each (agents/overimitation.py: a direct reach and
the same reach with a detour): (`view`, `trained_on`, `method`, `core`, `seed`, `episode_id`, `overimitation`,
`waypoint_index`, `success`, `final_distance`, `success_direct`). `overimitation` is 1 for a method whose
path moves with the demonstrated detour as much as the demonstration did and 0 for one that does the same
whatever it watched; `waypoint_index` 1 when watching the detour brings it as much closer to the waypoint
as the demonstration came, 0 when it passes no closer than its own imitation of the direct reach. Intervals
are the imitation table's crossed bootstrap over seeds and videos (`analysis.imitation.bootstrap_mean`).
"""

from __future__ import annotations

from typing import Any

from mirrorlab.analysis.imitation import bootstrap_mean, cell_matrix, fmt_interval, method_label

SCORES = ("overimitation", "waypoint_index", "success", "final_distance", "success_direct")


def summarise(rows: list[dict[str, Any]], n_boot: int, seed: int = 0) -> dict[str, dict[str, dict[str, Any]]]:
    """{"view | trained on X": {method label: {score: bootstrap_mean, "method", "core"}}}."""
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in rows:
        setting = f"{r['view']} | trained on {r['trained_on']}"
        groups.setdefault(setting, {}).setdefault(method_label(r["method"], r.get("core")), []).append(r)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for setting, methods in groups.items():
        table = out.setdefault(setting, {})
        for label, group in methods.items():
            entry: dict[str, Any] = {s: bootstrap_mean(cell_matrix(group, s), n_boot, seed) for s in SCORES}
            entry["method"], entry["core"] = group[0]["method"], group[0].get("core")
            table[label] = entry
    return out


def report(summary: dict[str, dict[str, dict[str, Any]]], records: dict[str, dict[str, Any]]) -> str:
    """A Markdown section: per setting, one row per method (family from the method records)."""
    lines = ["## Overimitation: does the imitator copy a detour that does nothing for the task?", "",
             "Each test video's start and target give two demonstrations: a direct reach, and a detour through a",
             "waypoint beside it to the same target. Every method imitates both. `overimitation`: the share of the",
             "demonstrated detour its own path reproduces, step by step (1: all of it, as replaying the actions;",
             "0: it does the same whatever it watched, as a direct reach). `waypoint index`: how much closer it",
             "passes the waypoint watching the detour than watching the direct reach, at any time (1: as much",
             "closer as the demonstration came; late or slow copies count). `success`:",
             "of the detour's imitation; `success (direct)`: of the direct one. Mean [95% interval, seeds x videos",
             "crossed].", ""]
    for setting, table in summary.items():
        lines += [f"### {setting}", "", "| method | family | overimitation | waypoint index | success | "
                  "success (direct) | final distance (m) | n |", "|---|---|---|---|---|---|---|---|"]
        for label, e in table.items():
            n = f"{e['success']['n_seeds']} x {e['success']['n_videos']}"
            lines.append(f"| {label} | {records[e['method']]['family']} | "
                         f"{fmt_interval(e['overimitation'], False)} | {fmt_interval(e['waypoint_index'], False)} | "
                         f"{fmt_interval(e['success'])} | {fmt_interval(e['success_direct'])} | "
                         f"{fmt_interval(e['final_distance'], False)} | {n} |")
        lines.append("")
    return "\n".join(lines)
