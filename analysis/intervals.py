"""Mean and 95% interval over seeds (Student t): every headline number is reported this way."""

from __future__ import annotations

import numpy as np
from scipy import stats


def mean_ci95(values) -> dict[str, float | list[float] | int]:
    """{"mean", "ci95": [lo, hi], "n"} over finite values; a single value has an interval of nan."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {"mean": float("nan"), "ci95": [float("nan"), float("nan")], "n": 0}
    mean = float(x.mean())
    if x.size < 2:
        return {"mean": mean, "ci95": [float("nan"), float("nan")], "n": 1}
    sem = stats.sem(x)
    if sem == 0:
        return {"mean": mean, "ci95": [mean, mean], "n": int(x.size)}
    lo, hi = stats.t.interval(0.95, df=x.size - 1, loc=mean, scale=sem)
    return {"mean": mean, "ci95": [float(lo), float(hi)], "n": int(x.size)}
