"""Silencing units of a core inside its recurrence: zero-, mean- and resample-ablation, many unit sets at once.

Why inside the recurrence: a unit masked only at the read-out still drives every later step, so a
read-out mask measures what the heads read, not what the core computes with. A lesion here is a
callable on the hidden state [B, H] that `agents.core.run_gru` applies after every GRU step, so a
silenced unit keeps its replacement value at every step and the next step reads that value.

| ablation   | a silenced unit's value after each step                                                   |
|------------|--------------------------------------------------------------------------------------------|
| `zero`     | 0                                                                                          |
| `mean`     | its mean activity in the same mode (perform or observe) on the run's training episodes    |
| `resample` | its activity at a random (episode, step) of the same mode's training activity, drawn anew at every step for every row, from a seeded generator (Chan et al.'s resampling ablation) |

Zero is not "off" for a tanh-like GRU unit whose mean is far from 0 (that would be a large push); mean
removes the unit's information while keeping its average drive; resample also keeps its variance.

Null distributions need hundreds of unit sets per core: a `Probe` encodes one mode's inputs once (the CNN
is the costly part and does not depend on the lesion), and `probe_scores` runs many sets side by side,
each set's copy of the episodes in its own block of the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from mirrorlab.agents.core import MirrorCore

ABLATIONS = ("zero", "mean", "resample")
MODES = ("perform", "observe")


class UnitAblation:
    """A lesion (agents.core.Lesion) replacing the units of `masks` after every step.

    masks: bool [H] (one set for every row) or [S, H] (S sets: row block s of the batch, each block the
    same number of rows, gets set s). pool: [M, H] recorded activity of the same mode (mean, resample).
    """

    def __init__(self, masks: torch.Tensor, ablation: str, pool: torch.Tensor | None = None, seed: int = 0):
        if ablation not in ABLATIONS:
            raise ValueError(f"ablation must be one of {ABLATIONS}, got {ablation!r}")
        if ablation != "zero" and (pool is None or pool.ndim != 2 or len(pool) == 0):
            raise ValueError(f"{ablation}-ablation needs recorded activity [M, H] of the same mode")
        self.masks = masks.bool()
        self.ablation = ablation
        self.pool = pool
        self.mean = pool.mean(0) if pool is not None else None
        self.generator = torch.Generator().manual_seed(int(seed))

    def _rows(self, n_rows: int) -> torch.Tensor:
        if self.masks.ndim == 1:
            return self.masks.expand(n_rows, -1)
        sets = self.masks.shape[0]
        if n_rows % sets:
            raise ValueError(f"{n_rows} rows cannot be split into {sets} equal blocks of unit sets")
        return self.masks.repeat_interleave(n_rows // sets, 0)

    def replacement(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.ablation == "zero":
            return torch.zeros_like(hidden)
        if self.ablation == "mean":
            return self.mean.to(hidden).expand_as(hidden)
        rows = torch.randint(len(self.pool), (hidden.shape[0],), generator=self.generator)
        return self.pool[rows].to(hidden)

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.where(self._rows(hidden.shape[0]).to(hidden.device), self.replacement(hidden), hidden)


def unit_masks(unit_sets: list[np.ndarray], hidden_size: int) -> torch.Tensor:
    """Sets of unit indices -> bool masks [S, H]."""
    masks = torch.zeros(len(unit_sets), hidden_size, dtype=torch.bool)
    for s, units in enumerate(unit_sets):
        masks[s, torch.as_tensor(np.asarray(units, dtype=np.int64))] = True
    return masks


@dataclass
class Probe:
    """One mode of one core on fixed episodes, its inputs encoded once, to be run under many lesions."""

    model: MirrorCore
    mode: str                      # "perform" or "observe"
    encoded: torch.Tensor          # [N, T, D] encoded actions (perform) or sensory input (observe)
    state: torch.Tensor | None     # perform: the start state [1, N, H] (None: zeros); observe: None
    base: torch.Tensor | None = None  # perform: what the forward head's change is added to (MirrorCore.prediction_base)

    @torch.no_grad()
    def predict(self, lesion=None, repeats: int = 1) -> torch.Tensor:
        """The mode's head output [repeats * N, T, ...]: the episodes `repeats` times over, block by block."""
        encoded = self.encoded.repeat(repeats, *([1] * (self.encoded.ndim - 1)))
        if self.mode == "observe":
            return self.model.observe_encoded(encoded, lesion).prediction
        state = None if self.state is None else self.state.repeat(1, repeats, 1)
        base = None if self.base is None else self.base.repeat(repeats, *([1] * (self.base.ndim - 1)))
        return self.model.perform_encoded(encoded, state, lesion, base).prediction

    def __len__(self) -> int:
        return len(self.encoded)


