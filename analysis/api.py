"""Measure mirroring on anyone's recordings: arrays in, one result object out.

A researcher with a recurrent network of their own records its hidden state twice on the same
inputs' story: *perform* (driven by its own actions) and *observe* (driven by watching them), aligned
by (sequence, timestep). `measure_mirroring` runs every measure this project reports on those two
arrays, with the controls the honest reading needs beside it: an untrained copy of the network (a
random core already correlates the two modes, because both are driven by one action history) and a
separately trained core (where identity-paired units mean nothing, so only alignment-invariant
measures are compared). It is the same code `mirrorlab analyze` runs on this project's cores
(`analysis.measures`), so the numbers are the study's numbers.

One call measures one network (one seed). A claim over seeds is `analysis.claims.assess_claims` on
the `row`s of several results, one per seed and condition, each row given its "seed".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mirrorlab.analysis.alignment import aligned_similarity
from mirrorlab.analysis.glossary import readable
from mirrorlab.analysis.lags import lag_test
from mirrorlab.analysis.measures import MeasureSettings
from mirrorlab.analysis.measures import measure_mirroring as _study_measures
from mirrorlab.analysis.mirror_stats import min_permutations_for_bonferroni, mirror_unit_test, threshold_fractions
from mirrorlab.analysis.timelocked import remove_time_locked
from mirrorlab.errors import UserError

# (question, measure, chance: a key of the row holding the null's level, or a number; True when the measure
# pairs units by identity, which a separately trained core cannot be compared on)
QUESTIONS: tuple[tuple[str, str, str | float, bool], ...] = (
    ("Do single units mirror?", "n_mirror_fdr", 0.0, True),
    ("... once the trial clock is removed?", "n_mirror_fdr_time_locked_removed", 0.0, True),
    ("Do the two modes share a population geometry?", "aligned_cka_debiased", "aligned_cka_debiased_null_mean", False),
    ("Does an action read-out transfer across modes?", "decode_perform_to_observe_zscored",
     "decode_chance_q95_zscored", False),
    ("Do units prefer the same action in both modes?", "congruence", "congruence_null_mean", True),
)


@dataclass(frozen=True)
class Verdict:
    """One question answered: the network's value, chance, each control's value, and the answer."""

    question: str
    measure: str
    value: float
    chance: float
    controls: dict[str, float | None]   # None: not comparable (identity-paired measure, separate cores)
    answer: str                         # "yes" or "no", with the reason when "no"


@dataclass(frozen=True)
class MirroringResult:
    """Everything `measure_mirroring` measured on one network.

    row:      every scalar measure, keyed as in the study's metrics.json (see GLOSSARY for names)
    units:    per-unit arrays [U]: r, p, q_fdr, p_bonferroni, mirror, anti_mirror, r_time_locked_removed,
              peak_lag, ...
    controls: each control's row, measured with the same null draws and settings
    """

    row: dict[str, Any]
    units: dict[str, np.ndarray]
    controls: dict[str, dict[str, Any]]
    settings: MeasureSettings
    control_units: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)

    def verdicts(self) -> list[Verdict]:
        """Each question this data can answer (decoding and congruence need labels)."""
        out = []
        for question, measure, chance_key, identity in QUESTIONS:
            if measure not in self.row:
                continue
            value = float(self.row[measure])
            chance = float(self.row[chance_key]) if isinstance(chance_key, str) else float(chance_key)
            controls = {name: None if identity and name == "separate" else float(row[measure])
                        for name, row in self.controls.items()}
            reasons = [] if value > chance else ["not above chance"]
            reasons += [f"not above the {name} core" for name, c in controls.items() if c is not None and value <= c]
            out.append(Verdict(question, measure, value, chance, controls, "no: " + ", ".join(reasons)
                               if reasons else "yes"))
        return out

    def verdict_table(self) -> str:
        """The verdicts as a plain-text table, one question a line."""
        names = list(self.controls)
        head = ["question", "measure", "network", "chance", *names, "answer"]
        fmt = lambda v: "n/a" if v is None else f"{v:.3g}"  # noqa: E731
        rows = [[v.question, readable(v.measure), fmt(v.value), fmt(v.chance),
                 *(fmt(v.controls[n]) for n in names), v.answer] for v in self.verdicts()]
        widths = [max(len(str(r[k])) for r in [head, *rows]) for k in range(len(head))]
        line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
        return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, rows)])

    def unit_table(self) -> list[dict[str, Any]]:
        """One dict per unit (unit index first), ready for csv.DictWriter or pandas.DataFrame."""
        return [{"unit": u, **{k: v[u].item() for k, v in self.units.items()}} for u in range(self.units["r"].size)]

    def figure(self):
        """A matplotlib Figure: per-unit r against each control, and the top unit against its null."""
        import matplotlib.pyplot as plt

        fig, (ax_r, ax_null) = plt.subplots(1, 2, figsize=(11, 3.8))
        bins = np.linspace(-1, 1, 41)
        ax_r.hist(np.nan_to_num(self.units["r"]), bins=bins, alpha=0.6, label="network")
        for name, units in self.control_units.items():
            if name != "separate":
                ax_r.hist(np.nan_to_num(units["r"]), bins=bins, alpha=0.5, label=f"{name} core")
        ax_r.axvline(self.settings.mirror_min_abs_r, color="k", ls=":", lw=0.8)
        ax_r.set(xlabel="per-unit perform-vs-observe r", ylabel="units", title="units (dotted: strength threshold)")
        ax_r.legend()
        top = int(np.nanargmax(np.abs(np.nan_to_num(self.units["r"]))))
        ax_null.hist(self.units["null_example"], bins=40, color="0.6", label="null: sequences re-paired")
        ax_null.axvline(self.units["r"][top], color="tab:blue", lw=2, label=f"unit {top}: r={self.units['r'][top]:.2f}")
        ax_null.set(xlabel="r", title="the strongest unit against its null")
        ax_null.legend(fontsize=8)
        fig.tight_layout()
        return fig


def _check_pair(perform, observe, name: str) -> tuple[np.ndarray, np.ndarray]:
    perform, observe = np.asarray(perform, dtype=float), np.asarray(observe, dtype=float)
    if perform.ndim != 3 or perform.shape != observe.shape:
        raise UserError(f"{name}: perform and observe must both be [sequences, timesteps, units] and equal in shape, "
                        f"got {perform.shape} and {observe.shape}")
    if not (np.isfinite(perform).all() and np.isfinite(observe).all()):
        raise UserError(f"{name}: the activations hold nan or inf")
    return perform, observe


def _check_labels(labels, shape: tuple[int, ...]) -> np.ndarray:
    labels = np.asarray(labels)
    discrete = np.issubdtype(labels.dtype, np.integer)
    if labels.shape[:2] != shape[:2] or labels.ndim != (2 if discrete else 3):
        raise UserError(f"labels: expected int [sequences, timesteps] (discrete actions) or float [sequences, "
                        f"timesteps, action_dim] matching the activations {shape[:2]}, got {labels.dtype} {labels.shape}")
    if discrete and labels.min() < 0:
        raise UserError(f"labels: discrete actions must be 0..K-1, got a minimum of {labels.min()}")
    return labels


def _unlabelled(perform: np.ndarray, observe: np.ndarray, seed: int, s: MeasureSettings
                ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The measures that need no labels, drawn from the same random streams as the study's."""
    rng = lambda stream: np.random.default_rng([seed, stream])  # noqa: E731
    test = mirror_unit_test(perform, observe, s.n_permutations, rng(2))
    locked = mirror_unit_test(remove_time_locked(perform), remove_time_locked(observe), s.n_permutations, rng(2))
    row: dict[str, Any] = {**threshold_fractions(test.r), **test.counts(s.alpha, s.mirror_min_abs_r),
                           "n_units": int(test.r.size), "n_permutations": s.n_permutations}
    row.update({f"{k}_time_locked_removed": v for k, v in locked.counts(s.alpha, s.mirror_min_abs_r).items()})
    for name, res in aligned_similarity(perform, observe, rng(4), n_permutations=s.align_permutations,
                                        n_components=s.cca_components).items():
        row.update({f"aligned_{name}": res["value"], f"aligned_{name}_null_mean": res["null_mean"],
                    f"aligned_{name}_excess": res["value"] - res["null_mean"], f"aligned_{name}_p": res["p"]})
    lags = lag_test(perform, observe, s.max_lag, rng(6), s.lag_permutations)
    row["frac_peak_lag_zero"] = float(np.mean(lags["peak_lag"] == 0))
    return row, {"r": test.r, "p": test.p, "q_fdr": test.q_fdr, "p_bonferroni": test.p_bonferroni,
                 "null_example": test.null_example, "r_time_locked_removed": locked.r,
                 "peak_lag": lags["peak_lag"], "peak_lag_r": lags["peak_r"], "peak_lag_p": lags["peak_p"]}


