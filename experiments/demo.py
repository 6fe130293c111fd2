"""`mirrorlab demo train|eval`: train the demonstrator (SB3 on the other arm's state observations) and score it.

`demo train` writes, under `--out`: `model.zip` (SB3's format), `config.json` (full config, seed,
versions, git commit, wall time) and `tb/` (TensorBoard: SB3's `rollout/ep_rew_mean`,
`rollout/success_rate`, `train/...`). `demo eval` scores the trained policy, the scripted
controller and uniform random actions on the same held-out reset seeds (success = within the
success radius at the final step) and writes `eval.json` beside the checkpoint.

Training draws its targets from the env's RNG stream seeded once with `seed` (< 10^6); evaluation
resets with the explicit seeds `eval_seed_offset + i`, a separate range.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiments.config import build_config
from experiments.errors import UserError
from experiments.provenance import atomic_write_json, provenance

EVAL_SEED_OFFSET = 1_000_000


@dataclass(frozen=True)
class DemoTrainConfig:
    """Every default of demonstrator training (tuned for SAC on the planar reach: lr 1e-3, gamma 0.98,
    tau 0.01, learning_starts 1000, distance reward x10; SB3 defaults otherwise)."""

    env_id: str = "mirrorlab/PlanarReach-v0"
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
    torch_threads: int = 1          # 1 = reproducible and fastest for these small nets
    # The training env's distance-reward weight (the env's `reward_dist_weight`). Evaluation and
    # collection always use the env's defaults: success is the same 2 cm criterion either way.
    reward_dist_weight: float = 10.0  # 1.0 reached 81% in 30k steps; 10.0 reached 100%

    def validate(self) -> None:
        import envs

        if self.env_id not in envs.ENV_IDS:
            raise UserError(f"config: unknown env {self.env_id!r}; expected one of {', '.join(envs.ENV_IDS)}")
        if self.algo not in ("sac", "ppo"):
            raise UserError(f"config: algo must be 'sac' or 'ppo', got {self.algo!r}")
        for name in ("timesteps", "batch_size", "buffer_size", "train_freq", "gradient_steps", "n_steps",
                     "n_epochs", "torch_threads"):
            if getattr(self, name) < 1:
                raise UserError(f"config: {name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.seed < EVAL_SEED_OFFSET:
            raise UserError(f"config: seed must be in [0, {EVAL_SEED_OFFSET}) (evaluation seeds start there)")
        if self.reward_dist_weight <= 0:
            raise UserError(f"config: reward_dist_weight must be > 0, got {self.reward_dist_weight}")
        if not self.net_arch or min(self.net_arch) < 1:
            raise UserError(f"config: net_arch must list positive layer widths, got {list(self.net_arch)}")

    def hyperparams(self) -> dict[str, Any]:
        common = dict(learning_rate=self.learning_rate, gamma=self.gamma, batch_size=self.batch_size,
                      policy_kwargs={"net_arch": list(self.net_arch)})
        if self.algo == "sac":
            return dict(common, buffer_size=self.buffer_size, learning_starts=self.learning_starts,
                        train_freq=self.train_freq, gradient_steps=self.gradient_steps, tau=self.tau)
        return dict(common, n_steps=self.n_steps, n_epochs=self.n_epochs)


@dataclass(frozen=True)
class DemoEvalConfig:
    """Every default of demonstrator evaluation."""

    checkpoint: str = "results/demo"
    episodes: int = 100
    eval_seed_offset: int = EVAL_SEED_OFFSET
    random_seed: int = 0

    def validate(self) -> None:
        if self.episodes < 1:
            raise UserError(f"config: episodes must be >= 1, got {self.episodes}")
        if self.eval_seed_offset < EVAL_SEED_OFFSET:
            raise UserError(f"config: eval_seed_offset must be >= {EVAL_SEED_OFFSET} (training seeds lie below)")


def make_other_env(env_id: str, **env_kwargs: Any):
    """The demonstrator's task: the *other* arm reaching, state observations."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the ids)

    return gym.make(env_id, actor="other", obs_mode="state", **env_kwargs)


class _TqdmCallback:
    """A tqdm bar over environment steps (SB3's own bar needs `rich`, which this project does not use)."""

    @staticmethod
    def make(total: int, disable: bool):
        from stable_baselines3.common.callbacks import BaseCallback
        from tqdm import tqdm

        class Callback(BaseCallback):
            def _on_training_start(self) -> None:
                self.bar = tqdm(total=total, desc="demo train", unit="step", disable=disable)

            def _on_step(self) -> bool:
                self.bar.update(self.training_env.num_envs)
                return True

            def _on_training_end(self) -> None:
                self.bar.close()

        return Callback()


def train(config: DemoTrainConfig, out: Path, show_progress: bool = True) -> dict[str, Any]:
    """Train, then save model.zip and config.json atomically; returns the provenance record."""
    import torch

    from agents.demonstrator import CHECKPOINT_NAME, CONFIG_NAME, build_model

    config.validate()
    torch.set_num_threads(config.torch_threads)
    out.mkdir(parents=True, exist_ok=True)
    env = make_other_env(config.env_id, reward_dist_weight=config.reward_dist_weight)
    model = build_model(config.algo, env, config.seed, config.hyperparams(), tensorboard_log=str(out / "tb"))
    started = time.perf_counter()
    model.learn(total_timesteps=config.timesteps, callback=_TqdmCallback.make(config.timesteps, not show_progress),
                tb_log_name=config.algo)
    wall = time.perf_counter() - started
    tmp = out / f".{CHECKPOINT_NAME}.tmp.zip"
    model.save(tmp)
    os.replace(tmp, out / CHECKPOINT_NAME)
    record = provenance(config, seeds=[config.seed])
    record["train_wall_time_s"] = wall
    record["torch_threads"] = config.torch_threads
    atomic_write_json(out / CONFIG_NAME, record)
    env.close()
    return record


