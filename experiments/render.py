"""`mirrorlab render`: an mp4 of paired episodes, self performing beside other executing the same actions.

Each episode runs one action sequence from one seed twice: performed by the self arm (left panel;
the scripted controller or random torques choose the actions) and replayed by the other arm (right
panel), exactly as a paired episode is made.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mirrorlab.envs.scene import CAMERAS, OTHER_APPEARANCES
from mirrorlab.errors import UserError
from mirrorlab.files import check_new_file, write_mp4

POLICIES = ("scripted", "random")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("render", help="write an mp4 of paired episodes: self performs, other executes the "
                                             "same actions", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", required=True, help="registered id, e.g. mirrorlab/PlanarReach-v0")
    p.add_argument("--episodes", type=int, default=1, help="number of paired episodes (default 1)")
    p.add_argument("--out", type=Path, required=True, help="output .mp4 path (written atomically)")
    p.add_argument("--camera", default=None, choices=CAMERAS,
                   help="one camera for both panels; default: self_view on the left, other_view on the right")
    p.add_argument("--policy", choices=POLICIES, default="scripted",
                   help="scripted reaching controller on the self arm, or uniform random torques")
    p.add_argument("--other-appearance", default="identical", choices=OTHER_APPEARANCES,
                   help="how the other arm looks (default: identical)")
    p.add_argument("--size", type=int, default=128, help="panel side in pixels, a multiple of 16 in 16..1024")
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode (then +1 each)")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")
    p.set_defaults(func=run)


def check_args(args: argparse.Namespace) -> None:
    from mirrorlab import envs

    if args.env not in envs.ENV_IDS:
        raise UserError(f"--env must be one of {', '.join(envs.ENV_IDS)}; got {args.env!r}")
    if not 1 <= args.episodes <= 1000:
        raise UserError(f"--episodes must be in 1..1000; got {args.episodes}")
    if args.size % 16 or not 16 <= args.size <= 1024:
        raise UserError(f"--size must be a multiple of 16 in 16..1024; got {args.size}")
    if not 0 <= args.seed < 2**32 - args.episodes:
        raise UserError(f"--seed must be in [0, 2^32); got {args.seed}")


def paired_frames(env_id: str, episodes: int, camera: str | None, policy: str, other_appearance: str, size: int,
                  seed: int):
    """Yield side-by-side frames (size, 2*size, 3) of each paired episode, reset frame included."""
    import gymnasium as gym

    import mirrorlab.envs  # noqa: F401  (registers the ids)
    from mirrorlab.agents.scripted import ScriptedReacher
    from mirrorlab.envs.episodes import replay, rollout

    perform = gym.make(env_id, actor="self", other_appearance=other_appearance)
    observe = gym.make(env_id, actor="other", other_appearance=other_appearance)
    left_cam, right_cam = (camera, camera) if camera else ("self_view", "other_view")
    try:
        for episode in range(episodes):
            rng = np.random.default_rng(seed + episode)
            if policy == "scripted":
                controller = ScriptedReacher(perform)
                act = lambda _obs, _t: controller.action()  # noqa: E731
            else:
                act = lambda _obs, _t: rng.uniform(-1, 1, perform.action_space.shape)  # noqa: E731
            mine = rollout(perform, seed + episode, act, camera=left_cam, frame_size=size)
            theirs = replay(observe, seed + episode, mine["actions"], camera=right_cam, frame_size=size)
            yield from (np.hstack([a, b]) for a, b in zip(mine["frames"], theirs["frames"]))
    finally:
        perform.close()
        observe.close()


def run(args: argparse.Namespace) -> int:
    check_args(args)
    out = check_new_file(args.out, args.force, ".mp4")
    frames = paired_frames(args.env, args.episodes, args.camera, args.policy, args.other_appearance, args.size,
                           args.seed)
    count = write_mp4(out, frames, fps=25)
    print(f"wrote {out}: {count} frames of {args.size}x{2 * args.size} "
          f"({args.episodes} paired episodes of {args.env}, {args.policy} policy)")
    return 0
