"""Learners that imitate from video, where the task lives only in the demonstrator's video.

Every learner acts on the self arm seeing only what imitation allows: its own camera (no target drawn)
and proprioception, and the other arm's video, watched before acting. Written here because the
`imitation` package pins gymnasium 0.29.

- `FramePolicy`: a CNN on a window of frames -> the action between them. With the window
  (own frame t-1, own frame t, the demonstration's frame t+1) it is a closed-loop tracking policy:
  "what takes me from where I am to where the demonstrator is next". BCO's inverse dynamics model
  (fitted on the self arm's own babbling, all frames its own), BC (fitted on videos labelled by the
  core's inverse head) and DAgger (BC, relabelled by the expert on the learner's own states) are all
  this one policy, fitted to different data.
- `CoreTracker`: the mirror core's observe path run in closed loop: its window at step t takes the own
  frames up to t and the demonstration's frames after it; the GRU state follows the own frames.
- `plan_by_synthesis`: imitation by the mirror system, analysis by synthesis: the action sequence whose
  forward-predicted frames (the core's perform path and forward head) match the video, by gradient
  descent on the whole sequence; `replan_every` re-optimises the remaining actions during the episode.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mirrorlab.encoders.cnn import FrameEncoder, frames_as_targets, random_shift

# Frames of a tracking window, relative to the step t: the own frames t-1 and t, the demonstration's t+1.
TRACK_WINDOW = (-1, 0, 1)


class FramePolicy(nn.Module):
    """uint8 windows [..., K, 3, S, S] -> actions [..., A] in [-1, 1]."""

    def __init__(self, frame_size: int, action_dim: int, n_frames: int = len(TRACK_WINDOW), channels: int = 16,
                 strides: tuple[int, ...] = (2, 1, 2, 1), embed_dim: int = 128) -> None:
        super().__init__()
        self.encoder = FrameEncoder(frame_size, embed_dim, channels, n_frames, strides)
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(embed_dim, action_dim), nn.Tanh())

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(windows))

    @torch.no_grad()
    def act(self, window: np.ndarray) -> np.ndarray:
        self.eval()
        return self(_tensor(window, self)[None])[0].cpu().numpy()


def _tensor(array: np.ndarray, module: nn.Module) -> torch.Tensor:
    """`array` as a tensor on `module`'s device (CPU or GPU, wherever its weights are)."""
    return torch.from_numpy(np.ascontiguousarray(array)).to(next(module.parameters()).device)


def episode_windows(frames: np.ndarray, window: tuple[int, ...] = TRACK_WINDOW) -> np.ndarray:
    """frames [N, T+1, S, S, 3] -> windows [N, T, K, 3, S, S]: for step t, frames t + k (clamped)."""
    T = frames.shape[1] - 1
    index = np.clip(np.arange(T)[:, None] + np.asarray(window)[None, :], 0, T)
    return frames[:, index].transpose(0, 1, 2, 5, 3, 4)


