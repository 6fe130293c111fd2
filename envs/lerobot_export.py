"""Paired episodes as a LeRobotDataset v3.0 folder, written directly with pyarrow and ffmpeg.

The `lerobot` package pins torch < 2.11 and cannot be installed beside this project, so the layout is written
from LeRobot's documented v3.0 schema (`lerobot/datasets/utils.py`: `create_empty_dataset_info`, the
`chunk-{chunk_index:03d}/file-{file_index:03d}` paths) and loads with `LeRobotDataset(repo_id, root=...)`:

| path | content |
|---|---|
| `meta/info.json` | `codebase_version` "v3.0", fps, totals, `data_path` / `video_path` templates, `features` |
| `meta/stats.json` | per feature: min, max, mean, std, count (videos: per channel, in [0, 1], as LeRobot computes) |
| `meta/tasks.parquet` | the one task (the demonstrator's reaching, described), indexed by its text, `task_index` 0 |
| `meta/episodes/chunk-000/file-000.parquet` | one row per paired episode: length, the rows and video seconds it spans, and `mirrorlab/episode_id`, `mirrorlab/seed` |
| `data/chunk-000/file-000.parquet` | one row per step: `observation.state` (the self arm), `observation.other_state` (the other arm), `action`, `next.reward` (the self arm's), `timestamp`, `frame_index`, `episode_index`, `index`, `task_index` |
| `videos/observation.images.perform/chunk-000/file-000.mp4` | the perform side: the self arm replaying the actions, from its own camera |
| `videos/observation.images.observe/chunk-000/file-000.mp4` | the observe side: the other arm executing them, watched |

Perform and observe are two cameras of one LeRobot episode, so their frames are paired by construction (same
episode, same frame index); `info.json` says so under `mirrorlab`. Each episode of T actions has T rows: the
frame before each action (the final frame, after the last action, has no action and is left out). Babbling
episodes have no observe side and are not exported. Videos are H.264 at constant quantiser 0 in yuv444p:
decoded back, every pixel is within 2 levels of the source (RGB to YUV rounding), tested.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from mirrorlab.envs.export import publish_folder
from mirrorlab.envs.paired import PairedDataset
from mirrorlab.errors import UserError
from mirrorlab.provenance import git_commit

CODEBASE_VERSION = "v3.0"
CAMERAS = {"observation.images.perform": "perform", "observation.images.observe": "observe"}
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
PIXEL_TOLERANCE = 2   # max |decoded - source| per pixel and channel, 0-255


def _video_feature(size: int, fps: float) -> dict[str, Any]:
    return {"dtype": "video", "shape": [size, size, 3], "names": ["height", "width", "channels"],
            "info": {"video.height": size, "video.width": size, "video.codec": "h264", "video.pix_fmt": "yuv444p",
                     "video.is_depth_map": False, "video.fps": fps, "video.channels": 3, "has_audio": False}}


def features(size: int, state_dim: int, action_dim: int, fps: float) -> dict[str, Any]:
    """info.json's `features`: every parquet column and every camera, with dtype, shape and names."""
    scalar = lambda dtype: {"dtype": dtype, "shape": [1], "names": None}  # noqa: E731
    return {
        **{key: _video_feature(size, fps) for key in CAMERAS},
        "observation.state": {"dtype": "float32", "shape": [state_dim], "names": None},
        "observation.other_state": {"dtype": "float32", "shape": [state_dim], "names": None},
        "action": {"dtype": "float32", "shape": [action_dim], "names": [f"joint_{i}" for i in range(action_dim)]},
        "next.reward": scalar("float32"),
        "timestamp": scalar("float32"), "frame_index": scalar("int64"), "episode_index": scalar("int64"),
        "index": scalar("int64"), "task_index": scalar("int64"),
    }


