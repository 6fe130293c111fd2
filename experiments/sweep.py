"""`mirrorlab sweep`: the robustness map. The toy replication over a grid of protocol values, several
seeds per grid point, in parallel over the machine's cores or as tasks on a Ray cluster.

Grid file (TOML or JSON). Every top-level key but three is an *axis*: a ReplicateConfig field and the
list of values it takes; the grid is the product of the axes. Top-level keys go before any table.

| key               | meaning                                                             | default              |
|-------------------|---------------------------------------------------------------------|----------------------|
| FIELD = [v1, ..]  | an axis: inverse_weight (lambda), noise_sigma, n_actions (K), hidden_size, epochs, any field | -   |
| seeds = [..]      | the seeds run at every grid point                                   | [42, 1, 2]           |
| conditions = [..] | shared, separate, untrained, and optionally forward_only, shuffled_labels | those three    |
| [base] FIELD = v  | a fixed override of ReplicateConfig's default at every point        | the paper's protocol |

An unknown key, an empty axis, a value of the wrong type or a grid point that fails the config's own
checks is one clear error before any cell runs. `seeds`, `conditions` and `workers` are not axes.
n_permutations: a point whose hidden_size needs more permutations than the config holds for Bonferroni
to be able to reject (2 hidden_size / alpha, both tails) gets the minimum, and the sweep says so; when n_permutations is
itself an axis nothing is raised and a too-small value is rejected.

Cells and resuming. A job is one (grid point, seed, condition); its row is saved atomically as
DIR/cells/CONDITION-sSEED-HASH.json, HASH a digest of everything that determines the result (the full
config, condition and seed). A cell on disk is never recomputed: rerunning the same command continues a
killed sweep, and a changed or grown grid reuses every cell it shares with an earlier one. The untrained
network does not depend on the training settings (lr, batch_size, epochs, forward_weight,
inverse_weight), so grid points that differ only in those share one untrained cell. Cells are keyed by
config, not by code version: after changing the training or analysis code, start over with `--force`.

Outputs in DIR:
| file                 | content                                                                          |
|----------------------|----------------------------------------------------------------------------------|
| sweep.csv            | one row per grid point and seed: the axis values, per condition COND_METRIC, the effects |
| summary.csv          | one row per grid point: mean and 95% interval over seeds of the headline columns |
| heatmaps/METRIC.png  | the headline columns over every pair of varying axes (analysis/sweep_figures.py) |
| profiles/AXIS.png    | every measure against each varying axis, per condition, with 95% intervals over seeds |
| config.json          | the grid, the base config, adjustments, versions, git commit, wall time          |
| cells/               | one JSON per (grid point, seed, condition)                                       |

Per condition, mirror_frac_fdr = n_mirror_fdr / n_units (the same for Bonferroni, anti-mirror, and
with time-locked activity removed). Effects, paired by seed, for M in mirror_frac_fdr, frac_abs_r_gt_0.6 and
aligned_cka_debiased_excess (CKA minus the mean of its own null): trained_minus_untrained_M = shared - untrained; shared_minus_separate_M = shared -
separate (and shared_minus_forward_only_M, shared_minus_shuffled_labels_M when those conditions run). For separate cores only the alignment-invariant measure
(aligned_cka_debiased_excess) is a fair comparison; the identity-paired mirror fraction is reported beside it.

Ray (`--ray-address ADDR`, needs `pip install 'mirrorlab[cluster]'`): the same jobs run as Ray tasks
(one CPU each) on an existing cluster; this process writes each cell as its task returns, so resuming
works as locally. Every node must have this package installed at the same version. ADDR is what
`ray start --head` prints (HOST:6379), ray://HOST:10001 or auto; a cluster with token authentication is
joined with the token in ~/.ray/auth_token (or RAY_AUTH_TOKEN), and an address where nothing answers is
one line at once, before anything is written.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import io
import itertools
import json
import os
import time
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from mirrorlab.agents.conditions import CONDITIONS, check_conditions
from mirrorlab.agents.runs import check_seed
from mirrorlab.analysis.intervals import mean_ci95
from mirrorlab.config import coerce, read_config_file, replace_checked
from mirrorlab.errors import UserError
from mirrorlab.experiments.runner import Job, check_ray_address, resolve_workers, run_jobs
from mirrorlab.experiments.stages.replication import ReplicateConfig, run_cell
from mirrorlab.files import atomic_write_bytes, atomic_write_json, atomic_write_text, claim_output_dir
from mirrorlab.provenance import provenance

REQUIRED_CONDITIONS = ("shared", "separate", "untrained")
DEFAULT_SEEDS = (42, 1, 2)
NOT_AXES = ("seeds", "conditions", "workers")
# Fields the untrained network never reads: one untrained cell serves every value of them.
TRAINING_ONLY = ("lr", "batch_size", "epochs", "forward_weight", "inverse_weight")

# The default grid, shipped as package data: lambda (the forward/inverse loss weight, the
# tuning parameter of mirroring) x sensory noise x hidden size, 3 seeds, the paper's protocol otherwise.
# 16 points x 3 seeds x (shared + separate) = 96 trained cells + 12 untrained ones: 1,416 cell-seconds,
# 12 minutes on 2 idle cores as measured (trained cell 17-19 s at hidden 96, 10.6 s at 48; untrained 3-5 s).
DEFAULT_GRID_FILE = Path(__file__).resolve().parent / "grids" / "default.toml"

# Per-condition columns of sweep.csv, from the cell's row; fractions are counts over n_units.
_FRACTIONS = {
    "mirror_frac_fdr": "n_mirror_fdr",
    "mirror_frac_bonferroni": "n_mirror_bonferroni",
    "anti_mirror_frac_fdr": "n_anti_mirror_fdr",
    "mirror_frac_fdr_time_locked_removed": "n_mirror_fdr_time_locked_removed",
}
_COPIED = ("frac_abs_r_gt_0.6", "frac_r_gt_0.75", "max_r", "min_r", "mean_r", "aligned_cka_debiased",
           "aligned_cka_debiased_null_mean", "aligned_cka_debiased_excess", "aligned_cka_debiased_p", "congruence_matched",
           "decode_perform_to_observe", "decode_perform_to_observe_zscored", "decode_chance", "inverse_accuracy",
           "forward_mse", "final_train_loss")
# CKA enters the effects as its excess over its own sequence-level null: the nulls differ between
# conditions (an untrained observe path can share structure with the perform path by chance alone).
EFFECT_METRICS = ("mirror_frac_fdr", "frac_abs_r_gt_0.6", "aligned_cka_debiased_excess")
# The heatmaps: (column, title, diverging colour map).
HEATMAPS = (
    ("shared_mirror_frac_fdr", "mirror fraction, shared core (FDR-significant, r >= mirror_min_abs_r)", False),
    ("shared_frac_abs_r_gt_0.6", "fraction |r| > 0.6, shared core (the paper's metric)", False),
    ("trained_minus_untrained_mirror_frac_fdr", "trained - untrained: mirror fraction (shared core)", True),
    ("trained_minus_untrained_aligned_cka_debiased_excess", "trained - untrained: debiased CKA over its null "
     "(shared core)", True),
    ("shared_minus_separate_mirror_frac_fdr", "shared - separate: mirror fraction (identity-paired units)", True),
    ("shared_minus_separate_aligned_cka_debiased_excess", "shared - separate: debiased CKA over its null "
     "(alignment-invariant)", True),
)


@dataclass(frozen=True)
class Grid:
    """A validated grid: the axes in file order, the seeds, the conditions and the base config."""

    axes: dict[str, tuple[Any, ...]]
    seeds: tuple[int, ...]
    conditions: tuple[str, ...]
    base: ReplicateConfig
    base_overrides: dict[str, Any]
    source: str

    def points(self) -> list[dict[str, Any]]:
        names = list(self.axes)
        return [dict(zip(names, values)) for values in itertools.product(*self.axes.values())]

    def config_at(self, point: dict[str, Any]) -> tuple[ReplicateConfig, str | None]:
        """The checked config of one grid point, and a note when n_permutations had to be raised."""
        from mirrorlab.analysis.mirror_stats import min_permutations_for_bonferroni

        where = f"{self.source}: at {format_point(point)}"
        config = replace_checked(self.base, point, where)
        config = dataclasses.replace(config, seeds=self.seeds, conditions=self.conditions)
        note = None
        need = min_permutations_for_bonferroni(config.hidden_size, config.alpha)
        if "n_permutations" not in self.axes and config.n_permutations < need:
            note = (f"hidden_size={config.hidden_size}: n_permutations raised from {config.n_permutations} to "
                    f"{need} so that Bonferroni over {config.hidden_size} units at alpha={config.alpha} can reject")
            config = dataclasses.replace(config, n_permutations=need)
        try:
            config.validate()
        except UserError as err:
            raise UserError(f"{where}: {err}") from None
        return config, note


def format_point(point: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items()) or "the base config"


def parse_grid(data: dict[str, Any], source: str) -> Grid:
    """Check a grid mapping completely (every axis value, every grid point) before anything runs."""
    hints = typing.get_type_hints(ReplicateConfig)
    fields = [f.name for f in dataclasses.fields(ReplicateConfig)]
    data = dict(data)
    seeds = coerce(data.pop("seeds", list(DEFAULT_SEEDS)), tuple[int, ...], f"{source}: seeds")
    seeds = tuple(check_seed(v, f"{source}: seeds") for v in seeds)
    if not seeds:
        raise UserError(f"{source}: seeds is empty; give at least one seed")
    if len(set(seeds)) != len(seeds):
        raise UserError(f"{source}: seeds must be distinct, got {list(seeds)}")
    conditions = coerce(data.pop("conditions", list(REQUIRED_CONDITIONS)), tuple[str, ...], f"{source}: conditions")
    check_conditions(conditions, f"{source}: conditions (the effects need {', '.join(REQUIRED_CONDITIONS)})",
                     required=REQUIRED_CONDITIONS)
    overrides = data.pop("base", {})
    if not isinstance(overrides, dict):
        raise UserError(f"{source}: base must be a table of fixed config values, got {overrides!r}")
    for name in NOT_AXES:
        if name in overrides:
            where = "--workers" if name == "workers" else f"the top-level {name} list"
            raise UserError(f"{source}: base.{name} is not allowed; use {where}")
    base = replace_checked(ReplicateConfig(), overrides, f"{source}: base")

    axes: dict[str, tuple[Any, ...]] = {}
    for name, values in data.items():
        if name not in fields:
            raise UserError(f"{source}: unknown parameter {name!r}; an axis must be a ReplicateConfig field "
                            f"({', '.join(f for f in fields if f not in NOT_AXES)}), or seeds, conditions, base")
        if name == "workers":
            raise UserError(f"{source}: workers is not a grid axis; use --workers")
        if name in overrides:
            raise UserError(f"{source}: {name!r} is both an axis and in base; keep one")
        if not isinstance(values, list):
            raise UserError(f"{source}: axis {name!r} must be a list of values, got {values!r} "
                            "(fixed values go in the base table)")
        if not values:
            raise UserError(f"{source}: axis {name!r} is empty; give at least one value")
        typed = tuple(coerce(v, hints[name], f"{source}: {name}[{i}]") for i, v in enumerate(values))
        if len(set(typed)) != len(typed):
            raise UserError(f"{source}: axis {name!r} repeats a value: {list(values)}")
        axes[name] = typed
    grid = Grid(axes=axes, seeds=seeds, conditions=conditions, base=base, base_overrides=overrides, source=source)
    for point in grid.points():
        grid.config_at(point)
    return grid


def named_grids() -> dict[str, Path]:
    """The grids shipped with the package (experiments/grids/NAME.toml), by name."""
    return {p.stem: p for p in sorted(DEFAULT_GRID_FILE.parent.glob("*.toml"))}


def load_grid(path: str | Path | None) -> Grid:
    """A shipped grid by name (`default`, `hidden`), a .toml/.json grid file, or the default grid when None."""
    path = DEFAULT_GRID_FILE if path is None else named_grids().get(str(path), path)
    return parse_grid(read_config_file(path), f"grid file {path}")


# --- jobs and cells ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    """One (config, condition, seed) to run; `key` names its cell file."""

    config: ReplicateConfig
    condition: str
    seed: int
    key: str

    @property
    def filename(self) -> str:
        return f"{self.condition}-s{self.seed}-{self.key}.json"

    @property
    def cost(self) -> float:
        """Rough relative run time, to start the longest jobs first."""
        c = self.config
        analysis = c.n_test * c.hidden_size * 1e-3
        trained = c.epochs * c.n_train * c.hidden_size * 1e-4 if CONDITIONS[self.condition].trained else 0.0
        return trained * (1.5 if CONDITIONS[self.condition].separate_cores else 1.0) + analysis


def cell_config(config: ReplicateConfig, condition: str, seed: int) -> ReplicateConfig:
    """The config a cell runs under, stripped of what cannot change its result (so equal cells hash equal)."""
    default = ReplicateConfig()
    config = dataclasses.replace(config, seeds=(seed,), conditions=(condition,), workers=default.workers)
    if not CONDITIONS[condition].trained:
        config = dataclasses.replace(config, **{k: getattr(default, k) for k in TRAINING_ONLY})
    return config


def cell_key(config: ReplicateConfig, condition: str, seed: int) -> str:
    spec = {"config": dataclasses.asdict(config), "condition": condition, "seed": seed}
    for name in NOT_AXES:
        spec["config"].pop(name)
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def plan(grid: Grid) -> tuple[list[tuple[dict[str, Any], int, dict[str, Cell]]], list[Cell], list[str]]:
    """Per (grid point, seed) the cell of each condition; the distinct cells; the adjustment notes."""
    entries: list[tuple[dict[str, Any], int, dict[str, Cell]]] = []
    cells: dict[str, Cell] = {}
    notes: list[str] = []
    for point in grid.points():
        config, note = grid.config_at(point)
        if note and note not in notes:
            notes.append(note)
        for seed in grid.seeds:
            by_cond = {}
            for cond in grid.conditions:
                cfg = cell_config(config, cond, seed)
                cell = Cell(cfg, cond, seed, cell_key(cfg, cond, seed))
                by_cond[cond] = cells.setdefault(cell.key, cell)
            entries.append((point, seed, by_cond))
    return entries, list(cells.values()), notes


def compute_row(config: ReplicateConfig, condition: str, seed: int) -> dict[str, Any]:
    """Run one cell and keep its scalar row (the per-unit arrays stay behind: the map needs only rows)."""
    started = time.perf_counter()
    row = run_cell(config, condition, seed)["row"]
    row["wall_time_s"] = time.perf_counter() - started
    return row


def save_cell(cells_dir: Path, job: Cell, row: dict[str, Any]) -> None:
    atomic_write_json(cells_dir / job.filename, {"key": job.key, "condition": job.condition, "seed": job.seed,
                                                  "config": dataclasses.asdict(job.config), "row": row})


def load_cell(cells_dir: Path, job: Cell) -> dict[str, Any] | None:
    """The saved row of a job, or None; an unreadable file counts as not done (it is recomputed)."""
    path = cells_dir / job.filename
    try:
        cell = json.loads(path.read_text())
        return cell["row"] if cell.get("key") == job.key else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


# --- tables and figures ------------------------------------------------------------------------------------

def condition_columns(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    n_units = row["n_units"]
    for name, count in _FRACTIONS.items():
        out[name] = row[count] / n_units
    for name in _COPIED:
        out[name] = row.get(name)
    return out


def sweep_rows(grid: Grid, entries: Iterable[tuple[dict[str, Any], int, dict[str, Cell]]],
               rows_by_key: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (grid point, seed): axis values, seed, each condition's columns, the paired effects."""
    table = []
    for point, seed, jobs in entries:
        cols = {cond: condition_columns(rows_by_key[job.key]) for cond, job in jobs.items()}
        row: dict[str, Any] = {**point, "seed": seed, "n_units": rows_by_key[jobs["shared"].key]["n_units"],
                               "n_permutations": jobs["shared"].config.n_permutations}
        for cond in grid.conditions:
            row.update({f"{cond}_{k}": v for k, v in cols[cond].items()})
        for m in EFFECT_METRICS:
            row[f"trained_minus_untrained_{m}"] = cols["shared"][m] - cols["untrained"][m]
            row[f"shared_minus_separate_{m}"] = cols["shared"][m] - cols["separate"][m]
            for extra in ("forward_only", "shuffled_labels"):
                if extra in cols:
                    row[f"shared_minus_{extra}_{m}"] = cols["shared"][m] - cols[extra][m]
        table.append(row)
    return table


