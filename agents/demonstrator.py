"""The demonstrator ("other"): a stable-baselines3 policy trained on state observations, or the scripted oracle.

A checkpoint folder is written by `train_demonstrator` and read by `load_demonstrator`:

| file            | content                                                                           |
|-----------------|-----------------------------------------------------------------------------------|
| `policy.json`   | the description the policy is rebuilt from: format, algo, env id, spaces, net_arch, SB3 version |
| `policy.pt`     | the policy's weights: a flat dict of tensors (`torch.load(weights_only=True)`)   |
| `config.json`   | the training config, seed, versions, git commit, wall time                        |
| `sb3_model.zip` | SB3's own save, for use with SB3 elsewhere; **mirrorlab never loads it** (SB3's loader can unpickle code) |
| `tb/`, `eval.json` | TensorBoard logs; `mirrorlab demo eval` results                                |

Loading can never run code: the description is JSON, the weights are read with torch's
weights-only unpickler (tensors and plain containers only), the policy object is rebuilt from SB3's
policy class with the described architecture, and a checkpoint whose description or weights carry
anything beyond what that architecture has is refused. `load_demonstrator(folder_or_"scripted", env)`
returns an object with SB3's `predict(obs, deterministic=True) -> (action, state)`; any defect is a
`UserError` naming the file.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from mirrorlab.envs.episodes import check_env_id, make_arm_env, policy_actor, rollout
from mirrorlab.envs.scene import ACTION_MODES
from mirrorlab.errors import UserError
from mirrorlab.files import (
    atomic_torch_save,
    atomic_write_json,
    atomic_write_via,
    load_torch,
    read_json,
    refuse_symlinks,
)
from mirrorlab.provenance import provenance

ALGOS = ("sac", "ppo")
SCRIPTED = "scripted"
POLICY_FORMAT = "mirrorlab-sb3-policy"
POLICY_FORMAT_VERSION = 1
_DESCRIPTION_SCHEMA = {"format": str, "format_version": int, "algo": str, "env_id": str, "action_mode": str,
                       "observation_shape": list, "action_shape": list, "net_arch": list, "sb3_version": str}
_DESCRIPTION_KEYS = set(_DESCRIPTION_SCHEMA)
EVAL_SEED_OFFSET = 1_000_000
# Sizes a config or a policy.json may declare, refused before anything is allocated: SB3 allocates the
# whole replay buffer up front, and a policy of net_arch [10^6, 10^6] would need 4 TB.
MAX_POLICY_PARAMETERS = 10_000_000
MAX_BUFFER_SIZE = 10_000_000


@dataclass(frozen=True)
class DemoTrainConfig:
    """Every default of demonstrator training (tuned for SAC on the planar reach: lr 1e-3, gamma 0.98,
    tau 0.01, learning_starts 1000, distance reward x10; SB3 defaults otherwise)."""

    env_id: str = "mirrorlab/PlanarReach-v0"
    action_mode: str = "position"   # the arm's actions: joint-target offsets (as collect's default), or torques
    algo: str = "sac"
    timesteps: int = 30_000
    seed: int = 0
    # Shared by SAC and PPO.
    learning_rate: float = 1e-3
    gamma: float = 0.98
    batch_size: int = 256
    net_arch: tuple[int, ...] = (256, 256)
    # SAC only.
    buffer_size: int = 200_000
    learning_starts: int = 1_000
    train_freq: int = 1
    gradient_steps: int = 1
    tau: float = 0.01
    # PPO only.
    n_steps: int = 2048
    n_epochs: int = 10
    # The trained weights depend on the thread count (torch splits its sums by thread), so it is a config
    # value: one seed and one thread count give the same policy bit for bit on CPU (tests). 1 is also fastest.
    torch_threads: int = 1
    # The training env's distance-reward weight (the env's `reward_dist_weight`). Evaluation and
    # collection always use the env's defaults: success is the same 2 cm criterion either way.
    reward_dist_weight: float = 10.0  # 1.0 reached 81% in 30k steps; 10.0 reached 100%

    def validate(self) -> None:
        from mirrorlab import envs

        if self.env_id not in envs.ENV_IDS:
            raise UserError(f"config: unknown env {self.env_id!r}; expected one of {', '.join(envs.ENV_IDS)}")
        if self.algo not in ALGOS:
            raise UserError(f"config: algo must be one of {', '.join(ALGOS)}, got {self.algo!r}")
        if self.action_mode not in ACTION_MODES:
            raise UserError(f"config: action_mode must be one of {', '.join(ACTION_MODES)}, got {self.action_mode!r}")
        for name in ("timesteps", "batch_size", "buffer_size", "train_freq", "gradient_steps", "n_steps",
                     "n_epochs", "torch_threads"):
            if getattr(self, name) < 1:
                raise UserError(f"config: {name} must be >= 1, got {getattr(self, name)}")
        if self.torch_threads > 256:
            raise UserError(f"config: torch_threads must be at most 256, got {self.torch_threads}")
        if self.learning_starts < 0:
            raise UserError(f"config: learning_starts must be >= 0, got {self.learning_starts}")
        if not 0 <= self.seed < EVAL_SEED_OFFSET:
            raise UserError(f"config: seed must be in [0, {EVAL_SEED_OFFSET}) (evaluation seeds start there)")
        for name in ("learning_rate", "reward_dist_weight"):
            if not getattr(self, name) > 0 or not math.isfinite(getattr(self, name)):
                raise UserError(f"config: {name} must be a positive number, got {getattr(self, name)}")
        if not 0 < self.gamma <= 1 or not 0 < self.tau <= 1:
            raise UserError(f"config: gamma and tau must be in (0, 1], got {self.gamma} and {self.tau}")
        if not self.net_arch or min(self.net_arch) < 1:
            raise UserError(f"config: net_arch must list positive layer widths, got {list(self.net_arch)}")
        check_policy_size(list(self.net_arch), 64, 8, "config: net_arch")
        if self.buffer_size > MAX_BUFFER_SIZE:
            raise UserError(f"config: buffer_size must be at most {MAX_BUFFER_SIZE}, got {self.buffer_size}")

    def hyperparams(self) -> dict[str, Any]:
        common = dict(learning_rate=self.learning_rate, gamma=self.gamma, batch_size=self.batch_size,
                      policy_kwargs={"net_arch": list(self.net_arch)})
        if self.algo == "sac":
            return dict(common, buffer_size=self.buffer_size, learning_starts=self.learning_starts,
                        train_freq=self.train_freq, gradient_steps=self.gradient_steps, tau=self.tau)
        return dict(common, n_steps=self.n_steps, n_epochs=self.n_epochs)


def check_policy_size(net_arch: list[int], obs_dim: int, action_dim: int, where: str) -> None:
    """Refuse, before allocating, a policy whose weights (one layer stack, as a rough count) exceed
    `MAX_POLICY_PARAMETERS`."""
    widths = [obs_dim, *net_arch, action_dim]
    count = sum(a * b + b for a, b in zip(widths, widths[1:]))
    if count > MAX_POLICY_PARAMETERS:
        raise UserError(f"{where}: {net_arch} makes a network of {count:.3g} weights, more than the "
                        f"{MAX_POLICY_PARAMETERS:.0e} a demonstrator may have")


def make_other_env(env_id: str, **env_kwargs: Any) -> gym.Env:
    """The demonstrator's task: the *other* arm reaching, state observations."""
    return make_arm_env(env_id, f"env {env_id!r}", actor="other", obs_mode="state", **env_kwargs)


