"""Do mirror units matter? Lesions inside the recurrence of trained cores, and a selectivity dose-response (lesion, study).

Per embodied run (analyzed: its unit table is read from the analysis's units.csv, its training activity
from the recorded activations): the unit sets of `analysis.lesion` are silenced inside the GRU
(`agents.lesion`) and every outcome of `OUTCOMES` is scored on the run's held-out episodes. Toy cores are
not kept by the replication, so the toy part retrains them under the replication's exact protocol (same
config and seed: the same weights on CPU) and tests them on its held-out sequences. The dose-response
trains toy shared cores with a term that rewards (weight > 0) or penalises (< 0) per-unit perform-observe
correlation (`agents.training.selectivity_loss`) and reports mirror units and inverse accuracy against it.
Each run or cell is a runner job whose result is saved as it arrives (`OUT/runs/`), so a killed command
resumes; the summary (`metrics.json`, `report.md`, `figures/`) is rebuilt from the saved results.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np

from mirrorlab.agents.lesion import ABLATIONS
from mirrorlab.analysis.lesion import K_VALUES, MIN_NULL_SETS, UnitTable
from mirrorlab.errors import UserError
from mirrorlab.experiments.runner import Job, SavedResults, check_resumed_config, resolve_workers, run_jobs
from mirrorlab.experiments.stages.replication import ReplicateConfig
from mirrorlab.files import atomic_write_bytes, atomic_write_json, atomic_write_text, claim_output_dir
from mirrorlab.provenance import provenance


@dataclass(frozen=True)
class LesionConfig:
    """Every default of the lesion study."""

    ks: tuple[int, ...] = K_VALUES           # set sizes, each used where a run has that many mirror units
    n_random: int = MIN_NULL_SETS            # matched-random null sets per k
    ablations: tuple[str, ...] = ("mean",)   # of agents.lesion.ABLATIONS: zero, mean, resample
    chunk: int = 8                           # unit sets run side by side in one batch
    toy: bool = False                        # also the toy world's cores (retrained under the replication's protocol)
    toy_seeds: tuple[int, ...] = ReplicateConfig().seeds
    toy_conditions: tuple[str, ...] = ("shared", "separate", "untrained")
    selectivity_weights: tuple[float, ...] = ()  # the toy dose-response's strengths, e.g. (-1, -0.3, 0, 0.3, 1)
    workers: int = 0                         # 0: one per CPU core
    # Imitation under lesions: the core-based methods rolled out in the env per unit set, so on a budget
    # (sized for the small preset: README): only at each condition's headline k, the mirror set, the read-out
    # control, the anti-mirror set and the first `imitation_random` matched-random sets, on a few test videos.
    # Synthesis is left out by default: it costs as much as the two other planners together, and its forward
    # head barely depends on the actions after the small preset's 10 epochs (action sensitivity 1.01, README
    # section 3, "The forward model").
    imitation_methods: tuple[str, ...] = ("inverse", "closed_loop", "latent", "goal_inference")
    imitation_planner_conditions: tuple[str, ...] = ("shared",)  # whose cores plan (as imitation's mirror_conditions)
    imitation_videos: int = 4                # test videos per run (the imitation stage's split)
    imitation_random: int = 20               # matched-random null sets for imitation (of the n_random)
    imitation_plan_iterations: int = 100     # the planners' Adam steps (the small preset's imitation)

    def validate(self) -> None:
        from mirrorlab.agents.conditions import check_conditions
        from mirrorlab.agents.runs import check_seed

        if not self.ks or any(k < 1 for k in self.ks) or len(set(self.ks)) != len(self.ks):
            raise UserError(f"config: ks must be distinct set sizes >= 1, got {list(self.ks)}")
        if self.n_random < MIN_NULL_SETS:
            raise UserError(f"config: n_random must be >= {MIN_NULL_SETS} null sets, got {self.n_random}")
        if not self.ablations or any(a not in ABLATIONS for a in self.ablations):
            raise UserError(f"config: ablations must name some of {', '.join(ABLATIONS)}, got {list(self.ablations)}")
        if self.chunk < 1:
            raise UserError(f"config: chunk must be >= 1, got {self.chunk}")
        for seed in self.toy_seeds:
            check_seed(seed, "config: toy_seeds")
        check_conditions(self.toy_conditions, "config: toy_conditions")
        if any(not math.isfinite(w) for w in self.selectivity_weights):
            raise UserError(f"config: selectivity_weights must be numbers, got {list(self.selectivity_weights)}")
        resolve_workers(self.workers, "config: workers")
        self.validate_imitation()

    def validate_imitation(self) -> None:
        from mirrorlab.agents.conditions import check_conditions
        from mirrorlab.agents.imitation_methods import METHODS

        core_rows = [m.name for m in METHODS if m.per_run]
        if any(m not in core_rows for m in self.imitation_methods):
            raise UserError(f"config: imitation_methods must name some of {', '.join(core_rows)} (the core-based "
                            f"methods), got {list(self.imitation_methods)}")
        if self.imitation_planner_conditions:
            check_conditions(self.imitation_planner_conditions, "config: imitation_planner_conditions")
        for name in ("imitation_videos", "imitation_plan_iterations"):
            if getattr(self, name) < 1:
                raise UserError(f"config: {name} must be >= 1, got {getattr(self, name)}")
        if not 2 <= self.imitation_random <= self.n_random:
            raise UserError(f"config: imitation_random must be 2..n_random ({self.n_random}), got {self.imitation_random}")


# --- outcomes: what a lesion is scored on --------------------------------------------------------------------
def r2(prediction, truth) -> float:
    """R^2 averaged over action dimensions, as sklearn's r2_score (uniform_average) and the analysis score it."""
    p = prediction.reshape(-1, prediction.shape[-1]).double()
    t = truth.reshape(-1, truth.shape[-1]).double()
    return float((1 - ((t - p) ** 2).sum(0) / ((t - t.mean(0)) ** 2).sum(0)).mean())


