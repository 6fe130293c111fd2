"""mirrorlab.experiments.runner: one runner for serial, process and Ray jobs; resume by key; no orphans."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mirrorlab.errors import UserError
from mirrorlab.experiments.runner import Job, resolve_workers, run_jobs


def square(x: int) -> int:
    return x * x


def test_serial_and_process_runs_give_the_same_results_and_resume_by_key():
    jobs = [Job(f"j{i}", square, (i,), cost=i) for i in range(6)]
    serial, pooled = {}, {}
    run_jobs(jobs, lambda job, r: serial.__setitem__(job.key, r), workers=1)
    ran = run_jobs(jobs, lambda job, r: pooled.__setitem__(job.key, r), workers=2)
    assert serial == pooled == {f"j{i}": i * i for i in range(6)} and len(ran) == 6
    again = {}
    ran = run_jobs(jobs, lambda job, r: again.__setitem__(job.key, r), workers=2, done=lambda job: job.key in serial)
    assert ran == [] and again == {}
    ran = run_jobs(jobs, lambda job, r: again.__setitem__(job.key, r), done=lambda job: job.key != "j3")
    assert [j.key for j in ran] == ["j3"] and again == {"j3": 9}
    with pytest.raises(ValueError, match="unique"):
        run_jobs([jobs[0], jobs[0]], lambda *_: None)


def test_worker_counts_are_checked():
    assert resolve_workers(0) == (os.cpu_count() or 1) and resolve_workers(3) == 3
    for bad in (-1, 10_000, True):
        with pytest.raises(UserError, match="workers"):
            resolve_workers(bad)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_workers_stop_when_their_parent_dies(tmp_path, signum):
    """SIGKILL the parent (no chance to clean up) or SIGTERM it (a clean exit): either way its pool's
    workers must not outlive it, and a terminated parent must not wait for its running jobs (2 minutes)."""
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""
        import os, time
        from pathlib import Path
        from mirrorlab.experiments.runner import Job, run_jobs

        def sleeper(i):
            Path("{tmp_path}", f"worker-{{i}}.pid").write_text(str(os.getpid()))
            time.sleep(120)

        if __name__ == "__main__":
            run_jobs([Job(str(i), sleeper, (i,)) for i in range(2)], lambda *_: None, workers=2)
    """))
    parent = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path)
    try:
        deadline = time.time() + 60
        while len(list(tmp_path.glob("worker-*.pid"))) < 2 and time.time() < deadline:
            time.sleep(0.2)
        pids = [int(p.read_text()) for p in tmp_path.glob("worker-*.pid")]
        assert len(pids) == 2
        parent.send_signal(signum)
        assert parent.wait(timeout=10) == (-signal.SIGKILL if signum == signal.SIGKILL else 128 + signal.SIGTERM)
        deadline = time.time() + 10
        while any(_alive(pid) for pid in pids) and time.time() < deadline:
            time.sleep(0.2)
        assert not any(_alive(pid) for pid in pids)
    finally:
        parent.kill()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; only its entry waits to be reaped


def test_the_study_plan_runs_on_a_local_ray_instance(tmp_path):
    """The main job's jobs (collection shards, training runs, analysis, imitation) as Ray tasks."""
    import json

    import ray  # the `test` extra installs Ray: a missing Ray fails this test rather than skipping it

    from mirrorlab.experiments.study import study
    from tests.test_study import TINY_STUDY

    # address="local": a new instance of our own, never a cluster already running on the machine.
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        address = ray.get_runtime_context().gcs_address
        report = study(TINY_STUDY, tmp_path / "study", show_progress=False, ray_address=address)
    finally:
        ray.shutdown()
    assert (tmp_path / "study" / "runs" / "third_person" / "identical" / "shared__seed0" / "done.json").is_file()
    groups = json.loads((tmp_path / "study" / "analysis" / "metrics.json").read_text())["groups"]
    assert len(groups) == 4 and "imitation/report.md" in report.read_text()  # as tests/test_study.py counts them


def test_ray_addresses_users_try_fail_in_one_line_at_once():
    """A port nothing listens on (Ray itself waits more than 80 s), a dashboard URL, a bare host name."""
    import socket
    import time

    from mirrorlab.experiments.runner import check_ray_address

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(UserError, match=rf"nothing answers at 127.0.0.1:{port} .*ray start --head --port={port}"):
        run_jobs([Job("a", square, (2,))], lambda job, result: None, ray_address=f"127.0.0.1:{port}")
    assert time.monotonic() - started < 30
    with pytest.raises(UserError, match="dashboard"):
        check_ray_address("http://127.0.0.1:8265")
    with pytest.raises(UserError, match="expected HOST:PORT"):
        check_ray_address("headnode")
    check_ray_address("auto")  # Ray finds the cluster itself
