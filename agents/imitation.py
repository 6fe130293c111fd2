"""Learners that imitate from video, where the task lives only in the demonstrator's video.

Every learner acts on the self arm seeing only what imitation allows: its own camera (no target drawn)
and proprioception, and the other arm's video, watched before acting. Written here because the
`imitation` package pins gymnasium 0.29.

- `FramePolicy`: a CNN on a window of frames -> the action between them. Fitted on video windows with the
  demonstrator's actions it is BC; on the self arm's own babbling, BCO's inverse dynamics; with the window
  (own frame t-1, own frame t, the demonstration's frame t+1), `TrackingActor`'s closed-loop tracking policy
  that DAgger and handover improve with an expert.
- `CoreTracker`: the mirror core's observe path run in closed loop: its window at step t takes the own
  frames up to t and the demonstration's frames after it; the GRU state follows the own frames.
- `plan_through_core`: the mirror system's one planner: action sequences (many videos at once) whose perform
  run through the grounded core matches the video, by gradient descent; what it matches (`match_frames`,
  `match_states`) makes it analysis by synthesis, latent matching or goal inference. `PlanningActor`
  re-plans from the own frame during the episode.
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


def step_windows(frames: np.ndarray, actions: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Episodes' frames [N, T+1, S, S, 3] and actions (N arrays [T, A]) -> one training pair per step: windows
    [N*T, K, 3, S, S] and actions [N*T, A], as every frame policy is fitted (BC, BCO, DAgger, handover)."""
    windows = episode_windows(frames)
    return windows.reshape(-1, *windows.shape[2:]), np.concatenate(actions)


def fit_frame_policy(windows: np.ndarray, actions: np.ndarray, *, epochs: int, lr: float = 1e-3,
                     batch_size: int = 64, seed: int = 0, augment_shift: int = 2,
                     policy: FramePolicy | None = None, device: str = "cpu",
                     after_epoch: Callable[[int, FramePolicy], None] | None = None) -> FramePolicy:
    """Regress actions [M, A] on windows [M, K, 3, S, S] (uint8); a given policy is trained further.
    Random shifts (DrQ) of each window, the same for its frames, as the core's training uses.
    `after_epoch(epoch, policy)` sees the policy after each epoch (the fit's learning curve: one fit of
    E epochs shows every shorter fit, since nothing in the fit depends on E)."""
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
    for epoch in range(epochs):
        order = torch.from_numpy(rng.permutation(len(x)))
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            shifted = random_shift(x[idx], augment_shift, generator)  # on CPU: the same shifts on any device
            loss = F.mse_loss(policy(shifted.to(device)), y[idx].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if after_epoch is not None:
            after_epoch(epoch + 1, policy.eval())
            policy.train()
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


Match = Callable[[Any, int], torch.Tensor]  # (perform output [N, T - t0, ...] from step t0, t0) -> loss


def plan_through_core(model, match: Match, init: np.ndarray, *, iterations: int, lr: float = 0.05,
                      start_frames: np.ndarray | None = None, t0: int = 0, seed: int = 0, lesion=None) -> np.ndarray:
    """Actions [N, T - t0, A] for N plans at once that minimise `match` of the core's perform run over them,
    by Adam on unconstrained sequences squashed by tanh, from `init` [N, T - t0, A]: the one planner of the
    mirror-system methods (analysis by synthesis, latent matching and goal inference differ only in
    `match`). A grounded core performs from `start_frames` [N, S, S, 3], the own frames at step t0. The
    weights are frozen while planning and restored after."""
    torch.manual_seed(seed)
    own_start = None if start_frames is None else _tensor(start_frames.transpose(0, 3, 1, 2), model)
    free = torch.atanh(_tensor(np.clip(np.asarray(init, np.float32), -0.95, 0.95), model)).requires_grad_(True)
    optimizer = torch.optim.Adam([free], lr=lr)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        for _ in range(iterations):
            loss = match(model.perform(torch.tanh(free), own_start, lesion), t0)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
    with torch.no_grad():
        return torch.tanh(free).cpu().numpy()


def match_frames(video_frames: np.ndarray, model) -> Match:
    """Analysis by synthesis: the forward head's predicted frames against the videos' frames [N, T+1, S, S, 3]
    after each planned action."""
    target = frames_as_targets(_tensor(video_frames[:, 1:].transpose(0, 1, 4, 2, 3), model))
    return lambda out, t0: F.mse_loss(out.prediction, target[:, t0:])


def match_states(observe_hidden: torch.Tensor, final_only: bool = False) -> Match:
    """Latent matching: the perform-mode states against the videos' observe-mode states [N, T, H], step by step
    (or only the last step: goal inference, the video's final state read as the goal)."""
    if final_only:
        return lambda out, _t0: F.mse_loss(out.hidden[:, -1], observe_hidden[:, -1])
    return lambda out, t0: F.mse_loss(out.hidden, observe_hidden[:, t0:])


@torch.no_grad()
def watch(model, video_frames: np.ndarray, observe_window: tuple[int, ...], lesion=None):
    """The core watching videos [N, T+1, S, S, 3]: (observe-mode states [N, T, H], inferred actions [N, T, A])."""
    from mirrorlab.agents.embodied import observed_input

    model.eval()
    frames = _tensor(video_frames.transpose(0, 1, 4, 2, 3), model)
    out = model.observe(observed_input(frames, tuple(observe_window)), lesion)
    return out.hidden, out.prediction


class PlanningActor:
    """Executes a plan (made for many videos at once by `plan_through_core`); with `replan_every`, re-plans the
    remaining actions from the own frame of that step: the grounded perform path re-encodes where the arm
    really is (the start encoder learnt on start frames, so this asks it to generalise), the only feedback a
    perform path that sees nothing after its start can get. Without a grounded core re-planning would only
    continue the same optimisation, so it is not done."""

    def __init__(self, model, match: Match, plan: np.ndarray, *, replan_every: int = 0, replan_iterations: int = 0,
                 seed: int = 0, lesion=None):
        self.model, self.match, self.plan = model, match, np.array(plan, np.float32)
        self.replan_every = replan_every if model.grounded and replan_iterations else 0
        self.replan_iterations, self.seed, self.lesion = replan_iterations, seed, lesion

    def __call__(self, obs: dict[str, Any], t: int) -> np.ndarray:
        if t and self.replan_every and t % self.replan_every == 0:
            self.plan[t:] = plan_through_core(self.model, self.match, self.plan[None, t:],
                                              iterations=self.replan_iterations, start_frames=obs["pixels"][None],
                                              t0=t, seed=self.seed + t, lesion=self.lesion)[0]
        return self.plan[t]
