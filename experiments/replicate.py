"""`mirrorlab replicate`: the seed paper's toy experiment under its own protocol, with the nulls it lacks.

Per seed, one toy world and one paired data set; every condition (shared, separate, forward_only,
shuffled_labels, untrained) is trained on it from the same initialisation and analysed on the same
held-out sequences. Each (condition, seed) is a *cell*, saved atomically as it finishes, so a killed
run continues with `--resume` and recomputes nothing that is already on disk.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.conditions import CONDITIONS, get_condition
from analysis.claims import assess_claims
from analysis.summary import summarise
from analysis.measures import MeasureSettings, measure_mirroring
from experiments.config import build_config, parse_int_list
from experiments.errors import UserError
from experiments.provenance import atomic_save_npz, atomic_write_json, ensure_writable_dir, provenance


_MEASURES = MeasureSettings()


@dataclass(frozen=True)
class ReplicateConfig:
    """Every default of the replication; the defaults are the paper's protocol exactly."""

    # The toy world (paper: K = 6, R^16, A = 0.9 I, small Gaussian noise, T = 12).
    n_actions: int = 6
    sensory_dim: int = 16
    decay: float = 0.9
    noise_sigma: float = 0.05
    seq_len: int = 12
    n_train: int = 2000
    n_test: int = 300
    # The network (paper: GRU hidden 96, 96-d action embedding, Linear(16, 96) sensory projection).
    hidden_size: int = 96
    action_embed_dim: int = 96
    # Training (paper: Adam 1e-3, batch 64, 20 epochs, loss = forward + inverse).
    lr: float = 1e-3
    batch_size: int = 64
    epochs: int = 20
    forward_weight: float = 1.0
    inverse_weight: float = 1.0
    # The study: seed 42 is the paper's; four more give intervals.
    seeds: tuple[int, ...] = (42, 1, 2, 3, 4)
    conditions: tuple[str, ...] = tuple(CONDITIONS)
    # Analysis: defaults from analysis.measures.MeasureSettings, the one place they are set.
    n_permutations: int = _MEASURES.n_permutations
    alpha: float = _MEASURES.alpha
    mirror_min_abs_r: float = _MEASURES.mirror_min_abs_r
    decode_folds: int = _MEASURES.decode_folds
    decode_shuffles: int = _MEASURES.decode_shuffles
    max_lag: int = _MEASURES.max_lag
    lag_permutations: int = _MEASURES.lag_permutations
    align_permutations: int = _MEASURES.align_permutations
    cca_components: int = _MEASURES.cca_components
    congruence_permutations: int = _MEASURES.congruence_permutations
    workers: int = 0                # 0: one per CPU core

    def measure_settings(self) -> MeasureSettings:
        return MeasureSettings(**{f.name: getattr(self, f.name) for f in dataclasses.fields(MeasureSettings)
                                  if f.name != "n_actions"}, n_actions=self.n_actions)

    def validate(self) -> None:
        from analysis.mirror_stats import min_permutations_for_bonferroni

        for name in ("n_actions", "sensory_dim", "seq_len", "n_train", "n_test", "hidden_size",
                     "action_embed_dim", "batch_size", "decode_folds", "decode_shuffles", "lag_permutations",
                     "align_permutations", "cca_components", "congruence_permutations"):
            if getattr(self, name) < 1:
                raise UserError(f"config: {name} must be >= 1, got {getattr(self, name)}")
        if self.n_actions < 2:
            raise UserError(f"config: n_actions must be >= 2, got {self.n_actions}")
        if self.epochs < 0 or self.max_lag < 0 or self.workers < 0:
            raise UserError("config: epochs, max_lag and workers must be >= 0")
        if self.max_lag >= self.seq_len:
            raise UserError(f"config: max_lag must be < seq_len ({self.seq_len}), got {self.max_lag}")
        if self.n_test < max(2 * self.decode_folds, 4):
            raise UserError(f"config: n_test must be >= 2 * decode_folds, got {self.n_test}")
        if not self.seeds:
            raise UserError("config: seeds must name at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise UserError(f"config: seeds must be distinct, got {list(self.seeds)}")
        for name in self.conditions:
            if name not in CONDITIONS:
                raise UserError(f"config: unknown condition {name!r}; expected one of {', '.join(CONDITIONS)}")
        if not 0 < self.alpha < 1:
            raise UserError(f"config: alpha must be in (0, 1), got {self.alpha}")
        need = min_permutations_for_bonferroni(self.hidden_size, self.alpha)
        if self.n_permutations < need:
            raise UserError(f"config: n_permutations must be >= {need} so that Bonferroni over "
                            f"{self.hidden_size} units at alpha={self.alpha} can reject; got {self.n_permutations}")


def cell_name(condition: str, seed: int) -> str:
    return f"{condition}__seed{seed}"


def run_cell(config: ReplicateConfig, condition_name: str, seed: int) -> dict[str, Any]:
    """Train (unless untrained) and analyse one condition at one seed; arrays in, metrics out."""
    import torch
    from threadpoolctl import threadpool_limits

    # One thread per cell: cells run in parallel, and oversubscribed BLAS threads spin (40x slower here).
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        return _run_cell(config, condition_name, seed)


def _run_cell(config: ReplicateConfig, condition_name: str, seed: int) -> dict[str, Any]:
    from agents.toy_training import build_toy_core, record_activations, train_toy_core
    from envs.toy import make_effects, make_sequences

    condition = get_condition(condition_name)
    world_rng = np.random.default_rng(seed)
    effects = make_effects(config.n_actions, config.sensory_dim, world_rng)
    train = make_sequences(config.n_train, config.seq_len, effects, config.decay, config.noise_sigma, world_rng)
    test = make_sequences(config.n_test, config.seq_len, effects, config.decay, config.noise_sigma, world_rng)

    model = build_toy_core(config.n_actions, config.sensory_dim, config.action_embed_dim, config.hidden_size,
                           condition.separate_cores, seed)
    history = train_toy_core(model, train, condition, epochs=config.epochs, batch_size=config.batch_size,
                             lr=config.lr, forward_weight=config.forward_weight,
                             inverse_weight=config.inverse_weight, rng=np.random.default_rng([seed, 1]))
    acts = record_activations(model, test)

    row: dict[str, Any] = {"condition": condition_name, "seed": seed,
                           "inverse_accuracy": acts.inverse_accuracy, "forward_mse": acts.forward_mse,
                           "final_train_loss": history[-1] if history else None}
    measured, arrays = measure_mirroring(acts.perform, acts.observe, test.actions, seed, config.measure_settings())
    row.update(measured)
    arrays.update(perform=acts.perform.astype(np.float32), observe=acts.observe.astype(np.float32),
                  actions=test.actions)
    return {"row": row, "arrays": arrays}


def _run_and_save(config: ReplicateConfig, condition: str, seed: int, cells_dir: str) -> dict[str, Any]:
    result = run_cell(config, condition, seed)
    name = cell_name(condition, seed)
    # Arrays first, then the row: a row on disk means the cell is complete.
    atomic_save_npz(Path(cells_dir) / f"{name}.npz", **result["arrays"])
    atomic_write_json(Path(cells_dir) / f"{name}.json", result["row"])
    return result["row"]


def load_cell(cells_dir: Path, condition: str, seed: int) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    name = cell_name(condition, seed)
    row_path, arr_path = cells_dir / f"{name}.json", cells_dir / f"{name}.npz"
    if not (row_path.is_file() and arr_path.is_file()):
        return None
    row = json.loads(row_path.read_text())
    with np.load(arr_path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return row, arrays


def prepare_out_dir(out: Path, config: ReplicateConfig, force: bool, resume: bool) -> None:
    """Refuse to overwrite results silently: an existing run needs --resume (same config) or --force."""
    config_path = out / "config.json"
    if out.exists() and any(out.iterdir()):
        if resume:
            if not config_path.is_file():
                raise UserError(f"--resume: {out} holds no config.json of an earlier run")
            earlier = json.loads(config_path.read_text())["config"]
            now = json.loads(json.dumps(dataclasses.asdict(config)))
            changed = sorted(k for k in set(earlier) | set(now) if earlier.get(k) != now.get(k))
            if changed:
                raise UserError(f"--resume: the config differs from the earlier run in {out} "
                                f"({', '.join(changed)}); use a new --out or --force")
        elif force:
            shutil.rmtree(out)
        else:
            raise UserError(f"{out} already holds results; pass --resume to continue that run or --force to "
                            "replace it")
    ensure_writable_dir(out, "--out")
    atomic_write_json(config_path, provenance(config, seeds=list(config.seeds)))


def replicate(config: ReplicateConfig, out: Path, force: bool = False, resume: bool = False,
              show_progress: bool = True) -> dict[str, Any]:
    """Run every missing cell in parallel, then write metrics.json, units.csv, figures and report.md."""
    from tqdm import tqdm

    from analysis.replication_report import write_replication_outputs

    config.validate()
    started = time.perf_counter()
    prepare_out_dir(out, config, force, resume)
    cells_dir = out / "cells"
    cells_dir.mkdir(exist_ok=True)
    todo = [(c, s) for c in config.conditions for s in config.seeds if load_cell(cells_dir, c, s) is None]
    workers = config.workers or os.cpu_count() or 1
    bars = {c: tqdm(total=len(config.seeds), desc=f"{c:>16}", position=i, unit="seed", leave=True,
                    disable=not show_progress)
            for i, c in enumerate(config.conditions)}
    for c in config.conditions:
        bars[c].update(len(config.seeds) - sum(1 for cc, _ in todo if cc == c))
    if todo:
        # Untrained cells are cheap: schedule the expensive trained cells first to balance the workers.
        todo.sort(key=lambda cs: (not get_condition(cs[0]).trained, cs[1]))
        if workers == 1:
            for c, s in todo:
                _run_and_save(config, c, s, str(cells_dir))
                bars[c].update(1)
        else:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx) as pool:
                futures = {pool.submit(_run_and_save, config, c, s, str(cells_dir)): c for c, s in todo}
                for fut in as_completed(futures):
                    fut.result()
                    bars[futures[fut]].update(1)
    for bar in bars.values():
        bar.close()
    cells = {(c, s): load_cell(cells_dir, c, s) for c in config.conditions for s in config.seeds}
    metrics = provenance(config, seeds=list(config.seeds))
    metrics["protocol"] = metrics.pop("config")
    metrics["conditions"] = summarise([row for row, _ in cells.values()], config.conditions, config.seeds)
    metrics["claims"] = assess_claims({c: e["per_seed"] for c, e in metrics["conditions"].items()})
    metrics["wall_time_s"] = time.perf_counter() - started
    report = write_replication_outputs(out, config, metrics, cells)
    metrics["wall_time_s"] = time.perf_counter() - started
    atomic_write_json(out / "metrics.json", metrics)
    return {"metrics": metrics, "report": report}


def config_from_args(args: argparse.Namespace) -> ReplicateConfig:
    return build_config(ReplicateConfig(), args.config, {
        "seeds": None if args.seeds is None else parse_int_list(args.seeds, "--seeds"),
        "conditions": None if args.conditions is None else tuple(c.strip() for c in args.conditions.split(",") if c.strip()),
        "epochs": args.epochs, "workers": args.workers})


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "replicate", help="the seed paper's toy experiment, with untrained and sequence-level nulls",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("results/replicate"),
                   help="output folder for metrics.json, units.csv, report.md and figures (default: %(default)s)")
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default: 42,1,2,3,4)")
    p.add_argument("--conditions", default=None,
                   help=f"comma-separated conditions (default: all of {','.join(CONDITIONS)})")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: 20, the paper's)")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: one per CPU core)")
    p.add_argument("--config", default=None,
                   help="a .toml or .json file setting any ReplicateConfig field (flags override it)")
    p.add_argument("--force", action="store_true", help="replace the results already in --out")
    p.add_argument("--resume", action="store_true", help="continue a killed run in --out; finished cells are kept")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if args.force and args.resume:
        raise UserError("--force and --resume contradict each other; pass one")
    config = config_from_args(args)
    started = time.perf_counter()
    result = replicate(config, args.out, force=args.force, resume=args.resume)
    print(f"report: {result['report']}")
    print(f"wall time: {time.perf_counter() - started:.1f} s")
    return 0
