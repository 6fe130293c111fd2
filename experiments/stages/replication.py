"""The paper's toy experiment under its own protocol, with the nulls it lacks (replicate, sweep, study).

Per seed, one toy world and one paired data set; every condition (shared, separate, forward_only,
shuffled_labels, untrained) is trained on it from the same initialisation and analyzed on the same
held-out sequences. Each (condition, seed) is a *cell*, saved atomically as it finishes, so a killed
run continues with `--resume` and recomputes nothing that is already on disk.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mirrorlab.agents.conditions import CONDITIONS, check_conditions, get_condition
from mirrorlab.agents.runs import check_seed
from mirrorlab.analysis.measures import MeasureSettings, measure_mirroring
from mirrorlab.errors import UserError
from mirrorlab.experiments.runner import Job, resolve_workers, run_jobs
from mirrorlab.files import atomic_save_npz, atomic_write_json, claim_output_dir, load_npz, read_json, write_outputs
from mirrorlab.provenance import provenance

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
        for name in ("n_actions", "sensory_dim", "seq_len", "n_train", "n_test", "hidden_size",
                     "action_embed_dim", "batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"config: {name} must be >= 1, got {getattr(self, name)}")
        if self.n_actions < 2:
            raise UserError(f"config: n_actions must be >= 2, got {self.n_actions}")
        if self.epochs < 0:
            raise UserError(f"config: epochs must be >= 0, got {self.epochs}")
        resolve_workers(self.workers, "config: workers")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise UserError(f"config: lr must be a positive number, got {self.lr}")
        for name in ("noise_sigma", "forward_weight", "inverse_weight"):
            if not (getattr(self, name) >= 0 and math.isfinite(getattr(self, name))):
                raise UserError(f"config: {name} must be a number >= 0, got {getattr(self, name)}")
        if not math.isfinite(self.decay):
            raise UserError(f"config: decay must be a number, got {self.decay}")
        if self.max_lag >= self.seq_len:
            raise UserError(f"config: max_lag must be < seq_len ({self.seq_len}), got {self.max_lag}")
        if not self.seeds:
            raise UserError("config: seeds must name at least one seed")
        for seed in self.seeds:
            check_seed(seed, "config: seeds")
        if len(set(self.seeds)) != len(self.seeds):
            raise UserError(f"config: seeds must be distinct, got {list(self.seeds)}")
        check_conditions(self.conditions, "config: conditions")
        self.measure_settings().validate(self.hidden_size, self.n_test, self.seq_len)


def cell_name(condition: str, seed: int) -> str:
    return f"{condition}__seed{seed}"


def run_cell(config: ReplicateConfig, condition_name: str, seed: int) -> dict[str, Any]:
    """Train (unless untrained) and analyze one condition at one seed; arrays in, metrics out."""
    import torch
    from threadpoolctl import threadpool_limits

    # One thread per cell: cells run in parallel, and oversubscribed BLAS threads spin (40x slower here).
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        return _run_cell(config, condition_name, seed)


def _run_cell(config: ReplicateConfig, condition_name: str, seed: int) -> dict[str, Any]:
    from mirrorlab.agents.toy import build_toy_core, record_toy_activations
    from mirrorlab.agents.training import train_toy_core
    from mirrorlab.envs.toy import make_effects, make_sequences

    condition = get_condition(condition_name)
    world_rng = np.random.default_rng(seed)
    effects = make_effects(config.n_actions, config.sensory_dim, world_rng)
    train = make_sequences(config.n_train, config.seq_len, effects, config.decay, config.noise_sigma, world_rng)
    test = make_sequences(config.n_test, config.seq_len, effects, config.decay, config.noise_sigma, world_rng)

    model = build_toy_core(config.n_actions, config.sensory_dim, config.action_embed_dim, config.hidden_size,
                           condition.separate_cores, seed)
    history = train_toy_core(model, train, condition, epochs=config.epochs, batch_size=config.batch_size,
                             lr=config.lr, forward_weight=config.forward_weight,
                             inverse_weight=config.inverse_weight, seed=seed)
    acts = record_toy_activations(model, test)

    row: dict[str, Any] = {"condition": condition_name, "seed": seed,
                           "inverse_accuracy": acts.inverse_accuracy, "forward_mse": acts.forward_mse,
                           "final_train_loss": history[-1] if history else None}
    measured, arrays = measure_mirroring(acts.perform, acts.observe, test.actions, seed, config.measure_settings())
    row.update(measured)
    arrays.update(perform=acts.perform.astype(np.float32), observe=acts.observe.astype(np.float32),
                  actions=test.actions)
    return {"row": row, "arrays": arrays}


def save_cell(cells_dir: Path, condition: str, seed: int, result: dict[str, Any]) -> None:
    """Arrays first, then the row: a row on disk means the cell is complete."""
    name = cell_name(condition, seed)
    atomic_save_npz(cells_dir / f"{name}.npz", **result["arrays"])
    atomic_write_json(cells_dir / f"{name}.json", result["row"])


def load_cell(cells_dir: Path, condition: str, seed: int) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """A finished cell's row and arrays, or None when it is missing (or was left half-written)."""
    name = cell_name(condition, seed)
    row_path, arr_path = cells_dir / f"{name}.json", cells_dir / f"{name}.npz"
    if not (row_path.is_file() and arr_path.is_file()):
        return None
    return read_json(row_path, "cell"), load_npz(arr_path, "cell")


