r"""Paired perform/observe episodes on disk: one action array, rendered on both arms (HDF5, no pickle).

A *paired episode* is one action sequence executed by the other arm (watched from `observe_camera`:
the **observe** side) and replayed on the self arm (seen from `perform_camera`: the **perform**
side). The action array is stored **once** per episode; each side records the SHA-256 of the array
it actually executed, so pairing is checked on every read, and `verify_pairing` re-simulates stored
episodes from their seeds and compares frames and proprioception bit for bit (the envs are
deterministic). *Babble* episodes are the self arm's motor babbling (smooth random torques): a
perform side only.

## Dataset folder
| file                | content                                                                    |
|---------------------|----------------------------------------------------------------------------|
| `manifest.json`     | format, version, header (below), collect config + provenance, completed shards |
| `shard-NNNNN.h5`    | one chunk of episodes of one kind; written as `.shard-NNNNN.h5.tmp`, renamed when complete |

## Shard file (HDF5; open with plain `h5py`)
Root attributes (the *header*; every shard of a dataset has the same one):

| attribute          | type  | meaning                                                          |
|--------------------|-------|------------------------------------------------------------------|
| `format`           | str   | `"mirrorlab-paired"`                                             |
| `format_version`   | int   | `FORMAT_VERSION` (1)                                             |
| `pairing`          | str   | `"shared_actions"`: one action array per episode drives both sides |
| `env_id`           | str   | e.g. `"mirrorlab/PlanarReach-v0"` (the id carries the env version) |
| `env_kwargs`       | JSON  | kwargs of `gymnasium.make` shared by both sides (`other_appearance`, `frame_size`, ...) |
| `frame_size`       | int   | frames are `frame_size` x `frame_size` RGB                       |
| `action_dim`       | int   | A, the number of joints                                          |
| `max_steps`        | int   | T, steps per episode                                             |
| `observe_camera`, `perform_camera` | str | cameras of the two sides (`other_view`, `self_view`) |
| `demonstrator`     | str   | `"scripted"` or the checkpoint folder the actions came from      |
| `shard`, `kind`    | int, str | this shard's index; `"demo"` or `"babble"`                    |
| `complete`         | bool  | set last, just before the rename                                 |

Groups `/{kind}/{episode_id:06d}` (kind `demo` or `babble`), attributes `episode_id`, `seed` (the
reset seed of both sides), `n_steps` (T), `actions_sha256`; datasets:

| path                           | shape, dtype             | meaning                                         |
|--------------------------------|--------------------------|-------------------------------------------------|
| `actions`                      | [T, A] float32           | the torques, stored once, executed by both sides |
| `target`                       | [3] float64              | the target in the acting arm's base frame (same for both sides) |
| `{side}/frames`                | [T+1, H, W, 3] uint8     | frame 0 after reset, frame t+1 after action t; gzip, chunked by frames |
| `{side}/state`                 | [T+1, S] float32         | the env's state observation of the acting arm   |
| `{side}/joint_angles`          | [T+1, A] float64         | proprioception of the side's arm                |
| `{side}/joint_velocities`      | [T+1, A] float64         |                                                 |
| `{side}/fingertip_pos`         | [T+1, 3] float64         | world frame                                     |
| `{side}/distance`              | [T+1] float64            | fingertip to target (m)                         |
| `{side}/reward`                | [T] float64              | the env's reward for action t                   |

`side` is `observe` (arm `other`) and `perform` (arm `self`) for demo episodes, `perform` only for
babble. Side attributes: `arm`, `camera`, `success` (within the radius at the final step),
`target_pos` (world), `actions_sha256` (of the actions that side executed: must equal the episode's).

Version history: 1 — first release.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from experiments.errors import UserError

FORMAT = "mirrorlab-paired"
FORMAT_VERSION = 1
PAIRING = "shared_actions"
MANIFEST = "manifest.json"
KINDS = ("demo", "babble")
SIDES = {"observe": "other", "perform": "self"}
SIDE_ARRAYS = ("frames", "state", "joint_angles", "joint_velocities", "fingertip_pos", "distance", "reward")
_FRAME_CHUNK_BYTES = 1 << 20


class PairedDataError(UserError):
    """A dataset file that cannot be used: the message names the file and, where known, the episode."""


class PairingError(PairedDataError):
    """The perform and observe sides of an episode were not produced by the same action array."""


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.h5"


def episode_key(kind: str, episode_id: int) -> str:
    return f"{kind}/{episode_id:06d}"


def actions_sha256(actions: np.ndarray) -> str:
    """Hash of an action array's shape and little-endian float32 bytes."""
    array = np.ascontiguousarray(actions, dtype="<f4")
    digest = hashlib.sha256(repr(array.shape).encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


# --- simulation: one side of an episode ------------------------------------------------------
@dataclass(frozen=True)
class Header:
    """The attributes every shard of one dataset shares (see the module docstring)."""

    env_id: str
    env_kwargs: str              # JSON
    frame_size: int
    action_dim: int
    max_steps: int
    observe_camera: str
    perform_camera: str
    demonstrator: str

    def attrs(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "pairing": PAIRING, **asdict(self)}

    def make_env(self, actor: str):
        """An env of this dataset, driving `actor`, state observations (frames come from render_camera)."""
        import gymnasium as gym

        import envs  # noqa: F401  (registers the ids, picks the GL backend)

        return gym.make(self.env_id, actor=actor, obs_mode="state", **json.loads(self.env_kwargs))


def make_header(env_id: str, env_kwargs: dict[str, Any], demonstrator: str,
                observe_camera: str = "other_view", perform_camera: str = "self_view") -> Header:
    import envs

    env_kwargs = dict(sorted(env_kwargs.items()))
    frame_size = int(env_kwargs.get("frame_size", 64))
    env_kwargs["frame_size"] = frame_size
    header = Header(env_id=env_id, env_kwargs=json.dumps(env_kwargs, sort_keys=True), frame_size=frame_size,
                    action_dim=0, max_steps=envs.MAX_EPISODE_STEPS[env_id], observe_camera=observe_camera,
                    perform_camera=perform_camera, demonstrator=str(demonstrator))
    env = header.make_env("self")
    try:
        return Header(**{**asdict(header), "action_dim": int(env.action_space.shape[0])})
    finally:
        env.close()


def record_side(env, seed: int, camera: str, act: Callable[[Any, int], np.ndarray], n_steps: int) -> dict[str, Any]:
    """Reset `env` with `seed`, then step `n_steps` times with `act(obs, t)`; record everything stored.

    Returns the side's arrays, `actions` [T, A] float32 (exactly what was executed), its hash,
    `success`, `target_pos` (world) and `target` (base frame).
    """
    u = env.unwrapped
    arm = u.actor
    obs, info = env.reset(seed=int(seed))
    frames, states, angles, velocities, tips, dists, rewards, actions = [], [], [], [], [], [], [], []

    def snapshot(obs, info):
        frames.append(u.render_camera(camera))
        states.append(np.asarray(obs, dtype=np.float32))
        angles.append(np.asarray(info[f"{arm}_joint_angles"], dtype=np.float64))
        velocities.append(np.asarray(info[f"{arm}_joint_velocities"], dtype=np.float64))
        tips.append(np.asarray(info[f"{arm}_fingertip_pos"], dtype=np.float64))
        dists.append(float(info["distance"]))

    snapshot(obs, info)
    target_pos = np.asarray(info[f"{arm}_target_pos"], dtype=np.float64)
    target = np.asarray(u.physics.to_base_frame(arm, target_pos), dtype=np.float64)
    for t in range(n_steps):
        action = np.asarray(act(obs, t), dtype=np.float32).reshape(-1)
        actions.append(action)
        obs, reward, _terminated, _truncated, info = env.step(action)
        rewards.append(float(reward))
        snapshot(obs, info)
    actions_arr = np.stack(actions) if actions else np.zeros((0, u.n_joints), np.float32)
    return {
        "arm": arm, "camera": camera, "actions": actions_arr, "actions_sha256": actions_sha256(actions_arr),
        "success": bool(info["is_success"]), "target_pos": target_pos, "target": target,
        "frames": np.stack(frames), "state": np.stack(states), "joint_angles": np.stack(angles),
        "joint_velocities": np.stack(velocities), "fingertip_pos": np.stack(tips),
        "distance": np.asarray(dists), "reward": np.asarray(rewards),
    }


def replay_side(env, seed: int, camera: str, actions: np.ndarray) -> dict[str, Any]:
    """Replay a stored action array on `env`'s acting arm from `reset(seed)`."""
    actions = np.asarray(actions, dtype=np.float32)
    return record_side(env, seed, camera, lambda _obs, t: actions[t], len(actions))


# --- writing ----------------------------------------------------------------------------------
class ShardWriter:
    """Write one shard to a hidden temp file; `commit()` marks it complete and renames it into place.

    A shard that was never committed (a killed worker) stays a `.tmp` file that readers ignore and
    the collector deletes and redoes.
    """

    def __init__(self, path: str | os.PathLike, header: Header, shard: int, kind: str):
        import h5py

        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp")
        self.header, self.kind = header, kind
        self.tmp.parent.mkdir(parents=True, exist_ok=True)
        self.file = h5py.File(self.tmp, "w")
        self.file.attrs.update({**header.attrs(), "shard": int(shard), "kind": kind, "complete": False})
        self.n_episodes = 0

    def _frame_chunks(self, frames: np.ndarray) -> tuple[int, ...]:
        per_frame = int(np.prod(frames.shape[1:]))
        return (max(1, min(len(frames), _FRAME_CHUNK_BYTES // per_frame)), *frames.shape[1:])

    def _write_side(self, group, side: str, record: dict[str, Any]) -> None:
        g = group.create_group(side)
        g.attrs.update(arm=record["arm"], camera=record["camera"], success=record["success"],
                       target_pos=record["target_pos"], actions_sha256=record["actions_sha256"])
        frames = record["frames"]
        g.create_dataset("frames", data=frames, chunks=self._frame_chunks(frames), compression="gzip",
                         compression_opts=4)
        for name in SIDE_ARRAYS[1:]:
            g.create_dataset(name, data=record[name])

    def add_episode(self, episode_id: int, seed: int, actions: np.ndarray, sides: dict[str, dict[str, Any]]) -> None:
        """Store one episode: the action array once, and each side's record (which must have run it)."""
        actions = np.asarray(actions, dtype=np.float32)
        digest = actions_sha256(actions)
        expected_sides = ("observe", "perform") if self.kind == "demo" else ("perform",)
        if tuple(sorted(sides)) != tuple(sorted(expected_sides)):
            raise ValueError(f"a {self.kind} episode has sides {expected_sides}; got {sorted(sides)}")
        for side, record in sides.items():
            if record["actions_sha256"] != digest:
                raise PairingError(f"{self.path}: episode {episode_key(self.kind, episode_id)}: the {side} side "
                                   "executed a different action array than the one stored; refusing to write it")
        group = self.file.create_group(episode_key(self.kind, episode_id))
        group.attrs.update(episode_id=int(episode_id), seed=int(seed), n_steps=int(len(actions)),
                           actions_sha256=digest)
        group.create_dataset("actions", data=actions)
        group.create_dataset("target", data=next(iter(sides.values()))["target"])
        for side in expected_sides:
            self._write_side(group, side, sides[side])
        self.n_episodes += 1

    def commit(self) -> Path:
        self.file.attrs["n_episodes"] = self.n_episodes
        self.file.attrs["complete"] = True
        self.file.flush()
        self.file.close()
        with open(self.tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        try:
            self.file.close()
        finally:
            if self.tmp.exists():
                self.tmp.unlink()


# --- reading ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class EpisodeRef:
    """Where one episode lives; small, so an index of a dataset larger than RAM fits in memory."""

    shard: str          # file path
    kind: str
    episode_id: int
    seed: int
    n_steps: int

    @property
    def key(self) -> str:
        return episode_key(self.kind, self.episode_id)

    def where(self) -> str:
        return f"{self.shard}: episode {self.key}"


def open_shard(path: str | os.PathLike):
    """Open a shard read-only, naming the file in any error (missing, truncated, not HDF5, not ours)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise PairedDataError(f"{path}: no such dataset file")
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise PairedDataError(f"{path}: not a readable HDF5 file (truncated, or not a mirrorlab dataset): {err}") from None
    if handle.attrs.get("format") != FORMAT:
        handle.close()
        raise PairedDataError(f"{path}: not a mirrorlab paired dataset (no format={FORMAT!r} attribute)")
    return handle


def read_header(handle, path: str | os.PathLike) -> Header:
    attrs = handle.attrs
    version = attrs.get("format_version")
    if version != FORMAT_VERSION:
        raise PairedDataError(f"{path}: dataset format version {version}, this mirrorlab reads version "
                              f"{FORMAT_VERSION}; recollect it with `mirrorlab collect`")
    if attrs.get("pairing") != PAIRING:
        raise PairingError(f"{path}: pairing attribute is {attrs.get('pairing')!r}, expected {PAIRING!r} "
                           "(perform and observe must share one action array)")
    if not attrs.get("complete", False):
        raise PairedDataError(f"{path}: shard is incomplete (its writer was killed); rerun `mirrorlab collect` "
                              "on the dataset folder to redo it")
    try:
        fields = {name: attrs[name] for name in Header.__dataclass_fields__}
    except KeyError as err:
        raise PairedDataError(f"{path}: header attribute {err} is missing") from None
    return Header(**{k: (int(v) if k in ("frame_size", "action_dim", "max_steps") else str(v))
                     for k, v in fields.items()})


def check_episode(group, header: Header, kind: str, where: str) -> None:
    """Structural and pairing checks of one episode group: shapes agree, both sides ran the stored actions."""
    if "actions" not in group:
        raise PairedDataError(f"{where}: no actions array")
    sides = ("observe", "perform") if kind == "demo" else ("perform",)
    T = int(group.attrs.get("n_steps", -1))
    actions = group["actions"]
    if actions.shape != (T, header.action_dim):
        raise PairedDataError(f"{where}: actions have shape {actions.shape}, expected ({T}, {header.action_dim})")
    stored = actions[()]
    digest = actions_sha256(stored)
    if group.attrs.get("actions_sha256") != digest:
        raise PairingError(f"{where}: the actions array does not match its recorded hash (modified after collection)")
    H = header.frame_size
    expected = {"frames": (T + 1, H, H, 3), "joint_angles": (T + 1, header.action_dim),
                "joint_velocities": (T + 1, header.action_dim), "fingertip_pos": (T + 1, 3),
                "distance": (T + 1,), "reward": (T,)}
    for side in sides:
        if side not in group:
            raise PairedDataError(f"{where}: the {side} side is missing")
        g = group[side]
        if "actions" in g:
            raise PairingError(f"{where}: the {side} side has its own actions array; a paired episode stores one "
                               "shared action array (pairing by construction)")
        if g.attrs.get("actions_sha256") != digest:
            raise PairingError(f"{where}: the {side} side was rendered from a different action sequence than the "
                               "stored actions (perform and observe are mispaired)")
        for name, shape in expected.items():
            if name not in g:
                raise PairedDataError(f"{where}: {side}/{name} is missing")
            if g[name].shape != shape:
                raise PairedDataError(f"{where}: {side}/{name} has shape {g[name].shape}, expected {shape} "
                                      f"(mismatched lengths: {T} actions)")
        if g["state"].shape[0] != T + 1:
            raise PairedDataError(f"{where}: {side}/state has {g['state'].shape[0]} rows, expected {T + 1}")


class PairedDataset:
    """Index and read a dataset folder (or one shard); reads are lazy, per episode, with pairing checks.

    `expect_env_id`, if given, must match the dataset's env. File handles are opened on first use in
    each process (safe with DataLoader workers) and closed by `close()`.
    """

    def __init__(self, path: str | os.PathLike, expect_env_id: str | None = None):
        self.path = Path(path)
        self.shards = self._shard_paths()
        self.header: Header | None = None
        self.refs: list[EpisodeRef] = []
        for shard in self.shards:
            with open_shard(shard) as handle:
                header = read_header(handle, shard)
                if self.header is None:
                    self.header = header
                elif header != self.header:
                    diff = [k for k in asdict(header) if asdict(header)[k] != asdict(self.header)[k]]
                    raise PairedDataError(f"{shard}: its header differs from {self.shards[0]} in {', '.join(diff)} "
                                          "(shards of different collections mixed in one folder)")
                try:
                    self.refs.extend(self._index(handle, shard))
                except (OSError, ValueError) as err:
                    raise PairedDataError(f"{shard}: unreadable episode index ({err}); the file may be truncated") from None
        if self.header is None:
            raise PairedDataError(f"{self.path}: the dataset holds no completed shard")
        if expect_env_id is not None and self.header.env_id != expect_env_id:
            raise PairedDataError(f"{self.shards[0]}: dataset of env {self.header.env_id}, expected {expect_env_id}")
        self.refs.sort(key=lambda r: (KINDS.index(r.kind), r.episode_id))
        self._handles: dict[str, Any] = {}
        self._pid = os.getpid()

    def _shard_paths(self) -> list[Path]:
        if self.path.is_file():
            return [self.path]
        if not self.path.is_dir():
            raise PairedDataError(f"{self.path}: no such dataset (a folder written by `mirrorlab collect`, or a shard)")
        manifest = self.path / MANIFEST
        if not manifest.is_file():
            raise PairedDataError(f"{self.path}: not a dataset folder: {manifest} is missing")
        try:
            data = json.loads(manifest.read_text())
            names = sorted(data["shards"])
            if data.get("format") != FORMAT:
                raise KeyError("format")
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as err:
            raise PairedDataError(f"{manifest}: not a mirrorlab dataset manifest ({type(err).__name__}: {err})") from None
        if data.get("format_version") != FORMAT_VERSION:
            raise PairedDataError(f"{manifest}: dataset format version {data.get('format_version')}, this mirrorlab "
                                  f"reads version {FORMAT_VERSION}")
        return [self.path / name for name in names]

    @staticmethod
    def _index(handle, shard: Path) -> Iterator[EpisodeRef]:
        for kind in KINDS:
            if kind not in handle:
                continue
            for name, group in handle[kind].items():
                try:
                    yield EpisodeRef(str(shard), kind, int(group.attrs["episode_id"]), int(group.attrs["seed"]),
                                     int(group.attrs["n_steps"]))
                except KeyError as err:
                    raise PairedDataError(f"{shard}: episode {kind}/{name}: attribute {err} is missing") from None

    def __len__(self) -> int:
        return len(self.refs)

    def episodes(self, kind: str | None = None) -> list[EpisodeRef]:
        return [r for r in self.refs if kind is None or r.kind == kind]

    def handle(self, shard: str):
        if os.getpid() != self._pid:  # a forked DataLoader worker: never share HDF5 handles across processes
            self._handles, self._pid = {}, os.getpid()
        if shard not in self._handles:
            self._handles[shard] = open_shard(shard)
        return self._handles[shard]

    def group(self, ref: EpisodeRef, check: bool = True):
        handle = self.handle(ref.shard)
        if ref.key not in handle:
            raise PairedDataError(f"{ref.where()}: not found")
        group = handle[ref.key]
        if check:
            self._checked(group, ref)
        return group

    def _checked(self, group, ref: EpisodeRef) -> None:
        try:
            check_episode(group, self.header, ref.kind, ref.where())
        except PairedDataError:
            raise
        except (OSError, KeyError, ValueError) as err:
            raise PairedDataError(f"{ref.where()}: unreadable ({type(err).__name__}: {err}); the file may be "
                                  "truncated") from None

    def read_episode(self, ref: EpisodeRef, frames: bool = True) -> dict[str, Any]:
        """All arrays of one episode as numpy (checked first): `actions`, `target`, and one dict per side."""
        group = self.group(ref)
        try:
            out: dict[str, Any] = {"actions": group["actions"][()], "target": group["target"][()],
                                   "seed": ref.seed, "episode_id": ref.episode_id, "kind": ref.kind}
            for side in ("observe", "perform"):
                if side in group:
                    g = group[side]
                    out[side] = {name: g[name][()] for name in SIDE_ARRAYS if frames or name != "frames"}
                    out[side].update({k: g.attrs[k] for k in ("arm", "camera", "success")})
        except (OSError, KeyError, ValueError) as err:
            raise PairedDataError(f"{ref.where()}: unreadable ({type(err).__name__}: {err}); the file may be "
                                  "truncated") from None
        return out

    def check(self) -> int:
        """Structural and pairing checks of every episode (reads actions, not frames); returns the count."""
        for ref in self.refs:
            self.group(ref, check=True)
        return len(self.refs)

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles = {}

    def __enter__(self) -> "PairedDataset":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:  # handles never travel to another process
        state = dict(self.__dict__)
        state["_handles"] = {}
        return state


def verify_pairing(path: str | os.PathLike, n_episodes: int | None = 4, seed: int = 0,
                   kinds: tuple[str, ...] = KINDS) -> dict[str, Any]:
    """Re-simulate stored actions from stored seeds; every frame and joint state must match bit for bit.

    Checks `n_episodes` episodes drawn at random (with `seed`) from each kind, or all if None. Raises
    `PairingError` naming the file, episode, side, array and first differing step.
    """
    dataset = PairedDataset(path)
    header = dataset.header
    rng = np.random.default_rng(seed)
    checked: list[str] = []
    envs = {actor: header.make_env(actor) for actor in SIDES.values()}
    try:
        for kind in kinds:
            refs = dataset.episodes(kind)
            if n_episodes is not None and len(refs) > n_episodes:
                refs = [refs[i] for i in sorted(rng.choice(len(refs), n_episodes, replace=False))]
            for ref in refs:
                stored = dataset.read_episode(ref)
                for side, arm in SIDES.items():
                    if side not in stored:
                        continue
                    camera = header.observe_camera if side == "observe" else header.perform_camera
                    replay = replay_side(envs[arm], ref.seed, camera, stored["actions"])
                    for name in ("frames", "joint_angles", "joint_velocities", "fingertip_pos"):
                        a, b = stored[side][name], replay[name]
                        if a.shape != b.shape or not np.array_equal(a, b):
                            bad = _first_difference(a, b)
                            raise PairingError(
                                f"{ref.where()}: the {side} side's {name} differ from a replay of the stored actions "
                                f"(first at step {bad}); the {side} side was not produced by this action array "
                                "(mispaired perform/observe data, or a different env version)")
                checked.append(ref.key)
    finally:
        for env in envs.values():
            env.close()
        dataset.close()
    return {"path": str(path), "episodes_checked": checked}


def _first_difference(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    for t in range(n):
        if not np.array_equal(a[t], b[t]):
            return t
    return n
