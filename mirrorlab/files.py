"""Files a command writes: atomic writes, safe reads, and output folders that only the tool may replace.

Every writer goes through a temp file in the target's folder and a rename, so a reader (or a resumed
run) never sees half a file; the temp names carry `TEMP_SUFFIX`, so a run killed mid-write leaves
debris that the next run of the same command recognises and removes, and nothing else.

Every output folder a command creates holds a marker file (`MARKER`) naming that command. A folder is
resumed or replaced (`--force`, `--fresh`) only when its marker names the same command; a folder the
tool did not make, or made for another command, is refused, never deleted or overwritten.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from mirrorlab.errors import UserError

MARKER = ".mirrorlab-output.json"
TEMP_SUFFIX = ".mirrorlab-tmp"


# --- atomic writes ------------------------------------------------------------------------------------
def temp_path_for(path: Path) -> Path:
    """A fresh temp file beside `path` whose name marks it as ours (see `clean_stale_temps`); it keeps
    `path`'s extension, which some writers (ffmpeg) read to choose the format."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX + path.suffix)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are for sharing
    return Path(tmp)


def atomic_write_via(path: str | os.PathLike, write: Any) -> Path:
    """Call `write(temp_path)` to fill a temp file, fsync it, then rename it to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(path)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write_via(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=_json_default, allow_nan=True) + "\n"


def csv_text(rows: Iterable[dict[str, Any]], fieldnames: list[str]) -> str:
    """Rows as CSV text with a header: the `fieldnames` columns, in that order (other keys left out)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fieldnames, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, to_json(obj))


def atomic_save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """np.savez (uncompressed) atomically; read back with `load_npz` (never unpickles)."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    return atomic_write_via(path, write)


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> Path:
    """torch.save of tensors and plain containers; read back with `load_torch` (weights only)."""
    import torch

    return atomic_write_via(path, lambda tmp: torch.save(obj, tmp))


def write_outputs(out: str | os.PathLike, outputs: dict[str, str | bytes]) -> None:
    """Write {relative path: text or bytes} (what the report builders of `mirrorlab.analysis` return)
    under `out`, each file atomically."""
    for rel, content in outputs.items():
        (atomic_write_bytes if isinstance(content, bytes) else atomic_write_text)(Path(out) / rel, content)


# --- safe reads: every failure is one line naming the file ----------------------------------------------
def read_json(path: str | os.PathLike, what: str = "") -> Any:
    path = Path(path)
    label = f"{what} {path}".strip()
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{label}: not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{label}: not readable JSON ({type(err).__name__}: {err}); restore or regenerate it"
                        ) from None


def load_npz(path: str | os.PathLike, what: str = "") -> dict[str, np.ndarray]:
    """Every array of an .npz file, with pickles refused; a damaged file is one clear error."""
    import zipfile

    path = Path(path)
    label = f"{what} {path}".strip()
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise UserError(f"{label}: not found") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise UserError(f"{label}: not a readable .npz array file ({type(err).__name__}: {err}); it may be "
                        "truncated: regenerate it") from None


def load_torch(path: str | os.PathLike, what: str = "") -> Any:
    """torch.load with weights_only=True (tensors and plain containers only: no code can run)."""
    import torch

    path = Path(path)
    label = f"{what} {path}".strip()
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{label}: not found") from None
    except Exception as err:  # torch raises many types for a corrupt, foreign or pickled-code file
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise UserError(f"{label}: not a readable weights file ({type(err).__name__}: {first[:200]})") from None


# --- output folders ---------------------------------------------------------------------------------------
def _is_temp(path: Path) -> bool:
    return TEMP_SUFFIX in path.name


def clean_stale_temps(folder: str | os.PathLike) -> int:
    """Remove the temp files our atomic writers left behind when killed (only those); returns the count."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    stale = [p for p in folder.rglob(f"*{TEMP_SUFFIX}*") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)


