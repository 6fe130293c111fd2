"""The training conditions of the study, as flags of one trainer (not five trainers).

| condition        | cores    | inverse loss | observe labels        | trained |
|------------------|----------|--------------|-----------------------|---------|
| shared           | one GRU  | yes          | true                  | yes     |
| separate         | two GRUs | yes          | true                  | yes     |
| forward_only     | one GRU  | no           | (unused)              | yes     |
| shuffled_labels  | one GRU  | yes          | permuted across the batch's sequences | yes |
| untrained        | one GRU  | -            | -                     | no: initialised, never stepped |
"""

from __future__ import annotations

from dataclasses import dataclass


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


def get_condition(name: str) -> Condition:
    try:
        return CONDITIONS[name]
    except KeyError:
        raise ValueError(f"unknown condition {name!r}; expected one of {', '.join(CONDITIONS)}") from None
