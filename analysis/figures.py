"""The paper's figures 1-4, drawn from measured arrays; every panel shows its null or baseline beside it.

Each function returns the figure as PNG bytes; the caller decides where it goes."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

COLORS = {"shared": "tab:blue", "separate": "tab:orange", "forward_only": "tab:green",
          "shuffled_labels": "tab:red", "untrained": "tab:gray"}


def png(fig: plt.Figure) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _trace(ax, perform: np.ndarray, observe: np.ndarray, unit: int, n_seqs: int, color: str, label: str) -> None:
    """Activation of one unit over `n_seqs` consecutive test sequences: perform solid, observe dashed."""
    p = perform[:n_seqs, :, unit].reshape(-1)
    o = observe[:n_seqs, :, unit].reshape(-1)
    ax.plot(p, "-", color=color, label=f"{label} perform")
    ax.plot(o, "--", color=color, label=f"{label} observe")
    for k in range(1, n_seqs):
        ax.axvline(k * perform.shape[1] - 0.5, color="0.85", lw=0.8, zorder=0)


def figure_emergence(r_by_cond: dict[str, np.ndarray], example: dict[str, np.ndarray],
                     pooled_r: dict[str, np.ndarray], seed: int) -> bytes:
    """Figure 1: (A) per-unit r per condition, (B) r histograms, (C) traces of the top 3 shared units."""
    fig = plt.figure(figsize=(13, 9))
    grid = fig.add_gridspec(3, 2, height_ratios=[1, 1, 1.2])
    ax = fig.add_subplot(grid[0, :])
    names = list(r_by_cond)
    mat = np.vstack([np.nan_to_num(r_by_cond[n]) for n in names])
    im = ax.imshow(mat, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("hidden unit")
    ax.set_title(f"A  per-unit perform-vs-observe r (seed {seed})")
    fig.colorbar(im, ax=ax, fraction=0.02)
    ax = fig.add_subplot(grid[1, :])
    bins = np.linspace(-1, 1, 41)
    for name in ("shared", "separate", "untrained"):
        if name in pooled_r:
            ax.hist(np.nan_to_num(pooled_r[name]), bins=bins, alpha=0.5, color=COLORS[name], label=name, density=True)
    for thr in (0.6, 0.75):
        ax.axvline(thr, color="k", ls=":", lw=0.8)
    ax.axvline(-0.6, color="k", ls=":", lw=0.8)
    ax.set_xlabel("r (all units, all seeds)")
    ax.set_ylabel("density")
    ax.set_title("B  r histograms: shared vs separate (identity-paired) vs untrained")
    ax.legend()
    r = np.nan_to_num(r_by_cond.get("shared", next(iter(r_by_cond.values()))))
    top = np.argsort(r)[::-1][:3]
    for k, unit in enumerate(top):
        ax = fig.add_subplot(grid[2, :]) if k == 0 else ax
        _trace(ax, example["perform"], example["observe"], int(unit), 3, f"C{k}", f"unit {unit} (r={r[unit]:.2f})")
    ax.set_xlabel("timestep (3 test sequences)")
    ax.set_ylabel("activation")
    ax.set_title("C  top 3 shared-core units: perform solid, observe dashed")
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    return png(fig)


def figure_robustness(null_example: np.ndarray, observed: float, unit_label: str,
                      per_seed: dict[str, list[dict[str, Any]]]) -> bytes:
    """Figure 2: (A) sequence-level null vs observed r, (B) fractions across seeds, (C) decoding vs chance."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    ax.hist(null_example, bins=40, color="0.6", label=f"null (B={null_example.size}, sequences re-paired)")
    ax.axvline(observed, color="tab:blue", lw=2, label=f"observed r={observed:.2f}")
    ax.set_title(f"A  permutation null, {unit_label}")
    ax.set_xlabel("r")
    ax.legend(fontsize=8)
    ax = axes[1]
    names = list(per_seed)
    for k, (metric, marker) in enumerate((("frac_r_gt_0.75", "o"), ("frac_abs_r_gt_0.6", "s"))):
        for i, name in enumerate(names):
            vals = [row[metric] for row in per_seed[name]]
            ax.scatter(np.full(len(vals), i + (k - 0.5) * 0.25), vals, marker=marker, color=COLORS.get(name, "k"),
                       label=metric if i == 0 else None, edgecolor="k" if k else None)
    ax.axhspan(0.25, 0.30, color="tab:blue", alpha=0.12, label="paper: r>0.75 in 25-30%")
    ax.axhspan(0.35, 0.40, color="tab:purple", alpha=0.12, label="paper: |r|>0.6 in 35-40%")
    ax.set_xticks(range(len(names)), names, rotation=30)
    ax.set_ylabel("fraction of units")
    ax.set_title("B  mirror fractions across seeds")
    ax.legend(fontsize=7)
    ax = axes[2]
    width = 0.38
    for i, name in enumerate(names):
        rows = per_seed[name]
        for k, key in enumerate(("decode_perform_to_observe", "decode_observe_to_perform")):
            vals = np.array([row[key] for row in rows])
            ax.bar(i + (k - 0.5) * width, vals.mean(), width, color=COLORS.get(name, "k"), alpha=0.5 + 0.4 * k)
            ax.scatter(np.full(vals.size, i + (k - 0.5) * width), vals, s=8, color="k")
        chance = np.mean([row["decode_chance_q95"] for row in rows])
        ax.hlines(chance, i - width, i + width, color="k", ls="--")
    ax.set_xticks(range(len(names)), names, rotation=30)
    ax.set_ylabel("accuracy")
    ax.set_title("C  cross-mode decoding (light: perform->observe, dark: observe->perform);\n"
                 "dashed: 95th pct of sequence-shuffled chance", fontsize=9)
    fig.tight_layout()
    return png(fig)