def _sb3_class(algo: str):
    from stable_baselines3 import PPO, SAC

    return {"sac": SAC, "ppo": PPO}[algo]


def _policy_class(algo: str):
    if algo == "sac":
        from stable_baselines3.sac.policies import SACPolicy

        return SACPolicy
    from stable_baselines3.common.policies import ActorCriticPolicy

    return ActorCriticPolicy


def train_demonstrator(config: DemoTrainConfig, out: Path, show_progress: bool = True) -> dict[str, Any]:
    """Train with SB3, then write the safe checkpoint (policy.json + policy.pt), config.json and SB3's
    own zip into `out` (claimed by the caller); returns the provenance record."""
    import torch
    from stable_baselines3.common.callbacks import BaseCallback
    from tqdm import tqdm

    config.validate()
    torch.set_num_threads(config.torch_threads)
    env = make_other_env(config.env_id, reward_dist_weight=config.reward_dist_weight, action_mode=config.action_mode)
    model = _sb3_class(config.algo)("MlpPolicy", env, seed=config.seed, tensorboard_log=str(out / "tb"),
                                    verbose=0, **config.hyperparams())

    class Progress(BaseCallback):  # SB3's own bar needs `rich`, which this project does not use
        def _on_training_start(self) -> None:
            self.bar = tqdm(total=config.timesteps, desc="demo train", unit="step", disable=not show_progress)

        def _on_step(self) -> bool:
            self.bar.update(self.training_env.num_envs)
            return True

        def _on_training_end(self) -> None:
            self.bar.close()

    started = time.perf_counter()
    model.learn(total_timesteps=config.timesteps, callback=Progress(), tb_log_name=config.algo)
    wall = time.perf_counter() - started
    description = {"format": POLICY_FORMAT, "format_version": POLICY_FORMAT_VERSION, "algo": config.algo,
                   "env_id": config.env_id, "action_mode": config.action_mode,
                   "observation_shape": list(env.observation_space.shape),
                   "action_shape": list(env.action_space.shape), "net_arch": list(config.net_arch),
                   "sb3_version": _sb3_version()}
    atomic_torch_save(out / "policy.pt", {k: v.detach().clone() for k, v in model.policy.state_dict().items()})
    atomic_write_via(out / "sb3_model.zip", model.save)
    record = provenance(config, seeds=[config.seed])
    record.update(train_wall_time_s=wall, torch_threads=config.torch_threads)
    atomic_write_json(out / "config.json", record)
    # Last: a folder is a checkpoint only once every file is written (a full disk leaves none that looks whole).
    atomic_write_json(out / "policy.json", description)
    env.close()
    return record


