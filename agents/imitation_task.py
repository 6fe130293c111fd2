"""The imitation task of one dataset: the videos to imitate, what learners may fit on, the self arm, the scoring.

The task lives only in the demonstrator's video. The self arm starts where the other did (same reset
seed: the same start pose, the same target in its own base frame), but its state is joint angles and
velocities only and no target is drawn in its camera, in training data as at test (collection never
draws the self arm's target). The held-out demo episodes of the runs (never trained on) are split in
two: the first half are *fit* videos (what BCO(alpha) and DAgger may roll out on), the second half are
*test* videos, scored. The test videos come in every appearance asked for: the dataset's own, and
appearances no core trained on (`held_out_color`), which are rendered here: the demonstrator acting on
the same reset seeds with the other arm in that appearance, filmed from the dataset's own camera.

Goals, declared. Every demonstration's goal is its target in the self arm's own base frame (`success`,
goal-level: for another body the same joint movement may end elsewhere). For a mirrored other arm that
is the *anatomical* goal, where the same joint movement takes the self arm; its video shows the mirror
image of the movement, so a visual copier reaches the *specular* goal, the target reflected across the
arm's sagittal plane (x -> -x in its base frame): `success_specular`. For every other appearance the two
goals coincide.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

# The appearances a task renders test videos of itself: colours no study core trained on.
RENDERED_APPEARANCES = ("held_out_color",)


@dataclass
class Video:
    """One demonstration to imitate."""

    episode_id: int
    seed: int               # the reset seed: the self arm starts where the other did
    appearance: str         # the other arm's appearance in this video
    frames: np.ndarray      # [T+1, S, S, 3] uint8: what the learner watches
    actions: np.ndarray     # [T, A]: the demonstrator's actions (only the oracle and BC's training use them)
    other_path: np.ndarray  # [T+1, 3]: the demonstrator's fingertip in its own base frame
    target: np.ndarray      # [3]: the target in the arm's base frame (the anatomical goal)

    @property
    def specular_goal(self) -> np.ndarray:
        """Where a visual copier of this video goes: the mirror image of the target for a mirrored arm, else
        the target itself (the two goals coincide)."""
        return specular(self.target) if self.appearance == "mirrored" else self.target


class Replay:
    """An actor that replays a fixed action sequence [T, A]: it needs no camera and no simulator state, so the
    task rolls it out in an env that renders nothing (most methods are replays of what they read)."""

    def __init__(self, actions: np.ndarray):
        self.actions = np.asarray(actions, np.float32)

    def __call__(self, _obs: Any, t: int) -> np.ndarray:
        return self.actions[t]


def specular(point: np.ndarray) -> np.ndarray:
    """A base-frame point reflected across the arm's sagittal plane (x -> -x)."""
    return np.asarray(point, np.float64) * np.array([-1.0, 1.0, 1.0])


def imitation_env(header):
    """The self arm with no target in its state or in any picture; pixels from its own camera."""
    return header.make_env("self", obs_mode="both", camera=header.perform_camera, observe_target=False,
                           visible_targets="other")


class ImitationTask:
    """What every method of one dataset shares: fit and test videos, training episodes, babbling, the env."""

    def __init__(self, data_path: Path, train_ids: list[int], held_out: list[int], n_test: int,
                 appearances: tuple[str, ...] = ()):
        from mirrorlab.envs.paired import PairedDataset

        half = len(held_out) // 2
        fit_ids, test_ids = held_out[:half], held_out[half:][:n_test]
        with PairedDataset(data_path) as data:
            self.header = data.header
            self.env = imitation_env(self.header)
            self.physics = self.env.unwrapped.physics
            # The same self arm, unrendered: for replays (rendering every step of every rollout cost most).
            self.replay_env = self.header.make_env("self", observe_target=False, visible_targets="other")
            refs = {r.episode_id: r for r in data.episodes("demo")}
            self.train = [self._video(data.read_episode(refs[i])) for i in train_ids]
            self.fit = [self._video(data.read_episode(refs[i])) for i in fit_ids]
            own = [self._video(data.read_episode(refs[i])) for i in test_ids]
            self.babble = [data.read_episode(r) for r in data.episodes("babble")]
        self.appearance = self.header.other_appearance
        self.test: dict[str, list[Video]] = {self.appearance: own}
        for appearance in appearances:
            if appearance != self.appearance:
                self.test[appearance] = [self._render(v, appearance) for v in own]
        self.success_radius = float(self.env.unwrapped.success_radius)

    def _video(self, episode: dict[str, Any]) -> Video:
        path = np.stack([self.physics.to_base_frame("other", p) for p in episode["observe"]["fingertip_pos"]])
        return Video(episode["episode_id"], episode["seed"], self.header.other_appearance,
                     episode["observe"]["frames"], episode["actions"], path, np.asarray(episode["target"]))

    def _render(self, video: Video, appearance: str) -> Video:
        """The same demonstration (reset seed) with the other arm in another appearance, from the same camera."""
        from mirrorlab.agents.demonstrator import load_demonstrator
        from mirrorlab.envs.episodes import policy_actor, rollout

        env = self.header.make_env("other", other_appearance=appearance)
        try:
            act = policy_actor(load_demonstrator(self.header.demonstrator, env))
            result = rollout(env, video.seed, act, camera=self.header.observe_camera)
            tips = np.stack([env.unwrapped.physics.to_base_frame("other", p) for p in result["fingertip_pos"]])
        finally:
            env.close()
        return Video(video.episode_id, video.seed, appearance, result["frames"], result["actions"], tips,
                     result["target"])

    def rollout(self, video: Video, act: Callable[[Any, int], np.ndarray], **kwargs: Any) -> dict[str, Any]:
        """The self arm from the video's reset seed (its start pose), `act` acting (`envs.episodes.rollout`);
        a `Replay` runs in the unrendered env (frames only where `camera` asks for them)."""
        from mirrorlab.envs.episodes import rollout

        return rollout(self.replay_env if isinstance(act, Replay) else self.env, video.seed, act, **kwargs)

    def start_frame(self, video: Video) -> np.ndarray:
        """The self arm's own first frame [S, S, 3] when it imitates `video` (its reset seed), before acting."""
        obs, _ = self.env.reset(seed=int(video.seed))
        return obs["pixels"]

    def reset_options(self, target: np.ndarray | None = None) -> dict[str, Any]:
        """Reset options that move the self arm's (hidden) target to a base-frame point: a reference that is
        given a goal. Scores are measured against the video's declared goals, never the moved target."""
        return {} if target is None else {"target": np.asarray(target)[:self.env.unwrapped.target_dim]}

    def score(self, video: Video, result: dict[str, Any], oracle_tips: np.ndarray) -> dict[str, float]:
        """The scores of one imitation of `video` (a `rollout` result of the self arm)."""
        own_path = np.stack([self.physics.to_base_frame("self", p) for p in result["fingertip_pos"]])
        final = own_path[-1]
        goals = {"": video.target, "_specular": video.specular_goal}
        out = {"episode_id": video.episode_id}
        for suffix, goal in goals.items():
            distance = float(np.linalg.norm(final - goal))
            out[f"success{suffix}"] = float(distance < self.success_radius)
            out[f"final_distance{suffix}"] = distance
        out["trajectory_error"] = float(np.linalg.norm(result["fingertip_pos"] - oracle_tips, axis=-1).mean())
        out["path_error"] = float(np.linalg.norm(own_path - video.other_path, axis=-1).mean())
        return out

    def close(self) -> None:
        self.env.close()
        self.replay_env.close()
