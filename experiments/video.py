"""`mirrorlab video`: an mp4 of one held-out episode of an analyzed run, for a talk.

Top: the self arm performing the episode's actions (left) beside the other arm executing them, as the
core observed it (right), re-simulated at `--size` pixels. Bottom: the traces of the `--units` top
mirror units and the strongest anti-mirror unit, perform solid, observe dashed, with a time cursor.
Activations and per-unit r come from the activations file `mirrorlab analyze` recorded (`--analysis`),
so the video shows exactly what the analysis measured. `--episode K` indexes the run's held-out demo
episodes (0..N-1, in the order of `test_episode_ids` in RUN/config.json).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mirrorlab.agents.runs import read_run
from mirrorlab.experiments.stages.episode_video import DEFAULT_FPS, DEFAULT_SIZE, DEFAULT_UNITS, write_episode_video


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("video", help="mp4 of a held-out episode: self performing, other observed, unit traces",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="a finished `mirrorlab train` run folder")
    p.add_argument("--analysis", type=Path, required=True, help="the `mirrorlab analyze` output that includes the run")
    p.add_argument("--episode", type=int, required=True,
                   help="index into the run's held-out episodes, 0..N-1 (test_episode_ids in RUN/config.json)")
    p.add_argument("--out", type=Path, required=True, help="output .mp4 path (written atomically)")
    p.add_argument("--size", type=int, default=DEFAULT_SIZE,
                   help=f"side of each arm view in pixels, a multiple of 16; the video is 2*size square "
                        f"(default {DEFAULT_SIZE})")
    p.add_argument("--units", type=int, default=DEFAULT_UNITS,
                   help=f"number of top mirror units traced, plus the anti-mirror unit (default {DEFAULT_UNITS})")
    p.add_argument("--fps", type=int, default=DEFAULT_FPS, help=f"frames (env steps) per second (default {DEFAULT_FPS})")
    p.add_argument("--data", type=Path, default=None, help="the run's dataset folder, if it has moved")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    shown = write_episode_video(read_run(args.run), args.analysis, args.episode, args.out, args.size, args.units,
                                args.fps, force=args.force, data_path=args.data)
    units = ", ".join(f"{u['unit']} (r={u['r']:+.2f}{' anti' if u['anti'] else ''})" for u in shown["units"])
    print(f"wrote {shown['path']}: units {units}; {2 * args.size}x{2 * args.size} at {args.fps} fps, held-out episode {args.episode} of "
          f"{args.run}; {time.perf_counter() - started:.1f} s")
    return 0