def _sb3_version() -> str:
    import stable_baselines3

    return stable_baselines3.__version__


def read_description(folder: Path) -> dict[str, Any]:
    """The checked policy.json of a checkpoint folder."""
    path = folder / "policy.json"
    if not folder.is_dir():
        raise UserError(f"demonstrator checkpoint {folder} does not exist (train one with `mirrorlab demo train`)")
    if not path.is_file():
        legacy = " (an SB3 model.zip alone is never loaded: retrain with `mirrorlab demo train`)" if (
            folder / "model.zip").exists() else ""
        raise UserError(f"demonstrator checkpoint {folder}: missing {path}{legacy}")
    refuse_symlinks([path, folder / "policy.pt"], f"demonstrator checkpoint {folder}")
    desc = read_json(path, "demonstrator description", schema=_DESCRIPTION_SCHEMA)
    if set(desc) != _DESCRIPTION_KEYS:
        raise UserError(f"demonstrator checkpoint {path}: expected exactly the keys {sorted(_DESCRIPTION_KEYS)}; "
                        f"got extra ones ({sorted(set(desc) - _DESCRIPTION_KEYS)}); refusing it")
    if desc["format"] != POLICY_FORMAT or desc["format_version"] != POLICY_FORMAT_VERSION:
        raise UserError(f"demonstrator checkpoint {path}: format {desc['format'][:60]!r} v{desc['format_version']}, "
                        f"expected {POLICY_FORMAT!r} v{POLICY_FORMAT_VERSION}")
    if desc["algo"] not in ALGOS:
        raise UserError(f"demonstrator checkpoint {path}: algo must be one of {', '.join(ALGOS)}")
    for key in ("observation_shape", "action_shape", "net_arch"):
        value = desc[key]
        if not value or len(value) > 16 or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v < 1_000_000
                                                   for v in value):
            raise UserError(f"demonstrator checkpoint {path}: key {key!r} must list positive integers, got "
                            f"{str(value)[:80]}")
    check_env_id(desc["env_id"], f"demonstrator checkpoint {path}: key 'env_id'")
    if desc["action_mode"] not in ACTION_MODES:
        raise UserError(f"demonstrator checkpoint {path}: action_mode must be one of {', '.join(ACTION_MODES)}")
    check_policy_size(desc["net_arch"], math.prod(desc["observation_shape"]), math.prod(desc["action_shape"]),
                      f"demonstrator checkpoint {path}: key 'net_arch'")
    return desc


