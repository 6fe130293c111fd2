"""The recurrent core with a forward (perform) head and an inverse (observe) head.

Perform: action encoder -> GRU -> forward head predicts the sensory consequence.
Observe: sensory encoder -> GRU -> inverse head infers the action.
With `separate_cores` the two modes run through two GRUs of equal size, so nothing is shared but
the data. The encoders and heads are passed in, so the toy study (token embedding, Linear(16, 96))
and the embodied study (CNN frames, continuous torques) use this one core.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass
class CoreOutput:
    hidden: torch.Tensor      # [B, T, H]: the activations analyzed for mirror units
    prediction: torch.Tensor  # forward head (perform) or inverse head (observe) output, [B, T, *]


class MirrorCore(nn.Module):
    def __init__(self, action_encoder: nn.Module, sensory_encoder: nn.Module, input_dim: int,
                 hidden_size: int, forward_head: nn.Module, inverse_head: nn.Module,
                 separate_cores: bool = False) -> None:
        super().__init__()
        self.action_encoder = action_encoder
        self.sensory_encoder = sensory_encoder
        self.perform_core = nn.GRU(input_dim, hidden_size, batch_first=True)
        # The observe core is the same module unless the separate-cores control asks for a second one.
        self.observe_core = nn.GRU(input_dim, hidden_size, batch_first=True) if separate_cores else self.perform_core
        self.forward_head = forward_head
        self.inverse_head = inverse_head
        self.separate_cores = separate_cores
        self.hidden_size = hidden_size

    def perform(self, actions: torch.Tensor) -> CoreOutput:
        hidden, _ = self.perform_core(self.action_encoder(actions))
        return CoreOutput(hidden, self.forward_head(hidden))

    def observe(self, sensory: torch.Tensor) -> CoreOutput:
        hidden, _ = self.observe_core(self.sensory_encoder(sensory))
        return CoreOutput(hidden, self.inverse_head(hidden))

    def observe_step(self, sensory: torch.Tensor, state: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """One observe step from a recurrent state (None: the start): input [B, ...] -> (inverse head
        output [B, *], new state). Closed-loop use, where each step's input is known only then."""
        hidden, state = self.observe_core(self.sensory_encoder(sensory[:, None]), state)
        return self.inverse_head(hidden[:, 0]), state


@dataclass
class Recording:
    """Both runs of a core over the same sequences, aligned by (sequence, timestep), as numpy."""

    perform: np.ndarray            # [N, T, H] hidden states driven by the actions
    observe: np.ndarray            # [N, T, H] hidden states driven by the sensory input
    forward_prediction: np.ndarray  # [N, T, ...] forward head output
    inverse_prediction: np.ndarray  # [N, T, ...] inverse head output


@torch.no_grad()
def record(model: MirrorCore, actions: np.ndarray, observed: np.ndarray, batch_size: int = 64) -> Recording:
    """Run the core in both modes over paired sequences (actions [N, T, ...], observed input
    [N, T, ...]) in batches, in eval mode; the one way activations are recorded, toy or embodied."""
    model.eval()
    device = next(model.parameters()).device
    parts: dict[str, list[np.ndarray]] = {"perform": [], "observe": [], "forward": [], "inverse": []}
    for s in range(0, len(actions), batch_size):
        p = model.perform(torch.from_numpy(np.ascontiguousarray(actions[s:s + batch_size])).to(device))
        o = model.observe(torch.from_numpy(np.ascontiguousarray(observed[s:s + batch_size])).to(device))
        parts["perform"].append(p.hidden.cpu().numpy())
        parts["observe"].append(o.hidden.cpu().numpy())
        parts["forward"].append(p.prediction.cpu().numpy())
        parts["inverse"].append(o.prediction.cpu().numpy())
    joined = {k: np.concatenate(v) for k, v in parts.items()}
    return Recording(joined["perform"], joined["observe"], joined["forward"], joined["inverse"])
