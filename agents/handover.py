"""Handing over control: a learner that lets the expert drive where its ensemble disagrees.

"Let the model and the player have a hand on the joystick at the same time. Once the model feels like it's
in a strange situation, it hands over control to the player." As in EnsembleDAgger (Menda et al. 2019) and
ThriftyDAgger (Hoque et al. 2021): an ensemble of DAgger's tracking policies (own frames t-1, t and the
video's t+1 -> action, `agents.imitation.TrackingActor`) fitted on the same videos, member 0 DAgger's own
first policy and the others from their own seeds, drives with its mean action; where the members disagree
beyond a threshold, the expert drives that step and its action is the label kept. Unlike DAgger, the expert
is asked only at those steps, and the learner visits the states the expert steers it back to.

Equal queries. DAgger asks for `dagger_episodes x T` labels per iteration. The handover learner gets the
same budget per iteration, as a hard cap, and runs episodes until it is spent (at most `2 x dagger_episodes
/ fraction`). The threshold is the `1 - fraction` quantile of the disagreement on the states the learner
visits: first on `dagger_episodes` episodes it drives alone, then, after every episode, on the iteration's
episodes so far (the expert's help keeps the learner where its members agree, so a threshold set
while it drove alone would leave much of the budget unspent). At test it acts alone (the ensemble's mean).
Its rows carry `expert_queries`, `expert_driven_steps` (equal here: the expert labels what it drives) and
`learner_driven_steps` of its training episodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:
    from mirrorlab.agents.imitation_methods import Built, Context


@dataclass(frozen=True)
class HandoverSettings:
    members: int = 3         # tracking policies in the ensemble
    fraction: float = 0.25   # share of the learner's own steps to hand over (sets the threshold)


SETTINGS = HandoverSettings()


def disagreement(proposals: np.ndarray) -> float:
    """The members' actions [K, A] -> their standard deviation across members, averaged over action dims."""
    return float(np.asarray(proposals, np.float64).std(axis=0).mean())


def calibrate(disagreements: list[float], fraction: float) -> float:
    """The threshold above which `fraction` of these disagreements lie."""
    return float(np.quantile(np.asarray(disagreements, np.float64), 1.0 - fraction))


class SharedControl:
    """One episode with two hands on the joystick: the ensemble's mean action, or the expert's where the members
    disagree beyond `threshold`, while fewer than `budget` labels were asked for. Records every step's
    disagreement, the steps handed over, and the inputs the expert labelled there."""

    def __init__(self, inputs: Callable[[Any, int], Any], members: list[Callable[[Any], np.ndarray]],
                 expert: Callable[[Any, int], np.ndarray], threshold: float, budget: int):
        self.inputs, self.members, self.expert = inputs, members, expert
        self.threshold, self.budget = float(threshold), int(budget)
        self.disagreement: list[float] = []
        self.handed_over: list[int] = []
        self.labelled: list[Any] = []
        self.labels: list[np.ndarray] = []

    def __call__(self, obs: Any, t: int) -> np.ndarray:
        x = self.inputs(obs, t)
        proposals = np.stack([np.asarray(m(x), np.float32) for m in self.members])
        self.disagreement.append(disagreement(proposals))
        if self.disagreement[-1] > self.threshold and len(self.labels) < self.budget:
            action = np.asarray(self.expert(obs, t), np.float32)
            self.handed_over.append(t)
            self.labelled.append(x)
            self.labels.append(action)
            return action
        return proposals.mean(axis=0)


@dataclass
class HandoverCost:
    """What training cost: labels asked for, and who drove the steps of the training episodes."""

    expert_queries: int = 0
    expert_driven_steps: int = 0
    learner_driven_steps: int = 0
    episodes: int = 0

    def add(self, control: SharedControl) -> None:
        self.expert_queries += len(control.labels)
        self.expert_driven_steps += len(control.handed_over)
        self.learner_driven_steps += len(control.disagreement) - len(control.handed_over)
        self.episodes += 1


Rollout = Callable[[list, float, int, int], SharedControl]  # (members, threshold, budget, episode index)