def _stats(x: np.ndarray) -> dict[str, Any]:
    """LeRobot's per-feature statistics over rows (axis 0); one value per component."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    return {"min": x.min(0).tolist(), "max": x.max(0).tolist(), "mean": x.mean(0).tolist(),
            "std": x.std(0).tolist(), "count": [int(len(x))]}


def _image_stats(frames: np.ndarray) -> dict[str, Any]:
    """Per-channel statistics of frames [n, H, W, 3] in [0, 1], shaped [3, 1, 1] as LeRobot stores them."""
    x = frames.reshape(-1, 3).astype(np.float64) / 255.0
    shape = lambda v: [[[float(c)]] for c in v]  # noqa: E731
    return {"min": shape(x.min(0)), "max": shape(x.max(0)), "mean": shape(x.mean(0)), "std": shape(x.std(0)),
            "count": [int(len(frames))]}


class _Video:
    """One camera's mp4: every episode's frames appended, in episode order (ffmpeg through imageio-ffmpeg)."""

    def __init__(self, path: Path, size: int, fps: float):
        import imageio_ffmpeg

        path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = imageio_ffmpeg.write_frames(
            str(path), (size, size), fps=fps, codec="libx264", pix_fmt_out="yuv444p", macro_block_size=1,
            quality=None, output_params=["-qp", "0", "-preset", "veryfast"], ffmpeg_log_level="error")
        self.writer.send(None)

    def append(self, frames: np.ndarray) -> None:
        for frame in frames:
            self.writer.send(np.ascontiguousarray(frame))

    def close(self) -> None:
        self.writer.close()


def _table(columns: dict[str, Any]):
    """A pyarrow table; [n, k] arrays become fixed-size lists (LeRobot's Sequence features)."""
    import pyarrow as pa

    out = {}
    for name, values in columns.items():
        values = np.asarray(values)
        if values.ndim == 2:
            out[name] = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])
        else:
            out[name] = pa.array(values)
    return pa.table(out)


def _env_facts(data: PairedDataset) -> tuple[float, int]:
    """The env's frames per second and state size."""
    env = data.header.make_env("self", obs_mode="both")
    try:
        fps = float(env.metadata.get("render_fps") or 1.0 / env.unwrapped.dt)
        state_dim = int(env.observation_space["state"].shape[0])
        return (int(round(fps)) if abs(fps - round(fps)) < 1e-9 else fps), state_dim
    finally:
        env.close()


