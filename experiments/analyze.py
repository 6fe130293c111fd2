"""`mirrorlab analyze`: mirror measures of trained embodied runs on their held-out paired episodes.

For each run, the held-out demo episodes (never trained on) are run twice through the core:
perform (the episode's torques) and observe (the other arm's video of the same torques), aligned
by (episode, timestep). Every measure of the toy study is applied, with continuous actions (ridge
R^2 decoding, preferred action directions). Runs are grouped by the dataset's `other_appearance`
and by condition; seeds give the intervals. Output: metrics.json, units.csv, report.md, figures.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analysis.measures import MeasureSettings
from experiments.config import build_config
from experiments.errors import UserError
from experiments.provenance import atomic_write_json, claim_output_dir, provenance


# The analysis knobs of the embodied study are exactly the shared ones (continuous actions: n_actions None).
AnalyzeConfig = MeasureSettings


@dataclass
class EmbodiedActivations:
    perform: np.ndarray   # [N, T, H]
    observe: np.ndarray   # [N, T, H]
    actions: np.ndarray   # [N, T, A]
    inverse_r2: float     # inverse head on the other arm's held-out video
    forward_mse: float    # forward head on the self arm's held-out frames


def load_held_out(data_path: Path, episode_ids: list[int]) -> dict[str, np.ndarray]:
    """actions [N, T, A], observe and perform frames [N, T+1, 3, S, S] of the listed demo episodes."""
    from envs.paired import PairedDataset

    with PairedDataset(data_path) as data:
        refs = {r.episode_id: r for r in data.episodes("demo")}
        missing = [i for i in episode_ids if i not in refs]
        if missing:
            raise UserError(f"{data_path}: held-out demo episodes {missing[:5]} are missing from the dataset")
        eps = [data.read_episode(refs[i]) for i in episode_ids]
    return {
        "actions": np.stack([e["actions"] for e in eps]).astype(np.float32),
        "observe": np.stack([e["observe"]["frames"] for e in eps]).transpose(0, 1, 4, 2, 3),
        "perform": np.stack([e["perform"]["frames"] for e in eps]).transpose(0, 1, 4, 2, 3),
    }


def record_embodied_activations(model, held_out: dict[str, np.ndarray], batch: int = 16) -> EmbodiedActivations:
    import torch
    from sklearn.metrics import r2_score

    from encoders.cnn import frames_as_targets

    perform, observe, inferred, mse = [], [], [], []
    with torch.no_grad():
        for s in range(0, held_out["actions"].shape[0], batch):
            a = torch.from_numpy(held_out["actions"][s:s + batch])
            p = model.perform(a)
            o = model.observe(torch.from_numpy(held_out["observe"][s:s + batch, 1:]))
            target = frames_as_targets(torch.from_numpy(held_out["perform"][s:s + batch, 1:]))
            perform.append(p.hidden.numpy())
            observe.append(o.hidden.numpy())
            inferred.append(o.prediction.numpy())
            mse.append(float(((p.prediction - target) ** 2).mean()) * a.shape[0])
    actions = held_out["actions"]
    inferred_all = np.concatenate(inferred)
    r2 = r2_score(actions.reshape(-1, actions.shape[-1]), inferred_all.reshape(-1, actions.shape[-1]))
    return EmbodiedActivations(np.concatenate(perform).astype(np.float64), np.concatenate(observe).astype(np.float64),
                               actions, float(r2), float(np.sum(mse) / actions.shape[0]))


def check_enough_held_out(run_dir: Path, record: dict[str, Any], settings: MeasureSettings) -> None:
    need = max(5, settings.decode_folds)  # split-half alignment needs 2 + 3 sequences; decoding one per fold
    if len(record["test_episode_ids"]) < need:
        raise UserError(f"{run_dir}: {len(record['test_episode_ids'])} held-out episodes, the analysis needs at "
                        f"least {need}; collect more episodes or train with a larger test_fraction")


def analyse_run(run_dir: Path, settings: MeasureSettings, data_path: Path | None = None) -> tuple[dict, dict]:
    """(metrics row, per-unit arrays) of one run on its held-out episodes."""
    from analysis.measures import measure_mirroring
    from envs.paired import PairedDataset
    from experiments.train import check_signature, load_run, read_run_record

    record = read_run_record(run_dir)
    data_path = Path(data_path or record["data_path"])
    with PairedDataset(data_path) as data:
        check_signature(record["data"], data.header, run_dir, data_path)
    check_enough_held_out(run_dir, record, settings)
    config, record, model = load_run(run_dir)
    held_out = load_held_out(data_path, record["test_episode_ids"])
    acts = record_embodied_activations(model, held_out)
    row: dict[str, Any] = {"run": str(run_dir), "condition": config.condition, "seed": config.seed,
                           "other_appearance": record.get("other_appearance"), "inverse_data": config.inverse_data,
                           "inverse_weight": config.inverse_weight, "inverse_r2": acts.inverse_r2,
                           "forward_mse": acts.forward_mse, "n_held_out": int(acts.actions.shape[0])}
    measured, arrays = measure_mirroring(acts.perform, acts.observe, acts.actions, config.seed, settings)
    row.update(measured)
    arrays.update(perform=acts.perform.astype(np.float32), observe=acts.observe.astype(np.float32),
                  actions=acts.actions)
    return row, arrays


def group_key(row: dict[str, Any]) -> str:
    """Runs that differ only by seed form one group: appearance, inverse data and loss weight."""
    return f"{row['other_appearance']}, inverse_data={row['inverse_data']}, inverse_weight={row['inverse_weight']:g}"


def analyze(runs: list[Path], out: Path, config: AnalyzeConfig, force: bool = False,
            data_path: Path | None = None) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    from analysis.claims import assess_claims
    from analysis.embodied_report import write_embodied_outputs
    from analysis.summary import summarise

    if not runs:
        raise UserError("--runs: name at least one run folder")
    from experiments.train import read_run_record

    for run in runs:  # every cheap check before any output or work
        check_enough_held_out(run, read_run_record(run), config)
    claim_output_dir(out, force)
    started = time.perf_counter()
    cells: dict[tuple[str, str, int], tuple[dict, dict]] = {}
    with threadpool_limits(limits=1):
        for run in runs:
            row, arrays = analyse_run(run, config, data_path)
            key = (group_key(row), row["condition"], row["seed"])
            if key in cells:
                raise UserError(f"{run}: same condition, seed and group as {cells[key][0]['run']}")
            cells[key] = (row, arrays)
    groups: dict[str, Any] = {}
    for g in sorted({k[0] for k in cells}):
        rows = [row for (gg, _, _), (row, _) in cells.items() if gg == g]
        conditions = [c for c in ("shared", "separate", "forward_only", "shuffled_labels", "untrained")
                      if any(r["condition"] == c for r in rows)]
        seeds = sorted({r["seed"] for r in rows})
        conds = summarise(rows, conditions, seeds)
        groups[g] = {"conditions": conds, "claims": assess_claims({c: e["per_seed"] for c, e in conds.items()})}
    metrics = provenance(config)
    metrics["analysis"] = metrics.pop("config")
    metrics["runs"] = [str(r) for r in runs]
    metrics["groups"] = groups
    metrics["wall_time_s"] = time.perf_counter() - started
    report = write_embodied_outputs(out, metrics, cells)
    atomic_write_json(out / "metrics.json", metrics)
    return {"metrics": metrics, "report": report}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("analyze", help="mirror measures of embodied runs on held-out paired episodes",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=Path, nargs="+", required=True, help="run folders written by `mirrorlab train`")
    p.add_argument("--out", type=Path, required=True, help="output folder for metrics.json, units.csv, report.md")
    p.add_argument("--data", type=Path, default=None,
                   help="the dataset (default: the one each run was trained on); must match the runs")
    p.add_argument("--config", default=None, help="a .toml or .json file setting any analysis.measures.MeasureSettings field")
    p.add_argument("--force", action="store_true", help="replace results already in --out")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    config = build_config(AnalyzeConfig(), args.config, {})
    result = analyze(args.runs, args.out, config, force=args.force, data_path=args.data)
    print(f"report: {result['report']}")
    return 0