def mse(prediction, truth) -> float:
    """In float32, as training scores it: a float64 copy of every predicted frame cost a quarter of a run's time."""
    from torch.nn import functional as F

    return float(F.mse_loss(prediction, truth.to(prediction.dtype)))


def accuracy(prediction, truth) -> float:
    return float((prediction.argmax(-1) == truth).double().mean())


def cross_entropy(prediction, truth) -> float:
    """The inverse head's loss on discrete actions: it still moves when accuracy sits at its ceiling."""
    from torch.nn import functional as F

    return float(F.cross_entropy(prediction.reshape(-1, prediction.shape[-1]).double(), truth.reshape(-1)))


@dataclass(frozen=True)
class Outcome:
    """One thing a lesion can damage: scored by `score(head output, truth)` on the probe named `probe`.
    An outcome that is not a head's score on a probe (imitation success: a closed-loop rollout of the
    lesioned core per unit set) subclasses this and overrides `scores`."""

    name: str
    question: str            # what it tests mirror units to be necessary for: "watching", "doing", ...
    probe: str               # agents.lesion.embodied_probes / toy_probes key
    label: str
    higher_is_better: bool
    score: Callable[..., float]

    def scores(self, probes: dict, masks, ablation: str, pools: dict, seed: int, chunk: int) -> np.ndarray:
        """The outcome with each unit set of `masks` [S, H] silenced, [S]."""
        from mirrorlab.agents.lesion import probe_scores

        probed = probes[self.probe]
        return probe_scores(probed.probe, masks, ablation, pools[probed.probe.mode], seed,
                            partial(self.score, truth=probed.truth), chunk)

    def measured_on(self, probes: dict) -> bool:
        """Whether this run has what the outcome is scored on."""
        return self.probe in probes

    def chosen(self, sets: list, probes: dict, config: LesionConfig) -> list[int]:
        """Which of the run's unit sets this outcome silences (indices into `sets`): all of them."""
        return list(range(len(sets)))


