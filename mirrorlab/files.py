"""Files a command writes: atomic writes, safe reads, and output folders that only the tool may replace.

Every writer goes through a temp file in the target's folder and a rename, so a reader (or a resumed
run) never sees half a file; the temp names carry `TEMP_SUFFIX`, so a run killed mid-write leaves
debris that the next run of the same command recognises and removes, and nothing else.

Every output folder a command creates holds a marker file (`MARKER`) naming that command. A folder is
resumed or replaced (`--force`, `--fresh`) only when its marker names the same command; a folder the
tool did not make, or made for another command, is refused, never deleted or overwritten. A command
that writes one folder for a long time (collect) holds its lock file (`LOCK`) meanwhile, so a second
writer is refused with one line instead of racing the first.

Every file the tool reads back is untrusted (folders are shared between colleagues): JSON is read
by `mirrorlab.records` (size and nesting limits, checked keys and types); names a file gives are resolved and must stay inside their folder; symbolic links
in run folders and datasets are refused; a `.npz` member whose header declares more data than the
member holds is refused before anything is allocated.
"""

from __future__ import annotations

import csv
import dataclasses
import errno
import io
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

from mirrorlab.errors import UserError
from mirrorlab.records import check_record, check_value, parse_json, read_json, read_text  # noqa: F401  (re-exported)

MARKER = ".mirrorlab-output.json"
LOCK = ".mirrorlab-lock"
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


def _disk_full(err: BaseException) -> bool:
    """Whether a writer failed because the disk (or the user's quota, or the file size limit) is full; torch
    and HDF5 report it in their own words."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return True
    return isinstance(err, (OSError, RuntimeError)) and any(
        text in str(err) for text in ("No space left on device", "file write failed", "Disk quota exceeded"))


def atomic_write_via(path: str | os.PathLike, write: Any) -> Path:
    """Call `write(temp_path)` to fill a temp file, fsync it, then rename it to `path`. On any failure the
    temp file is removed and `path` keeps what it held; a full disk is one line saying so."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path_for(path)
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if _disk_full(err):
            raise UserError(f"{path}: the disk is full ({type(err).__name__}: {str(err).splitlines()[0][:120]}); "
                            "nothing was replaced: free some space and rerun") from None
        if isinstance(err, OSError) and err.errno is not None:  # a name too long, a read-only or vanished folder
            raise UserError(f"{str(path)[:300]}: cannot write it ({err.strerror}); nothing was replaced") from None
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
def contained_path(folder: str | os.PathLike, name: Any, label: str) -> Path:
    """`folder / name` for a file name read from a file: a plain name that resolves inside `folder`, and not
    a symbolic link, or one line naming `label`."""
    folder = Path(folder)
    check_value(name, str, label)
    path = folder / name
    if Path(name).name != name or name.startswith(".") or "\0" in name:
        raise UserError(f"{label}: {name[:80]!r} is not a file name inside {folder}; refusing to read outside it")
    refuse_symlinks([path], label)
    if path.resolve().parent != folder.resolve():
        raise UserError(f"{label}: {name[:80]!r} resolves outside {folder}; refusing to read outside it")
    return path


def refuse_symlinks(paths: Iterable[Path], label: str) -> None:
    """A symbolic link in a run folder or a dataset could swap in another run's weights or data unseen."""
    for path in paths:
        if path.is_symlink():
            raise UserError(f"{label}: {path} is a symbolic link; mirrorlab reads only files stored in the folder "
                            "itself (copy the file there instead)")


def refuse_symlinks_in(folder: str | os.PathLike, label: str) -> None:
    """`refuse_symlinks` for everything under `folder`."""
    refuse_symlinks(sorted(Path(folder).rglob("*")), label)


