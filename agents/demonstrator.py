"""The demonstrator ("other"): a stable-baselines3 policy trained on state observations, or the scripted oracle.

A checkpoint folder holds `model.zip` (SB3's own format, loaded with `SAC.load` / `PPO.load`) and
`config.json` (the training config with its provenance). `load_demonstrator(folder_or_"scripted", env)`
returns an object with SB3's `predict(obs, deterministic=True) -> (action, state)`; a missing or
corrupt checkpoint raises `UserError` naming the file. `evaluate_policy_on_seeds` scores any such
policy by final-step success and final distance on explicit (held-out) reset seeds.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from experiments.errors import UserError

ALGOS = ("sac", "ppo")
CHECKPOINT_NAME = "model.zip"
CONFIG_NAME = "config.json"
SCRIPTED = "scripted"


def algo_class(algo: str):
    from stable_baselines3 import PPO, SAC

    classes = {"sac": SAC, "ppo": PPO}
    if algo not in classes:
        raise UserError(f"unknown algorithm {algo!r}; expected one of {', '.join(ALGOS)}")
    return classes[algo]


def build_model(algo: str, env: gym.Env, seed: int, hyperparams: dict[str, Any],
                tensorboard_log: str | None = None):
    """A fresh SB3 model on `env` (state observations), seeded; `hyperparams` go to its constructor."""
    return algo_class(algo)("MlpPolicy", env, seed=seed, tensorboard_log=tensorboard_log, verbose=0,
                            **hyperparams)


def _custom_objects(algo: str, env: gym.Env | None) -> dict[str, Any]:
    """Fields SB3 would otherwise unpickle with cloudpickle; given here so a checkpoint is read as data.

    The weights and optimiser states come from the zip's `.pth` files; what is replaced here is only
    needed to resume training (schedules, spaces, buffers), which a demonstrator never does.
    """
    from stable_baselines3.common.buffers import ReplayBuffer, RolloutBuffer
    from stable_baselines3.common.type_aliases import TrainFreq, TrainFrequencyUnit

    objects: dict[str, Any] = {
        "lr_schedule": _constant_zero, "learning_rate": 0.0, "clip_range": _constant_zero,
        "clip_range_vf": None, "_last_obs": None, "_last_episode_starts": None,
        "_last_original_obs": None, "ep_info_buffer": None, "ep_success_buffer": None,
    }
    if algo == "sac":
        from stable_baselines3.sac.policies import MlpPolicy
        objects.update(replay_buffer_class=ReplayBuffer, train_freq=TrainFreq(1, TrainFrequencyUnit.STEP))
    else:
        from stable_baselines3.common.policies import ActorCriticPolicy as MlpPolicy
        objects.update(rollout_buffer_class=RolloutBuffer)
    objects["policy_class"] = MlpPolicy
    if env is not None:
        objects.update(observation_space=env.observation_space, action_space=env.action_space)
    return objects


def _constant_zero(_progress: float) -> float:
    return 0.0


def read_checkpoint_config(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG_NAME
    if not path.is_file():
        raise UserError(f"demonstrator checkpoint {folder}: missing {path} (written by `mirrorlab demo train`)")
    try:
        data = json.loads(path.read_text())
        config = data["config"]
        _ = config["algo"], config["env_id"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise UserError(f"demonstrator checkpoint: {path} is not a config written by `mirrorlab demo train` "
                        f"({type(err).__name__}: {err})") from None
    return config


def checkpoint_folder(path: str | Path) -> Path:
    path = Path(path)
    return path.parent if path.name == CHECKPOINT_NAME else path


def load_model(path: str | Path, env: gym.Env | None = None):
    """The SB3 model in a checkpoint folder (or its model.zip), read with SB3's loader on CPU."""
    folder = checkpoint_folder(path)
    if not folder.is_dir():
        raise UserError(f"demonstrator checkpoint {folder} does not exist (train one with `mirrorlab demo train`)")
    config = read_checkpoint_config(folder)
    algo, zip_path = config["algo"], folder / CHECKPOINT_NAME
    if env is not None and env.spec is not None and env.spec.id != config["env_id"]:
        raise UserError(f"demonstrator checkpoint {zip_path} was trained on {config['env_id']}, "
                        f"not on {env.spec.id}")
    if not zip_path.is_file():
        raise UserError(f"demonstrator checkpoint: missing {zip_path}")
    if not zipfile.is_zipfile(zip_path):
        raise UserError(f"demonstrator checkpoint {zip_path} is corrupt: not a zip archive (truncated or "
                        "overwritten?); retrain or restore it")
    try:
        model = algo_class(algo).load(zip_path, env=None, device="cpu",
                                      custom_objects=_custom_objects(algo, env))
    except Exception as err:  # SB3 raises many kinds (zip, torch, json, KeyError); all mean a bad file
        raise UserError(f"demonstrator checkpoint {zip_path} is corrupt or not an SB3 {algo.upper()} "
                        f"checkpoint ({type(err).__name__}: {err})") from None
    if env is not None and model.observation_space.shape != env.observation_space.shape:
        raise UserError(f"demonstrator checkpoint {zip_path} expects observations of shape "
                        f"{model.observation_space.shape}, the env gives {env.observation_space.shape}")
    return model


class RandomPolicy:
    """Uniform random actions from a seeded generator, answering in SB3's `predict` style."""

    def __init__(self, action_space: gym.spaces.Box, seed: int):
        self.action_space = action_space
        self.rng = np.random.default_rng(seed)

    def predict(self, observation: Any = None, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, None]:
        low, high = self.action_space.low, self.action_space.high
        return self.rng.uniform(low, high).astype(np.float32), None


def load_demonstrator(source: str | Path, env: gym.Env):
    """`"scripted"` -> the scripted controller on `env`'s acting arm; a folder -> its SB3 policy.

    The SB3 policy reads `env`'s state observation; the scripted one reads the true physics state.
    """
    if str(source) == SCRIPTED:
        from agents.scripted import ScriptedReacher

        return ScriptedReacher(env)
    return load_model(source, env)


@dataclass(frozen=True)
class EpisodeScore:
    seed: int
    final_distance: float
    success: bool
    total_reward: float


def run_policy_episode(env: gym.Env, policy: Any, seed: int) -> tuple[EpisodeScore, np.ndarray]:
    """One episode from `reset(seed=seed)` until truncation; returns the score and the actions [T, A]."""
    obs, info = env.reset(seed=seed)
    actions, total = [], 0.0
    done = False
    while not done:
        action, _ = policy.predict(obs, deterministic=True)
        action = np.asarray(action, dtype=np.float32)
        actions.append(action)
        obs, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        done = terminated or truncated
    score = EpisodeScore(seed, float(info["distance"]), bool(info["is_success"]), total)
    return score, np.stack(actions)


def evaluate_policy_on_seeds(make_env: Callable[[], gym.Env], make_policy: Callable[[gym.Env], Any],
                             seeds: list[int]) -> dict[str, Any]:
    """Success rate (success at the final step) and final distance over explicit reset seeds."""
    env = make_env()
    try:
        policy = make_policy(env)
        scores = [run_policy_episode(env, policy, s)[0] for s in seeds]
    finally:
        env.close()
    dist = np.array([s.final_distance for s in scores])
    success = np.array([s.success for s in scores], dtype=float)
    return {
        "n_episodes": len(scores),
        "success_rate": float(success.mean()),
        "final_distance_mean": float(dist.mean()),
        "final_distance_median": float(np.median(dist)),
        "return_mean": float(np.mean([s.total_reward for s in scores])),
        "per_episode": [s.__dict__ for s in scores],
    }