def fit_frame_policy(windows: np.ndarray, actions: np.ndarray, *, epochs: int, lr: float = 1e-3,
                     batch_size: int = 64, seed: int = 0, augment_shift: int = 2,
                     policy: FramePolicy | None = None, device: str = "cpu") -> FramePolicy:
    """Regress actions [M, A] on windows [M, K, 3, S, S] (uint8); a given policy is trained further.
    Random shifts (DrQ) of each window, the same for its frames, as the core's training uses."""
    if windows.shape[0] != actions.shape[0] or windows.shape[0] == 0:
        raise ValueError(f"windows {windows.shape} and actions {actions.shape} must pair up and be non-empty")
    if policy is None:
        torch.manual_seed(seed)
        policy = FramePolicy(windows.shape[-1], actions.shape[-1], windows.shape[1])
    policy.to(device).train()
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    x, y = torch.from_numpy(np.ascontiguousarray(windows)), torch.as_tensor(actions, dtype=torch.float32)
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(len(x)))
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            shifted = random_shift(x[idx], augment_shift, generator)  # on CPU: the same shifts on any device
            loss = F.mse_loss(policy(shifted.to(device)), y[idx].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return policy.eval()


def dagger(policy: Any, windows: np.ndarray, actions: np.ndarray,
           rollout: Callable[[Any, int], tuple[np.ndarray, np.ndarray]], seeds: list[list[int]],
           fit: Callable[[np.ndarray, np.ndarray, Any, int], Any]) -> tuple[Any, int]:
    """DAgger (Ross et al. 2011): roll out the current policy, have the expert label the inputs it
    visits, aggregate with all data so far, refit. `rollout(policy, seed)` runs one episode with the
    policy acting and returns (visited inputs, the expert's actions in them); `seeds[i]` are the episodes
    of iteration i; `fit(inputs, actions, policy, iteration)` refits. Returns the policy and the number
    of expert queries (labelled inputs)."""
    all_inputs, all_actions = [windows], [actions]
    queries = 0
    for i, iteration_seeds in enumerate(seeds):
        for s in iteration_seeds:
            visited, labels = rollout(policy, s)
            all_inputs.append(visited)
            all_actions.append(labels)
            queries += len(visited)
        policy = fit(np.concatenate(all_inputs), np.concatenate(all_actions), policy, i + 1)
    return policy, queries


class TrackingActor:
    """An actor (obs, t) -> action that tracks a demonstration with a window policy: the window at step t
    is the own frames t-1, t (from the env's pixel observations) and the demonstration's frame t+1."""

    def __init__(self, policy: Callable[[np.ndarray], np.ndarray], demo_frames: np.ndarray,
                 record: list[np.ndarray] | None = None):
        self.policy, self.demo = policy, demo_frames          # demo [T+1, S, S, 3]
        self.own: list[np.ndarray] = []
        self.record = record                                 # windows seen, for DAgger

    def __call__(self, obs: dict[str, Any], t: int) -> np.ndarray:
        self.own.append(obs["pixels"])
        previous = self.own[max(0, t - 1)]
        window = np.stack([previous, self.own[t], self.demo[min(t + 1, len(self.demo) - 1)]]).transpose(0, 3, 1, 2)
        if self.record is not None:
            self.record.append(window)
        return self.policy(window)


class CoreTracker:
    """The mirror core's observe path in closed loop on the self arm (see the module docstring)."""

    def __init__(self, model, observe_window: tuple[int, ...], demo_frames: np.ndarray, lesion=None):
        self.model, self.window, self.demo, self.lesion = model, tuple(observe_window), demo_frames, lesion
        self.own: list[np.ndarray] = []
        self.hidden = None

    def _frame(self, index: int, t: int) -> np.ndarray:
        """Frame `index` as seen at step t: own up to t, the demonstration's after (clamped to the episode)."""
        index = min(max(index, 0), len(self.demo) - 1)
        return self.own[index] if index <= t else self.demo[index]

    @torch.no_grad()
    def __call__(self, obs: dict[str, Any], t: int) -> np.ndarray:
        self.own.append(obs["pixels"])  # own frame t (the state before action t)
        if t > 0:  # the GRU follows what really happened at step t-1, now that own frame t is known
            actual = self._stack([self._frame(t - 1 + k, t) for k in self.window])
            _, self.hidden = self.model.observe_step(actual, self.hidden, self.lesion)
        wanted = self._stack([self._frame(t + k, t) for k in self.window])
        prediction, _ = self.model.observe_step(wanted, self.hidden, self.lesion)
        return prediction[0].cpu().numpy()

    def _stack(self, frames: list[np.ndarray]) -> torch.Tensor:
        return _tensor(np.stack(frames).transpose(0, 3, 1, 2), self.model)[None]


Match = Callable[[Any, int], torch.Tensor]  # (perform output over the whole plan, first free step) -> loss


def plan_through_core(model, n_steps: int, action_dim: int, match: Match, *, iterations: int, lr: float = 0.05,
                      start_frame: np.ndarray | None = None, prefix: np.ndarray | None = None,
                      init: np.ndarray | None = None, seed: int = 0, lesion=None) -> np.ndarray:
    """Actions [T, A] that minimise `match` of the core's perform run over them, by Adam on an unconstrained
    sequence squashed by tanh: the one planner of the mirror-system methods (analysis by synthesis, latent
    matching, goal inference differ only in `match`). `prefix` [t0, A] fixes the actions already executed;
    the rest start from `init` (or 0). A grounded core performs from `start_frame` [S, S, 3], the own
    first frame. The weights are frozen while planning and restored after."""
    torch.manual_seed(seed)
    device = next(model.parameters()).device
    own_start = None if start_frame is None else _tensor(start_frame.transpose(2, 0, 1), model)[None]
    t0 = 0 if prefix is None else len(prefix)
    start = np.zeros((n_steps, action_dim), np.float32) if init is None else np.asarray(init, np.float32)
    free = torch.atanh(torch.from_numpy(np.clip(start[t0:], -0.95, 0.95))).to(device).requires_grad_(True)
    fixed = torch.as_tensor(np.zeros((0, action_dim)) if prefix is None else prefix, dtype=torch.float32,
                            device=device)
    optimizer = torch.optim.Adam([free], lr=lr)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        for _ in range(iterations):
            loss = match(model.perform(torch.cat([fixed, torch.tanh(free)])[None], own_start, lesion), t0)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
    with torch.no_grad():
        return torch.cat([fixed, torch.tanh(free)]).cpu().numpy()


def match_frames(video_frames: np.ndarray, model) -> Match:
    """Analysis by synthesis: the forward head's predicted frames against the video's frames 1..T."""
    target = frames_as_targets(_tensor(video_frames[1:].transpose(0, 3, 1, 2), model))
    return lambda out, t0: F.mse_loss(out.prediction[0, t0:], target[t0:])


def match_states(observe_hidden: torch.Tensor, final_only: bool = False) -> Match:
    """Latent matching: the perform-mode states against the video's observe-mode states [T, H], step by step
    (or only the last step: goal inference, the video's final state read as the goal)."""
    if final_only:
        return lambda out, _t0: F.mse_loss(out.hidden[0, -1], observe_hidden[-1])
    return lambda out, t0: F.mse_loss(out.hidden[0, t0:], observe_hidden[t0:])


@torch.no_grad()
def watch(model, video_frames: np.ndarray, observe_window: tuple[int, ...], lesion=None):
    """The core watching a video [T+1, S, S, 3]: (observe-mode states [T, H], inferred actions [T, A]) as tensors."""
    from mirrorlab.agents.embodied import observed_input

    model.eval()
    frames = _tensor(video_frames.transpose(0, 3, 1, 2), model)
    out = model.observe(observed_input(frames, tuple(observe_window))[None], lesion)
    return out.hidden[0], out.prediction[0]


class PlanningActor:
    """Executes `plan_through_core`'s plan, re-planning the remaining actions every `replan_every` steps from
    the executed prefix (the perform path then runs through what was really done, from the own first frame)."""

    def __init__(self, model, match: Match, n_steps: int, action_dim: int, *, iterations: int, replan_every: int,
                 replan_iterations: int, init: np.ndarray | None = None, seed: int = 0, lesion=None):
        self.model, self.match, self.T, self.A = model, match, n_steps, action_dim
        self.iterations, self.replan_every, self.replan_iterations = iterations, replan_every, replan_iterations
        self.init, self.seed, self.lesion = init, seed, lesion
        self.start: np.ndarray | None = None
        self.plan: np.ndarray | None = None

    def _plan(self, iterations: int, t: int) -> np.ndarray:
        return plan_through_core(self.model, self.T, self.A, self.match, iterations=iterations,
                                 start_frame=self.start, prefix=None if t == 0 else self.plan[:t],
                                 init=self.init if t == 0 else self.plan, seed=self.seed + t, lesion=self.lesion)

    def __call__(self, obs: dict[str, Any], t: int) -> np.ndarray:
        if t == 0:  # the own first frame is known only now
            self.start = obs["pixels"] if self.model.grounded else None
            self.plan = self._plan(self.iterations, 0)
        elif self.replan_every and t % self.replan_every == 0 and self.replan_iterations:
            self.plan = self._plan(self.replan_iterations, t)
        return self.plan[t]