class LoadedPolicy:
    """A rebuilt SB3 policy answering `predict(obs, deterministic=True) -> (action, None)`."""

    def __init__(self, policy, description: dict[str, Any]):
        self.policy, self.description = policy, description
        self.observation_space, self.action_space = policy.observation_space, policy.action_space

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, None]:
        return self.policy.predict(observation, state, episode_start, deterministic)


def load_policy(folder: str | Path, env: gym.Env | None = None) -> LoadedPolicy:
    """Rebuild the SB3 policy of a checkpoint folder from its description and weights (no code runs)."""
    import torch

    folder = Path(folder)
    desc = read_description(folder)
    if env is not None and env.spec is not None and env.spec.id != desc["env_id"]:
        raise UserError(f"demonstrator checkpoint {folder} was trained on {desc['env_id']}, not on {env.spec.id}")
    if env is not None and getattr(env.unwrapped, "action_mode", "torque") != desc["action_mode"]:
        raise UserError(f"demonstrator checkpoint {folder} acts with {desc['action_mode']} actions, the env takes "
                        f"{env.unwrapped.action_mode} actions")
    if env is not None and list(env.observation_space.shape) != desc["observation_shape"]:
        raise UserError(f"demonstrator checkpoint {folder} expects observations of shape "
                        f"{tuple(desc['observation_shape'])}, the env gives {env.observation_space.shape}")
    weights = load_torch(folder / "policy.pt", "demonstrator weights")
    obs_space = gym.spaces.Box(-np.inf, np.inf, tuple(desc["observation_shape"]), np.float32)
    act_space = gym.spaces.Box(-1.0, 1.0, tuple(desc["action_shape"]), np.float32)
    policy = _policy_class(desc["algo"])(obs_space, act_space, lambda _progress: 0.0, net_arch=list(desc["net_arch"]))
    expected = {k: tuple(v.shape) for k, v in policy.state_dict().items()}
    given = ({k: tuple(v.shape) for k, v in weights.items() if isinstance(v, torch.Tensor)}
             if isinstance(weights, dict) else {})
    if not isinstance(weights, dict) or len(given) != len(weights) or given != expected:
        raise UserError(f"demonstrator checkpoint {folder / 'policy.pt'}: its tensors do not match the described "
                        f"{desc['algo'].upper()} policy (net_arch {desc['net_arch']}); refusing it")
    policy.load_state_dict(weights)
    policy.set_training_mode(False)
    return LoadedPolicy(policy, desc)


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
        from mirrorlab.agents.scripted import ScriptedReacher

        return ScriptedReacher(env)
    return load_policy(source, env)


def check_demonstrator_fits(source: str | Path, env_id: str, action_mode: str, where: str) -> None:
    """Refuse, before any work, a checkpoint trained on another env or with other actions than the data it
    is to make (the scripted controller fits any)."""
    if str(source) == SCRIPTED:
        return
    desc = read_description(Path(source))
    if (desc["env_id"], desc["action_mode"]) != (env_id, action_mode):
        raise UserError(f"{where} {source} was trained on {desc['env_id']} with {desc['action_mode']} actions, "
                        f"not on {env_id} with {action_mode} actions")


def evaluate_policy_on_seeds(make_env: Callable[[], gym.Env], make_policy: Callable[[gym.Env], Any],
                             seeds: list[int]) -> dict[str, Any]:
    """Success rate (success at the final step) and final distance over explicit reset seeds."""
    env = make_env()
    try:
        policy = make_policy(env)
        episodes = [rollout(env, s, policy_actor(policy)) for s in seeds]
    finally:
        env.close()
    dist = np.array([e["distance"][-1] for e in episodes])
    success = np.array([e["success"] for e in episodes], dtype=float)
    return {
        "n_episodes": len(episodes),
        "success_rate": float(success.mean()),
        "final_distance_mean": float(dist.mean()),
        "final_distance_median": float(np.median(dist)),
        "return_mean": float(np.mean([e["reward"].sum() for e in episodes])),
        "per_episode": [{"seed": e["seed"], "final_distance": float(e["distance"][-1]), "success": e["success"],
                         "total_reward": float(e["reward"].sum())} for e in episodes],
    }
