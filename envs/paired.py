r"""Paired perform/observe episodes on disk: one action array, rendered on both arms (HDF5, no pickle).

A *paired episode* is one action sequence executed by the other arm (watched from `observe_camera`:
the **observe** side) and replayed on the self arm (seen from `perform_camera`: the **perform**
side). The action array is stored **once** per episode. Each side records the SHA-256 of the
actions it executed and of everything it recorded (frames included), and every read checks both, so
a side run from other actions, or frames swapped between episodes, is refused. `verify_pairing`
re-simulates stored episodes from their seeds and compares frames and proprioception bit for bit
(the envs are deterministic). *Babble* episodes are the self arm's motor babbling: a perform side only.

## Dataset folder
| file                | content                                                                    |
|---------------------|----------------------------------------------------------------------------|
| `manifest.json`     | format, version, header, collect config + provenance, completed shards (size and SHA-256 of each file), the dataset `fingerprint` |
| `shard-NNNNN.h5`    | one chunk of episodes of one kind; built in memory, written under a temp name, renamed when complete |

The manifest is the only list of shards: each name must be a plain file name inside the folder (no
path, no symbolic link), and every reader compares each shard's size and SHA-256 with the manifest's
before reading it, so a shard swapped for another dataset's is refused. A manifest that says
`complete: false` (collection killed or still running) is refused by every reader. Shards are opened
so that nothing outside the file is read: a soft or external link, a dataset stored in an external
file and a virtual dataset are all refused; the header's `env_id` must be a registered
`mirrorlab/...` id before any env is made from it.

The **fingerprint** is the SHA-256 of the header and of every episode's content hash: two datasets
have the same fingerprint exactly when they hold the same episodes. Every trained run records the
fingerprint of its dataset, and every command that pairs a run with data refuses a mismatch.

## Shard file (HDF5; open with plain `h5py`)
Root attributes (the *header*; every shard of a dataset has the same one):

| attribute          | type  | meaning                                                          |
|--------------------|-------|------------------------------------------------------------------|
| `format`           | str   | `"mirrorlab-paired"`                                             |
| `format_version`   | int   | `FORMAT_VERSION` (3: `env_kwargs` name the action mode)          |
| `pairing`          | str   | `"shared_actions"`: one action array per episode drives both sides |
| `env_id`           | str   | e.g. `"mirrorlab/PlanarReach-v0"` (the id carries the env version) |
| `env_kwargs`       | JSON  | kwargs of `gymnasium.make` shared by both sides (`other_appearance`, `frame_size`, ...) |
| `frame_size`       | int   | frames are `frame_size` x `frame_size` RGB                       |
| `action_dim`       | int   | A, the number of joints                                          |
| `max_steps`        | int   | T, steps per episode                                             |
| `observe_camera`, `perform_camera` | str | cameras of the two sides (`other_view`, `self_view`) |
| `demonstrator`     | str   | `"scripted"` or the checkpoint folder the actions came from      |
| `shard`, `kind`    | int, str | this shard's index; `"demo"` or `"babble"`                    |
| `n_episodes`       | int   | episodes in this shard                                           |
| `complete`         | bool  | set last, just before the rename                                 |

Groups `/{kind}/{episode_id:06d}` (kind `demo` or `babble`), attributes `episode_id`, `seed` (the
reset seed of both sides), `n_steps` (T), `actions_sha256`, `content_sha256` (of the actions, the
target and each side's `content_sha256`); datasets:

| path                           | shape, dtype             | meaning                                         |
|--------------------------------|--------------------------|-------------------------------------------------|
| `actions`                      | [T, A] float32           | the actions (`action_mode` in the file attributes), stored once, executed by both sides |
| `target`                       | [3] float64              | the target in the acting arm's base frame (same for both sides) |
| `{side}/frames`                | [T+1, H, W, 3] uint8     | frame 0 after reset, frame t+1 after action t; gzip, chunked by frames |
| `{side}/state`                 | [T+1, S] float32         | the env's state vector of the acting arm        |
| `{side}/joint_angles`          | [T+1, A] float64         | proprioception of the side's arm                |
| `{side}/joint_velocities`      | [T+1, A] float64         |                                                 |
| `{side}/fingertip_pos`         | [T+1, 3] float64         | world frame                                     |
| `{side}/distance`              | [T+1] float64            | fingertip to target (m)                         |
| `{side}/reward`                | [T] float64              | the env's reward for action t                   |

`side` is `observe` (arm `other`) and `perform` (arm `self`) for demo episodes, `perform` only for
babble. Side attributes: `arm`, `camera`, `success` (within the radius at the final step),
`target_pos` (world), `actions_sha256` (of the actions that side executed: must equal the
episode's), `content_sha256` (of that hash and every array above, in the order listed).

Version history: 1 — first release. 2 — content hashes of every side, dataset fingerprint, shard
file hashes in the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from mirrorlab.envs.episodes import check_env_id, check_env_kwargs, make_arm_env, replay
from mirrorlab.errors import UserError
from mirrorlab.files import (
    atomic_write_bytes,
    atomic_write_json,
    check_value,
    contained_path,
    parse_json,
    read_json,
    refuse_symlinks,
)

FORMAT = "mirrorlab-paired"
FORMAT_VERSION = 3
PAIRING = "shared_actions"
MANIFEST = "manifest.json"
KINDS = ("demo", "babble")
SIDES = {"observe": "other", "perform": "self"}
SIDE_ARRAYS = ("frames", "state", "joint_angles", "joint_velocities", "fingertip_pos", "distance", "reward")
_FRAME_CHUNK_BYTES = 1 << 20
# What h5py raises for a damaged file or dataset, beside our own checks.
_H5_ERRORS = (OSError, KeyError, ValueError, RuntimeError, TypeError)


class PairedDataError(UserError):
    """A dataset file that cannot be used: the message names the file and, where known, the episode."""


class PairingError(PairedDataError):
    """The perform and observe sides of an episode were not produced by the same action array."""


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.h5"


def episode_key(kind: str, episode_id: int) -> str:
    return f"{kind}/{episode_id:06d}"


def sides_of(kind: str) -> tuple[str, ...]:
    return ("observe", "perform") if kind == "demo" else ("perform",)


# --- hashes ------------------------------------------------------------------------------------------------
def _digest(*parts: np.ndarray | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, str):
            h.update(part.encode())
        else:
            array = np.ascontiguousarray(part)
            h.update(f"{array.dtype.str}{array.shape}".encode())
            h.update(array.tobytes())
    return h.hexdigest()


def actions_sha256(actions: np.ndarray) -> str:
    """Hash of an action array's shape and little-endian float32 bytes."""
    array = np.ascontiguousarray(actions, dtype="<f4")
    digest = hashlib.sha256(repr(array.shape).encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def side_sha256(side: dict[str, Any], actions_digest: str) -> str:
    """Hash of everything one side recorded (frames included) and of the actions it executed."""
    return _digest(actions_digest, *(np.asarray(side[name]) for name in SIDE_ARRAYS))


def episode_sha256(actions: np.ndarray, target: np.ndarray, side_digests: dict[str, str]) -> str:
    return _digest(np.asarray(actions, np.float32), np.asarray(target, np.float64),
                   *(f"{side}:{side_digests[side]}" for side in sorted(side_digests)))


def dataset_fingerprint(header: "Header", episode_digests: dict[str, str]) -> str:
    """SHA-256 of the header and of every episode's content hash (keyed `kind/id`), order-independent."""
    h = hashlib.sha256(json.dumps(asdict(header), sort_keys=True).encode())
    for key in sorted(episode_digests):
        h.update(f"{key}={episode_digests[key]};".encode())
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


# --- the header ----------------------------------------------------------------------------------------------
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

    @property
    def kwargs(self) -> dict[str, Any]:
        return json.loads(self.env_kwargs)

    @property
    def other_appearance(self) -> str:
        return self.kwargs.get("other_appearance", "identical")

    def make_env(self, actor: str, **overrides: Any):
        """An env of this dataset driving `actor` (state observations; frames come from render_camera)."""
        return make_arm_env(self.env_id, f"dataset of {self.env_id!r}: env_kwargs",
                            **{"actor": actor, "obs_mode": "state", **self.kwargs, **overrides})

    def check(self, where: str) -> "Header":
        """The header of a file from elsewhere: a registered env id, env kwargs an object of finite values."""
        from mirrorlab import envs

        check_env_id(self.env_id, f"{where}: header env_id")
        check_env_kwargs(parse_json(self.env_kwargs, f"{where}: header env_kwargs"), f"{where}: header env_kwargs")
        # Sizes bound what a reader allocates for one episode (frames of at most 101 x 1024 x 1024 x 3 bytes).
        limits = {"frame_size": (16, 1024), "action_dim": (1, 64),
                  "max_steps": (envs.MAX_EPISODE_STEPS[self.env_id],) * 2}
        for name, (low, high) in limits.items():
            if not low <= getattr(self, name) <= high:
                raise PairedDataError(f"{where}: header {name} is {getattr(self, name)}, expected {low}..{high}")
        return self


def make_header(env_id: str, env_kwargs: dict[str, Any], demonstrator: str,
                observe_camera: str = "other_view", perform_camera: str = "self_view") -> Header:
    from mirrorlab import envs

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


# --- writing -------------------------------------------------------------------------------------------------
class ShardWriter:
    """Build one shard in memory; `commit()` marks it complete and writes it atomically into place.

    The HDF5 file is built in memory (HDF5's core driver, no backing file) and written out in one
    piece by `atomic_write_bytes` only when it is complete: a full disk is then an ordinary error of
    that write (the temp file removed, nothing renamed) rather than a failure deep inside HDF5's cache,
    which crashes the process and leaves a temp file behind. A killed worker leaves nothing. A shard
    holds `episodes_per_shard` episodes of compressed frames, so it fits in memory.
    """

    def __init__(self, path: str | os.PathLike, header: Header, shard: int, kind: str):
        import h5py

        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.header, self.kind = header, kind
        self.file = h5py.File(f"{self.path}.in-memory-{id(self)}", "w", driver="core", backing_store=False)
        self.file.attrs.update({**header.attrs(), "shard": int(shard), "kind": kind, "complete": False})
        self.n_episodes = 0
        self.episode_digests: dict[str, str] = {}

    def _frame_chunks(self, frames: np.ndarray) -> tuple[int, ...]:
        per_frame = int(np.prod(frames.shape[1:]))
        return (max(1, min(len(frames), _FRAME_CHUNK_BYTES // per_frame)), *frames.shape[1:])

    def _write_side(self, group, side: str, record: dict[str, Any], actions_digest: str) -> str:
        g = group.create_group(side)
        content = side_sha256(record, actions_digest)
        g.attrs.update(arm=record["arm"], camera=record["camera"], success=record["success"],
                       target_pos=record["target_pos"], actions_sha256=actions_digest, content_sha256=content)
        frames = record["frames"]
        g.create_dataset("frames", data=frames, chunks=self._frame_chunks(frames), compression="gzip",
                         compression_opts=4)
        for name in SIDE_ARRAYS[1:]:
            g.create_dataset(name, data=record[name])
        return content

    def add_episode(self, episode_id: int, seed: int, actions: np.ndarray, sides: dict[str, dict[str, Any]]) -> str:
        """Store one episode: the action array once, and each side's record (which must have run it,
        from `seed`); returns the episode's content hash."""
        actions = np.asarray(actions, dtype=np.float32)
        digest = actions_sha256(actions)
        expected_sides = sides_of(self.kind)
        if tuple(sorted(sides)) != tuple(sorted(expected_sides)):
            raise ValueError(f"a {self.kind} episode has sides {expected_sides}; got {sorted(sides)}")
        for side, record in sides.items():
            if actions_sha256(record["actions"]) != digest or record.get("seed", seed) != seed:
                raise PairingError(f"{self.path}: episode {episode_key(self.kind, episode_id)}: the {side} side "
                                   "executed a different action array (or seed) than the one stored; refusing "
                                   "to write it")
        group = self.file.create_group(episode_key(self.kind, episode_id))
        target = next(iter(sides.values()))["target"]
        group.create_dataset("actions", data=actions)
        group.create_dataset("target", data=target)
        contents = {side: self._write_side(group, side, sides[side], digest) for side in expected_sides}
        content = episode_sha256(actions, target, contents)
        group.attrs.update(episode_id=int(episode_id), seed=int(seed), n_steps=int(len(actions)),
                           actions_sha256=digest, content_sha256=content)
        self.episode_digests[episode_key(self.kind, episode_id)] = content
        self.n_episodes += 1
        return content

    def commit(self) -> Path:
        self.file.attrs["n_episodes"] = self.n_episodes
        self.file.attrs["complete"] = True
        self.file.flush()
        image = self.file.id.get_file_image()
        self.file.close()
        return atomic_write_bytes(self.path, image)

    def abort(self) -> None:
        if self.file:
            self.file.close()


# --- the manifest -------------------------------------------------------------------------------------------
_MANIFEST_SCHEMA = {"format": str, "format_version": int, "shards": dict, "complete": bool}
_SHARD_SCHEMA = {"name": str, "size": int, "sha256": str}


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """The manifest of a dataset folder, checked for format, version and the type of each key."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise PairedDataError(f"{folder}: not a dataset folder: {path} is missing")
    try:
        refuse_symlinks([path], f"dataset {folder}")
        data = read_json(path, schema=_MANIFEST_SCHEMA)
    except PairedDataError:
        raise
    except UserError as err:
        raise PairedDataError(f"{err} (not a mirrorlab dataset manifest)") from None
    if data["format"] != FORMAT:
        raise PairedDataError(f"{path}: format {data['format'][:60]!r}, expected {FORMAT!r}")
    if data["format_version"] != FORMAT_VERSION:
        raise PairedDataError(f"{path}: dataset format version {data.get('format_version')}, this mirrorlab reads "
                              f"version {FORMAT_VERSION}; recollect it with `mirrorlab collect --force`")
    return data


def manifest_shards(folder: Path, manifest: dict[str, Any], require_complete: bool = True) -> list[Path]:
    """The shard files a manifest lists, each a plain name inside `folder`, byte for byte the file it
    recorded (size and SHA-256); with `require_complete`, a collection that never finished is refused."""
    path = folder / MANIFEST
    if require_complete and manifest["complete"] is not True:
        raise PairedDataError(f"{path}: the collection is not complete (complete: false; killed, or still "
                              f"running); finish it by rerunning the `mirrorlab collect --out {folder}` command "
                              "that made it, with the same settings")
    shards = []
    for key, entry in sorted(manifest["shards"].items()):
        try:
            check_value(entry, dict, f"{path}: key 'shards' entry {key[:40]!r}")
            for name, types in _SHARD_SCHEMA.items():
                check_value(entry.get(name), types, f"{path}: key 'shards' entry {key[:40]!r}: {name}")
            shard = contained_path(folder, key, f"{path}: shard name")
        except PairedDataError:
            raise
        except UserError as err:
            raise PairedDataError(str(err)) from None
        if entry["name"] != key:
            raise PairedDataError(f"{path}: shard entry {key!r} names the file {entry['name'][:40]!r}")
        if not shard.is_file():
            raise PairedDataError(f"{shard}: listed in {path} but missing; rerun the `mirrorlab collect` command "
                                  "that made the dataset to redo it")
        if not shard_intact(shard, entry):
            raise PairedDataError(f"{shard}: its size or SHA-256 differs from what {path} recorded (changed or "
                                  "swapped after collection); rerun `mirrorlab collect` on the folder to redo it")
        shards.append(shard)
    return shards


def write_manifest(folder: str | os.PathLike, manifest: dict[str, Any]) -> None:
    atomic_write_json(Path(folder) / MANIFEST, manifest)


def shard_entry(path: Path, kind: str, episode_ids: list[int], episode_digests: dict[str, str]) -> dict[str, Any]:
    """What the manifest records of a committed shard: enough to prove later that it is unchanged."""
    return {"name": path.name, "kind": kind, "episode_ids": [episode_ids[0], episode_ids[-1]],
            "n_episodes": len(episode_ids), "size": path.stat().st_size, "sha256": file_sha256(path),
            "episodes": dict(sorted(episode_digests.items()))}


def shard_intact(path: Path, entry: dict[str, Any]) -> bool:
    """True when the shard on disk is byte for byte the one the manifest recorded."""
    try:
        return (path.is_file() and not path.is_symlink() and path.stat().st_size == entry.get("size")
                and file_sha256(path) == entry.get("sha256"))
    except OSError:
        return False


# --- reading ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EpisodeRef:
    """Where one episode lives; small, so an index of a dataset larger than RAM fits in memory."""

    shard: str          # file path
    kind: str
    episode_id: int
    seed: int
    n_steps: int
    content_sha256: str

    @property
    def key(self) -> str:
        return episode_key(self.kind, self.episode_id)

    def where(self) -> str:
        return f"{self.shard}: episode {self.key}"


def _refuse_links(handle, path: Path) -> None:
    """Refuse anything in a shard that reads outside the file: soft and external links, datasets whose bytes
    live in external files, virtual datasets (HDF5 follows all of these silently)."""
    import h5py

    def visit(name: str, link) -> str | None:  # a value stops the walk (raising inside it upsets h5py)
        if isinstance(link, (h5py.SoftLink, h5py.ExternalLink)):
            return (f"{name} is a {type(link).__name__} (to {getattr(link, 'filename', '')}{link.path}); mirrorlab "
                    "datasets hold only their own data, refusing it")
        obj = handle.get(name)
        if isinstance(obj, h5py.Dataset) and (obj.external or obj.is_virtual):
            return f"dataset {name} stores its data outside the file (external or virtual); refusing it"
        return None

    found = handle.visititems_links(visit)
    if found is not None:
        raise PairedDataError(f"{path}: {found}")


def open_shard(path: str | os.PathLike):
    """Open a shard read-only, naming the file in any error (missing, truncated, not HDF5, not ours, or
    reaching outside itself)."""
    import h5py

    path = Path(path)
    if path.is_symlink():
        raise PairedDataError(f"{path}: is a symbolic link; a dataset holds its own shard files")
    if not path.is_file():
        raise PairedDataError(f"{path}: no such dataset file")
    try:
        handle = h5py.File(path, "r")
    except _H5_ERRORS as err:
        raise PairedDataError(f"{path}: not a readable HDF5 file (truncated, or not a mirrorlab dataset): {err}; "
                              "restore it or recollect the dataset") from None
    try:
        if handle.attrs.get("format") != FORMAT:
            raise PairedDataError(f"{path}: not a mirrorlab paired dataset (no format={FORMAT!r} attribute)")
        _refuse_links(handle, path)
    except PairedDataError:
        handle.close()
        raise
    except _H5_ERRORS as err:
        handle.close()
        raise PairedDataError(f"{path}: unreadable structure ({type(err).__name__}: {err}); the file is damaged"
                              ) from None
    return handle


def read_header(handle, path: str | os.PathLike) -> Header:
    attrs = handle.attrs
    version = attrs.get("format_version")
    if version != FORMAT_VERSION:
        raise PairedDataError(f"{path}: dataset format version {version}, this mirrorlab reads version "
                              f"{FORMAT_VERSION}; recollect it with `mirrorlab collect --force`")
    if attrs.get("pairing") != PAIRING:
        raise PairingError(f"{path}: pairing attribute is {attrs.get('pairing')!r}, expected {PAIRING!r} "
                           "(perform and observe must share one action array)")
    if not attrs.get("complete", False):
        raise PairedDataError(f"{path}: shard is incomplete (its writer was killed); rerun `mirrorlab collect` "
                              "on the dataset folder to redo it")
    try:
        fields = {name: attrs[name] for name in Header.__dataclass_fields__}
        header = Header(**{k: (int(v) if k in ("frame_size", "action_dim", "max_steps") else str(v))
                           for k, v in fields.items()})
    except KeyError as err:
        raise PairedDataError(f"{path}: header attribute {err} is missing") from None
    except (TypeError, ValueError, OverflowError) as err:
        raise PairedDataError(f"{path}: a header attribute has the wrong type ({err})") from None
    try:
        return header.check(str(path))
    except PairedDataError:
        raise
    except UserError as err:
        raise PairedDataError(str(err)) from None


def check_episode(group, header: Header, kind: str, where: str, content: bool = True) -> dict[str, Any] | None:
    """Structural and pairing checks of one episode group: shapes agree, both sides ran the stored
    actions; with `content`, every array is read and its hash checked (frames included), and the
    episode's arrays are returned."""
    if "actions" not in group:
        raise PairedDataError(f"{where}: no actions array")
    T = int(group.attrs.get("n_steps", -1))
    if T != header.max_steps:  # every collected episode runs the env's full time limit
        raise PairedDataError(f"{where}: n_steps is {T}, the header's max_steps is {header.max_steps}")
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
    out: dict[str, Any] = {"actions": stored}
    digests = {}
    for side in sides_of(kind):
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
        if "state" not in g or g["state"].shape[0] != T + 1:
            raise PairedDataError(f"{where}: {side}/state must have {T + 1} rows")
        if content:
            arrays = {name: g[name][()] for name in SIDE_ARRAYS}
            digests[side] = side_sha256(arrays, digest)
            if g.attrs.get("content_sha256") != digests[side]:
                raise PairingError(f"{where}: the {side} side's recorded arrays (frames included) do not match "
                                   "their hash: they were changed or swapped after collection")
            arrays.update({k: g.attrs[k] for k in ("arm", "camera", "success")})
            out[side] = arrays
    if not content:
        return None
    out["target"] = group["target"][()]
    if group.attrs.get("content_sha256") != episode_sha256(stored, out["target"], digests):
        raise PairingError(f"{where}: the episode's content does not match its recorded hash (target or sides "
                           "changed after collection)")
    return out


class PairedDataset:
    """Index and read a dataset folder (or one shard); reads are lazy, per episode, every read checked.

    `expect_env_id`, if given, must match the dataset's env. A dataset whose manifest says it is not
    complete is refused unless `require_complete` is False (only the collector, verifying its own
    work before it marks it complete). File handles are opened on first use in each process (safe
    with DataLoader workers) and closed by `close()`.
    """

    def __init__(self, path: str | os.PathLike, expect_env_id: str | None = None, require_complete: bool = True):
        self.path = Path(path)
        self.shards = self._shard_paths(require_complete)
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
                except _H5_ERRORS as err:
                    raise PairedDataError(f"{shard}: unreadable episode index ({err}); the file may be truncated"
                                          ) from None
        if self.header is None:
            raise PairedDataError(f"{self.path}: the dataset holds no completed shard")
        if expect_env_id is not None and self.header.env_id != expect_env_id:
            raise PairedDataError(f"{self.shards[0]}: dataset of env {self.header.env_id}, expected {expect_env_id}")
        keys = [r.key for r in self.refs]
        if len(set(keys)) != len(keys):
            raise PairedDataError(f"{self.path}: an episode id appears in two shards")
        self.refs.sort(key=lambda r: (KINDS.index(r.kind), r.episode_id))
        self._handles: dict[str, Any] = {}
        self._pid = os.getpid()

    def _shard_paths(self, require_complete: bool) -> list[Path]:
        if self.path.is_file():
            return [self.path]
        if not self.path.is_dir():
            raise PairedDataError(f"{self.path}: no such dataset (a folder written by `mirrorlab collect`, or a shard)")
        return manifest_shards(self.path, read_manifest(self.path), require_complete)

    @staticmethod
    def _index(handle, shard: Path) -> Iterator[EpisodeRef]:
        for kind in KINDS:
            if kind not in handle:
                continue
            for name, group in handle[kind].items():
                try:
                    a = group.attrs
                    yield EpisodeRef(str(shard), kind, int(a["episode_id"]), int(a["seed"]), int(a["n_steps"]),
                                     str(a["content_sha256"]))
                except KeyError as err:
                    raise PairedDataError(f"{shard}: episode {kind}/{name}: attribute {err} is missing") from None

    @property
    def fingerprint(self) -> str:
        """See the module docstring: equal exactly when two datasets hold the same episodes."""
        return dataset_fingerprint(self.header, {r.key: r.content_sha256 for r in self.refs})

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

    def group(self, ref: EpisodeRef):
        handle = self.handle(ref.shard)
        try:
            return handle[ref.key]
        except _H5_ERRORS:
            raise PairedDataError(f"{ref.where()}: not found or unreadable") from None

    def _checked(self, ref: EpisodeRef, content: bool) -> dict[str, Any] | None:
        try:
            out = check_episode(self.group(ref), self.header, ref.kind, ref.where(), content)
        except PairedDataError:
            raise
        except _H5_ERRORS as err:
            raise PairedDataError(f"{ref.where()}: unreadable ({type(err).__name__}: {err}); the file is damaged: "
                                  "restore it or recollect the dataset") from None
        if out is not None and self.group(ref).attrs.get("content_sha256") != ref.content_sha256:
            raise PairedDataError(f"{ref.where()}: changed while it was being read")
        return out

    def read_episode(self, ref: EpisodeRef, frames: bool = True) -> dict[str, Any]:
        """All arrays of one episode as numpy, every hash checked: `actions`, `target`, one dict per side."""
        out = self._checked(ref, content=True)
        out.update(seed=ref.seed, episode_id=ref.episode_id, kind=ref.kind)
        if not frames:
            for side in sides_of(ref.kind):
                out[side].pop("frames")
        return out

    def check(self, content: bool = True) -> int:
        """Check every episode (with `content`, every array's hash, frames included); returns the count."""
        for ref in self.refs:
            self._checked(ref, content)
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


def check_fingerprint(expected: str, dataset: PairedDataset, who: str) -> None:
    """Refuse to pair `who` (a run, an analysis) with a dataset other than the one it was made from."""
    if dataset.fingerprint != expected:
        raise PairedDataError(f"{who} was made from a different dataset than {dataset.path} (fingerprint "
                              f"{expected[:12]} vs {dataset.fingerprint[:12]}); give the dataset it was trained on")


def verify_pairing(path: str | os.PathLike, n_episodes: int | None = 4, seed: int = 0,
                   kinds: tuple[str, ...] = KINDS, require_complete: bool = True) -> dict[str, Any]:
    """Re-simulate stored actions from stored seeds; every frame and joint state must match bit for bit.

    Checks `n_episodes` episodes drawn at random (with `seed`) from each kind, or all if None. Raises
    `PairingError` naming the file, episode, side, array and first differing step.
    """
    dataset = PairedDataset(path, require_complete=require_complete)
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
                    again = replay(envs[arm], ref.seed, stored["actions"], camera=camera)
                    for name in ("frames", "joint_angles", "joint_velocities", "fingertip_pos"):
                        a, b = stored[side][name], again[name]
                        if a.shape != b.shape or not np.array_equal(a, b):
                            raise PairingError(
                                f"{ref.where()}: the {side} side's {name} differ from a replay of the stored actions "
                                f"(first at step {_first_difference(a, b)}); the {side} side was not produced by "
                                "this action array (mispaired perform/observe data, or a different env version)")
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
