"""`mirrorlab bench envs`: env.step + render fps beside the bare MuJoCo floor, and vector speed-up."""

from __future__ import annotations

from mirrorlab.errors import UserError
from mirrorlab.experiments.cli import OneLineParser


def main(argv: list[str]) -> int:
    p = OneLineParser(prog="mirrorlab bench envs", description=__doc__)
    p.add_argument("--env", action="append", help="env id (repeatable; default: all registered)")
    p.add_argument("--frame-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=2000, help="steps per timed round")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the best is kept")
    p.add_argument("--vector-steps", type=int, default=2000, help="0 skips the vector-env test")
    args = p.parse_args(argv)

    from mirrorlab import envs
    from mirrorlab.envs import benchmark

    env_ids = args.env or list(envs.ENV_IDS)
    unknown = [e for e in env_ids if e not in envs.ENV_IDS]
    if unknown:
        raise UserError(f"--env must be one of {', '.join(envs.ENV_IDS)}; got {unknown[0]!r}")
    if args.frame_size % 16 or not 16 <= args.frame_size <= 1024:
        raise UserError(f"--frame-size must be a multiple of 16 in 16..1024, got {args.frame_size}")
    if args.steps < 1 or args.rounds < 1 or args.vector_steps < 0:
        raise UserError("--steps and --rounds must be >= 1, --vector-steps >= 0")
    benchmark.run(env_ids, args.frame_size, args.steps, args.rounds, args.vector_steps)
    return 0