def evaluate(config: DemoEvalConfig, show_progress: bool = True) -> dict[str, Any]:
    """Trained policy (or scripted, if the checkpoint is "scripted") vs scripted vs random, same seeds."""
    import torch
    from tqdm import tqdm

    from agents.demonstrator import (SCRIPTED, RandomPolicy, checkpoint_folder, evaluate_policy_on_seeds,
                                     load_demonstrator, read_checkpoint_config)

    config.validate()
    torch.set_num_threads(1)
    seeds = [config.eval_seed_offset + i for i in range(config.episodes)]
    if config.checkpoint == SCRIPTED:
        env_id = "mirrorlab/PlanarReach-v0"
        policies = {}
    else:
        folder = checkpoint_folder(config.checkpoint)
        if not folder.is_dir():
            raise UserError(f"demonstrator checkpoint {folder} does not exist (train one with `mirrorlab demo train`)")
        env_id = read_checkpoint_config(folder)["env_id"]
        policies = {"trained": lambda env: load_demonstrator(folder, env)}
    policies["scripted"] = lambda env: load_demonstrator(SCRIPTED, env)
    policies["random"] = lambda env: RandomPolicy(env.action_space, config.random_seed)
    results: dict[str, Any] = {}
    for name, make_policy in tqdm(policies.items(), desc="demo eval", unit="policy", disable=not show_progress):
        started = time.perf_counter()
        results[name] = evaluate_policy_on_seeds(lambda: make_other_env(env_id), make_policy, seeds)
        results[name]["wall_time_s"] = time.perf_counter() - started
    record = provenance(config, seeds={"eval_seeds": [seeds[0], seeds[-1]]})
    record.update(env_id=env_id, results=results)
    if config.checkpoint != SCRIPTED:
        atomic_write_json(checkpoint_folder(config.checkpoint) / "eval.json", record)
    return record


def _config_from(base, args: argparse.Namespace, flag_names: tuple[str, ...]):
    return build_config(base, getattr(args, "config", None), {n: getattr(args, n, None) for n in flag_names})


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help="train and evaluate the demonstrator (the other arm's policy)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="demo_command", metavar="SUBCOMMAND", required=True)

    t = sub.add_parser("train", help="train an SB3 policy on the other arm's reach task (state observations)")
    t.add_argument("--env", dest="env_id", default=None, help="env id (default: mirrorlab/PlanarReach-v0)")
    t.add_argument("--algo", choices=("sac", "ppo"), default=None, help="algorithm (default: sac)")
    t.add_argument("--timesteps", type=int, default=None, help="environment steps (default: 30000)")
    t.add_argument("--seed", type=int, default=None, help="training seed (default: 0)")
    t.add_argument("--out", type=Path, default=Path("results/demo"), help="checkpoint folder (default: %(default)s)")
    t.add_argument("--config", default=None, help="a .toml or .json file setting any DemoTrainConfig field")
    t.add_argument("--force", action="store_true", help="replace a checkpoint already in --out")
    t.set_defaults(func=main_train)

    e = sub.add_parser("eval", help="success rate and final distance: trained vs scripted vs random")
    e.add_argument("--checkpoint", default=None,
                   help="checkpoint folder from `demo train`, or 'scripted' (default: results/demo)")
    e.add_argument("--episodes", type=int, default=None, help="held-out episodes per policy (default: 100)")
    e.add_argument("--config", default=None, help="a .toml or .json file setting any DemoEvalConfig field")
    e.set_defaults(func=main_eval)


def main_train(args: argparse.Namespace) -> int:
    from agents.demonstrator import CHECKPOINT_NAME

    config = _config_from(DemoTrainConfig(), args, ("env_id", "algo", "timesteps", "seed"))
    if (args.out / CHECKPOINT_NAME).exists() and not args.force:
        raise UserError(f"{args.out / CHECKPOINT_NAME} already exists; pass --force to replace it or a new --out")
    record = train(config, args.out)
    print(f"checkpoint: {args.out / CHECKPOINT_NAME}")
    print(f"trained {config.algo.upper()} for {config.timesteps} steps in {record['train_wall_time_s']:.1f} s")
    return 0


def format_eval(record: dict[str, Any]) -> str:
    lines = [f"{record['env_id']}, {record['config']['episodes']} held-out episodes "
             f"(seeds from {record['config']['eval_seed_offset']})",
             f"{'policy':<10} {'success':>8} {'final distance (m)':>19}"]
    for name, r in record["results"].items():
        lines.append(f"{name:<10} {r['success_rate']:>8.1%} {r['final_distance_mean']:>19.4f}")
    return "\n".join(lines)


def main_eval(args: argparse.Namespace) -> int:
    config = _config_from(DemoEvalConfig(), args, ("checkpoint", "episodes"))
    print(format_eval(evaluate(config)))
    return 0
