"""`mirrorlab video`: an mp4 of one held-out episode of a trained run, for a talk.

Top: the self arm performing the episode's action sequence (left) and the other arm executing it,
as the core observed it (right), both re-simulated from the stored seed and actions at `--size`
pixels (the stored frames are the run's small training frames). Bottom: the traces of the
`--units` top mirror units (highest perform-vs-observe r) and the anti-mirror unit (lowest r)
over the episode, perform solid, observe dashed, with a moving time cursor. r is the per-unit
Pearson r over ALL the run's held-out episodes and timesteps, as `mirrorlab analyze` reports it.

`--episode K` indexes the run's held-out demo episodes (0..N-1, in the order of `test_episode_ids`
in RUN/config.json), which the core never trained on. The video has T+1 frames (the reset state,
then one per env step: 51 for PlanarReach, 101 for Arm3DReach), each 2*size x 2*size pixels.
Every input is checked (run, episode index, output folder, dataset) before anything is rendered.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from experiments.errors import UserError
from experiments.provenance import ensure_writable_dir

DEFAULT_SIZE = 256
DEFAULT_UNITS = 3
DEFAULT_FPS = 10


def _check_options(out: Path, size: int, n_units: int, fps: int) -> None:
    from analysis.videos import MAX_UNITS

    if out.suffix != ".mp4":
        raise UserError(f"--out must end in .mp4; got {str(out)!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 64 or size > 1024 or size % 16:
        raise UserError(f"--size must be a multiple of 16 in 64..1024; got {size!r}")
    if not 1 <= n_units <= MAX_UNITS:
        raise UserError(f"--units must be in 1..{MAX_UNITS}; got {n_units}")
    if not 1 <= fps <= 120:
        raise UserError(f"--fps must be in 1..120; got {fps}")


def check_writable_folder(out: Path) -> None:
    """Create `out`'s folder if needed and prove a file can be written there (os.access lies for root)."""
    if out.is_dir():
        raise UserError(f"--out {out}: is a folder; give a file name ending in .mp4")
    ensure_writable_dir(out.parent, f"--out {out}: folder")


def _held_out_ids(record: dict, run_dir: Path) -> list[int]:
    ids = record.get("test_episode_ids")
    if not isinstance(ids, list) or not ids:
        raise UserError(f"{run_dir}: the run lists no held-out episodes (test_episode_ids in config.json)")
    return [int(i) for i in ids]


def _check_run_parts(run_dir: Path, record: dict) -> None:
    """The video needs both paths of the core: the trained weights and the data signature."""
    missing = [k for k in ("data", "data_path", "config") if k not in record]
    if missing:
        raise UserError(f"{run_dir}/config.json: missing {', '.join(missing)}; not a `mirrorlab train` run record")
    if not (run_dir / "model.pt").is_file():
        raise UserError(f"{run_dir}: model.pt is missing (the run's trained weights)")


def _replay(header, actor: str, camera: str, seed: int, actions: np.ndarray, size: int,
            stored_angles: np.ndarray) -> np.ndarray:
    """Re-simulate one side at `size` px; the joint angles must match the stored episode."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the ids, picks the GL backend)
    from envs.paired import replay_side

    kwargs = {**json.loads(header.env_kwargs), "frame_size": size}
    env = gym.make(header.env_id, actor=actor, obs_mode="state", **kwargs)
    try:
        side = replay_side(env, seed, camera, actions)
    finally:
        env.close()
    if side["joint_angles"].shape != stored_angles.shape or not np.allclose(side["joint_angles"], stored_angles,
                                                                            rtol=0, atol=1e-9):
        raise UserError(f"re-simulating the {actor} arm (seed {seed}) does not reproduce the stored episode's "
                        "joint angles; the dataset was collected with a different env version")
    return side["frames"]


def write_episode_video(run_dir: str | os.PathLike, episode: int, out: str | os.PathLike, size: int = DEFAULT_SIZE,
                        n_units: int = DEFAULT_UNITS, fps: int = DEFAULT_FPS,
                        data_path: str | os.PathLike | None = None) -> Path:
    """Write the mp4 of held-out episode `episode` (an index into the run's held-out episodes) to `out`.

    See the module docstring for what it shows; returns `out` as a Path.
    """
    from analysis.mirror_stats import pearson_per_unit
    from analysis.videos import EpisodeCanvas, UnitTrace, episode_frames, select_units, write_mp4
    from envs.paired import PairedDataset
    from experiments.analyze import load_held_out, record_embodied_activations
    from experiments.train import check_signature, load_run, read_run_record

    run_dir, out = Path(run_dir), Path(out)
    _check_options(out, size, n_units, fps)
    record = read_run_record(run_dir)
    _check_run_parts(run_dir, record)
    ids = _held_out_ids(record, run_dir)
    if isinstance(episode, bool) or not isinstance(episode, (int, np.integer)) or not 0 <= episode < len(ids):
        raise UserError(f"--episode must index the run's {len(ids)} held-out episodes, 0..{len(ids) - 1}; "
                        f"got {episode!r}")
    check_writable_folder(out)
    data_path = Path(data_path or record["data_path"])
    with PairedDataset(data_path) as data:
        check_signature(record["data"], data.header, run_dir, data_path)
        header = data.header
        refs = {r.episode_id: r for r in data.episodes("demo")}
        if ids[episode] not in refs:
            raise UserError(f"{data_path}: held-out demo episode {ids[episode]} is missing from the dataset")
        ref = refs[ids[episode]]
        stored = data.read_episode(ref, frames=False)
    config, record, model = load_run(run_dir)

    # r over all held-out episodes, exactly as the analysis computes it
    acts = record_embodied_activations(model, load_held_out(data_path, ids))
    r = pearson_per_unit(acts.perform, acts.observe)
    top, anti = select_units(r, n_units)
    if not top:
        raise UserError(f"{run_dir}: every hidden unit is constant on the held-out episodes; nothing to trace")
    traces = [UnitTrace(u, float(r[u]), acts.perform[episode, :, u], acts.observe[episode, :, u]) for u in top]
    if anti is not None:
        traces.append(UnitTrace(anti, float(r[anti]), acts.perform[episode, :, anti], acts.observe[episode, :, anti],
                                anti=True))

    actions = stored["actions"]
    self_frames = _replay(header, "self", header.perform_camera, ref.seed, actions, size,
                          stored["perform"]["joint_angles"])
    other_frames = _replay(header, "other", header.observe_camera, ref.seed, actions, size,
                           stored["observe"]["joint_angles"])
    caption = (f"{config.condition} seed {config.seed} | held-out episode {episode} (demo id {ref.episode_id}) | "
               f"r over {acts.perform.shape[0]} held-out episodes")
    if config.condition == "separate":
        caption += " | separate cores: unit ids not matched"
    canvas = EpisodeCanvas(traces, size, caption=caption)
    write_mp4(out, episode_frames(canvas, self_frames, other_frames), fps)
    return out


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("video", help="mp4 of a held-out episode: self performing, other observed, unit traces",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="a finished `mirrorlab train` run folder")
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
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    out = write_episode_video(args.run, args.episode, args.out, args.size, args.units, args.fps, args.data)
    print(f"wrote {out}: {2 * args.size}x{2 * args.size} at {args.fps} fps, held-out episode {args.episode} of "
          f"{args.run}; {time.perf_counter() - started:.1f} s")
    return 0