def handover_dagger(members: list, inputs: np.ndarray, labels: np.ndarray, rollout: Rollout,
                    fit: Callable[[np.ndarray, np.ndarray, list, int], list], *, iterations: int, episodes: int,
                    budget: int, fraction: float) -> tuple[list, HandoverCost]:
    """Ensemble DAgger with hand-over (see the module docstring): per iteration, episodes under shared control
    until `budget` labels are spent (at most `2 ceil(episodes / fraction)`), the threshold recalibrated after
    each, the labels aggregated with all data so far, every member refitted. `rollout(members, threshold,
    budget, index)` runs episode `index` and returns its `SharedControl`; `fit(inputs, labels, members,
    iteration)` returns the refitted members. The first `episodes` episodes the learner drives alone."""
    cost = HandoverCost()
    alone = [rollout(members, math.inf, 0, j) for j in range(episodes)]  # the learner's own states: calibration
    for control in alone:
        cost.add(control)
    threshold = calibrate([u for c in alone for u in c.disagreement], fraction)
    data_x, data_y, index = [inputs], [labels], episodes
    for i in range(iterations):
        left, seen = budget, []
        for _ in range(2 * math.ceil(episodes / fraction)):
            if left <= 0:
                break
            control = rollout(members, threshold, left, index)
            index += 1
            cost.add(control)
            left -= len(control.labels)
            seen += control.disagreement
            threshold = calibrate(seen, fraction)
            if control.labels:
                data_x.append(np.stack(control.labelled))
                data_y.append(np.stack(control.labels))
        members = fit(np.concatenate(data_x), np.concatenate(data_y), members, i + 1)
    return members, cost


def mean_policy(members: list[Callable[[Any], np.ndarray]]) -> Callable[[Any], np.ndarray]:
    return lambda x: np.mean([m(x) for m in members], axis=0)


def build_handover(ctx: "Context", settings: HandoverSettings = SETTINGS) -> "Built":
    """The `handover` method: DAgger's tracking policy as an ensemble that hands over control, at DAgger's
    expert-query budget (`dagger_iterations`, `dagger_episodes`), on DAgger's videos with its fit and refit
    epochs."""
    from mirrorlab.agents.imitation import TrackingActor, fit_frame_policy, step_windows

    task, c = ctx.task, ctx.config
    videos = ctx.learner_videos
    flat, labels = step_windows(np.stack([v.frames for v in videos]), [v.actions for v in videos])

    def member(k: int, x: np.ndarray, y: np.ndarray, policy, iteration: int):
        return fit_frame_policy(x, y, epochs=c.policy_epochs if policy is None else c.refit_epochs, lr=c.policy_lr,
                                seed=ctx.seed * 100 + iteration + 10_000 * k, policy=policy, device=ctx.device)

    def fit(x: np.ndarray, y: np.ndarray, members: list | None, iteration: int) -> list:
        if members is None:  # member 0 is DAgger's first policy (a copy of the seed's one fit), the others their own
            return [ctx.first_fit("demonstrations", lambda: (x, y))] + \
                [member(k, x, y, None, 0) for k in range(1, settings.members)]
        return [member(k, x, y, m, iteration) for k, m in enumerate(members)]

    def rollout(members: list, threshold: float, budget: int, index: int) -> SharedControl:
        video = task.fit[index % len(task.fit)]
        control = SharedControl(TrackingActor(lambda w: w, video.frames), [m.act for m in members], ctx.expert,
                                threshold, budget)
        task.rollout(video, control)
        return control

    members, cost = handover_dagger(fit(flat, labels, None, 0), flat, labels, rollout, fit,
                                    iterations=c.dagger_iterations, episodes=c.dagger_episodes,
                                    budget=c.dagger_episodes * len(task.fit[0].actions), fraction=settings.fraction)
    act = mean_policy([m.act for m in members])
    return (lambda v: TrackingActor(act, v.frames)), {"expert_queries": cost.expert_queries,
                                                       "expert_driven_steps": cost.expert_driven_steps,
                                                       "learner_driven_steps": cost.learner_driven_steps}
