"""`mirrorlab demo train|eval`: train the demonstrator (SB3 on the other arm's state observations) and score it.

`demo train` writes, under `--out`: `policy.json` + `policy.pt` (the checkpoint mirrorlab loads: a JSON
description and weights-only tensors, so loading can never run code), `sb3_model.zip` (SB3's own save,
for SB3 users; never loaded here), `config.json` (full config, seed, versions, git commit, wall
time) and `tb/` (TensorBoard). `demo eval` scores the trained policy, the scripted controller and
uniform random actions on the same held-out reset seeds (success = within the success radius at the
final step) and writes `eval.json` beside the checkpoint (an existing one is replaced only with `--force`).

Training draws its targets from the env's RNG stream seeded once with `seed` (< 10^6); evaluation
resets with the explicit seeds `eval_seed_offset + i`, a separate range.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mirrorlab.agents.demonstrator import ALGOS, EVAL_SEED_OFFSET, DemoTrainConfig
from mirrorlab.config import build_config
from mirrorlab.envs.scene import ACTION_MODES
from mirrorlab.errors import UserError
from mirrorlab.files import atomic_write_json, staged_output_dir
from mirrorlab.provenance import provenance

MAX_EVAL_EPISODES = 100_000  # about 3 CPU-days of rollouts; a larger count is a typo

@dataclass(frozen=True)
class DemoEvalConfig:
    """Every default of demonstrator evaluation."""

    checkpoint: str = "results/demo"
    episodes: int = 100
    eval_seed_offset: int = EVAL_SEED_OFFSET
    random_seed: int = 0

    def validate(self) -> None:
        if not 1 <= self.episodes <= MAX_EVAL_EPISODES:
            raise UserError(f"config: episodes must be in 1..{MAX_EVAL_EPISODES}, got {self.episodes}")
        if not EVAL_SEED_OFFSET <= self.eval_seed_offset < 2**32 - self.episodes:
            raise UserError(f"config: eval_seed_offset must be >= {EVAL_SEED_OFFSET} (training seeds lie below) "
                            "and leave room for the episodes below 2^32")
        if not 0 <= self.random_seed < 2**32:
            raise UserError(f"config: random_seed must be in [0, 2^32), got {self.random_seed}")


def evaluate(config: DemoEvalConfig, show_progress: bool = True, force: bool = False) -> dict[str, Any]:
    """Trained policy (or scripted, if the checkpoint is "scripted") vs scripted vs random, same seeds; an
    existing eval.json is refused before any work unless `force`."""
    import torch
    from tqdm import tqdm

    from mirrorlab.agents.demonstrator import (
        SCRIPTED,
        RandomPolicy,
        evaluate_policy_on_seeds,
        load_demonstrator,
        make_other_env,
        read_description,
    )

    config.validate()
    torch.set_num_threads(1)
    seeds = [config.eval_seed_offset + i for i in range(config.episodes)]
    if config.checkpoint == SCRIPTED:
        env_id, action_mode = "mirrorlab/PlanarReach-v0", "torque"
        policies = {}
    else:
        folder = Path(config.checkpoint)
        description = read_description(folder)
        if (folder / "eval.json").exists() and not force:
            raise UserError(f"--checkpoint {folder}: already holds eval.json; pass --force to replace it")
        env_id, action_mode = description["env_id"], description["action_mode"]
        policies = {"trained": lambda env: load_demonstrator(folder, env)}
    policies["scripted"] = lambda env: load_demonstrator(SCRIPTED, env)
    policies["random"] = lambda env: RandomPolicy(env.action_space, config.random_seed)
    results: dict[str, Any] = {}
    for name, make_policy in tqdm(policies.items(), desc="demo eval", unit="policy", disable=not show_progress):
        started = time.perf_counter()
        results[name] = evaluate_policy_on_seeds(lambda: make_other_env(env_id, action_mode=action_mode), make_policy,
                                                 seeds)
        results[name]["wall_time_s"] = time.perf_counter() - started
    record = provenance(config, seeds={"eval_seeds": [seeds[0], seeds[-1]]})
    record.update(env_id=env_id, action_mode=action_mode, results=results)
    if config.checkpoint != SCRIPTED:
        atomic_write_json(Path(config.checkpoint) / "eval.json", record)
    return record


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help="train and evaluate the demonstrator (the other arm's policy)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="demo_command", metavar="SUBCOMMAND", required=True)

    t = sub.add_parser("train", help="train an SB3 policy on the other arm's reach task (state observations)")
    t.add_argument("--env", dest="env_id", default=None, help="env id (default: mirrorlab/PlanarReach-v0)")
    t.add_argument("--algo", choices=ALGOS, default=None, help="algorithm (default: sac)")
    t.add_argument("--action-mode", dest="action_mode", choices=ACTION_MODES, default=None,
                   help="the arm's actions: joint-target offsets or torques (default: position)")
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
    e.add_argument("--force", action="store_true", help="replace the checkpoint's eval.json")
    e.set_defaults(func=main_eval)


def main_train(args: argparse.Namespace) -> int:
    from mirrorlab.agents.demonstrator import train_demonstrator

    config = build_config(DemoTrainConfig(), args.config,
                          {n: getattr(args, n) for n in ("env_id", "algo", "timesteps", "seed", "action_mode")})
    with staged_output_dir(args.out, "demo", force=args.force) as folder:  # --force keeps the old one until done
        record = train_demonstrator(config, folder)
    print(f"checkpoint: {args.out} (policy.json + policy.pt)")
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
    config = build_config(DemoEvalConfig(), args.config, {"checkpoint": args.checkpoint, "episodes": args.episodes})
    print(format_eval(evaluate(config, force=args.force)))
    return 0
