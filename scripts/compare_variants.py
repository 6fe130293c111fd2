"""Seed 002's training variants against their control, from one `mirrorlab analyze` folder.

Usage: python scripts/compare_variants.py ANALYSIS_DIR [TIMES_FILE]

Every group of the analysis whose name carries `replay=` or `reward=` (experiments.stages.measurement.group_key)
is compared, seed by seed, with the group of the same name without them (analysis.variants), on the shared
condition. TIMES_FILE (optional): lines `variant seed seconds ...`, as the README's measuring loop writes them;
the mean time per run of each variant is printed against the control's.
"""

from __future__ import annotations

import re
import sys
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
    if times is not None:
        per: dict[str, list[float]] = {}
        for line in times.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3:
                per.setdefault(parts[0], []).append(float(parts[2]))
        for variant, seconds in per.items():
            print(f"{variant}: {np.mean(seconds):.1f} s per run over {len(seconds)} runs "
                  f"({np.mean(seconds) / np.mean(per.get('uniform', seconds)):.2f}x uniform)")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None)
