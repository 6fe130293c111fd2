"""What a result needs beside it to be rerun: the full config, seeds, package versions and git commit."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

_TRACKED_PACKAGES = (
    "mirrorlab", "torch", "numpy", "scipy", "scikit-learn", "statsmodels", "gymnasium", "mujoco",
    "stable-baselines3", "matplotlib", "h5py",
)


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
