"""Heatmaps of the robustness map: one metric over every pair of varying grid axes, averaged over the rest.

A figure holds one panel per pair of axes that take more than one value (one axis: a single row; no
axis: a single cell). Each panel cell is the mean over seeds, and over every varying axis the panel does
not show (the subtitle names them). Effects (differences between conditions) use a diverging colour map
centred on 0; where a panel averages over seeds only, a `*` marks a cell whose 95% interval over seeds
excludes 0.
"""

from __future__ import annotations

import itertools
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mirrorlab.analysis.figures import png  # noqa: E402
from mirrorlab.analysis.intervals import mean_ci95  # noqa: E402


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _panel_values(rows: Sequence[dict[str, Any]], metric: str, x: str | None, y: str | None,
                  xs: Sequence[Any], ys: Sequence[Any]) -> tuple[np.ndarray, list[list[list[float]]]]:
    """Mean of `metric` per (y, x) cell, and the raw values that went into each cell; a None axis has one cell."""
    values: list[list[list[float]]] = [[[] for _ in xs] for _ in ys]
    for row in rows:
        v = row.get(metric)
        if v is None or not np.isfinite(v):
            continue
        i = ys.index(row[y]) if y is not None else 0
        j = xs.index(row[x]) if x is not None else 0
        values[i][j].append(float(v))
    mean = np.array([[np.mean(c) if c else np.nan for c in line] for line in values], dtype=float)
    return mean, values


def heatmap_figure(rows: Sequence[dict[str, Any]], axes: dict[str, Sequence[Any]], metric: str,
                   title: str, diverging: bool) -> bytes:
    """One PNG (bytes): `metric` from per-(grid point, seed) `rows` over every pair of varying `axes`."""
    varying = [a for a, vals in axes.items() if len(vals) > 1]
    pairs: list[tuple[str | None, str | None]]
    if len(varying) >= 2:
        pairs = list(itertools.combinations(varying, 2))
    else:
        pairs = [(varying[0] if varying else None, None)]

    def ticks(axis: str | None) -> list[Any]:
        return list(axes[axis]) if axis is not None else [None]

    panels = [(x, y, *_panel_values(rows, metric, x, y, ticks(x), ticks(y))) for x, y in pairs]
    scale = _colour_scale([mean for *_, mean, _ in panels], diverging)
    ncols = min(3, len(panels))
    nrows = int(np.ceil(len(panels) / ncols))
    fig, grid = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.6 * nrows), squeeze=False)
    for ax in grid.flat[len(panels):]:
        ax.axis("off")
    for ax, (x, y, mean, values) in zip(grid.flat, panels):
        others = [a for a in varying if a not in (x, y)]
        im = _draw_panel(ax, mean, values, scale, diverging, mark_significant=diverging and not others)
        _label_axes(ax, axes, x, y)
        ax.set_title("mean over seeds" + (f" and {', '.join(others)}" if others else ""), fontsize=8)
        fig.colorbar(im, ax=ax, fraction=0.046)
    note = "  (* 95% CI over seeds excludes 0)" if diverging else ""
    fig.suptitle(f"{title}{note}", fontsize=10)
    fig.tight_layout()
    return png(fig)


def _colour_scale(means: list[np.ndarray], diverging: bool) -> tuple[float, float, str]:
    """(vmin, vmax, colour map) shared by every panel: centred on 0 for an effect, else the finite range."""
    finite = np.concatenate([m[np.isfinite(m)] for m in means]) if means else np.array([])
    if diverging:
        lim = float(np.max(np.abs(finite))) if finite.size else 1.0
        return -(lim or 1.0), (lim or 1.0), "RdBu_r"
    vmin = float(finite.min()) if finite.size else 0.0
    vmax = float(finite.max()) if finite.size else 1.0
    return vmin, (vmax if vmax > vmin else vmin + 1e-9), "viridis"


