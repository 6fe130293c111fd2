"""Do fewer mirror units make imitation worse? The selectivity dose-response on the arm (study).

A variants stage (`experiments/stages/variants.py`: its folder, resumption and measurements) whose variants
are the weights of the selectivity term (`TrainConfig.selectivity_weight`: weight x minus the mean per-unit
perform-observe r of each demo batch): the study's headline shared runs are the weight-0 cores, and a shared
core per weight and seed is trained beside each. The summary is a curve rather than a table of pairs: every
measure against the weight, and the verdicts (`analysis.dose`) comparing each extreme weight with weight 0,
paired by seed. Its folder is `OUT/dose/` (runs under `runs/w<weight>/`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mirrorlab.errors import UserError
from mirrorlab.experiments.stages.measurement import AnalyzeConfig
from mirrorlab.experiments.stages.variants import MeasuredCores, imitate_core, imitation_measures, measure_variants
from mirrorlab.files import atomic_write_bytes, atomic_write_json, atomic_write_text
from mirrorlab.provenance import provenance

__all__ = ["DoseConfig", "dose", "imitate_core"]  # imitate_core: dose results saved before it moved name it here


@dataclass(frozen=True)
class DoseConfig(MeasuredCores):
    """Every default of the arm's dose-response. The weights are sized on medium's data (a pilot, seed 0): at
    +-0.1 the term already moves nearly every unit (0 mirror units and 91 anti-mirror, or 93 mirror units,
    of 96; 19 and 15 without it), so the steps below it show the way there."""

    weights: tuple[float, ...] = (-0.1, -0.01, 0.01, 0.1)  # besides 0 (the study's own shared runs)

    def validate(self) -> None:
        super().validate()
        if not self.weights or any(not math.isfinite(w) or w == 0 for w in self.weights) or \
                len(set(self.weights)) != len(self.weights):
            raise UserError(f"config: weights must be distinct nonzero numbers (0 is the study's own shared runs), "
                            f"got {list(self.weights)}")


def dose(base_runs: list[Path], data_path: Path, out: Path, config: DoseConfig, analyze_settings: AnalyzeConfig,
         device: str = "cpu", show_progress: bool = False, ray_address: str | None = None) -> dict[str, Any]:
    """The arm's dose-response (a study stage): train, analyse, imitate (each resumable), then the summary."""
    config.validate()
    started = time.perf_counter()
    weights = {f"w{w:g}": {"selectivity_weight": float(w)} for w in config.weights}
    rows = measure_variants(base_runs, "w0", weights, data_path, out, "dose", config, analyze_settings, device,
                            show_progress, ray_address)
    weight_of = {"w0": 0.0, **{label: w["selectivity_weight"] for label, w in weights.items()}}
    rows = [{**r, "selectivity_weight": weight_of[r["variant"]]} for r in rows]
    return write_summary(out, config, rows, time.perf_counter() - started)


def write_summary(out: Path, config: DoseConfig, rows: list[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    """metrics.json, report.md and the figure, from one row per core."""
    from mirrorlab.analysis.dose import ARM_MEASURES, MIRROR, dose_report, dose_response, dose_verdicts
    from mirrorlab.analysis.figures import dose_response as dose_figure

    imitation = imitation_measures(config.imitation_methods)
    measures = [*ARM_MEASURES, *((name, label) for name, label, _ in imitation)]
    table = dose_response(rows, measures)
    outcomes = [("inverse_r2", "inverse R^2, demonstrations", True),
                ("inverse_r2_babble", "inverse R^2, own babbling", True), *imitation]
    verdicts = dose_verdicts(rows, outcomes)
    shown = [(MIRROR, "significant mirror units"), ("inverse_r2", "inverse R^2, demonstrations"),
             ("inverse_r2_babble", "inverse R^2, own babbling"), *((n, l) for n, l, _ in imitation)]
    atomic_write_bytes(out / "figures" / "dose_response.png", dose_figure(table, shown))
    n_videos = sorted({int(r["n_videos"]) for r in rows})
    notes = [f"Each core imitates {', '.join(map(str, n_videos))} test videos of its dataset "
             f"({', '.join(config.imitation_methods)}; rolled out on the self arm); success is the share reached.",
             f"This invocation's wall time: {wall_s:.0f} s for {len(rows)} cores (the study's own and those trained "
             "here; cores, analysis and imitation finished by an earlier invocation are kept, not redone)."]
    report = dose_report(table, measures, "the arm, shared cores of the study's headline dataset", verdicts, notes)
    atomic_write_text(out / "report.md", report + "\n![The dose-response: mirror units, watching and imitation "
                      "against the selectivity weight](figures/dose_response.png)\n")
    metrics = provenance(config)
    metrics["dose"] = metrics.pop("config")
    keep = ("run", "seed", "selectivity_weight", *(m for m, _ in measures))
    metrics.update(table=table, verdicts=verdicts, wall_time_s=wall_s,
                   cores=[{k: r.get(k, float("nan")) for k in keep} for r in rows])
    atomic_write_json(out / "metrics.json", metrics)
    return {"metrics": metrics, "report": out / "report.md"}

