"""Whole paired episodes as torch tensors, read from the dataset (every read checked), batched per epoch.

An item is one episode: `actions` float32 [T, A]; `perform` (and, for demo episodes, `observe`) each
a dict of `frames` uint8 [T+1, 3, S, S], `joint_angles`, `joint_velocities` float32 [T+1, A] and `distance`
float32 [T+1] (fingertip to target, for agents.reward);
`episode_id` and `index` (the item's position in its `EpisodeItems`) int64. Perform and observe of
one item come from one stored action array, so they are aligned by construction.
"""

from __future__ import annotations

import math
import os
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from mirrorlab.envs.paired import PairedDataError, PairedDataset, sides_of

PROPRIO = ("joint_angles", "joint_velocities")


class EpisodeItems(Dataset):
    """The episodes of one kind (optionally only `episode_ids`, in that order) of a dataset folder."""

    def __init__(self, path: str | os.PathLike, kind: str = "demo", episode_ids: list[int] | None = None):
        self.data = PairedDataset(path)
        refs = {r.episode_id: r for r in self.data.episodes(kind)}
        if episode_ids is None:
            episode_ids = sorted(refs)
        missing = [i for i in episode_ids if i not in refs]
        if missing:
            raise PairedDataError(f"{path}: {kind} episodes {missing[:5]} are not in the dataset")
        if not episode_ids:
            raise PairedDataError(f"{path}: the dataset holds no {kind} episodes")
        self.refs = [refs[i] for i in episode_ids]
        self.kind = kind

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        ref = self.refs[index]
        episode = self.data.read_episode(ref)
        item: dict[str, Any] = {"actions": torch.from_numpy(np.asarray(episode["actions"], np.float32)),
                                "episode_id": torch.tensor(ref.episode_id), "index": torch.tensor(index)}
        for side in sides_of(self.kind):
            part = {name: torch.from_numpy(np.asarray(episode[side][name], np.float32)) for name in PROPRIO}
            part["frames"] = torch.from_numpy(np.ascontiguousarray(episode[side]["frames"].transpose(0, 3, 1, 2)))
            part["distance"] = torch.from_numpy(np.asarray(episode[side]["distance"], np.float32))  # agents.reward
            item[side] = part
        return item

    def actions(self) -> np.ndarray:
        """Every episode's actions [N, T, A] (small: read once for label re-pairing)."""
        return np.stack([self.data.read_episode(r, frames=False)["actions"] for r in self.refs]).astype(np.float32)

    def close(self) -> None:
        self.data.close()


class CachedItems(Dataset):
    """Keeps items of a dataset in memory once read, up to `max_bytes`; beyond that it streams.

    Reading, gunzipping and hashing HDF5 frames costs about a third of a training step on small frames,
    so every epoch after the first reads from memory while the data fits, and memory stays bounded
    when it does not.
    """

    def __init__(self, dataset: Dataset, max_bytes: int):
        self.dataset, self.max_bytes = dataset, int(max_bytes)
        self._cache: dict[int, Any] = {}
        self._bytes = 0

    def __len__(self) -> int:
        return len(self.dataset)

    @staticmethod
    def size_of(item: Any) -> int:
        if isinstance(item, torch.Tensor):
            return item.element_size() * item.nelement()
        if isinstance(item, dict):
            return sum(CachedItems.size_of(v) for v in item.values())
        return 0

    def __getitem__(self, index: int) -> Any:
        if index in self._cache:
            return self._cache[index]
        item = self.dataset[index]
        size = self.size_of(item)
        if self._bytes + size <= self.max_bytes:
            self._cache[index] = item
            self._bytes += size
        return item


class EpisodeBatches:
    """Per-epoch batches of whole episodes from one or more named sources (`demo`, `babble`), the
    sources' batches interleaved; every order is drawn from (seed, epoch), so a resumed run sees the
    same batches as an uninterrupted one."""

    def __init__(self, sources: dict[str, Dataset], batch_size: int):
        self.sources = {k: v for k, v in sources.items() if v is not None}
        self.batch_size = batch_size

    def __len__(self) -> int:
        return sum(math.ceil(len(ds) / self.batch_size) for ds in self.sources.values())

    def epoch(self, seed: int, epoch: int) -> Iterator[tuple[str, dict[str, Any]]]:
        plan = []
        for k, (kind, ds) in enumerate(self.sources.items()):
            gen = torch.Generator().manual_seed(int(np.random.default_rng([seed, epoch, k]).integers(2**62)))
            plan.append((kind, iter(DataLoader(ds, batch_size=self.batch_size, shuffle=True, generator=gen))))
        counts = [math.ceil(len(ds) / self.batch_size) for ds in self.sources.values()]
        schedule = np.concatenate([np.full(c, k) for k, c in enumerate(counts)])
        for k in np.random.default_rng([seed, epoch, 99]).permutation(schedule):
            kind, it = plan[k]
            yield kind, next(it)
