"""Paired episodes as a Minari dataset: the offline-data format Gymnasium users already load.

Every side of every episode becomes one Minari episode, in dataset order: for demo episode k its
*perform* side (the self arm replaying the demonstrator's actions, from `self_view`), then its *observe*
side (the other arm executing them, from `other_view`); then every *babble* episode (the self arm's
motor babbling). Each Minari episode has

| field          | content                                                                       |
|----------------|-------------------------------------------------------------------------------|
| observations   | Dict(`pixels`: uint8 [T+1, S, S, 3] frames, `state`: float32 [T+1, D] the acting arm's state vector), as the env's `obs_mode="both"` |
| actions        | float32 [T, A], the one stored action array of the paired episode (both sides share it) |
| rewards        | the side's reward for each action; terminations all False; the last step truncated |
| infos          | per step (T+1): `joint_angles`, `joint_velocities`, `distance`; and constants `episode_id`, `role` (0 perform, 1 observe, 2 babble) and `paired_with` (the Minari index of the other side of the same episode, -1 for babble) |
| seed           | the reset seed of both sides                                                  |

The dataset's metadata holds, under `mirrorlab`: the source dataset's fingerprint and header (env id and
kwargs, cameras, appearance of the other arm, demonstrator), the role names, and the pairing table
(perform index, observe index, episode id, seed). The env spec is the *self* arm's env (actor "self",
obs_mode "both"); observe episodes were recorded with actor "other" and camera `other_view`, which the
metadata says. Frames are stored losslessly (no JPEG encoding), so they match the source bit for bit.
"""

from __future__ import annotations

import os
import re
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from mirrorlab.envs.paired import PairedDataset
from mirrorlab.errors import UserError
from mirrorlab.provenance import git_commit

ROLES = {"perform": 0, "observe": 1, "babble": 2}
_ID = re.compile(r"^([A-Za-z0-9_.-]+/)?[A-Za-z0-9_.-]+-v\d+$")


@contextmanager
def minari_root(root: str | os.PathLike | None) -> Iterator[None]:
    """Minari reads its datasets folder from MINARI_DATASETS_PATH; set it for the block (if given)."""
    previous = os.environ.get("MINARI_DATASETS_PATH")
    if root is not None:
        os.environ["MINARI_DATASETS_PATH"] = str(Path(root).resolve())
    try:
        yield
    finally:
        if root is not None:
            if previous is None:
                os.environ.pop("MINARI_DATASETS_PATH", None)
            else:
                os.environ["MINARI_DATASETS_PATH"] = previous


def _episode(side: dict[str, Any], actions: np.ndarray, seed: int, index: int, role: str, episode_id: int,
             paired_with: int):
    from minari.data_collector import EpisodeBuffer

    T = len(actions)
    const = lambda v: np.full(T + 1, v, dtype=np.int64)  # noqa: E731
    return EpisodeBuffer(
        id=index, seed=int(seed),
        observations={"pixels": side["frames"], "state": side["state"].astype(np.float32)},
        actions=actions.astype(np.float32), rewards=side["reward"].astype(np.float64),
        terminations=np.zeros(T, bool), truncations=np.arange(T) == T - 1,
        infos={"joint_angles": side["joint_angles"], "joint_velocities": side["joint_velocities"],
               "distance": side["distance"], "episode_id": const(episode_id), "role": const(ROLES[role]),
               "paired_with": const(paired_with)})


def export_minari(data_path: str | os.PathLike, dataset_id: str, root: str | os.PathLike | None = None,
                  force: bool = False, chunk: int = 16) -> dict[str, Any]:
    """Write the paired dataset at `data_path` as the Minari dataset `dataset_id`; returns a summary."""
    import gymnasium as gym

    if not _ID.match(dataset_id):
        raise UserError(f"--out: a Minari dataset id looks like [namespace/]name-v0, got {dataset_id!r}")
    import minari
    from minari.storage import get_dataset_path

    with PairedDataset(data_path) as data, minari_root(root):
        header = data.header
        path = Path(get_dataset_path(dataset_id))
        if path.exists():
            if not force:
                raise UserError(f"--out: the Minari dataset {dataset_id} already exists ({path}); pass --force to "
                                "replace it")
            minari.delete_dataset(dataset_id)
        S, A = header.frame_size, header.action_dim
        self_env = header.make_env("self", obs_mode="both")
        try:
            spec = self_env.spec
            state_dim = self_env.observation_space["state"].shape[0]
        finally:
            self_env.close()
        observation_space = gym.spaces.Dict({
            "pixels": gym.spaces.Box(0, 255, (S, S, 3), np.uint8),
            "state": gym.spaces.Box(-np.inf, np.inf, (state_dim,), np.float32)})
        action_space = gym.spaces.Box(-1.0, 1.0, (A,), np.float32)

        plan: list[tuple[Any, str, int, int]] = []  # (ref, role, index, paired_with)
        for ref in data.episodes("demo"):
            k = len(plan)
            plan += [(ref, "perform", k, k + 1), (ref, "observe", k + 1, k)]
        for ref in data.episodes("babble"):
            plan.append((ref, "babble", len(plan), -1))
        dataset = None
        for start in range(0, len(plan), chunk):
            buffers, cache = [], {}
            for ref, role, index, partner in plan[start:start + chunk]:
                episode = cache.setdefault(ref.key, data.read_episode(ref))
                side = episode["observe" if role == "observe" else "perform"]
                buffers.append(_episode(side, episode["actions"], ref.seed, index, role, ref.episode_id, partner))
            if dataset is None:
                with warnings.catch_warnings():  # Minari asks for an author e-mail and a code URL we do not have
                    warnings.simplefilter("ignore", UserWarning)
                    dataset = minari.create_dataset_from_buffers(
                        dataset_id, buffers, env=spec, eval_env=spec, observation_space=observation_space,
                        action_space=action_space, author="mirrorlab", code_permalink=f"git commit {git_commit()}",
                        algorithm_name=f"mirrorlab paired episodes (demonstrator: {header.demonstrator})",
                        description=__doc__.split("\n\n")[1], jpeg_encoding=False)
            else:
                dataset.storage.update_episodes(buffers)
        pairs = [[index, partner, ref.episode_id, ref.seed] for ref, role, index, partner in plan if role == "perform"]
        dataset.storage.update_metadata({"mirrorlab": {
            "source_fingerprint": data.fingerprint, "header": {k: getattr(header, k) for k in header.__dataclass_fields__},
            "other_appearance": header.other_appearance, "demonstrator": header.demonstrator,
            "roles": {"0": f"perform: the self arm replays the actions ({header.perform_camera})",
                      "1": f"observe: the other arm executes them ({header.observe_camera})",
                      "2": "babble: the self arm's motor babbling"},
            "pairs": pairs, "pairs_columns": ["perform_index", "observe_index", "episode_id", "seed"]}})
        return {"dataset_id": dataset_id, "path": str(path), "episodes": len(plan), "pairs": len(pairs),
                "sides": {role: sum(1 for p in plan if p[1] == role) for role in ROLES}}