@torch.no_grad()
def make_probe(model: MirrorCore, mode: str, inputs: torch.Tensor, start: torch.Tensor | None = None) -> Probe:
    """Encode `inputs` (perform: actions [N, T, ...] and the own start sensing; observe: sensory [N, T, ...])."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    model.eval()
    if mode == "observe":
        return Probe(model, mode, model.sensory_encoder(inputs), None)
    return Probe(model, mode, model.action_encoder(inputs), model.perform_start(start), model.prediction_base(start))


def probe_scores(probe: Probe, masks: torch.Tensor, ablation: str, pool: torch.Tensor | None, seed: int,
                 score: Callable[[torch.Tensor], float], chunk: int = 16) -> np.ndarray:
    """score(prediction [N, T, ...]) of the probe with each unit set of `masks` [S, H] silenced: [S].
    Sets run `chunk` at a time; a resample ablation draws from (seed, chunk index), so the numbers
    depend on the seed and the chunk size only."""
    out = np.empty(len(masks))
    n = len(probe)
    for c, start in enumerate(range(0, len(masks), chunk)):
        block = masks[start:start + chunk]
        lesion = UnitAblation(block, ablation, pool, seed=int(np.random.default_rng([seed, c]).integers(2**62)))
        prediction = probe.predict(lesion, len(block))
        for i in range(len(block)):
            out[start + i] = score(prediction[i * n:(i + 1) * n])
    return out


# --- what a lesion is scored on: probes with their ground truth, and what the null is matched on -------------
@dataclass
class Probed:
    """A probe and the truth its head's output is scored against."""

    probe: Probe
    truth: torch.Tensor


def readout_norms(model: MirrorCore) -> dict[str, np.ndarray]:
    """Each unit's weight norm in the first linear layer of the inverse and of the forward head, [H] each:
    how much each head reads the unit (the positive control, and what the random null is matched on)."""
    def first_linear(head: torch.nn.Module) -> torch.Tensor:
        layer = head if isinstance(head, torch.nn.Linear) else next(m for m in head.modules()
                                                                     if isinstance(m, torch.nn.Linear))
        return layer.weight.detach()

    return {name: first_linear(head).norm(dim=0).cpu().numpy().astype(np.float64)
            for name, head in (("inverse", model.inverse_head), ("forward", model.forward_head))}


def toy_probes(model: MirrorCore, test) -> dict[str, Probed]:
    """The toy core on held-out sequences (`envs.toy.ToySequences`): watching and doing."""
    actions, sensory = torch.from_numpy(test.actions), torch.from_numpy(test.sensory)
    return {"observe": Probed(make_probe(model, "observe", sensory), actions),
            "perform": Probed(make_probe(model, "perform", actions), sensory)}


def _frames(episodes: list[dict], side: str) -> torch.Tensor:
    return torch.from_numpy(np.stack([e[side]["frames"] for e in episodes]).transpose(0, 1, 4, 2, 3).copy())


def embodied_probes(run, dataset, model: MirrorCore) -> dict[str, Probed]:
    """An embodied core on its run's held-out episodes: `observe` (watching the other arm's held-out
    demonstrations), `perform` (doing them: the forward head against the self arm's frames) and, when some
    babbling episodes were never in the inverse head's data, `observe_babble` (watching its own babbling)."""
    from mirrorlab.agents.activations import babble_scored
    from mirrorlab.agents.embodied import observed_input, perform_start
    from mirrorlab.encoders.cnn import frames_as_targets

    window = tuple(run.config.observe_window)
    held = set(run.test_episode_ids)
    demos = [dataset.read_episode(r) for r in dataset.episodes("demo") if r.episode_id in held]
    actions = torch.from_numpy(np.stack([e["actions"] for e in demos]).astype(np.float32))
    own = _frames(demos, "perform")
    probes = {"observe": Probed(make_probe(model, "observe", observed_input(_frames(demos, "observe"), window)),
                                actions),
              "perform": Probed(make_probe(model, "perform", actions, perform_start(model, own)),
                                frames_as_targets(own[:, 1:]))}
    babble = [dataset.read_episode(r) for r in dataset.episodes("babble") if babble_scored(run, r.episode_id)]
    if babble:
        truth = torch.from_numpy(np.stack([e["actions"] for e in babble]).astype(np.float32))
        probes["observe_babble"] = Probed(make_probe(model, "observe", observed_input(_frames(babble, "perform"),
                                                                                          window)), truth)
    return probes


