"""Seed 002's training variants against their control, from one `mirrorlab analyze` folder.

Usage: python scripts/compare_variants.py ANALYSIS_DIR [TIMES_FILE] [--imitation CONTROL_DIR NAME=DIR ...]

Every group of the analysis whose name carries `replay=` or `reward=` (experiments.stages.measurement.group_key)
is compared, seed by seed, with the group of the same name without them (analysis.variants), on the shared
condition. TIMES_FILE (optional): lines `variant seed seconds ...`, as the README's measuring loop writes them;
the mean time per run of each variant is printed against the control's. --imitation: `mirrorlab imitate` output
folders, the control's and each variant's (run per variant, since its runs share condition and seed with the
control's); each core method's success and final distance per seed (mean over its test videos), compared so.
"""

from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path

import numpy as np

from mirrorlab.analysis.variants import compare_variant, variant_table
from mirrorlab.experiments.stages.measurement import read_analysis

METRICS = ("n_mirror_fdr", "aligned_cka_debiased_excess", "inverse_r2", "inverse_r2_babble", "forward_mse",
           "forward_action_sensitivity")
DIGITS = {"n_mirror_fdr": 1, "forward_mse": 5}
OPTION = re.compile(r", (replay|reward)=[^,]*(, [0-9]+\))?")


def main(analysis: Path, times: Path | None = None) -> None:
    groups = read_analysis(analysis)["groups"]
    rows = {name: group["conditions"]["shared"]["per_seed"] for name, group in groups.items()
            if "shared" in group["conditions"]}
    comparisons = {}
    for name, variant in rows.items():
        control = OPTION.sub("", name)
        if control != name and control in rows:
            comparisons[name[len(control):].lstrip(", ") or name] = compare_variant(variant, rows[control], METRICS)
    print("\n".join(variant_table(comparisons, DIGITS)))
    _print_times(times)


def _print_times(times: Path | None) -> None:
    if times is not None:
        per: dict[str, list[float]] = {}
        for line in times.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3:
                per.setdefault(parts[0], []).append(float(parts[2]))
        for variant, seconds in per.items():
            print(f"{variant}: {np.mean(seconds):.1f} s per run over {len(seconds)} runs "
                  f"({np.mean(seconds) / np.mean(per.get('uniform', seconds)):.2f}x uniform)")


IMITATION_METHODS = ("inverse", "closed_loop", "synthesis", "latent", "goal_inference")


def imitation_rows(folder: Path) -> list[dict]:
    """Per seed: each core method's mean success and final distance over its test videos (imitation.csv)."""
    per: dict[int, dict[str, list[float]]] = {}
    with open(folder / "imitation.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["method"] in IMITATION_METHODS:
                cell = per.setdefault(int(row["seed"]), {})
                cell.setdefault(f"{row['method']}_success", []).append(float(row["success"]))
                cell.setdefault(f"{row['method']}_final_distance", []).append(float(row["final_distance"]))
    return [{"seed": seed, **{k: float(np.mean(v)) for k, v in cell.items()}} for seed, cell in sorted(per.items())]


def compare_imitation(control: Path, variants: dict[str, Path]) -> None:
    rows = imitation_rows(control)
    metrics = tuple(k for k in rows[0] if k != "seed")
    comparisons = {name: compare_variant(imitation_rows(folder), rows, metrics) for name, folder in variants.items()}
    print("\n".join(variant_table(comparisons, {m: 3 for m in metrics})))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("analysis", type=Path)
    parser.add_argument("times", type=Path, nargs="?")
    parser.add_argument("--imitation", nargs="+", metavar="DIR", help="CONTROL_DIR NAME=DIR ...")
    args = parser.parse_args()
    main(args.analysis, args.times)
    if args.imitation:
        compare_imitation(Path(args.imitation[0]), {a.split("=", 1)[0]: Path(a.split("=", 1)[1])
                                                     for a in args.imitation[1:]})
