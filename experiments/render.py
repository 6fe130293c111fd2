"""`mirrorlab render`: an mp4 of paired episodes, self performing beside other executing the same actions."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from experiments.errors import UserError

POLICIES = ("scripted", "random")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "render", help="write an mp4 of paired episodes: self performs, other executes the same actions",
        description="Each episode runs one action sequence twice from one seed: performed by the self "
                    "arm (left panel) and executed by the other arm (right panel).")
    p.add_argument("--env", required=True, help="registered id, e.g. mirrorlab/PlanarReach-v0")
    p.add_argument("--episodes", type=int, default=1, help="number of paired episodes (default 1)")
    p.add_argument("--out", required=True, help="output .mp4 path (written atomically)")
    p.add_argument("--camera", default=None,
                   help="one camera for both panels (self_view, other_view, scene); default: "
                        "self_view on the left, other_view on the right")
    p.add_argument("--policy", choices=POLICIES, default="scripted",
                   help="scripted reaching controller on the self arm, or uniform random torques")
    p.add_argument("--other-appearance", default="identical",
                   help="identical, recolored, mirrored or morphology")
    p.add_argument("--size", type=int, default=128, help="panel side in pixels, a multiple of 16")
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode (then +1 each)")
    p.set_defaults(func=run)


def paired_frames(env_id: str, episodes: int, camera: str | None, policy: str,
                  other_appearance: str, size: int, seed: int):
    """Yield side-by-side frames (size, 2*size, 3) of each paired episode, reset frame included."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the ids, picks the GL backend)
    from agents.scripted import ScriptedReacher

    if env_id not in envs.ENV_IDS:
        raise UserError(f"--env must be one of {', '.join(envs.ENV_IDS)}; got {env_id!r}")
    if episodes < 1:
        raise UserError(f"--episodes must be >= 1; got {episodes}")
    try:
        perform = gym.make(env_id, actor="self", other_appearance=other_appearance)
        observe = gym.make(env_id, actor="other", other_appearance=other_appearance)
        from envs.reach import check_frame_size
        check_frame_size(size)
        if camera is not None:
            perform.unwrapped.render_camera(camera, size=16)  # validates the name
    except ValueError as err:
        raise UserError(str(err).replace("frame_size", "--size")) from err
    left_cam, right_cam = (camera, camera) if camera else ("self_view", "other_view")
    controller = ScriptedReacher(perform)
    try:
        for episode in range(episodes):
            rng = np.random.default_rng(seed + episode)
            perform.reset(seed=seed + episode)
            observe.reset(seed=seed + episode)
            done = False
            while True:
                yield np.hstack([perform.unwrapped.render_camera(left_cam, size),
                                 observe.unwrapped.render_camera(right_cam, size)])
                if done:
                    break
                action = (controller.predict(None)[0] if policy == "scripted"
                          else rng.uniform(-1, 1, perform.action_space.shape).astype(np.float32))
                _, _, term, trunc, _ = perform.step(action)
                observe.step(action)
                done = term or trunc
    finally:
        perform.close()
        observe.close()


def run(args: argparse.Namespace) -> int:
    if not str(args.out).endswith(".mp4"):
        raise UserError(f"--out must end in .mp4; got {args.out!r}")
    frames = paired_frames(args.env, args.episodes, args.camera, args.policy,
                           args.other_appearance, args.size, args.seed)
    from analysis.videos import write_mp4

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    count = write_mp4(args.out, frames, fps=25)
    print(f"wrote {args.out}: {count} frames of {args.size}x{2 * args.size} "
          f"({args.episodes} paired episodes of {args.env}, {args.policy} policy)")
    return 0