@dataclass(frozen=True)
class ImitationOutcome(Outcome):
    """Imitation of one core-based method under lesions: `measure` (success or final distance, the mean over
    a few test videos) with each set silenced, rolled out on the self arm (`agents.lesion.ImitationProbe`).
    An episode per set and video, so only at the headline k and against `imitation_random` null sets."""

    method: str = ""
    measure: str = "success"

    def measured_on(self, probes: dict) -> bool:
        return self.probe in probes and self.method in probes[self.probe].methods

    def chosen(self, sets: list, probes: dict, config: LesionConfig) -> list[int]:
        k = probes[self.probe].k
        at_k = [i for i, s in enumerate(sets) if s.k == k]
        random = [i for i in at_k if sets[i].kind == "matched_random"][:config.imitation_random]
        return [i for i in at_k if sets[i].kind != "matched_random"] + random

    def scores(self, probes: dict, masks, ablation: str, pools: dict, seed: int, chunk: int) -> np.ndarray:
        return probes[self.probe].scores(masks, ablation, pools, seed)[(self.method, self.measure)]


IMITATION_LABELS = {"inverse": "inverse head, open loop", "closed_loop": "inverse head, closed loop",
                    "synthesis": "synthesis", "latent": "latent matching", "goal_inference": "goal inference"}


def imitation_outcomes() -> list[ImitationOutcome]:
    """One outcome per core-based method and measure: success (higher is better) and final distance."""
    from mirrorlab.agents.imitation_methods import METHODS

    return [ImitationOutcome(f"imitation_{measure}_{m.name}", "imitation", "imitation",
                             f"imitation {label}: {IMITATION_LABELS.get(m.name, m.name)}", measure == "success",
                             _not_a_head_score, method=m.name, measure=measure)
            for m in METHODS if m.per_run
            for measure, label in (("success", "success"), ("final_distance", "final distance (m)"))]


def _not_a_head_score(*_args, **_kwargs) -> float:
    raise TypeError("an imitation outcome is scored by rollouts (ImitationOutcome.scores), not a head's output")


# A list: a new outcome is one more entry.
OUTCOMES = [
    Outcome("inverse_r2", "watching", "observe", "inverse R^2, held-out demonstrations", True, r2),
    Outcome("inverse_r2_babble", "watching", "observe_babble", "inverse R^2, held-out babbling", True, r2),
    Outcome("forward_mse", "doing", "perform", "forward error (pixel MSE)", False, mse),
    Outcome("toy_inverse_accuracy", "watching", "observe", "toy inverse accuracy", True, accuracy),
    Outcome("toy_inverse_loss", "watching", "observe", "toy inverse cross-entropy", False, cross_entropy),
    Outcome("toy_forward_mse", "doing", "perform", "toy forward error (MSE)", False, mse),
    *imitation_outcomes(),
]
IMITATION = tuple(o.name for o in OUTCOMES if isinstance(o, ImitationOutcome))
EMBODIED = ("inverse_r2", "inverse_r2_babble", "forward_mse", *IMITATION)
TOY = ("toy_inverse_accuracy", "toy_inverse_loss", "toy_forward_mse")


def lesion_effects(probes: dict, pools: dict, table: UnitTable, alpha: float, min_abs_r: float,
                   outcomes: tuple[str, ...], config: LesionConfig, seed: int) -> dict[str, Any]:
    """Every unit set of the run silenced for every ablation and outcome: effect rows (damage; positive =
    harm) and the intact scores."""
    from mirrorlab.agents.lesion import unit_masks
    from mirrorlab.analysis.lesion import choose_unit_sets

    sets = choose_unit_sets(table, alpha, min_abs_r, np.random.default_rng([seed, 22]), config.ks, config.n_random)
    masks = unit_masks([np.zeros(0, int)] + [s.units for s in sets], len(table.r))  # row 0: intact
    rows, intact = [], {}
    for outcome in (o for o in OUTCOMES if o.name in outcomes and o.measured_on(probes)):
        chosen = outcome.chosen(sets, probes, config)
        for ablation in config.ablations:
            scores = outcome.scores(probes, masks[[0] + [i + 1 for i in chosen]], ablation, pools, seed, config.chunk)
            intact[outcome.name] = float(scores[0])
            damage = (scores[0] - scores[1:]) if outcome.higher_is_better else (scores[1:] - scores[0])
            grouped: dict[tuple[str, int], list[float]] = {}
            for s, d in zip((sets[i] for i in chosen), damage):
                grouped.setdefault((s.kind, s.k), []).append(float(d))
            rows += [{"ablation": ablation, "outcome": outcome.name, "kind": kind, "k": k, "effects": effects}
                     for (kind, k), effects in grouped.items()]
    return {"effects": rows, "intact": intact, "sets": {f"{s.kind}:{s.k}": s.units.tolist() for s in sets
                                                        if s.kind != "matched_random"}}