def ensure_writable_dir(folder: str | os.PathLike, what: str) -> Path:
    """Create `folder` if needed and prove a file can be written there, before any long work starts
    (os.access says yes to root even on a read-only mount, so a real probe file is written)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{what} {folder}: is a file, expected a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".probe.", suffix=TEMP_SUFFIX)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise UserError(f"{what} {folder}: cannot write there ({err.strerror or err})") from None
    return folder


def folder_owner(folder: Path) -> str | None:
    """The command whose marker `folder` holds, or None (no marker, or an unreadable one)."""
    try:
        return json.loads((folder / MARKER).read_text()).get("command")
    except (OSError, ValueError, AttributeError):
        return None


def _holds_files(folder: Path) -> bool:
    return folder.is_dir() and any(not _is_temp(p) for p in folder.iterdir() if p.name != MARKER)


def claim_output_dir(out: str | os.PathLike, command: str, *, resume: bool = False, force: bool = False,
                     what: str = "--out") -> Path:
    """The output folder of one `mirrorlab <command>` run, checked before any work starts.

    - missing or empty: created, and the marker written;
    - made by this command: `resume` keeps what is there (stale temp files removed); `force` deletes
      it and starts empty; neither: refused ("already holds results");
    - made by another command, or holding files the tool did not make: refused, even with `force`.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{what} {out}: is a file, expected a folder")
    if _holds_files(out):
        owner = folder_owner(out)
        if owner is None:
            raise UserError(f"{what} {out}: holds files that mirrorlab did not write (no {MARKER}); "
                            "choose a new folder")
        if owner != command:
            raise UserError(f"{what} {out}: holds the results of `mirrorlab {owner}`, not of "
                            f"`mirrorlab {command}`; choose a new folder")
        if force:
            shutil.rmtree(out)
        elif resume:
            clean_stale_temps(out)
            return ensure_writable_dir(out, what)
        else:
            raise UserError(f"{what} {out}: already holds results of `mirrorlab {command}`; pass --force to "
                            "replace them" + (" or --resume to continue" if command in RESUMABLE else ""))
    ensure_writable_dir(out, what)
    clean_stale_temps(out)
    if folder_owner(out) != command:
        atomic_write_json(out / MARKER, {"command": command, "format": "mirrorlab output folder"})
    return out


# Commands whose folders continue a killed run when given --resume (the others resume by default or
# are cheap to redo); only used to word the refusal above.
RESUMABLE = ("replicate",)


def check_new_file(path: str | os.PathLike, force: bool, suffix: str, what: str = "--out") -> Path:
    """A single output file (an mp4, say): the right suffix, not a folder, not overwritten without
    `force`, and a folder it can be written to."""
    path = Path(path)
    if path.suffix != suffix:
        raise UserError(f"{what} must end in {suffix}; got {str(path)!r}")
    if path.is_dir():
        raise UserError(f"{what} {path}: is a folder; give a file name ending in {suffix}")
    if path.exists() and not force:
        raise UserError(f"{what} {path}: already exists; pass --force to replace it")
    ensure_writable_dir(path.parent, f"{what} {path}: folder")
    return path


def write_mp4(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: int) -> int:
    """Encode RGB uint8 frames (H, W, 3; sides multiples of 16) as H.264 mp4, atomically; returns the
    number of frames. Nothing is left at `path` if encoding fails."""
    import imageio.v2 as imageio

    count = 0

    def write(tmp: Path) -> None:
        nonlocal count
        writer = imageio.get_writer(str(tmp), format="FFMPEG", mode="I", fps=fps, codec="libx264", quality=8,
                                    macro_block_size=16, ffmpeg_log_level="error")
        try:
            for frame in frames:
                if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] % 16 or frame.shape[1] % 16:
                    raise ValueError(f"frames must be (H, W, 3) with H and W divisible by 16; got {frame.shape}")
                writer.append_data(np.ascontiguousarray(frame))
                count += 1
        finally:
            writer.close()
        if count == 0:
            raise ValueError("no frames to write")

    atomic_write_via(path, write)
    return count
