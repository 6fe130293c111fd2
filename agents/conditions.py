"""The training conditions of the study: one table, read by the toy and the embodied trainers alike.

| condition        | cores    | inverse loss | observe labels                                   | trained |
|------------------|----------|--------------|--------------------------------------------------|---------|
| shared           | one GRU  | yes          | true                                             | yes     |
| separate         | two GRUs | yes          | true                                             | yes     |
| forward_only     | one GRU  | no           | (unused)                                         | yes     |
| shuffled_labels  | one GRU  | yes          | another sequence's (a fresh derangement each epoch) | yes  |
| untrained        | one GRU  | -            | -                                                | no: initialised, never stepped |

A new condition is one row of `CONDITIONS`; `observe_label_order` and `training_loss` are the only
places a trainer asks what a condition means, and `check_conditions` the only place names are checked.

The shuffled-labels control uses a *derangement* of the training sequences: sequence i learns from
the labels of sequence j != i. A plain permutation leaves about one sequence per batch with its own
labels, and with cross-entropy the best answer is then still the true action, at low confidence:
the control would learn the mapping it is meant to remove.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from mirrorlab.errors import UserError
from mirrorlab.permutations import derangement


@dataclass(frozen=True)
class Condition:
    name: str
    separate_cores: bool = False
    inverse_loss: bool = True
    shuffle_observe_labels: bool = False
    trained: bool = True


CONDITIONS: dict[str, Condition] = {
    c.name: c
    for c in (
        Condition("shared"),
        Condition("separate", separate_cores=True),
        Condition("forward_only", inverse_loss=False),
        Condition("shuffled_labels", shuffle_observe_labels=True),
        Condition("untrained", trained=False),
    )
}


def get_condition(name: str, where: str = "condition") -> Condition:
    try:
        return CONDITIONS[name]
    except KeyError:
        raise UserError(f"{where}: unknown condition {name!r}; expected one of {', '.join(CONDITIONS)}") from None


def check_conditions(names: Iterable[str], where: str = "conditions", required: Iterable[str] = ()) -> tuple[str, ...]:
    """A non-empty list of distinct known condition names, including `required`; one error otherwise."""
    names = tuple(names)
    if not names:
        raise UserError(f"{where}: name at least one condition ({', '.join(CONDITIONS)})")
    for name in names:
        get_condition(name, where)
    if len(set(names)) != len(names):
        raise UserError(f"{where}: each condition once, got {list(names)}")
    missing = [c for c in required if c not in names]
    if missing:
        raise UserError(f"{where}: must include {', '.join(missing)}, got {list(names)}")
    return names


def observe_label_order(condition: Condition, n_sequences: int, seed: int, epoch: int) -> np.ndarray:
    """Whose labels each training sequence's observe run learns from in this epoch: the identity, or,
    for `shuffled_labels`, a derangement drawn from (seed, epoch)."""
    if not condition.shuffle_observe_labels:
        return np.arange(n_sequences)
    return derangement(n_sequences, np.random.default_rng([seed, epoch, 7]))


def training_loss(condition: Condition, forward_loss, inverse_loss, forward_weight: float, inverse_weight: float):
    """forward_weight * forward (+ inverse_weight * inverse, unless the condition drops the inverse loss)."""
    loss = forward_weight * forward_loss
    if condition.inverse_loss and inverse_loss is not None:
        loss = loss + inverse_weight * inverse_loss
    return loss