def unit_table(r, p_greater, p_less, q_fdr, pools: dict, model) -> UnitTable:
    """The analysis's per-unit test with what the null is matched on: each mode's activity variance on
    training episodes and both heads' read-out weight norms."""
    from mirrorlab.agents.lesion import readout_norms

    norms = readout_norms(model)
    variance = [pools[m].double().var(0).numpy() for m in ("perform", "observe")]
    return UnitTable(np.asarray(r, float), np.asarray(p_greater, float), np.asarray(p_less, float),
                     np.asarray(q_fdr, float), np.stack([*variance, norms["inverse"], norms["forward"]], 1),
                     norms["inverse"])


# --- jobs: one embodied run, one toy core, one dose-response cell --------------------------------------------
def lesion_run(run_dir: str, act_path: str, unit_rows: dict[str, list[float]], alpha: float, min_abs_r: float,
               config: LesionConfig, imitation_k: int | None = None) -> dict[str, Any]:
    """A runner job: one analyzed embodied run's lesions on its held-out episodes; with `imitation_k` (its
    condition's headline k), also the core-based imitation methods rolled out on its test videos."""
    import torch

    from mirrorlab.agents.activations import load_activations
    from mirrorlab.agents.lesion import embodied_probes
    from mirrorlab.agents.runs import read_run
    from mirrorlab.envs.paired import PairedDataset
    from mirrorlab.experiments.stages.measurement import group_key

    torch.set_num_threads(1)
    run, acts = read_run(run_dir), load_activations(act_path)
    model = run.load_core()
    with PairedDataset(acts.meta["data_path"]) as dataset:
        run.check_data(dataset)
        probes = embodied_probes(run, dataset, model)
    train = acts.split(held_out=False)
    pools = {m: torch.from_numpy(train[m].reshape(-1, train[m].shape[-1]).astype(np.float32))
             for m in ("perform", "observe")}
    table = unit_table(unit_rows["r"], unit_rows["p_greater"], unit_rows["p_less"], unit_rows["q_fdr"], pools, model)
    imitation = imitation_for(run, model, config, imitation_k)
    if imitation is not None:
        probes["imitation"] = imitation
    try:
        result = lesion_effects(probes, pools, table, alpha, min_abs_r, EMBODIED, config, run.config.seed)
    finally:
        if imitation is not None:
            imitation.close()
    return {"group": group_key(run), "condition": run.config.condition, "seed": run.config.seed, "run": str(run.dir),
            "n_mirror": len(table.mirror(alpha, min_abs_r)), "n_anti_mirror": len(table.anti_mirror(alpha, min_abs_r)),
            "n_units": len(table.r), "imitation_k": imitation_k, **result}


def imitation_for(run, model, config: LesionConfig, k: int | None):
    """The run's imitation probe (`agents.lesion.ImitationProbe`), or None: no k, no methods, or (planners
    only) a condition that does not plan."""
    from mirrorlab.agents.imitation_methods import METHODS
    from mirrorlab.agents.lesion import imitation_probe

    planners = {m.name for m in METHODS if m.planner}
    methods = tuple(m for m in config.imitation_methods
                    if m not in planners or run.config.condition in config.imitation_planner_conditions)
    if k is None or not methods:
        return None
    return imitation_probe(run, model, methods, k, config.imitation_videos, config.imitation_plan_iterations)


def toy_core(rep: ReplicateConfig, condition: str, seed: int, selectivity_weight: float = 0.0):
    """The replication's toy world, data and trained core of one (condition, seed): its protocol exactly
    (the replication keeps no cores; the same config and seed give the same weights on CPU)."""
    from mirrorlab.agents.conditions import get_condition
    from mirrorlab.agents.toy import build_toy_core
    from mirrorlab.agents.training import train_toy_core
    from mirrorlab.envs.toy import make_effects, make_sequences

    world_rng = np.random.default_rng(seed)
    effects = make_effects(rep.n_actions, rep.sensory_dim, world_rng)
    train = make_sequences(rep.n_train, rep.seq_len, effects, rep.decay, rep.noise_sigma, world_rng)
    test = make_sequences(rep.n_test, rep.seq_len, effects, rep.decay, rep.noise_sigma, world_rng)
    cond = get_condition(condition)
    model = build_toy_core(rep.n_actions, rep.sensory_dim, rep.action_embed_dim, rep.hidden_size,
                           cond.separate_cores, seed)
    train_toy_core(model, train, cond, epochs=rep.epochs, batch_size=rep.batch_size, lr=rep.lr,
                   forward_weight=rep.forward_weight, inverse_weight=rep.inverse_weight, seed=seed,
                   selectivity_weight=selectivity_weight)
    return model, train, test


