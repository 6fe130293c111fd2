"""The one parallel runner: a list of independent jobs, run serially, on local processes, or on a Ray cluster.

Every command with many independent pieces of work (replicate's cells, collect's shards, sweep's
cells, the study's training runs, imitate's datasets) hands them here as `Job`s. A job is a
module-level function and its arguments (so it can travel to a spawned process or a Ray worker) and a
`key` that names its result. Results come back to *this* process, which saves each one as it arrives
(`on_result`), so whatever finished before a kill is on disk; the caller resumes by passing
`done`: the jobs whose results are already saved are skipped. `SavedResults` is that bookkeeping for a
command's output folder: one JSON file per job, reused only when it was made with the same config and
after every input it was computed from, so a resumed command (or study) never keeps a stale result and
never redoes a current one.

Local workers are spawned (never forked: MuJoCo's GL contexts and torch's threads do not survive a
fork), run one BLAS/torch thread each (oversubscribed threads spin: tens of times slower on 2 cores),
and die with their parent (Linux's parent-death signal), so a killed command leaves no orphans.
SIGTERM is turned into a clean exit that stops the pool at once, running jobs included. On Ray
(`ray_address`), each job is a task of one CPU, retried twice if a worker dies; every node must have
this package at the same version. The address is tried first (a port nothing answers on is one line at
once, where Ray would retry for minutes), and the client takes up token authentication when a token is
at hand, as `ray start --head` itself does (Ray >= 2.5x turns it on whenever ~/.ray/auth_token exists).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import socket
import threading
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from mirrorlab.errors import UserError
from mirrorlab.files import atomic_write_json, read_json

MAX_WORKERS = 256


@dataclass(frozen=True)
class Job:
    """One unit of work: `fn(*args)`; `key` names its result; larger `cost` starts earlier."""

    key: str
    fn: Callable[..., Any]
    args: tuple = field(default=())
    cost: float = 1.0


@dataclass(frozen=True)
class SavedResults:
    """The per-job results of one resumable command in `out/<folder>/`, beside the config in `out/config.json`.

    A saved result counts as done only when it is newer than every input its job read (run folders'
    `done.json`, an analysis's `metrics.json`: `inputs(job)`), so results computed from runs that were
    retrained or re-analysed since are computed again rather than mixed with fresh ones.
    """

    out: Path
    what: str                                            # names the results in messages ("imitation result")
    inputs: Callable[[Job], Sequence[Path]] = lambda _job: ()
    folder: str = "runs"

    def path(self, key: str) -> Path:
        return self.out / self.folder / ("".join(ch if ch.isalnum() or ch in ".-" else "_" for ch in key) + ".json")

    def done(self, job: Job) -> bool:
        path = self.path(job.key)
        if not path.is_file():
            return False
        made = path.stat().st_mtime_ns
        return all(Path(p).is_file() and Path(p).stat().st_mtime_ns < made for p in self.inputs(job))

    def save(self, job: Job, result: Any) -> None:
        atomic_write_json(self.path(job.key), result)

    def load(self, job: Job) -> Any:
        return read_json(self.path(job.key), self.what)


def config_changes(out: Path, config: Any) -> list[str]:
    """The fields (workers aside: they never change a number) in which the dataclass `config` differs from
    the one an earlier run of the command recorded in `out/config.json`; [] when none is recorded."""
    path = Path(out) / "config.json"
    if not path.is_file():
        return []
    before = read_json(path, "config").get("config", {})
    now = json.loads(json.dumps(asdict(config), default=str))
    return sorted(k for k in set(before) | set(now) if k != "workers" and before.get(k) != now.get(k))


def check_resumed_config(out: Path, config: Any, command: str) -> None:
    """A resumed command must have the config of the one it continues: one line naming what changed."""
    changed = config_changes(out, config)
    if changed:
        raise UserError(f"--out {out}: holds a {command} run with another config ({', '.join(changed)}); "
                        "use another --out or --force")


def resolve_workers(workers: int, where: str = "--workers") -> int:
    """0 means one per CPU core; anything negative or absurd is refused."""
    if isinstance(workers, bool) or not isinstance(workers, int) or not 0 <= workers <= MAX_WORKERS:
        raise UserError(f"{where}: expected 0 (one per CPU core) or a count up to {MAX_WORKERS}, got {workers!r}")
    return workers or os.cpu_count() or 1


def _worker_init() -> None:
    """In each spawned worker: die when the parent dies, and keep to one thread."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: workers still end when the pool is shut down
        pass
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    import torch

    torch.set_num_threads(1)


def _call(job_fn: Callable[..., Any], args: tuple) -> Any:
    return job_fn(*args)


@contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """Turn SIGTERM (kill, timeout, a batch scheduler) into SystemExit, so the worker pool is shut down
    rather than orphaned."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_jobs(jobs: Sequence[Job], on_result: Callable[[Job, Any], None], *, workers: int = 1,
             ray_address: str | None = None, done: Callable[[Job], bool] | None = None,
             on_skip: Callable[[Job], None] | None = None) -> list[Job]:
    """Run every job not `done`, most costly first; `on_result(job, result)` runs here as each finishes.

    Returns the jobs that ran. Keys must be unique. With `workers == 1` and no Ray, jobs run in this
    process, in order (the simplest thing to debug and profile).
    """
    keys = [j.key for j in jobs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"job keys must be unique; repeated: {sorted({k for k in keys if keys.count(k) > 1})}")
    todo = []
    for job in jobs:
        if done is not None and done(job):
            if on_skip is not None:
                on_skip(job)
        else:
            todo.append(job)
    todo.sort(key=lambda j: -j.cost)
    if not todo:
        return []
    if ray_address:
        _run_ray(todo, on_result, ray_address)
    elif workers <= 1 or len(todo) == 1:
        for job in todo:
            on_result(job, job.fn(*job.args))
    else:
        _run_pool(todo, on_result, min(workers, len(todo)))
    return todo


def _run_pool(todo: list[Job], on_result: Callable[[Job, Any], None], workers: int) -> None:
    ctx = multiprocessing.get_context("spawn")
    with _sigterm_as_exit(), ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init) as pool:
        pending = {pool.submit(_call, job.fn, job.args): job for job in todo}
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    job = pending.pop(fut)
                    on_result(job, fut.result())
        except BaseException:
            # Stop now (SIGTERM, Ctrl-C, a failed job): queued jobs never start and running ones are killed, not
            # waited for (a training run can take many minutes). Killing is safe: jobs write atomically and
            # rerun on resume.
            _stop_workers(pool)
            raise


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel the queue and terminate the running workers (Python 3.14 has `terminate_workers()`; until
    then its process table)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # shutdown() forgets them
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()


def check_ray_address(address: str, timeout_s: float = 5.0) -> None:
    """One line, at once, for an address a user might try that cannot be a running cluster's: a dashboard URL,
    a malformed one, or a host and port where nothing answers (Ray itself would retry for minutes)."""
    if address in ("auto", "local"):
        return
    if re.match(r"^https?://", address):
        raise UserError(f"--ray-address {address}: that is the dashboard's web address; give the cluster's address, "
                        "HOST:6379 as `ray start --head` prints it (or ray://HOST:10001 for Ray Client)")
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--ray-address {address}: expected HOST:PORT (as `ray start --head` prints it), "
                        "ray://HOST:10001 or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise UserError(f"--ray-address {address}: nothing answers at {host}:{port} ({err.strerror or err}); start a "
                        f"cluster there with `ray start --head --port={port}`, or give the address it printed") from None


def _take_up_token_auth() -> None:
    """Use token authentication when RAY_AUTH_MODE is unset and a token exists (~/.ray/auth_token,
    RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH): exactly what `ray start` does, through Ray's own function."""
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray from before token authentication
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def connect_ray(ray: Any, address: str) -> None:
    """ray.init on an existing cluster, every failure one line that names the likely fix."""
    check_ray_address(address)
    _take_up_token_auth()
    try:
        ray.init(address=address, log_to_driver=False)
    except Exception as err:  # noqa: BLE001 - any failure to connect is the address's problem
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(f"--ray-address {address}: cannot connect to a Ray cluster: {first}. If the cluster uses "
                        "token authentication, copy its token here (`ray get-auth-token` on the head, saved as "
                        "~/.ray/auth_token, or RAY_AUTH_TOKEN=...)") from None


def _run_ray(todo: list[Job], on_result: Callable[[Job, Any], None], address: str) -> None:
    try:
        import ray
    except ImportError:
        raise UserError("--ray-address needs Ray: pip install 'mirrorlab[cluster]'") from None
    connected_here = not ray.is_initialized()
    if connected_here:
        connect_ray(ray, address)
    try:
        task = ray.remote(num_cpus=1, max_retries=2)(_ray_call)
        pending = {task.remote(job.fn, job.args): job for job in todo}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                job = pending.pop(ref)
                on_result(job, ray.get(ref))
    finally:
        if connected_here:
            ray.shutdown()


def _ray_call(job_fn: Callable[..., Any], args: tuple) -> Any:
    _worker_init()
    return job_fn(*args)
