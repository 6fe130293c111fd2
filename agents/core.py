"""The recurrent core with a forward (perform) head and an inverse (observe) head.

Perform: action encoder -> GRU -> forward head predicts the sensory consequence. A *grounded* core also
has a `start_encoder`: the agent's own sensing at the start (its first frame) sets the GRU's initial
state, so the forward head can predict where the arm goes from where it is, not a blurred mean frame.
Observe: sensory encoder -> GRU -> inverse head infers the action.
A `lesion` (any callable on the hidden state [B, H]) is applied after every GRU step, inside the
recurrence, so silenced units also stop feeding the next step (interventions: agents/lesion.py).
With `separate_cores` the two modes run through two GRUs of equal size, so nothing is shared but
the data. The encoders and heads are passed in, so the toy study (token embedding, Linear(16, 96))
and the embodied study (CNN frames, continuous torques) use this one core.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn


Lesion = Callable[[torch.Tensor], torch.Tensor]  # hidden state [B, H] -> the state the core goes on from


def run_gru(gru: nn.GRU, inputs: torch.Tensor, state: torch.Tensor | None, lesion: Lesion | None
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """`gru` over inputs [B, T, D] from `state` ([1, B, H] or None); with a lesion, step by step, the lesion
    applied to each step's state before the next step reads it (the whole sequence at once otherwise)."""
    if lesion is None:
        return gru(inputs, state)
    outputs = []
    for t in range(inputs.shape[1]):
        _, state = gru(inputs[:, t:t + 1], state)
        state = lesion(state[0])[None]
        outputs.append(state[0])
    return torch.stack(outputs, 1), state


class CoreOutput:
    """A run of the core: its states and its head's output.

    The head runs when `prediction` is first read, not before: a reader of the states alone (latent matching
    and goal inference plan through hundreds of perform runs per video) never pays for the forward head,
    whose frame decoder costs about 20x the GRU's forward and backward pass together (a 32-px frame per
    step). The values are the same either way: the head is a function of the states only, and it runs in the
    gradient mode of the call that made the states (a prediction read under `no_grad` still trains).
    """

    def __init__(self, hidden: torch.Tensor, head: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.hidden = hidden  # [B, T, H]: the activations analyzed for mirror units
        self._head: Callable[[torch.Tensor], torch.Tensor] | None = head
        self._grad = torch.is_grad_enabled()
        self._prediction: torch.Tensor | None = None

    @property
    def prediction(self) -> torch.Tensor:
        """Forward head (perform) or inverse head (observe) output, [B, T, *]."""
        if self._head is not None:
            with torch.set_grad_enabled(self._grad):
                self._prediction = self._head(self.hidden)
            self._head = None
        return self._prediction


class MirrorCore(nn.Module):
    def __init__(self, action_encoder: nn.Module, sensory_encoder: nn.Module, input_dim: int,
                 hidden_size: int, forward_head: nn.Module, inverse_head: nn.Module,
                 separate_cores: bool = False, start_encoder: nn.Module | None = None) -> None:
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
        self.start_encoder = start_encoder

    @property
    def grounded(self) -> bool:
        return self.start_encoder is not None

    def perform_start(self, start: torch.Tensor | None) -> torch.Tensor | None:
        """The perform path's initial GRU state [1, B, H] from the own start sensing (None: zeros)."""
        if self.start_encoder is None:
            return None
        if start is None:
            raise ValueError("a grounded core performs from its own start sensing: pass `start`")
        return self.start_encoder(start)[None]

    def perform(self, actions: torch.Tensor, start: torch.Tensor | None = None, lesion: Lesion | None = None
                ) -> CoreOutput:
        return self.perform_encoded(self.action_encoder(actions), self.perform_start(start), lesion,
                                    self.prediction_base(start))

    def observe(self, sensory: torch.Tensor, lesion: Lesion | None = None) -> CoreOutput:
        return self.observe_encoded(self.sensory_encoder(sensory), lesion)

    def prediction_base(self, start: torch.Tensor | None) -> torch.Tensor | None:
        """What the forward head's output is added to: the own start sensing in the head's scale, for a core
        whose forward head predicts the change from where it started (None: it predicts the sensing itself)."""
        base = getattr(self.start_encoder, "base", None)
        return None if base is None or start is None else base(start)

    def perform_encoded(self, encoded: torch.Tensor, state: torch.Tensor | None, lesion: Lesion | None = None,
                        base: torch.Tensor | None = None) -> CoreOutput:
        """The perform path from already encoded actions [B, T, D], its start state and its prediction base
        (`prediction_base`): many lesions of one core on the same episodes encode (CNN, action encoder) once
        (agents/lesion.py)."""
        hidden, _ = run_gru(self.perform_core, encoded, state, lesion)
        if base is None:
            return CoreOutput(hidden, self.forward_head)
        return CoreOutput(hidden, lambda h: self.forward_head(h) + base[:, None])

    def observe_encoded(self, encoded: torch.Tensor, lesion: Lesion | None = None) -> CoreOutput:
        """The observe path from already encoded sensory input [B, T, D]."""
        hidden, _ = run_gru(self.observe_core, encoded, None, lesion)
        return CoreOutput(hidden, self.inverse_head)

    def observe_step(self, sensory: torch.Tensor, state: torch.Tensor | None, lesion: Lesion | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """One observe step from a recurrent state (None: the start): input [B, ...] -> (inverse head
        output [B, *], new state). Closed-loop use, where each step's input is known only then."""
        hidden, state = run_gru(self.observe_core, self.sensory_encoder(sensory[:, None]), state, lesion)
        return self.inverse_head(hidden[:, 0]), state


@dataclass
class Recording:
    """Both runs of a core over the same sequences, aligned by (sequence, timestep), as numpy."""

    perform: np.ndarray            # [N, T, H] hidden states driven by the actions
    observe: np.ndarray            # [N, T, H] hidden states driven by the sensory input
    forward_prediction: np.ndarray  # [N, T, ...] forward head output
    inverse_prediction: np.ndarray  # [N, T, ...] inverse head output


@torch.no_grad()
def record(model: MirrorCore, actions: np.ndarray, observed: np.ndarray, batch_size: int = 64,
           start: np.ndarray | None = None, lesion: Lesion | None = None) -> Recording:
    """Run the core in both modes over paired sequences (actions [N, T, ...], observed input
    [N, T, ...]; `start` [N, ...] the own start sensing of a grounded core) in batches, in eval mode,
    optionally lesioned; the one way activations are recorded, toy or embodied."""
    model.eval()
    device = next(model.parameters()).device

    def tensor(array: np.ndarray | None, s: int) -> torch.Tensor | None:
        return None if array is None else torch.from_numpy(np.ascontiguousarray(array[s:s + batch_size])).to(device)

    parts: dict[str, list[np.ndarray]] = {"perform": [], "observe": [], "forward": [], "inverse": []}
    for s in range(0, len(actions), batch_size):
        p = model.perform(tensor(actions, s), tensor(start, s), lesion)
        o = model.observe(tensor(observed, s), lesion)
        parts["perform"].append(p.hidden.cpu().numpy())
        parts["observe"].append(o.hidden.cpu().numpy())
        parts["forward"].append(p.prediction.cpu().numpy())
        parts["inverse"].append(o.prediction.cpu().numpy())
    joined = {k: np.concatenate(v) for k, v in parts.items()}
    return Recording(joined["perform"], joined["observe"], joined["forward"], joined["inverse"])
