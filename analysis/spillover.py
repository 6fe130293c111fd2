"""Value spillover: does value learnt on "me" spill over to "the other", and does feedback remove it?

A value head (linear, on standardised latents) is fitted by plain SGD to the self arm's reward from
the core's latent while it watches its *own* arm (the perform pathway is driven by actions alone and
never sees the target, so it cannot carry the reward). Applied unchanged to the latent while the core
watches the *other* arm reach, it may assign value to the other's progress: that is spillover. Its
size is `relative`: the value the head assigns when the other is at its target (minus when it is far),
as a fraction of the value at one's own success (1: the other's success is worth as much as one's own;
0: nothing). Its presence is `r`: the Pearson r between the predicted value and the other's reward over
held-out episodes and steps, against a sequence-level null (reward sequences re-paired with other
episodes); r is blind to magnitude, so a tiny but systematic leak is significant there.

Transience: training continues with feedback that includes observe-mode examples labelled with what
the other's success is worth to self, nothing (0), mixed 1:1 with self examples; spillover is recorded
after every `every` updates. The hypothesis predicts that a value model which gets feedback separates self
from other, so spillover decays; `half_life` is the number of updates until it first falls to half.

Rewards are shaped, r = exp(-distance / scale): 1 at the target, ~0 far from it, so "worth nothing" is 0.
Across runs: the groups, the paired comparisons (each keyed by the run's label, so a loss-weight map is never
pooled), the correlation with the mirror measures, the figure and the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mirrorlab.analysis.across_runs import MIRROR_MEASURES, correlate_across_runs
from mirrorlab.analysis.intervals import mean_ci95
from mirrorlab.analysis.nulls import permutation_p_value
from mirrorlab.permutations import derangements


def shaped_reward(distance: np.ndarray, scale: float = 0.05) -> np.ndarray:
    """exp(-distance / scale): the reward a value head predicts (1 at the target, -> 0 far away)."""
    return np.exp(-np.asarray(distance, float) / scale)


@dataclass
class ValueHead:
    """A linear read-out of standardised latents: value = ((z - mean) / std) @ w + b."""

    mean: np.ndarray
    std: np.ndarray
    w: np.ndarray
    b: float

    def __call__(self, latents: np.ndarray) -> np.ndarray:
        return ((latents - self.mean) / self.std) @ self.w + self.b


def init_head(self_latents: np.ndarray) -> ValueHead:
    """A zero head whose standardisation comes from the self latents (the only data it is fitted on)."""
    flat = self_latents.reshape(-1, self_latents.shape[-1])
    std = flat.std(axis=0)
    return ValueHead(flat.mean(axis=0), np.where(std > 1e-8, std, 1.0), np.zeros(flat.shape[1]), 0.0)


def sgd(head: ValueHead, latents: np.ndarray, targets: np.ndarray, updates: int, rng: np.random.Generator,
        lr: float = 1.0, batch: int = 64, l2: float = 1e-4) -> ValueHead:
    """`updates` minibatch steps of normalised LMS on the squared error (latents [n, U], targets [n]);
    returns a new head. Each step is `lr` over the batch's mean squared feature norm (+1 for the bias),
    which bounds the step times the largest curvature by `lr`: stable for any 0 < lr < 2 however
    correlated or large the latents are. (A fixed step diverged on cores whose units move together, and
    on another arm's latents far outside the self arm's standardisation.)"""
    w, b = head.w.copy(), head.b
    x = (latents - head.mean) / head.std
    for _ in range(updates):
        idx = rng.integers(0, len(x), batch)
        xb = x[idx]
        err = xb @ w + b - targets[idx]
        step = lr / (float((xb * xb).sum(axis=1).mean()) + 1.0)
        w -= step * (xb.T @ err / batch + l2 * w)
        b -= step * float(err.mean())
    return ValueHead(head.mean, head.std, w, b)


@dataclass
class Spillover:
    r: float                   # Pearson r of predicted value with the other's reward, pooled over (episode, step)
    p: float                   # one-sided (greater), sequence-level re-pairing null
    null_mean: float
    value_at_success: float    # mean value when the other is at its target minus when it is far, ...
    self_value_at_success: float  # ... the same on one's own held-out video: their ratio is `relative`
    relative: float


def _pooled_r(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else 0.0


def _success_contrast(values: np.ndarray, rewards: np.ndarray, near: float = 0.5) -> float:
    """Mean value where the reward says "at the target" (r > near) minus where it says "far" (r < 0.05)."""
    at, far = rewards > near, rewards < 0.05
    if not at.any() or not far.any():
        return float("nan")
    return float(values[at].mean() - values[far].mean())


def measure_spillover(head: ValueHead, other_latents: np.ndarray, other_rewards: np.ndarray,
                      self_latents: np.ndarray, self_rewards: np.ndarray, rng: np.random.Generator,
                      n_permutations: int = 500) -> Spillover:
    """other_latents [N, T, U] (held-out, watching the other), other_rewards [N, T]; the self pair the same
    for the held-out self video (the scale of value at one's own success)."""
    values = head(other_latents)
    r = _pooled_r(values, other_rewards)
    null = np.array([_pooled_r(values, other_rewards[perm]) for perm in derangements(len(values), n_permutations, rng)])
    other_contrast = _success_contrast(values, other_rewards)
    self_contrast = _success_contrast(head(self_latents), self_rewards)
    return Spillover(r=r, p=float(permutation_p_value(r, null, "greater")), null_mean=float(null.mean()),
                     value_at_success=other_contrast, self_value_at_success=self_contrast,
                     relative=other_contrast / self_contrast if self_contrast and np.isfinite(self_contrast) else float("nan"))


def transience(head: ValueHead, self_train: tuple[np.ndarray, np.ndarray], other_train: np.ndarray,
               other_test: tuple[np.ndarray, np.ndarray], self_test: tuple[np.ndarray, np.ndarray],
               rng: np.random.Generator, updates: int, every: int, lr: float = 1.0) -> dict[str, np.ndarray]:
    """Feedback that the other's success is worth nothing: SGD on self examples (their reward) mixed 1:1
    with observe-mode examples of the other (target 0). Returns {"updates" [K], "r" [K], "relative"
    [K]}: spillover (r of value with the other's held-out reward, and the value at its success relative
    to the value at one's own success in the *same* held-out episodes, `self_test`) after every `every`
    updates, from 0. The reference must be the same situations seen as self: against the self training
    set (which holds babbling the other never does) feedback could look like separation by unlearning
    value on demonstration-like episodes altogether, even where self and other look identical."""
    xs, ys = self_train
    xs, ys = xs.reshape(-1, xs.shape[-1]), ys.ravel()
    xo = other_train.reshape(-1, other_train.shape[-1])
    x = np.concatenate([xs, xo])
    y = np.concatenate([ys, np.zeros(len(xo))])
    weight_self = np.concatenate([np.full(len(xs), 0.5 / len(xs)), np.full(len(xo), 0.5 / len(xo))])
    order_rng = np.random.default_rng(rng.integers(2**32))
    test_latents, test_rewards = other_test
    steps, rs, rel = [], [], []
    for k in range(0, updates + 1, every):
        values = head(test_latents)
        steps.append(k)
        rs.append(_pooled_r(values, test_rewards))
        self_contrast = _success_contrast(head(self_test[0]), self_test[1])
        rel.append(_success_contrast(values, test_rewards) / self_contrast if self_contrast else np.nan)
        if k < updates:
            # Sample self and other examples 1:1 (the two pools differ in size).
            picks = order_rng.choice(len(x), size=len(x), p=weight_self)
            head = sgd(head, x[picks], y[picks], every, order_rng, lr=lr)
    return {"updates": np.array(steps), "r": np.array(rs), "relative": np.array(rel)}


def half_life(updates: np.ndarray, values: np.ndarray) -> float:
    """Updates until `values` first falls to half its starting value (linearly interpolated); nan if the
    start is not positive, inf if it never gets there."""
    start = values[0]
    if not np.isfinite(start) or start <= 0:
        return float("nan")
    below = np.flatnonzero(values <= start / 2)
    if below.size == 0:
        return float("inf")
    k = int(below[0])
    x0, x1, y0, y1 = updates[k - 1], updates[k], values[k - 1], values[k]
    return float(x0 + (start / 2 - y0) * (x1 - x0) / (y1 - y0)) if y1 != y0 else float(x1)


def spill(self_train: tuple[np.ndarray, np.ndarray], other_train: np.ndarray, other_test: tuple[np.ndarray, np.ndarray],
          self_test: tuple[np.ndarray, np.ndarray], rng: np.random.Generator, fit_updates: int, feedback_updates: int,
          every: int, lr: float = 1.0, n_permutations: int = 500) -> dict[str, Any]:
    """One run's spillover: a value head fitted on the self latents and rewards (`self_train`, [n, T, U] and
    [n, T]), its spillover on the held-out other (`other_test`) scaled by the held-out self (`self_test`), and
    the feedback curve with the other's training latents labelled 0 (`transience`)."""
    self_z, self_r = self_train
    head = sgd(init_head(self_z), self_z.reshape(-1, self_z.shape[-1]), self_r.ravel(), fit_updates, rng, lr=lr)
    at_start = measure_spillover(head, *other_test, *self_test, rng, n_permutations)
    curve = transience(head, self_train, other_train, other_test, self_test, rng, feedback_updates, every, lr=lr)
    return {"r": at_start.r, "p": at_start.p, "null_mean": at_start.null_mean, "relative": at_start.relative,
            "value_at_other_success": at_start.value_at_success,
            "value_at_own_success": at_start.self_value_at_success,
            "curve_updates": curve["updates"].tolist(), "curve_relative": curve["relative"].tolist(),
            "curve_r": curve["r"].tolist(),
            "half_life": half_life(curve["updates"], curve["relative"])}


# --- across runs: rows are one run each (`appearance`, `label` = agents.runs.run_label, `condition`, `seed`,
# `run`, the results of `spill`, the run's mirror measures, and `counterparts`: {condition: the label the run
# would have under that condition}, so a shared core is compared only with cores trained the same way).
SUMMARY = ("relative", "r", "half_life")
COMPARED_WITH = ("untrained", "separate")
CSV_COLUMNS = ("appearance", "label", "condition", "seed", "relative", "r", "p", "null_mean", "half_life",
               "value_at_other_success", "value_at_own_success", *MIRROR_MEASURES, "run")


def check_unique(rows: list[dict[str, Any]]) -> None:
    """One row per (appearance, label, seed): two runs there would be pooled or one lost."""
    seen: dict[tuple, str] = {}
    for row in rows:
        key = (row["appearance"], row["label"], row["seed"])
        if key in seen:
            raise ValueError(f"runs {seen[key]} and {row['run']} share appearance, label and seed {key}")
        seen[key] = row["run"]


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """{appearance: {label: {measure: mean_ci95 over seeds}}} (a half-life of inf counts as missing): runs
    that learnt differently (weight, grounding, inverse data) have different labels and are never pooled."""
    check_unique(rows)
    out: dict[str, Any] = {}
    for row in rows:
        out.setdefault(row["appearance"], {}).setdefault(row["label"], []).append(row)
    return {a: {label: {**{m: mean_ci95([r[m] for r in group if np.isfinite(r[m])]) for m in SUMMARY},
                        "never_halved": sum(1 for r in group if r["half_life"] == float("inf")),
                        "n_seeds": len(group)}
                for label, group in labels.items()} for a, labels in out.items()}


def compare(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each shared core minus the untrained and the separate core of the same appearance and seed that were
    trained the same way (the counterpart's label), paired by seed."""
    check_unique(rows)
    by = {(r["appearance"], r["label"], r["seed"]): r for r in rows}
    pairs: dict[tuple[str, str, str], list[tuple[dict, dict]]] = {}
    for row in rows:
        if row["condition"] != "shared":
            continue
        for other in COMPARED_WITH:
            match = by.get((row["appearance"], row["counterparts"][other], row["seed"]))
            if match is not None:
                pairs.setdefault((row["appearance"], row["label"], match["label"]), []).append((row, match))
    return [{"appearance": appearance, "comparison": f"{label} minus {other}", "n_seeds": len(found),
             **{m: mean_ci95([a[m] - b[m] for a, b in found]) for m in ("relative", "r")}}
            for (appearance, label, other), found in sorted(pairs.items())]


def correlate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Across runs: Pearson r (95% CI) of spillover (relative) with each mirror measure."""
    per_run = {r["run"]: r["relative"] for r in rows}
    measures = {r["run"]: {m: r[m] for m in MIRROR_MEASURES if m in r} for r in rows}
    return [correlate_across_runs(per_run, measures, m) for m in MIRROR_MEASURES]


def figure(rows: list[dict[str, Any]]) -> bytes:
    """Spillover against feedback updates, one line per (appearance, label), one trace per seed."""
    from mirrorlab.analysis.figures import spillover_curves

    curves: dict[tuple[str, str], list] = {}
    for r in rows:
        curves.setdefault((r["appearance"], r["label"]), []).append((r["curve_updates"], r["curve_relative"]))
    return spillover_curves(curves)


def report(metrics: dict[str, Any], reward_scale: float) -> str:
    """The Markdown report: what is measured, the groups by label, the paired comparisons, the correlations."""
    from mirrorlab.analysis.replication_report import fmt_stat

    lines = ["# Spillover: does value learnt on me spill over to the other, and only for a while?", "",
             "A linear value head reads the core's latent while it watches its own arm (training episodes and",
             f"babbling) and predicts the self arm's reward exp(-distance / {reward_scale} m). *Spillover*",
             "(`relative`) is the value it assigns when the *other* arm is at its target (minus when it is far),",
             "as a fraction of the value at the self arm's own success, on held-out episodes: 1 = the other's",
             "success is worth as much as one's own, 0 = nothing. `r` is the correlation of that value with the",
             "other's reward (p from re-paired reward sequences). Then feedback: self examples mixed 1:1 with",
             "observe-mode examples of the other labelled 0; `half_life` is the number of SGD updates until",
             "`relative` first falls to half. Runs are grouped by their label (condition and how they were",
             "trained: inverse data, loss weight, grounding). Mean [95% CI over seeds].", ""]
    for appearance, labels in metrics["groups"].items():
        lines += [f"## other_appearance = {appearance}", "",
                  "| run | spillover (relative) | r with the other's reward | half-life (updates) | never halved | seeds |",
                  "|---|---|---|---|---|---|"]
        for label, e in labels.items():
            lines.append(f"| {label} | {fmt_stat(e['relative'])} | {fmt_stat(e['r'])} | {fmt_stat(e['half_life'])} | "
                         f"{e['never_halved']} | {e['n_seeds']} |")
        lines.append("")
    if metrics["comparisons"]:
        lines += ["## Shared cores against the untrained and separate cores trained the same way (paired by seed)", "",
                  "| appearance | comparison | relative | r | seeds |", "|---|---|---|---|---|"]
        for c in metrics["comparisons"]:
            lines.append(f"| {c['appearance']} | {c['comparison']} | {fmt_stat(c['relative'])} | {fmt_stat(c['r'])} | "
                         f"{c['n_seeds']} |")
        lines.append("")
    lines += ["## Does spillover track the mirror measures? (across runs)", "",
              "| mirror measure | runs | Pearson r [95% CI] |", "|---|---|---|"]
    for c in metrics["mirror_vs_spillover"]:
        r = f"{c['r']:.2f} [{c['ci95'][0]:.2f}, {c['ci95'][1]:.2f}]" if "r" in c else "n/a (too few runs)"
        lines.append(f"| {c['mirror_measure']} | {c['n_runs']} | {r} |")
    lines += ["", "![spillover against feedback updates](figures/spillover_vs_feedback.png)", ""]
    return "\n".join(lines)