def toy_mirror_test(model, data, rep: ReplicateConfig, seed: int):
    """The replication's mirror-unit test of a toy core on held-out sequences (same B and random stream)."""
    from mirrorlab.agents.core import record
    from mirrorlab.analysis.mirror_stats import mirror_unit_test

    rec = record(model, data.actions, data.sensory, batch_size=len(data))
    return mirror_unit_test(rec.perform.astype(np.float64), rec.observe.astype(np.float64), rep.n_permutations,
                            np.random.default_rng([seed, 2])), rec


def toy_lesion_cell(rep: ReplicateConfig, condition: str, seed: int, config: LesionConfig) -> dict[str, Any]:
    """A runner job: one toy core (trained as the replication trains it) lesioned on held-out sequences."""
    import torch
    from threadpoolctl import threadpool_limits

    from mirrorlab.agents.core import record
    from mirrorlab.agents.lesion import toy_probes

    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        model, train, test = toy_core(rep, condition, seed)
        test_result, _ = toy_mirror_test(model, test, rep, seed)
        rec = record(model, train.actions, train.sensory, batch_size=500)
        pools = {"perform": torch.from_numpy(rec.perform.reshape(-1, rep.hidden_size)),
                 "observe": torch.from_numpy(rec.observe.reshape(-1, rep.hidden_size))}
        table = unit_table(test_result.r, test_result.p_greater, test_result.p_less, test_result.q_fdr, pools, model)
        result = lesion_effects(toy_probes(model, test), pools, table, rep.alpha, rep.mirror_min_abs_r, TOY, config,
                                seed)
    return {"group": "toy world", "condition": condition, "seed": seed,
            "n_mirror": len(table.mirror(rep.alpha, rep.mirror_min_abs_r)),
            "n_anti_mirror": len(table.anti_mirror(rep.alpha, rep.mirror_min_abs_r)), "n_units": len(table.r),
            **result}


