"""`mirrorlab bench envs`: env.step + render fps beside the bare MuJoCo floor, and vector speed-up."""

from __future__ import annotations

import argparse

from experiments.errors import UserError


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="mirrorlab bench envs", description=__doc__)
    p.add_argument("--env", action="append", help="env id (repeatable; default: all registered)")
    p.add_argument("--frame-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=2000, help="steps per timed round")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the best is kept")
    p.add_argument("--vector-steps", type=int, default=2000, help="0 skips the vector-env test")
    args = p.parse_args(argv)

    import envs
    from envs import benchmark
    from envs.reach import check_frame_size

    env_ids = args.env or list(envs.ENV_IDS)
    unknown = [e for e in env_ids if e not in envs.ENV_IDS]
    if unknown:
        raise UserError(f"--env must be one of {', '.join(envs.ENV_IDS)}; got {unknown[0]!r}")
    try:
        check_frame_size(args.frame_size)
    except ValueError as err:
        raise UserError(str(err)) from err
    if args.steps < 1 or args.rounds < 1 or args.vector_steps < 0:
        raise UserError("--steps and --rounds must be >= 1, --vector-steps >= 0")
    benchmark.run(env_ids, args.frame_size, args.steps, args.rounds, args.vector_steps)
    return 0