def check_resume(out: Path, config: ReplicateConfig) -> None:
    """A resumed run must have the same config as the one it continues."""
    earlier = read_json(out / "config.json", "--resume: the earlier run's") if (out / "config.json").is_file() else None
    if earlier is None:
        return
    now = json.loads(json.dumps(dataclasses.asdict(config)))
    before = earlier.get("config", {}) if isinstance(earlier, dict) else {}
    changed = sorted(k for k in set(before) | set(now) if k != "workers" and before.get(k) != now.get(k))
    if changed:
        raise UserError(f"--resume: the config differs from the earlier run in {out} ({', '.join(changed)}); "
                        "use a new --out or --force")


@dataclass
class Replication:
    """A replication's cell jobs, ready for the runner (alone, or beside other jobs, as the study does)."""

    config: ReplicateConfig
    out: Path
    jobs: list[Job]
    started: float

    @property
    def cells_dir(self) -> Path:
        return self.out / "cells"

    def done(self, job: Job) -> bool:
        return load_cell(self.cells_dir, *job.args[1:]) is not None

    def save(self, job: Job, result: dict[str, Any]) -> None:
        save_cell(self.cells_dir, *job.args[1:], result)


def prepare_replication(config: ReplicateConfig, out: Path, force: bool = False, resume: bool = False) -> Replication:
    """Check the config and the output folder, write config.json, and list the cells."""
    config.validate()
    if force and resume:
        raise UserError("--force and --resume contradict each other; pass one")
    started = time.perf_counter()
    if resume:
        check_resume(out, config)
    claim_output_dir(out, "replicate", resume=resume, force=force)
    atomic_write_json(out / "config.json", provenance(config, seeds=list(config.seeds)))
    (out / "cells").mkdir(exist_ok=True)
    jobs = [Job(f"toy:{cell_name(c, s)}", run_cell, (config, c, s), cost=2.0 if get_condition(c).trained else 1.0)
            for c in config.conditions for s in config.seeds]
    return Replication(config, out, jobs, started)


def finish_replication(rep: Replication) -> dict[str, Any]:
    """From the cells on disk: metrics.json, units.csv, figures and report.md."""
    from mirrorlab.analysis.claims import assess_claims
    from mirrorlab.analysis.replication_report import replication_outputs
    from mirrorlab.analysis.summary import summarise

    config, out = rep.config, rep.out
    cells = {(c, s): load_cell(rep.cells_dir, c, s) for c in config.conditions for s in config.seeds}
    metrics = provenance(config, seeds=list(config.seeds))
    metrics["protocol"] = metrics.pop("config")
    metrics["conditions"] = summarise([row for row, _ in cells.values()], config.conditions, config.seeds)
    metrics["claims"] = assess_claims({c: e["per_seed"] for c, e in metrics["conditions"].items()})
    metrics["wall_time_s"] = time.perf_counter() - rep.started
    write_outputs(out, replication_outputs(config, metrics, cells))
    metrics["wall_time_s"] = time.perf_counter() - rep.started
    atomic_write_json(out / "metrics.json", metrics)
    return {"metrics": metrics, "report": out / "report.md"}


def replicate(config: ReplicateConfig, out: Path, force: bool = False, resume: bool = False,
              show_progress: bool = True, ray_address: str | None = None) -> dict[str, Any]:
    """Run every missing cell in parallel, then write metrics.json, units.csv, figures and report.md."""
    from tqdm import tqdm

    rep = prepare_replication(config, out, force, resume)
    with tqdm(total=len(rep.jobs), desc="replicate", unit="cell", disable=not show_progress) as bar:
        run_jobs(rep.jobs, lambda job, result: (rep.save(job, result), bar.update(1)),
                 workers=resolve_workers(config.workers), ray_address=ray_address, done=rep.done,
                 on_skip=lambda _: bar.update(1))
    return finish_replication(rep)