def toy_dose_cell(rep: ReplicateConfig, weight: float, seed: int) -> dict[str, Any]:
    """A runner job: a toy shared core trained with the selectivity term at `weight`, measured."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        model, _, test = toy_core(rep, "shared", seed, selectivity_weight=weight)
        result, rec = toy_mirror_test(model, test, rep, seed)
    counts = result.counts(rep.alpha, rep.mirror_min_abs_r)
    return {"selectivity_weight": weight, "seed": seed, "n_mirror_fdr": counts["n_mirror_fdr"],
            "n_anti_mirror_fdr": counts["n_anti_mirror_fdr"], "mean_r": float(np.nanmean(result.r)),
            "inverse_accuracy": float((rec.inverse_prediction.argmax(-1) == test.actions).mean()),
            "forward_mse": float(((rec.forward_prediction - test.sensory) ** 2).mean())}


# --- the command: check, run the jobs (resumable), summarise ---------------------------------------------------
UNIT_FIELDS = ("r", "p_greater", "p_less", "q_fdr")


def read_unit_tables(analysis: Path) -> dict[tuple[str, str, int], dict[str, list[float]]]:
    """(group, condition, seed) -> the per-unit columns of the analysis's units.csv."""
    path = analysis / "units.csv"
    if not path.is_file():
        raise UserError(f"--analysis {analysis}: no units.csv; expected the output folder of `mirrorlab analyze`")
    tables: dict[tuple[str, str, int], dict[str, list[float]]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                table = tables.setdefault((row["group"], row["condition"], int(row["seed"])),
                                          {k: [] for k in UNIT_FIELDS})
                for k in UNIT_FIELDS:
                    table[k].append(float(row[k]))
            except (KeyError, ValueError, TypeError):
                raise UserError(f"{path}: not a units.csv of `mirrorlab analyze` (columns group, condition, seed, "
                                f"{', '.join(UNIT_FIELDS)} expected)") from None
    return tables


def embodied_jobs(runs: list[Path], analysis: Path, config: LesionConfig) -> list[Job]:
    """One job per run, every run checked first: finished, analyzed (activations and unit table found)."""
    from mirrorlab.agents.runs import read_run
    from mirrorlab.experiments.stages.measurement import group_key, read_analysis

    metrics = read_analysis(analysis)
    settings = metrics.get("analysis", {})
    alpha, min_abs_r = float(settings.get("alpha", 0.05)), float(settings.get("mirror_min_abs_r", 0.4))
    tables = read_unit_tables(analysis if analysis.is_dir() else analysis.parent)
    checked = []
    for path in runs:
        run = read_run(path)
        entry = metrics["runs"].get(str(run.dir))
        table = tables.get((group_key(run), run.config.condition, run.config.seed))
        if entry is None or table is None:
            raise UserError(f"--analysis {analysis}: has no activations or unit table of run {run.dir}; analyze it first")
        if not Path(entry["activations"]).is_file():
            raise UserError(f"--analysis {analysis}: activations file {entry['activations']} is missing")
        checked.append((run, entry, table, (group_key(run), run.config.condition)))
    k_star = headline_ks([(where, table) for *_, table, where in checked], alpha, min_abs_r, config.ks)
    return [Job(f"run:{where[0]}:{where[1]}:{run.config.seed}", lesion_run,
                (str(run.dir), entry["activations"], table, alpha, min_abs_r, config, k_star[where]),
                cost=2.0 if k_star[where] is None else 2.0 + len(config.imitation_methods))
            for run, entry, table, where in checked]


def headline_ks(tables: list[tuple[Any, dict[str, list[float]]]], alpha: float, min_abs_r: float,
                ks: tuple[int, ...]) -> dict[Any, int | None]:
    """Each (group, condition)'s headline k, from the mirror-unit counts of the runs named, as the verdicts
    find it (`analysis.lesion.headline_k`): imitation is rolled out at that k only."""
    from mirrorlab.analysis.lesion import headline_k, mirror_units

    counts: dict[Any, list[int]] = {}
    for where, t in tables:
        counts.setdefault(where, []).append(len(mirror_units(t["r"], t["p_greater"], t["p_less"], t["q_fdr"], alpha,
                                                             min_abs_r)))
    return {where: headline_k(c, ks) for where, c in counts.items()}


def toy_jobs(config: LesionConfig) -> list[Job]:
    """The toy lesion cells (with `toy`) and the dose-response cells (one per selectivity weight and seed)."""
    rep = dataclasses.replace(ReplicateConfig(), seeds=tuple(config.toy_seeds))
    jobs = [Job(f"toy:{c}:{s}", toy_lesion_cell, (rep, c, s, config)) for c in config.toy_conditions
            for s in config.toy_seeds] if config.toy else []
    jobs += [Job(f"dose:{w:g}:{s}", toy_dose_cell, (rep, float(w), s)) for w in config.selectivity_weights
             for s in config.toy_seeds]
    return jobs


def saved_results(out: Path, analysis: Path | None) -> SavedResults:
    """One result per run or toy core under `runs/`; a run's is stale once the run or the analysis is newer."""
    metrics = None if analysis is None else (analysis / "metrics.json" if analysis.is_dir() else analysis)
    return SavedResults(out, "lesion result", lambda job: [Path(job.args[0]) / "done.json", metrics]
                        if job.key.startswith("run:") else [])


def lesion(runs: list[Path], analysis: Path | None, out: Path, config: LesionConfig, force: bool = False,
           ray_address: str | None = None, show_progress: bool = False) -> dict[str, Any]:
    """The lesion study (command and study stage): every run's and toy core's lesions, resumable, then the
    summary. `runs` may be empty when the config asks for the toy world only."""
    from tqdm import tqdm

    config.validate()
    if runs and analysis is None:
        raise UserError("--analysis: the `mirrorlab analyze` output of --runs is needed (unit tables, activations)")
    if not runs and not config.toy and not config.selectivity_weights:
        raise UserError("--runs: name at least one analyzed run folder (or, for the toy world only, --toy or "
                        "selectivity_weights in the config)")
    jobs = (embodied_jobs(runs, analysis, config) if runs else []) + toy_jobs(config)
    if not force:
        check_resumed_config(out, config, "lesion")
    claim_output_dir(out, "lesion", resume=not force, force=force)
    atomic_write_json(out / "config.json", provenance(config))
    started = time.perf_counter()
    saved = saved_results(out, analysis)
    with tqdm(total=len(jobs), desc="lesion", unit="job", disable=not show_progress) as bar:
        run_jobs(jobs, lambda job, result: (saved.save(job, result), bar.update(1)),
                 workers=resolve_workers(config.workers), ray_address=ray_address,
                 done=saved.done, on_skip=lambda _: bar.update(1))
    results = {job.key: saved.load(job) for job in jobs}
    return write_summary(out, config, results, time.perf_counter() - started)


def imitation_note(config: LesionConfig) -> list[str]:
    """What the imitation outcomes measured, for the report: they are smaller tests than the others."""
    if not config.imitation_methods:
        return []
    return ["", f"**Imitation under lesions** ({', '.join(config.imitation_methods)}; the planners only in "
            f"{', '.join(config.imitation_planner_conditions) or 'no'} cores): each method rolled out on the self arm "
            f"on {config.imitation_videos} test videos per run with the set silenced in both modes (with the observe "
            "path's values while watching, the perform path's while planning), at each condition's headline k only, "
            f"against {config.imitation_random} of the matched-random sets ({config.imitation_plan_iterations} planning "
            "steps). Success is the share of those videos reached; a core that imitates none intact cannot be "
            "damaged on it (z n/a), so the final distance is the finer measure."]


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text).strip("_")


