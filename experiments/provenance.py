"""Atomic result files and the provenance (config, seed, versions, git commit) written beside them."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

_TRACKED_PACKAGES = (
    "torch", "numpy", "scipy", "scikit-learn", "statsmodels", "gymnasium", "mujoco",
    "stable-baselines3", "matplotlib", "h5py",
)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temp file in the same folder, then rename: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def ensure_writable_dir(folder: str | os.PathLike, what: str) -> Path:
    """Create `folder` if needed and prove a file can be written there, before any long work starts
    (os.access says yes to root even on a read-only mount, so a real probe file is written)."""
    from experiments.errors import UserError

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".probe.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise UserError(f"{what} {folder}: cannot write there ({err.strerror or err})") from None
    return folder


def claim_output_dir(out: str | os.PathLike, force: bool) -> Path:
    """An output folder for a command that replaces its results whole: refuse one that already holds
    something unless `force`, and prove it writable, before any work starts."""
    from experiments.errors import UserError

    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise UserError(f"{out} already holds results; pass --force to replace them")
    return ensure_writable_dir(out, "--out")


def _json_default(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default, allow_nan=True) + "\n")


def atomic_save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """np.savez to a temp file then rename; load back with np.load(..., allow_pickle=False)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp.npz")
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def git_commit() -> str | None:
    """The commit of the source tree this package runs from, with '+dirty' if it has local changes."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("+dirty" if dirty else "")


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _TRACKED_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def provenance(config: Any, seeds: Any = None) -> dict[str, Any]:
    """Everything needed to rerun a result: full config, seeds, package versions and git commit."""
    cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config
    return {"config": cfg, "seeds": seeds, "versions": versions(), "git_commit": git_commit()}
