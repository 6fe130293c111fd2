"""The demonstrator's paired episodes and the self arm's babbling, one shard at a time.

Demo episode k (reset seed s_k): the *other* arm runs the demonstrator from `reset(seed=s_k)` and is
filmed from `other_view` (observe); the self arm replays the very same stored action array from
`reset(seed=s_k)` (same start pose and target in its own base frame) and is filmed from `self_view`
(perform). Babble episode j: the self arm under smooth random torques (an AR(1) process clipped to
[-1, 1]). `collect_shard` is the unit of work a runner spreads over processes; the format is
documented in `mirrorlab.envs.paired`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mirrorlab.agents.runs import check_seed
from mirrorlab.envs.scene import ACTION_MODES, CAMERAS, OTHER_APPEARANCES
from mirrorlab.errors import UserError


@dataclass(frozen=True)
class CollectConfig:
    """Every default of a paired-episode collection."""

    env_id: str = "mirrorlab/PlanarReach-v0"
    demonstrator: str = "scripted"       # "scripted" or a `mirrorlab demo train` checkpoint folder
    episodes: int = 200                  # paired demonstrator episodes
    babble: int = 200                    # self motor-babbling episodes
    seed: int = 0
    frame_size: int = 32
    other_appearance: str = "identical"
    action_mode: str = "position"        # joint-target offsets a camera can see, or "torque" (envs.reach)
    render_supersample: int = 4          # anti-aliased frames: rendered k times larger, averaged
    observe_camera: str = "other_view"
    perform_camera: str = "self_view"
    episodes_per_shard: int = 16
    babble_smoothing: float = 0.9        # AR(1) coefficient of the babbling torques (0 = white noise)
    babble_scale: float = 0.7            # stationary std of the babbling torques before clipping
    verify_episodes: int = 2             # per kind, re-simulated and compared bit for bit at the end
    workers: int = 0                     # 0: one per CPU core

    def validate(self) -> None:
        from mirrorlab import envs

        if self.env_id not in envs.ENV_IDS:
            raise UserError(f"config: unknown env {self.env_id!r}; expected one of {', '.join(envs.ENV_IDS)}")
        if self.other_appearance not in OTHER_APPEARANCES:
            raise UserError(f"config: other_appearance must be one of {', '.join(OTHER_APPEARANCES)}, got "
                            f"{self.other_appearance!r}")
        for name in ("observe_camera", "perform_camera"):
            if getattr(self, name) not in CAMERAS:
                raise UserError(f"config: {name} must be one of {', '.join(CAMERAS)}, got {getattr(self, name)!r}")
        check_seed(self.seed, "config: seed")
        for name in ("episodes", "babble", "verify_episodes", "workers"):
            if getattr(self, name) < 0:
                raise UserError(f"config: {name} must be >= 0, got {getattr(self, name)}")
        if self.workers > 256:
            raise UserError(f"config: workers must be at most 256, got {self.workers}")
        if self.episodes + self.babble == 0:
            raise UserError("config: nothing to collect (episodes and babble are both 0)")
        if self.episodes_per_shard < 1:
            raise UserError(f"config: episodes_per_shard must be >= 1, got {self.episodes_per_shard}")
        if (isinstance(self.frame_size, bool) or self.frame_size % 16 or not 16 <= self.frame_size <= 1024):
            raise UserError(f"config: frame_size must be a multiple of 16 in 16..1024, got {self.frame_size}")
        if self.action_mode not in ACTION_MODES:
            raise UserError(f"config: action_mode must be one of {', '.join(ACTION_MODES)}, got {self.action_mode!r}")
        if isinstance(self.render_supersample, bool) or not 1 <= self.render_supersample <= 8:
            raise UserError(f"config: render_supersample must be in 1..8, got {self.render_supersample}")
        if not 0 <= self.babble_smoothing < 1:
            raise UserError(f"config: babble_smoothing must be in [0, 1), got {self.babble_smoothing}")
        if not 0 < self.babble_scale < float("inf"):
            raise UserError(f"config: babble_scale must be a finite number > 0, got {self.babble_scale}")
        from mirrorlab.agents.demonstrator import check_demonstrator_fits

        check_demonstrator_fits(self.demonstrator, self.env_id, self.action_mode, "config: demonstrator")

    def env_kwargs(self) -> dict[str, Any]:
        """The env's kwargs, stored in the dataset's header: both sides and every later replay use them. Every
        kwarg that changes what the arms do or what the cameras see is named, so a later change of an env
        default cannot change how a dataset replays."""
        # The self arm's own target is never drawn: its frames then look the same in training and when it
        # imitates, where the target exists only in the other arm's video.
        return {"frame_size": self.frame_size, "other_appearance": self.other_appearance,
                "action_mode": self.action_mode, "render_supersample": self.render_supersample,
                "visible_targets": "other"}


def episode_seed(config_seed: int, kind: str, episode_id: int) -> int:
    """The reset seed of an episode: distinct per (collection seed, kind, id), reproducible."""
    stream = {"demo": 0, "babble": 1}[kind]
    return int(np.random.SeedSequence([config_seed, stream, episode_id]).generate_state(1)[0])


def babble_actions(config: CollectConfig, episode_id: int, n_steps: int, action_dim: int) -> np.ndarray:
    """Smooth random torques: a_t = rho a_{t-1} + sqrt(1 - rho^2) scale eps_t, clipped to [-1, 1]."""
    rng = np.random.default_rng([config.seed, 2, episode_id])
    rho, scale = config.babble_smoothing, config.babble_scale
    a = rng.normal(0.0, scale, action_dim)
    out = np.empty((n_steps, action_dim), np.float32)
    for t in range(n_steps):
        if t:
            a = rho * a + np.sqrt(1 - rho**2) * rng.normal(0.0, scale, action_dim)
        out[t] = np.clip(a, -1.0, 1.0)
    return out


def shard_plan(config: CollectConfig) -> list[tuple[int, str, list[int]]]:
    """(shard index, kind, episode ids): demo shards first, then babble; fixed by the config alone."""
    plan, index = [], 0
    for kind, count in (("demo", config.episodes), ("babble", config.babble)):
        for start in range(0, count, config.episodes_per_shard):
            plan.append((index, kind, list(range(start, min(start + config.episodes_per_shard, count)))))
            index += 1
    return plan


def collect_shard(config: CollectConfig, header_fields: dict[str, Any], index: int, kind: str,
                  episode_ids: list[int], out: str) -> dict[str, Any]:
    """Simulate and write one shard (a runner job: builds its own envs); returns its manifest entry."""
    import torch

    from mirrorlab.agents.demonstrator import load_demonstrator
    from mirrorlab.envs.episodes import policy_actor, replay, rollout
    from mirrorlab.envs.paired import Header, ShardWriter, shard_entry, shard_name

    torch.set_num_threads(1)
    started = time.perf_counter()
    header = Header(**header_fields)
    self_env = header.make_env("self")
    other_env = header.make_env("other") if kind == "demo" else None
    writer = ShardWriter(Path(out) / shard_name(index), header, index, kind)
    try:
        act = policy_actor(load_demonstrator(config.demonstrator, other_env)) if other_env is not None else None
        for k in episode_ids:
            seed = episode_seed(config.seed, kind, k)
            if kind == "demo":
                observe = rollout(other_env, seed, act, camera=header.observe_camera)
                perform = replay(self_env, seed, observe["actions"], camera=header.perform_camera)
                writer.add_episode(k, seed, observe["actions"], {"observe": observe, "perform": perform})
            else:
                actions = babble_actions(config, k, header.max_steps, header.action_dim)
                perform = replay(self_env, seed, actions, camera=header.perform_camera)
                writer.add_episode(k, seed, actions, {"perform": perform})
        path = writer.commit()
    except BaseException:
        writer.abort()
        raise
    finally:
        self_env.close()
        if other_env is not None:
            other_env.close()
    entry = shard_entry(path, kind, episode_ids, writer.episode_digests)
    entry["wall_time_s"] = time.perf_counter() - started
    return entry


def header_kwargs(config: CollectConfig) -> dict[str, Any]:
    """make_header's arguments for this collection."""
    return dict(env_id=config.env_id, env_kwargs=config.env_kwargs(), demonstrator=config.demonstrator,
                observe_camera=config.observe_camera, perform_camera=config.perform_camera)