def write_summary(out: Path, config: LesionConfig, results: dict[str, dict[str, Any]], wall_s: float
                  ) -> dict[str, Any]:
    """metrics.json, report.md and one figure per (group, ablation), from every saved result."""
    from mirrorlab.analysis.figures import lesion_effects as effects_figure
    from mirrorlab.analysis.dose import dose_report, dose_response
    from mirrorlab.analysis.lesion import lesion_report, summarise_lesions

    from mirrorlab.agents.conditions import CONDITIONS

    order = list(CONDITIONS)  # tables and panels in the study's condition order, whatever order --runs named
    lesioned = sorted((r for k, r in results.items() if not k.startswith("dose:")),
                      key=lambda r: (r["group"], order.index(r["condition"]), r["seed"]))
    questions = {o.name: o.question for o in OUTCOMES}
    names = {o.name: o.label for o in OUTCOMES}
    summary = summarise_lesions(lesioned, questions, config.ks)
    figures = {}
    for group, ablation in sorted({(c["group"], c["ablation"]) for c in summary["cells"]}):
        cells = [c for c in summary["cells"] if c["group"] == group and c["ablation"] == ablation]
        for part, caption in (("", "lesion effect against k"), ("_imitation", "imitation under lesions (headline k)")):
            chosen = [c for c in cells if (c["outcome"] in IMITATION) == bool(part)]
            if chosen:
                path = f"figures/lesion{part}_{_slug(group)}_{ablation}.png"
                atomic_write_bytes(out / path, effects_figure(chosen, names))
                figures[f"{caption}: {group}, {ablation}-ablation"] = path
    dose = dose_response([r for k, r in results.items() if k.startswith("dose:")])
    metrics = provenance(config)
    metrics["lesion"] = metrics.pop("config")
    metrics.update(summary, dose_response=dose, wall_time_s=wall_s,
                   runs=[{k: r[k] for k in ("group", "condition", "seed", "n_mirror", "n_anti_mirror", "n_units",
                                            "intact", "sets")} for r in lesioned])
    section = lesion_report(summary, names, config.n_random, figures, imitation_note(config)) if lesioned else ""
    report = "# " + (section + "\n" + dose_report(dose)).lstrip("# \n")
    atomic_write_text(out / "report.md", report)
    atomic_write_json(out / "metrics.json", metrics)
    return {"metrics": metrics, "report": out / "report.md"}