# --- imitation under lesions: the core-based methods rolled out in the env ------------------------------------
IMITATION_MEASURES = ("success", "final_distance")


@dataclass
class ImitationProbe:
    """The core-based imitation methods (`agents.imitation_methods`, per-run rows) of one core on a few test
    videos, rolled out on the self arm with each unit set silenced. Unlike a `Probe`, nothing is shared
    between sets but the videos: every set is a new watching, planning and closed-loop episode. A silenced
    unit gets the value of the mode it is in (a mean-ablation has one mean while watching, another while
    planning), so a set is one lesion of the observe path and one of the perform path."""

    context: Any                 # agents.imitation_methods.Context: task, config, seed, expert
    model: MirrorCore
    label: str
    condition: str
    observe_window: tuple[int, ...]
    methods: tuple[str, ...]     # METHODS names, all per-run (core) rows
    k: int                       # the set size the outcome is measured at (the condition's headline k)
    _scored: dict = field(default_factory=dict)
    _oracle: dict = field(default_factory=dict)

    def scores(self, masks: torch.Tensor, ablation: str, pools: dict, seed: int) -> dict[tuple[str, str], np.ndarray]:
        """(method, measure) -> [S]: the mean over the test videos with each set of `masks` [S, H] silenced
        (an empty set: the intact core). Scored once per (ablation, masks) however many outcomes ask."""
        key = (ablation, seed, masks.numpy().tobytes())
        if key not in self._scored:
            rows = [self.score_set(m, ablation, pools, int(np.random.default_rng([seed, 21, s]).integers(2**62)))
                    for s, m in enumerate(masks)]
            self._scored[key] = {name: np.array([r[name] for r in rows]) for name in rows[0]}
        return self._scored[key]

    def score_set(self, mask: torch.Tensor, ablation: str, pools: dict, seed: int) -> dict[tuple[str, str], float]:
        """Every method on every test video with one set silenced: mean success and final distance."""
        from mirrorlab.agents.imitation_methods import METHODS, Core

        ctx, task = self.context, self.context.task
        lesions = {mode: UnitAblation(mask, ablation, pools.get(mode), seed=seed + i) for i, mode in enumerate(MODES)}
        ctx.core = Core(self.model, self.label, self.condition, self.observe_window, lesion=lesions["observe"],
                        perform_lesion=lesions["perform"])
        out = {}
        for method in (m for m in METHODS if m.name in self.methods):
            make, _ = method.build(ctx)
            scored = [task.score(v, task.rollout(v, make(v)), self.oracle_tips(v)) for v in self.videos]
            out.update({(method.name, m): float(np.mean([s[m] for s in scored])) for m in IMITATION_MEASURES})
        return out

    @property
    def videos(self) -> list:
        return self.context.task.test[self.context.task.appearance]

    def oracle_tips(self, video) -> np.ndarray:
        """The demonstrator's own actions replayed on the self arm (what `score` measures trajectories against)."""
        from mirrorlab.agents.imitation_task import Replay

        if video.episode_id not in self._oracle:
            self._oracle[video.episode_id] = self.context.task.rollout(video, Replay(video.actions))["fingertip_pos"]
        return self._oracle[video.episode_id]

    def close(self) -> None:
        self.context.task.close()


def imitation_probe(run, model: MirrorCore, methods: tuple[str, ...], k: int, n_videos: int,
                    plan_iterations: int) -> ImitationProbe:
    """A run's core on the first `n_videos` test videos of its own dataset and appearance (the imitation
    stage's split: the second half of the held-out demonstrations), planning `plan_iterations` Adam steps."""
    from pathlib import Path

    from mirrorlab.agents.imitation_methods import METHODS, Context, ImitateConfig
    from mirrorlab.agents.imitation_task import ImitationTask

    core_rows = {m.name for m in METHODS if m.per_run}
    if not set(methods) <= core_rows:
        raise ValueError(f"imitation under lesions needs core methods ({', '.join(sorted(core_rows))}), got {methods}")
    config = ImitateConfig(episodes=n_videos, appearances=(), learners=False, plan_iterations=plan_iterations,
                           patching=False, seed=run.config.seed)
    task = ImitationTask(Path(run.data_path), run.train_episode_ids, run.test_episode_ids, n_videos)
    # The core methods never ask the expert (no expert): only references and learnt baselines do.
    context = Context(task, config, run.config.seed, "cpu", expert=None)
    return ImitationProbe(context, model, run.label, run.config.condition, tuple(run.config.observe_window),
                          tuple(methods), k)