def _measure(perform, observe, labels, seed: int, s: MeasureSettings) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    row, arrays = (_unlabelled(perform, observe, seed, s) if labels is None
                   else _study_measures(perform, observe, labels, seed, s))
    r = np.nan_to_num(arrays["r"])
    significant = arrays["q_fdr"] < s.alpha
    arrays = {**arrays, "mirror": significant & (r >= s.mirror_min_abs_r),
              "anti_mirror": significant & (r <= -s.mirror_min_abs_r)}
    return row, arrays


def measure_mirroring(perform, observe, labels=None, *, untrained=None, separate=None, seed: int = 0,
                      settings: MeasureSettings | None = None) -> MirroringResult:
    """Every mirror measure of one network's paired recordings, with its controls.

    perform, observe: [sequences, timesteps, units], row (i, t) of both from the same action sequence i at
        step t: the network performing it, and the network watching it.
    labels: optional, the actions: int [sequences, timesteps] or float [sequences, timesteps, dims]; adds
        cross-mode decoding and tuning congruence.
    untrained: optional (perform, observe) of the same network before training, on the same sequences.
    separate: optional (perform, observe) where observe comes from a separately trained core.
    settings: the analysis knobs (`MeasureSettings`); by default the study's, with enough permutations for
        Bonferroni over this many units. Same inputs and seed give the same numbers.
    Raises UserError (a ValueError) naming the argument when the inputs do not fit.
    """
    perform, observe = _check_pair(perform, observe, "perform/observe")
    N, T, U = perform.shape
    if settings is None:
        settings = MeasureSettings(n_permutations=max(MeasureSettings.n_permutations,
                                                      min_permutations_for_bonferroni(U, MeasureSettings.alpha)))
    settings.validate(n_units=U, n_sequences=N, seq_len=T, where="settings")
    if labels is not None:
        labels = _check_labels(labels, perform.shape)
        if np.issubdtype(labels.dtype, np.integer) and settings.n_actions is None:
            settings = dataclasses.replace(settings, n_actions=int(labels.max()) + 1)
    row, units = _measure(perform, observe, labels, seed, settings)
    controls, control_units = {}, {}
    for name, pair in (("untrained", untrained), ("separate", separate)):
        if pair is None:
            continue
        if len(pair) != 2:
            raise UserError(f"{name}: expected a (perform, observe) pair of arrays")
        cp, co = _check_pair(pair[0], pair[1], name)
        if cp.shape[:2] != (N, T):
            raise UserError(f"{name}: recorded on {cp.shape[:2]} (sequences, timesteps); the network on {(N, T)}: "
                            "controls must see the same sequences")
        controls[name], control_units[name] = _measure(cp, co, labels, seed, settings)
    return MirroringResult(row=row, units=units, controls=controls, settings=settings, control_units=control_units)