def _write(data: PairedDataset, folder: Path, task: str) -> dict[str, Any]:
    """Write the whole LeRobot folder under `folder`; returns its info.json."""
    import pyarrow.parquet as pq

    header, refs = data.header, data.episodes("demo")
    if not refs:
        raise UserError("--data: the dataset holds no paired (demo) episodes; LeRobot export needs both sides")
    fps, state_dim = _env_facts(data)
    size = header.frame_size
    videos = {key: _Video(folder / VIDEO_PATH.format(video_key=key, chunk_index=0, file_index=0), size, fps)
              for key in CAMERAS}
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("observation.state", "observation.other_state", "action",
                                                         "next.reward", "frame_index", "episode_index")}
    episodes, pixels, start = [], {key: [] for key in CAMERAS}, 0
    try:
        for index, ref in enumerate(refs):
            ep = data.read_episode(ref)
            T = len(ep["actions"])
            for key, side in CAMERAS.items():
                videos[key].append(ep[side]["frames"][:T])
                pixels[key].append(ep[side]["frames"][:T:max(1, T // 4)])  # a sample, for the image statistics
            rows["observation.state"].append(ep["perform"]["state"][:T].astype(np.float32))
            rows["observation.other_state"].append(ep["observe"]["state"][:T].astype(np.float32))
            rows["action"].append(ep["actions"].astype(np.float32))
            rows["next.reward"].append(ep["perform"]["reward"].astype(np.float32))
            rows["frame_index"].append(np.arange(T))
            rows["episode_index"].append(np.full(T, index))
            episodes.append(_episode_row(index, ref, T, start, fps, task))
            start += T
    finally:
        for video in videos.values():
            video.close()
    columns = {k: np.concatenate(v) for k, v in rows.items()}
    columns["timestamp"] = (columns["frame_index"] / fps).astype(np.float32)
    columns["index"] = np.arange(start)
    columns["task_index"] = np.zeros(start, dtype=np.int64)
    (folder / "data" / "chunk-000").mkdir(parents=True)
    pq.write_table(_table(columns), folder / DATA_PATH.format(chunk_index=0, file_index=0))
    _write_meta(folder, episodes, columns, pixels, task)
    info = _info(header, data, len(refs), start, fps, features(size, state_dim, header.action_dim, fps))
    (folder / "meta" / "info.json").write_text(json.dumps(info, indent=4))
    return info


def _episode_row(index: int, ref: Any, T: int, start: int, fps: float, task: str) -> dict[str, Any]:
    row = {"episode_index": index, "tasks": [task], "length": T, "dataset_from_index": start,
           "dataset_to_index": start + T, "data/chunk_index": 0, "data/file_index": 0,
           "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
           "mirrorlab/episode_id": int(ref.episode_id), "mirrorlab/seed": int(ref.seed)}
    for key in CAMERAS:
        row.update({f"videos/{key}/chunk_index": 0, f"videos/{key}/file_index": 0,
                    f"videos/{key}/from_timestamp": start / fps, f"videos/{key}/to_timestamp": (start + T) / fps})
    return row


def _write_meta(folder: Path, episodes: list[dict[str, Any]], columns: dict[str, np.ndarray],
                pixels: dict[str, list[np.ndarray]], task: str) -> None:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    (folder / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(episodes), folder / EPISODES_PATH)
    tasks = pd.DataFrame({"task_index": [0]}, index=pd.Index([task], name="task"))
    pq.write_table(pa.Table.from_pandas(tasks), folder / "meta" / "tasks.parquet")
    stats = {k: _stats(v) for k, v in columns.items()}
    stats.update({key: _image_stats(np.concatenate(p)) for key, p in pixels.items()})
    (folder / "meta" / "stats.json").write_text(json.dumps(stats, indent=4))


def _info(header: Any, data: PairedDataset, n_episodes: int, n_frames: int, fps: float,
          feats: dict[str, Any]) -> dict[str, Any]:
    return {
        "codebase_version": CODEBASE_VERSION, "robot_type": header.env_id, "total_episodes": n_episodes,
        "total_frames": n_frames, "total_tasks": 1, "chunks_size": 1000, "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 500, "fps": fps, "splits": {"train": f"0:{n_episodes}"},
        "data_path": DATA_PATH, "video_path": VIDEO_PATH, "features": feats,
        "mirrorlab": {
            "pairing": "observation.images.perform and observation.images.observe are the two sides of one paired "
                       "episode: the same action sequence replayed by the self arm (perform) and executed by the "
                       "other arm (observe), frame i of both before action i",
            "source_fingerprint": data.fingerprint, "other_appearance": header.other_appearance,
            "perform_camera": header.perform_camera, "observe_camera": header.observe_camera,
            "demonstrator": header.demonstrator, "env_kwargs": header.kwargs, "git_commit": git_commit(),
            "video_pixel_tolerance": PIXEL_TOLERANCE, "left_out": "babbling episodes (no observe side)"},
    }


def export_lerobot(data_path: str | os.PathLike, out: str | os.PathLike, force: bool = False) -> dict[str, Any]:
    """Write the paired dataset at `data_path` as a LeRobotDataset v3.0 folder `out`, atomically."""
    out = Path(out)
    if out.name in ("", ".", ".."):
        raise UserError(f"--out: name a new folder for the LeRobot dataset, got {str(out)!r}")
    info: dict[str, Any] = {}
    with PairedDataset(data_path) as data:
        task = f"reach the target as the demonstrator ({data.header.demonstrator}) does"

        def write(tmp: Path) -> Path:
            info.update(_write(data, tmp, task))
            return tmp

        publish_folder(out, force, write, f"the LeRobot dataset {out}")
    return {"path": str(out), "episodes": info["total_episodes"], "frames": info["total_frames"], "fps": info["fps"]}