def _draw_panel(ax, mean: np.ndarray, values: list[list[list[float]]], scale: tuple[float, float, str],
                diverging: bool, mark_significant: bool):
    """The panel's cells coloured and written, a `*` where the 95% interval over seeds excludes 0
    (`mark_significant`: an effect averaged over seeds only); returns the image for the colour bar."""
    vmin, vmax, cmap = scale
    im = ax.imshow(mean, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", origin="lower", interpolation="nearest")
    for i, j in itertools.product(range(mean.shape[0]), range(mean.shape[1])):
        if not np.isfinite(mean[i, j]):
            continue
        mark = ""
        if mark_significant:
            lo, hi = mean_ci95(values[i][j])["ci95"]
            mark = "*" if (lo > 0 or hi < 0) else ""
        shade = (mean[i, j] - vmin) / (vmax - vmin)
        dark = (abs(shade - 0.5) > 0.3) if diverging else (shade < 0.6)
        ax.text(j, i, f"{mean[i, j]:.2f}{mark}", ha="center", va="center", fontsize=8,
                color="white" if dark else "black")
    return im


def _label_axes(ax, axes: dict[str, Sequence[Any]], x: str | None, y: str | None) -> None:
    """Tick labels and names of the panel's axes (none for an axis the panel does not vary)."""
    if x is not None:
        ax.set_xticks(range(len(axes[x])), [_fmt(v) for v in axes[x]])
        ax.set_xlabel(x)
    else:
        ax.set_xticks([])
    if y is not None:
        ax.set_yticks(range(len(axes[y])), [_fmt(v) for v in axes[y]])
        ax.set_ylabel(y)
    else:
        ax.set_yticks([])


_CONDITION_COLOURS = {"shared": "tab:blue", "separate": "tab:orange", "forward_only": "tab:green",
                      "shuffled_labels": "tab:red", "untrained": "tab:gray"}


def _band(rows: Sequence[dict[str, Any]], axis: str, values: Sequence[Any], column: str) -> np.ndarray:
    """[len(values), 3]: mean, lower, upper 95% interval over the rows (seeds, other axes) at each value."""
    out = np.full((len(values), 3), np.nan)
    for i, v in enumerate(values):
        stats = mean_ci95([r[column] for r in rows if r[axis] == v and r.get(column) is not None])
        out[i] = stats["mean"], *stats["ci95"]
    return out


def axis_profile_figure(rows: Sequence[dict[str, Any]], axis: str, values: Sequence[Any],
                        conditions: Sequence[str], measures: Sequence[tuple[str, str]],
                        effects: Sequence[str]) -> bytes:
    """One PNG (bytes): each measure against `axis`, one line per condition, and each trained-minus-
    untrained effect, as means with shaded 95% intervals over the rows (seeds, pooled over other axes)."""
    panels = len(measures) + len(effects)
    ncols = 3
    nrows = int(np.ceil(panels / ncols))
    fig, grid = plt.subplots(nrows, ncols, figsize=(4.8 * ncols, 3.4 * nrows), squeeze=False)
    x = np.arange(len(values))
    for ax, (column, title) in zip(grid.flat, measures):
        for cond in conditions:
            band = _band(rows, axis, values, f"{cond}_{column}")
            colour = _CONDITION_COLOURS.get(cond, "k")
            ax.plot(x, band[:, 0], "o-", color=colour, label=cond, ms=3)
            ax.fill_between(x, band[:, 1], band[:, 2], color=colour, alpha=0.2, lw=0)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    for ax, column in zip(list(grid.flat)[len(measures):], effects):
        band = _band(rows, axis, values, column)
        ax.plot(x, band[:, 0], "o-", color="k", ms=3)
        ax.fill_between(x, band[:, 1], band[:, 2], color="k", alpha=0.2, lw=0)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_title(column.replace("_", " "), fontsize=9)
    for ax in grid.flat[:panels]:
        ax.set_xticks(x, [_fmt(v) for v in values])
        ax.set_xlabel(axis)
    for ax in grid.flat[panels:]:
        ax.axis("off")
    fig.suptitle(f"every measure against {axis}: mean and 95% interval over seeds", fontsize=10)
    fig.tight_layout()
    return png(fig)