def _check_npz_sizes(path: Path, label: str) -> None:
    """Refuse a member whose .npy header declares more bytes than the member holds (a crafted header of
    10^12 floats would otherwise be allocated before a byte is read)."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                               (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                if read_header is None:
                    raise UserError(f"{label}: member {info.filename} is .npy version {version}, not one "
                                    "mirrorlab writes; refusing it")
                shape, _fortran, dtype = read_header(member)
                declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
                if declared > info.file_size:
                    raise UserError(f"{label}: member {info.filename} declares shape {shape} ({declared} bytes) but "
                                    f"holds {info.file_size} bytes; refusing it")


def load_npz(path: str | os.PathLike, what: str = "") -> dict[str, np.ndarray]:
    """Every array of an .npz file, with pickles refused and declared sizes checked against the bytes
    stored; a damaged file is one clear error."""
    import zipfile

    path = Path(path)
    label = f"{what} {path}".strip()
    try:
        _check_npz_sizes(path, label)
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise UserError(f"{label}: not found") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        if isinstance(err, UserError):
            raise
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
        command = read_json(folder / MARKER, schema={"command": str})["command"]
    except UserError:
        return None
    return None if (folder / MARKER).is_symlink() else command


def _holds_files(folder: Path) -> bool:
    return folder.is_dir() and any(not _is_temp(p) for p in folder.iterdir() if p.name not in (MARKER, LOCK))


def _empty_folder(folder: Path) -> None:
    """Delete everything in `folder` but its lock file, which the caller may hold (`--force`)."""
    for child in folder.iterdir():
        if child.name == LOCK:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _claim_refusal(out: Path, command: str, resume: bool, force: bool, what: str) -> None:
    """Raise the refusal `claim_output_dir` would give, without writing anything."""
    try:
        out.stat()
    except FileNotFoundError:
        pass
    except OSError as err:  # a name too long for the filesystem, a loop of links, a file used as a folder
        raise UserError(f"{what} {str(out)[:300]}: not a usable path ({err.strerror})") from None
    if out.exists() and not out.is_dir():
        raise UserError(f"{what} {out}: is a file, expected a folder")
    if not _holds_files(out):
        return
    owner = folder_owner(out)
    if owner is None:
        raise UserError(f"{what} {out}: holds files that mirrorlab did not write (no {MARKER}); choose a new folder")
    if owner != command:
        raise UserError(f"{what} {out}: holds the results of `mirrorlab {owner}`, not of `mirrorlab {command}`; "
                        "choose a new folder")
    if not (force or resume):
        raise UserError(f"{what} {out}: already holds results of `mirrorlab {command}`; pass --force to replace "
                        "them" + (" or --resume to continue" if command in RESUMABLE else ""))


def claim_output_dir(out: str | os.PathLike, command: str, *, resume: bool = False, force: bool = False,
                     what: str = "--out") -> Path:
    """The output folder of one `mirrorlab <command>` run, checked before any work starts.

    - missing or empty: created, and the marker written;
    - made by this command: `resume` keeps what is there (stale temp files removed); `force` deletes
      it and starts empty; neither: refused ("already holds results");
    - made by another command, or holding files the tool did not make: refused, even with `force`.
    """
    out = Path(out)
    _claim_refusal(out, command, resume, force, what)
    if _holds_files(out):
        if force:
            _empty_folder(out)
        else:
            clean_stale_temps(out)
            return ensure_writable_dir(out, what)
    ensure_writable_dir(out, what)
    clean_stale_temps(out)
    if folder_owner(out) != command:
        atomic_write_json(out / MARKER, {"command": command, "format": "mirrorlab output folder"})
    return out


@contextmanager
def locked_output_dir(out: str | os.PathLike, command: str, *, resume: bool = False, force: bool = False,
                      what: str = "--out") -> Iterator[Path]:
    """`claim_output_dir`, holding the folder's lock file until the block ends: a second writer to the
    same folder (another process, or this one) is refused with one line instead of racing this one.

    The lock is an advisory `flock` on `LOCK` inside the folder, released by the OS when the process dies,
    so a killed writer never leaves a folder locked. Nothing is written before the folder is known to be
    one this command may use.
    """
    import fcntl

    out = Path(out)
    _claim_refusal(out, command, resume, force, what)
    ensure_writable_dir(out, what)
    fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "another process"
            raise UserError(f"{what} {out}: another `mirrorlab {command}` ({holder}) is writing to this folder; "
                            "wait for it to finish or choose another folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        yield claim_output_dir(out, command, resume=resume, force=force, what=what)
    finally:
        os.close(fd)  # closing the descriptor releases the lock


# Commands whose folders continue a killed run when given --resume (the others resume by default or
# are cheap to redo); only used to word the refusal above.
RESUMABLE = ("replicate",)


@contextmanager
def staged_output_dir(out: str | os.PathLike, command: str, *, force: bool = False,
                      what: str = "--out") -> Iterator[Path]:
    """`claim_output_dir` for a command that writes its whole result at once, where `--force` replaces the
    old result only once the new one is complete: the block writes into a staging folder beside `out`,
    which takes `out`'s place when the block ends normally; on any failure (a full disk, Ctrl-C) the
    staging folder is deleted and `out` keeps the old result."""
    out = Path(out)
    _claim_refusal(out, command, False, force, what)
    if not _holds_files(out):
        yield claim_output_dir(out, command, what=what)
        return
    staging = out.with_name(f".{out.name}{TEMP_SUFFIX}-new")
    old = out.with_name(f".{out.name}{TEMP_SUFFIX}-old")
    for debris in (staging, old):  # left by a run killed between the renames below
        shutil.rmtree(debris, ignore_errors=True)
    try:
        yield claim_output_dir(staging, command, what=what)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    os.replace(out, old)
    os.replace(staging, out)
    shutil.rmtree(old, ignore_errors=True)


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
