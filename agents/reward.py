"""Reward-modulated learning (the paper's "dopamine analogues"): how much each training step of an episode teaches.

The reward of step t is the progress an arm makes towards its target with action a_t, rectified:
max(0, distance_t - distance_{t+1}) (metres; `distance` is stored per side of every paired episode). Step t
is where both heads meet action a_t: the forward head predicts frame t+1 from it, the inverse head reads it
from the frames around it, so one weight per (episode, step) scales both losses.

| `reward_modulation` | whose progress weighs a step                                                     |
|---------------------|----------------------------------------------------------------------------------|
| `none`              | nobody's: every step weighs 1 (the default; the trainer's loss is then untouched)  |
| `self`              | the self arm's (the perform side: the agent's own success)                      |
| `other`             | the other arm's (the observe side: the success it watches); babble batches, which have no other arm, stay unweighted |

Weights are normalised to mean 1 over the batch before mixing, so modulation moves learning between steps
without changing its overall size (Adam would undo a global scale anyway): w = (1 - s) + s r / mean(r), with
s = `reward_strength`. At s = 1 a step without progress teaches nothing; a batch where nothing progressed
then teaches nothing either. Rectified rather than signed because a negative weight would be gradient
ascent: unlearning what moved away from the target, not a smaller update.
"""

from __future__ import annotations

from typing import Any

import torch

REWARD_SIDES = {"self": "perform", "other": "observe"}


def step_progress(distance: torch.Tensor) -> torch.Tensor:
    """distance [B, T+1] (fingertip to target before each step and after the last) -> rectified progress [B, T]."""
    return (distance[:, :-1] - distance[:, 1:]).clamp(min=0)


def modulation_weights(progress: torch.Tensor, strength: float) -> torch.Tensor:
    """Per-step weights [B, T] of mean (1 - strength) + strength (1 when anything progressed)."""
    mean = progress.mean()
    relative = progress / mean if mean > 0 else torch.zeros_like(progress)
    return (1.0 - strength) + strength * relative


def reward_weights(batch: dict[str, Any], modulation: str, strength: float) -> torch.Tensor | None:
    """The batch's step weights [B, T] under `modulation`; None where every step weighs 1 (`none`, or `other`
    on a babbling batch, which has no other arm)."""
    if modulation == "none":
        return None
    side = REWARD_SIDES[modulation]
    if side not in batch:
        return None
    return modulation_weights(step_progress(batch[side]["distance"].to(torch.float32)), strength)


def weighted_mean(step_errors: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """The mean over (episode, step) of step_errors [B, T], each scaled by its weight (None: all 1)."""
    return step_errors.mean() if weights is None else (weights * step_errors).mean()