def figure_ablations(pooled_r: dict[str, np.ndarray], per_seed: dict[str, list[dict[str, Any]]]) -> bytes:
    """Figure 3: r distributions and mirror-unit counts per condition, seeds pooled."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    names = list(pooled_r)
    ax = axes[0]
    parts = ax.violinplot([np.nan_to_num(pooled_r[n]) for n in names], showmedians=True)
    for body, name in zip(parts["bodies"], names):
        body.set_facecolor(COLORS.get(name, "k"))
    ax.set_xticks(range(1, len(names) + 1), names, rotation=20)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_ylabel("per-unit r (identity-paired)")
    ax.set_title("A  r by condition (all seeds)")
    ax = axes[1]
    for i, name in enumerate(names):
        vals = np.array([row["n_mirror_fdr"] / row["n_units"] for row in per_seed[name]])
        ax.bar(i, vals.mean(), color=COLORS.get(name, "k"), alpha=0.7)
        ax.scatter(np.full(vals.size, i), vals, s=10, color="k")
    ax.set_xticks(range(len(names)), names, rotation=20)
    ax.set_ylabel("fraction of units: significant mirror (BH-FDR)")
    ax.set_title("B  significant mirror units (sequence-level null)")
    fig.tight_layout()
    return png(fig)


def figure_temporal(lags: np.ndarray | None, r: np.ndarray, example: dict[str, np.ndarray],
                    max_lag: int) -> bytes:
    """Figure 4: (A) peak cross-correlation lag of the top mirror units, (B) the strongest anti-mirror unit."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    ax = axes[0]
    r0 = np.nan_to_num(r)
    top = np.argsort(r0)[::-1][:10]
    if lags is not None:
        ax.hist(lags[top], bins=np.arange(-max_lag - 0.5, max_lag + 1.5), color="tab:blue", rwidth=0.8)
    ax.set_xlabel("peak lag (timesteps; + = observe lags perform)")
    ax.set_ylabel("units (top 10 by r)")
    ax.set_title("A  temporal alignment of top mirror units")
    ax = axes[1]
    unit = int(np.argmin(r0))
    _trace(ax, example["perform"], example["observe"], unit, 3, "tab:red", f"unit {unit} (r={r0[unit]:.2f})")
    ax.set_xlabel("timestep (3 test sequences)")
    ax.set_title("B  strongest anti-mirror unit: perform solid, observe dashed")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return png(fig)