def summary_rows(grid: Grid, table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per grid point: mean and 95% interval over seeds of each heatmap column."""
    out = []
    for point in grid.points():
        rows = [r for r in table if all(r[k] == v for k, v in point.items())]
        entry: dict[str, Any] = {**point, "n_seeds": len(rows)}
        for column, *_ in HEATMAPS:
            stats = mean_ci95([r[column] for r in rows])
            entry.update({f"{column}_mean": stats["mean"], f"{column}_ci95_lo": stats["ci95"][0],
                          f"{column}_ci95_hi": stats["ci95"][1]})
        out.append(entry)
    return out


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
    atomic_write_text(path, buf.getvalue())


# The profiles: every measure of the replication against one axis, per condition, with intervals.
PROFILE_MEASURES = (
    ("frac_r_gt_0.75", "fraction r > 0.75 (paper: 25-30%)"),
    ("frac_abs_r_gt_0.6", "fraction |r| > 0.6 (paper: 35-40%)"),
    ("mirror_frac_fdr", "significant mirror units (BH-FDR, r >= 0.4), fraction"),
    ("aligned_cka_debiased_excess", "debiased CKA over its null"),
    ("decode_perform_to_observe", "cross-mode decoding, perform -> observe (accuracy)"),
    ("inverse_accuracy", "inverse head accuracy on true held-out labels"),
)


def write_profiles(out: Path, grid: Grid, table: list[dict[str, Any]]) -> list[Path]:
    """For each axis with more than one value: every measure against it, one line per condition (mean and
    95% interval over seeds, other axes pooled), plus the trained-minus-untrained effects."""
    from mirrorlab.analysis.sweep_figures import axis_profile_figure

    paths = []
    for axis, values in grid.axes.items():
        if len(values) > 1:
            png = axis_profile_figure(table, axis, list(values), grid.conditions, PROFILE_MEASURES,
                                      [f"trained_minus_untrained_{m}" for m in EFFECT_METRICS])
            paths.append(atomic_write_bytes(out / "profiles" / f"{axis}.png", png))
    return paths


def write_heatmaps(out: Path, grid: Grid, table: list[dict[str, Any]]) -> list[Path]:
    from mirrorlab.analysis.sweep_figures import heatmap_figure

    return [atomic_write_bytes(out / "heatmaps" / f"{column}.png", heatmap_figure(table, grid.axes, column, title,
                                                                                  diverging))
            for column, title, diverging in HEATMAPS]


# --- the sweep ---------------------------------------------------------------------------------------------

def sweep(grid: Grid, out: Path, workers: int = 0, ray_address: str | None = None, force: bool = False,
          show_progress: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every missing cell of `grid`, then write sweep.csv, summary.csv, heatmaps and config.json."""
    from tqdm import tqdm

    started = time.perf_counter()
    entries, cells, notes = plan(grid)
    workers = resolve_workers(workers)
    if ray_address:
        check_ray_address(ray_address)  # before the output folder is claimed: a dead address writes nothing
    claim_output_dir(out, "sweep", resume=True, force=force)
    cells_dir = out / "cells"
    cells_dir.mkdir(exist_ok=True)
    record = provenance(grid.base, seeds=list(grid.seeds))
    record.update(command="sweep", base_config=record.pop("config"),
                  grid={"source": grid.source, "axes": {k: list(v) for k, v in grid.axes.items()},
                        "seeds": list(grid.seeds), "conditions": list(grid.conditions),
                        "base": grid.base_overrides},
                  adjustments=notes, n_points=len(grid.points()), n_cells=len(cells))
    atomic_write_json(out / "config.json", record)
    for note in notes:
        log(f"sweep: {note}")

    rows_by_key = {cell.key: row for cell in cells if (row := load_cell(cells_dir, cell)) is not None}
    n_todo = len(cells) - len(rows_by_key)
    where = f"Ray cluster {ray_address}" if ray_address else f"{min(workers, max(n_todo, 1))} local worker(s)"
    log(f"sweep: {len(grid.points())} grid points x {len(grid.seeds)} seeds: {len(cells)} cells, "
        f"{len(rows_by_key)} already done, {n_todo} to run on {where}")
    jobs = [Job(cell.key, compute_row, (cell.config, cell.condition, cell.seed), cost=cell.cost) for cell in cells]
    by_key = {cell.key: cell for cell in cells}

    def saved(job: Job, row: dict[str, Any]) -> None:
        save_cell(cells_dir, by_key[job.key], row)
        rows_by_key[job.key] = row
        bar.update(1)

    with tqdm(total=len(cells), initial=len(rows_by_key), desc="sweep", unit="cell", disable=not show_progress) as bar:
        ran = run_jobs(jobs, saved, workers=workers, ray_address=ray_address, done=lambda job: job.key in rows_by_key)

    table = sweep_rows(grid, entries, rows_by_key)
    write_csv(out / "sweep.csv", table)
    write_csv(out / "summary.csv", summary_rows(grid, table))
    figures = write_heatmaps(out, grid, table) + write_profiles(out, grid, table)
    wall = time.perf_counter() - started
    record.update(computed=len(ran), reused=len(cells) - len(ran), wall_time_s=wall)
    atomic_write_json(out / "config.json", record)
    return {"rows": table, "computed": len(ran), "reused": len(cells) - len(ran), "figures": figures, "wall_time_s": wall}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sweep", help="the robustness map: the replication over a grid of protocol values, several seeds each",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("results/sweep"),
                   help="output folder (default: %(default)s); an existing sweep there is continued")
    p.add_argument("--grid", default=None,
                   help="a shipped grid by name (default, hidden) or a .toml/.json grid file (default: default)")
    p.add_argument("--workers", type=int, default=0, help="local parallel processes (default: one per CPU core)")
    p.add_argument("--ray-address", default=None,
                   help="run the cells as tasks on this existing Ray cluster (e.g. auto, HOST:6379, ray://HOST:10001)")
    p.add_argument("--force", action="store_true", help="discard the cells already in --out and start again")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    resolve_workers(args.workers)
    grid = load_grid(args.grid)
    result = sweep(grid, args.out, workers=args.workers, ray_address=args.ray_address, force=args.force)
    print(f"sweep: {result['computed']} cells computed, {result['reused']} reused; "
          f"wrote {args.out / 'sweep.csv'} and {len(result['figures'])} figures (heatmaps/, profiles/)")
    print(f"wall time: {result['wall_time_s']:.0f} s on {resolve_workers(args.workers)} worker(s), load average "
          f"{os.getloadavg()[0]:.1f}")
    return 0
