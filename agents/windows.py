"""Aligned (perform, observe) windows of paired episodes as torch tensors, read lazily from HDF5.

Window (episode e, start t, length L) holds the shared actions a[t : t+L] and, for each side, the
frames and joint states at steps t .. t+L (L+1 of them: frame i is the state *before* action t+i,
frame i+1 the state after it). Perform and observe windows of one item come from the same episode,
start and action array, so they are aligned by construction (and each episode's pairing is checked
the first time a process reads it). Only the episode index lives in memory; every item is read from
disk, with one set of file handles per DataLoader worker.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from envs.paired import PairedDataError, PairedDataset

PROPRIO = ("joint_angles", "joint_velocities")


class PairedWindows(Dataset):
    """`PairedWindows(path, window, kind="demo")[i]` -> dict of tensors (see the module docstring).

    Item keys: `actions` float32 [L, A]; `perform` (and, for demo episodes, `observe`) each a dict of
    `frames` uint8 [L+1, 3, H, W], `joint_angles`, `joint_velocities` float32 [L+1, A];
    `episode_id`, `start` int64.
    """

    def __init__(self, path: str | os.PathLike, window: int = 16, kind: str = "demo", stride: int = 1,
                 frames: bool = True, expect_env_id: str | None = None):
        if window < 1 or stride < 1:
            raise ValueError(f"window and stride must be >= 1; got window={window}, stride={stride}")
        self.data = PairedDataset(path, expect_env_id=expect_env_id)
        self.refs = self.data.episodes(kind)
        if not self.refs:
            raise PairedDataError(f"{path}: the dataset holds no {kind} episodes")
        self.window, self.kind, self.frames = int(window), kind, bool(frames)
        self.sides = ("perform", "observe") if kind == "demo" else ("perform",)
        episode, start = [], []
        for i, ref in enumerate(self.refs):
            n = max(0, (ref.n_steps - self.window) // stride + 1)
            episode.append(np.full(n, i, np.int64))
            start.append(np.arange(n, dtype=np.int64) * stride)
        self._episode, self._start = np.concatenate(episode), np.concatenate(start)
        if len(self._episode) == 0:
            raise PairedDataError(f"{path}: no episode is as long as the window ({window} steps)")
        self._checked: set[int] = set()
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self._episode)

    def _group(self, e: int):
        if os.getpid() != self._pid:
            self._checked, self._pid = set(), os.getpid()
        group = self.data.group(self.refs[e], check=e not in self._checked)
        self._checked.add(e)
        return group

    def __getitem__(self, index: int) -> dict[str, Any]:
        e, t = int(self._episode[index]), int(self._start[index])
        L, ref = self.window, self.refs[e]
        group = self._group(e)
        try:
            item: dict[str, Any] = {
                "actions": torch.from_numpy(np.asarray(group["actions"][t:t + L], np.float32)),
                "episode_id": torch.tensor(ref.episode_id), "start": torch.tensor(t),
            }
            for side in self.sides:
                g = group[side]
                part = {name: torch.from_numpy(np.asarray(g[name][t:t + L + 1], np.float32)) for name in PROPRIO}
                if self.frames:
                    part["frames"] = torch.from_numpy(np.ascontiguousarray(g["frames"][t:t + L + 1].transpose(0, 3, 1, 2)))
                item[side] = part
        except (OSError, KeyError, ValueError) as err:
            raise PairedDataError(f"{ref.where()}: unreadable ({type(err).__name__}: {err}); the file may be "
                                  "truncated") from None
        return item

    def close(self) -> None:
        self.data.close()


def window_loader(dataset: PairedWindows, batch_size: int = 32, shuffle: bool = True, seed: int = 0,
                  num_workers: int = 0) -> DataLoader:
    """A seeded DataLoader over windows; each worker opens its own HDF5 handles."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      num_workers=num_workers, persistent_workers=num_workers > 0)


class CachedWindows(Dataset):
    """Keeps items of a dataset in memory once read, up to `max_bytes`; beyond that it streams.

    Reading and gunzipping HDF5 frames costs about a third of a training step on small frames, so
    every epoch after the first reads from memory while the data fits, and memory stays bounded
    when it does not.
    """

    def __init__(self, dataset: Dataset, max_bytes: int):
        self.dataset, self.max_bytes = dataset, int(max_bytes)
        self._cache: dict[int, Any] = {}
        self._bytes = 0

    def __len__(self) -> int:
        return len(self.dataset)

    @staticmethod
    def _size(item: Any) -> int:
        if isinstance(item, torch.Tensor):
            return item.element_size() * item.nelement()
        if isinstance(item, dict):
            return sum(CachedWindows._size(v) for v in item.values())
        return 0

    def __getitem__(self, index: int) -> Any:
        if index in self._cache:
            return self._cache[index]
        item = self.dataset[index]
        size = self._size(item)
        if self._bytes + size <= self.max_bytes:
            self._cache[index] = item
            self._bytes += size
        return item