def spillover_curves(curves: dict[tuple[str, str], list[tuple[list[float], list[float]]]]) -> bytes:
    """Spillover against feedback updates: one line per (appearance, condition), the mean over seeds with
    its 95% interval shaded; one panel per appearance."""
    from mirrorlab.analysis.intervals import mean_ci95

    appearances = sorted({a for a, _ in curves})
    fig, axes = plt.subplots(1, len(appearances), figsize=(4.6 * len(appearances), 3.6), squeeze=False)
    for ax, appearance in zip(axes[0], appearances):
        for (a, cond), runs in sorted(curves.items()):
            if a != appearance:
                continue
            x = np.asarray(runs[0][0])
            stats = [mean_ci95([r[1][k] for r in runs]) for k in range(len(x))]
            mean = np.array([s["mean"] for s in stats])
            lo, hi = np.array([s["ci95"][0] for s in stats]), np.array([s["ci95"][1] for s in stats])
            colour = COLORS.get(cond.split("_selfvideo")[0], "k")
            ax.plot(x, mean, color=colour, label=f"{cond} ({len(runs)} seeds)", ls="--" if "selfvideo" in cond else "-")
            ax.fill_between(x, lo, hi, color=colour, alpha=0.15, lw=0)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_xlabel("feedback updates (SGD steps)")
        ax.set_ylabel("spillover: value at the other's success / own")
        ax.set_title(f"other_appearance = {appearance}", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return png(fig)


def imitation_success(success: dict[str, dict[str, dict[str, Any]]]) -> bytes:
    """Success by method (bars, mean with its 95% interval), one panel per setting (view, training data,
    watched appearance), three panels a row."""
    appearances = list(success)
    cols = min(3, len(appearances))
    rows = -(-len(appearances) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(max(5.0, 0.45 * max(len(m) for m in success.values()) + 2) * cols,
                                                  4.6 * rows), squeeze=False)
    for ax in axes.flat[len(appearances):]:
        ax.set_visible(False)
    for ax, appearance in zip(axes.flat, appearances):
        methods = list(success[appearance])
        means = np.array([success[appearance][m]["mean"] for m in methods])
        lo = np.array([success[appearance][m]["ci95"][0] for m in methods])
        hi = np.array([success[appearance][m]["ci95"][1] for m in methods])
        err = np.vstack([np.nan_to_num(means - lo), np.nan_to_num(hi - means)])
        colours = ["0.3" if m in ("oracle", "goal_given") else "0.7" if m == "random" else
                   COLORS.get(m.split("_", 1)[-1], "tab:purple") for m in methods]
        ax.bar(range(len(methods)), means, yerr=err, color=colours, capsize=3)
        ax.set_xticks(range(len(methods)), methods, rotation=60, ha="right", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("success (mean over seeds, 95% CI)")
        ax.set_title(appearance, fontsize=9)
    fig.tight_layout()
    return png(fig)


def learning_curve(rows: list[dict[str, Any]]) -> bytes:
    """Held-out inverse R^2 (solid) and its state ceiling (dashed) along each axis of the learning curve."""
    axes_names = [a for a in ("train_episodes", "frame_size", "window") if any(r["axis"] == a for r in rows)]
    fig, axes = plt.subplots(1, len(axes_names), figsize=(4.8 * len(axes_names), 3.8), squeeze=False)
    for ax, name in zip(axes[0], axes_names):
        sub = [r for r in rows if r["axis"] == name]
        for k, mode in enumerate(sorted({r["action_mode"] for r in sub})):
            pts = sorted({r["value"] for r in sub if r["action_mode"] == mode}, key=lambda v: (str(type(v)), v))
            x = np.arange(len(pts)) if name == "window" else np.array(pts, float)
            mean = [np.mean([r["inverse_r2"] for r in sub if r["action_mode"] == mode and r["value"] == v]) for v in pts]
            ceil = [np.mean([r["ceiling"] for r in sub if r["action_mode"] == mode and r["value"] == v]) for v in pts]
            ax.plot(x, mean, "o-", color=f"C{k}", label=f"{mode}: pixels")
            ax.plot(x, ceil, "--", color=f"C{k}", alpha=0.7, label=f"{mode}: ceiling (true joint state)")
            if name == "window":
                ax.set_xticks(x, pts)
        ax.axhline(0.8, color="0.6", lw=0.8, ls=":")
        ax.set_ylim(min(0.0, ax.get_ylim()[0]), 1.02)
        ax.set_xlabel(name.replace("_", " "))
        ax.set_ylabel("held-out inverse R^2")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return png(fig)


def forward_curve(rows: list[dict[str, Any]]) -> bytes:
    """The forward head's action sensitivity (mean over seeds) against training epochs, and for each form of the
    forward model at one number of epochs; the dotted line at 3 is the issue's target, at 1 the actions are ignored."""
    panels = [a for a in ("epochs", "forward") if any(r["axis"] == a for r in rows)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 3.8), squeeze=False)
    for ax, name in zip(axes[0], panels):
        sub = [r for r in rows if r["axis"] == name]
        values = list(dict.fromkeys(r["value"] for r in sorted(sub, key=lambda r: (str(type(r["value"])), r["value"]))))
        mean = [np.mean([r["forward_action_sensitivity"] for r in sub if r["value"] == v]) for v in values]
        if name == "epochs":
            ax.plot(values, mean, "o-")
            ax.set_xscale("log", base=2)
            ax.set_xlabel("training epochs")
        else:
            ax.barh(np.arange(len(values)), mean, color="C1")
            ax.set_yticks(np.arange(len(values)), values, fontsize=7)
            ax.set_xlabel("action sensitivity")
        for level, style in ((1.0, "-"), (3.0, ":")):
            (ax.axhline if name == "epochs" else ax.axvline)(level, color="0.6", lw=0.8, ls=style)
        if name == "epochs":
            ax.set_ylabel("forward action sensitivity")
        ax.set_title(name)
    fig.tight_layout()
    return png(fig)


def lesion_effects(cells: list[dict[str, Any]], outcome_names: dict[str, str]) -> bytes:
    """Lesion effect against k, one panel per (outcome, condition): the mirror set (mean, 95% CI over seeds)
    beside its matched-random null (mean and 95th percentile), the read-out control and anti-mirror units."""
    outcomes = list(dict.fromkeys(c["outcome"] for c in cells))
    conditions = list(dict.fromkeys(c["condition"] for c in cells))
    fig, axes = plt.subplots(len(outcomes), len(conditions), figsize=(3.6 * len(conditions), 2.9 * len(outcomes)),
                             squeeze=False)
    lines = [("mirror", "tab:blue", "o-", "mirror units"), ("null_mean", "0.4", "s--", "matched random (mean)"),
             ("null_p95", "0.6", "_:", "matched random (95th pct)"), ("readout_effect", "tab:green", "^-.",
                                                                     "top read-out (control)"),
             ("anti_mirror_effect", "tab:red", "v:", "anti-mirror")]
    for i, outcome in enumerate(outcomes):
        for j, condition in enumerate(conditions):
            ax = axes[i, j]
            sub = sorted((c for c in cells if c["outcome"] == outcome and c["condition"] == condition),
                         key=lambda c: c["k"])
            for key, color, style, label in lines:
                pts = [(c["k"], c[key]) for c in sub if key in c and np.isfinite(c[key]["mean"])]
                if not pts:
                    continue
                ks = np.array([k for k, _ in pts])
                mean = np.array([s["mean"] for _, s in pts])
                ax.plot(ks, mean, style, color=color, label=label, ms=4)
                if key == "mirror":
                    lo = np.array([s["ci95"][0] for _, s in pts])
                    hi = np.array([s["ci95"][1] for _, s in pts])
                    ax.fill_between(ks, np.where(np.isfinite(lo), lo, mean), np.where(np.isfinite(hi), hi, mean),
                                    color=color, alpha=0.2)
            ax.axhline(0, color="0.8", lw=0.8)
            ax.set_xscale("log", base=2)
            ax.set_title(f"{condition}", fontsize=9)
            ax.set_xlabel("k units silenced")
            ax.set_ylabel(f"damage: {outcome_names.get(outcome, outcome)}", fontsize=8)
    axes[0, 0].legend(fontsize=6)
    fig.tight_layout()
    return png(fig)


def dose_response(table: list[dict[str, Any]], measures: list[tuple[str, str]]) -> bytes:
    """Each measure against the selectivity term's weight (mean and 95% interval over seeds), one panel each."""
    cols = min(4, len(measures))
    rows = -(-len(measures) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.8 * rows), squeeze=False)
    for ax in axes.flat[len(measures):]:
        ax.set_visible(False)
    weights = np.array([t["selectivity_weight"] for t in table])
    for ax, (name, label) in zip(axes.flat, measures):
        mean = np.array([t[name]["mean"] for t in table])
        lo = np.array([t[name]["ci95"][0] for t in table])
        hi = np.array([t[name]["ci95"][1] for t in table])
        ax.plot(weights, mean, "o-", color="tab:blue", ms=4)
        ax.fill_between(weights, np.where(np.isfinite(lo), lo, mean), np.where(np.isfinite(hi), hi, mean),
                        color="tab:blue", alpha=0.2)
        ax.axvline(0, color="0.8", lw=0.8)
        ax.set_xlabel("selectivity weight (< 0 penalises, > 0 rewards mirroring)", fontsize=7)
        ax.set_title(label, fontsize=9)
    fig.tight_layout()
    return png(fig)


def variant_effects(comparisons: dict[str, dict[str, dict[str, Any]]], measures: list[tuple[str, str]]) -> bytes:
    """Each variant's paired difference from its control (mean and 95% interval over seeds), one panel per
    measure; comparisons: variant -> analysis.variants.compare_variant's result."""
    cols = min(4, len(measures))
    rows = -(-len(measures) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(measures):]:
        ax.set_visible(False)
    names = list(comparisons)
    for ax, (measure, label) in zip(axes.flat, measures):
        diffs = [comparisons[n][measure]["difference"] for n in names]
        mean = np.array([d["mean"] for d in diffs])
        lo = np.array([d["ci95"][0] for d in diffs])
        hi = np.array([d["ci95"][1] for d in diffs])
        err = np.vstack([np.nan_to_num(mean - lo), np.nan_to_num(hi - mean)])
        ax.bar(range(len(names)), mean, yerr=err, color="tab:blue", capsize=3)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
        ax.set_title(label.replace(": ", ":\n", 1), fontsize=8)
        ax.set_ylabel("variant - control (paired)", fontsize=7)
    fig.tight_layout()
    return png(fig)
