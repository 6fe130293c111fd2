"""An mp4 of one held-out episode of an analyzed run: the arms side by side, the unit traces below (video, study).

Top: the self arm performing the episode's action sequence (left) and the other arm executing it,
as the core observed it (right), both re-simulated from the stored seed and actions at `size`
pixels (the stored frames are the run's small training frames). Bottom: the traces of the `units`
top mirror units (highest perform-vs-observe r) and the anti-mirror unit (lowest r) over the
episode, perform solid, observe dashed, with a moving time cursor. Activations and r come from the
activations file that `mirrorlab analyze` recorded: r is the per-unit Pearson r over all the run's
held-out episodes and timesteps, exactly as the analysis reports it.

`episode` indexes the run's held-out demo episodes (0..N-1, in the order of `test_episode_ids` in
RUN/config.json), which the core never trained on. The video has T+1 frames (the reset state, then
one per env step), each 2*size x 2*size pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirrorlab.agents.runs import Run
from mirrorlab.errors import UserError
from mirrorlab.files import check_new_file, write_mp4

DEFAULT_SIZE = 256
DEFAULT_UNITS = 3
DEFAULT_FPS = 10


@dataclass(frozen=True)
class VideoConfig:
    """The study's perform-vs-observe videos: one per dataset, of its first shared core."""

    size: int = DEFAULT_SIZE       # px per arm view; the video is 2*size square
    episode: int = 0               # the held-out demo episode shown
    units: int = DEFAULT_UNITS     # top mirror units traced (and the anti-mirror unit)
    fps: int = DEFAULT_FPS

    def validate(self) -> None:
        check_options(self.size, self.units, self.fps, "config: ")
        if self.episode < 0:
            raise UserError(f"config: episode must be >= 0, got {self.episode}")


def check_options(size: int, n_units: int, fps: int, where: str = "--") -> None:
    """Each option in range; `where` names it as a flag (`--size`) or a config key (`config: size`)."""
    from mirrorlab.analysis.videos import MAX_UNITS

    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 64 or size > 1024 or size % 16:
        raise UserError(f"{where}size must be a multiple of 16 in 64..1024; got {size!r}")
    if not 1 <= n_units <= MAX_UNITS:
        raise UserError(f"{where}units must be in 1..{MAX_UNITS}; got {n_units}")
    if not 1 <= fps <= 120:
        raise UserError(f"{where}fps must be in 1..120; got {fps}")


def _replay(header, actor: str, camera: str, seed: int, actions: np.ndarray, size: int,
            stored_angles: np.ndarray) -> np.ndarray:
    """Re-simulate one side at `size` px; the joint angles must match the stored episode."""
    from mirrorlab.envs.episodes import replay

    env = header.make_env(actor, render_supersample=1)  # a large video needs no anti-aliasing of its own
    try:
        side = replay(env, seed, actions, camera=camera, frame_size=size)
    finally:
        env.close()
    if side["joint_angles"].shape != stored_angles.shape or not np.allclose(side["joint_angles"], stored_angles,
                                                                            rtol=0, atol=1e-9):
        raise UserError(f"re-simulating the {actor} arm (seed {seed}) does not reproduce the stored episode's "
                        "joint angles; the dataset was collected with a different env version")
    return side["frames"]


def write_episode_video(run: Run, analysis: Path, episode: int, out: Path, size: int = DEFAULT_SIZE,
                        n_units: int = DEFAULT_UNITS, fps: int = DEFAULT_FPS, force: bool = False,
                        data_path: Path | None = None) -> dict:
    """Write the mp4 of held-out episode `episode` of `run` to `out`; every input is checked first.
    Returns what it shows: the path, the run, the episode, and the traced units with their r."""
    from mirrorlab.analysis.mirror_stats import pearson_per_unit
    from mirrorlab.analysis.videos import EpisodeCanvas, UnitTrace, episode_frames, select_units
    from mirrorlab.envs.paired import PairedDataset
    from mirrorlab.experiments.stages.measurement import run_activations

    check_options(size, n_units, fps)
    ids = run.test_episode_ids
    if isinstance(episode, bool) or not isinstance(episode, (int, np.integer)) or not 0 <= episode < len(ids):
        raise UserError(f"--episode must index the run's {len(ids)} held-out episodes, 0..{len(ids) - 1}; "
                        f"got {episode!r}")
    check_new_file(out, force, ".mp4")
    acts = run_activations(analysis, run)
    data_path = Path(data_path or run.data_path)
    with PairedDataset(data_path) as data:
        run.check_data(data)
        header = data.header
        refs = {r.episode_id: r for r in data.episodes("demo")}
        ref = refs[ids[episode]]
        stored = data.read_episode(ref, frames=False)

    held = acts.split(held_out=True)
    r = pearson_per_unit(held["perform"].astype(np.float64), held["observe"].astype(np.float64))
    row = int(np.flatnonzero(held["episode_ids"] == ref.episode_id)[0])
    top, anti = select_units(r, n_units)
    if not top:
        raise UserError(f"{run.dir}: every hidden unit is constant on the held-out episodes; nothing to trace")
    traces = [UnitTrace(u, float(r[u]), held["perform"][row, :, u], held["observe"][row, :, u]) for u in top]
    if anti is not None:
        traces.append(UnitTrace(anti, float(r[anti]), held["perform"][row, :, anti], held["observe"][row, :, anti],
                                anti=True))
    actions = stored["actions"]
    self_frames = _replay(header, "self", header.perform_camera, ref.seed, actions, size,
                          stored["perform"]["joint_angles"])
    other_frames = _replay(header, "other", header.observe_camera, ref.seed, actions, size,
                           stored["observe"]["joint_angles"])
    caption = (f"{run.config.condition} seed {run.config.seed} | held-out episode {episode} (demo id "
               f"{ref.episode_id}) | r over {held['perform'].shape[0]} held-out episodes")
    if run.config.condition == "separate":
        caption += " | separate cores: unit ids not matched"
    canvas = EpisodeCanvas(traces, size, caption=caption)
    write_mp4(out, episode_frames(canvas, self_frames, other_frames), fps)
    return {"path": str(out), "run": str(run.dir), "run_name": run.name, "other_appearance": run.other_appearance,
            "episode": int(episode), "episode_id": int(ref.episode_id),
            "units": [{"unit": t.unit, "r": t.r, "anti": t.anti} for t in traces]}
