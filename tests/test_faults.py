"""Fault injection, as a hostile colleague or a full disk would: files from elsewhere (crafted manifests, shards,
run records, policy descriptions, activations, configs), hostile values, two writers on one folder and a full
disk. Each table case: exit status 2, one error line naming the file, flag or key, no traceback, nothing
imported, nothing in the folders it was pointed at changed (the style of test_bad_input.py).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from mirrorlab.experiments.cli import main as cli
from tests.test_bad_input import snapshot, world, write  # noqa: F401  (world: the shared fixture)
from tests.test_paired import reseal

EVIL = "mirrorlab_fault_evil"  # a module that leaves a flag file if anything ever imports it
PROGRESS = (" it/s", "?it/s", "/s]", "%|")


@pytest.fixture(scope="module")
def demo_checkpoint(tmp_path_factory):
    from tests.test_demonstrator import tiny_train

    out = tmp_path_factory.mktemp("faults") / "demo"
    tiny_train(out)
    return out


@pytest.fixture
def hostile(world, demo_checkpoint, monkeypatch):
    """The shared world, a module on sys.path that must never be imported, and a copy of a tiny demonstrator."""
    flag = world["root"] / "imported"
    write(world["root"] / "evil" / f"{EVIL}.py", f"open({str(flag)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(world["root"] / "evil"))
    shutil.copytree(demo_checkpoint, world["root"] / "demo")
    return {**world, "flag": flag, "demo": world["root"] / "demo"}


def error_lines(err: str) -> list[str]:
    """stderr without tqdm's progress bars (a command that started work shows one)."""
    return [line for line in err.splitlines() if line.strip() and not any(p in line for p in PROGRESS)]


# --- builders of hostile folders (each returns the path to hand to the command) -----------------------------
def _manifest(w, change) -> str:
    path = w["data"] / "manifest.json"
    content = change(json.loads(path.read_text()))
    path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    return str(w["data"])


def _shard_attrs(w, **attrs) -> str:
    for shard in sorted(w["data"].glob("shard-*.h5")):
        with h5py.File(shard, "r+") as f:
            for key, value in attrs.items():
                f.attrs[key] = value(f.attrs[key]) if callable(value) else value
    reseal(w["data"])
    return str(w["data"])


def _env_kwargs(w, **kwargs) -> str:
    return _shard_attrs(w, env_kwargs=lambda old: json.dumps({**json.loads(old), **kwargs}))


def _swapped_shard(w) -> str:
    shards = sorted(w["data"].glob("shard-*.h5"))
    shutil.copy(shards[1], shards[0])
    return str(w["data"])


def _symlinked_shard(w) -> str:
    shard = sorted(w["data"].glob("shard-*.h5"))[0]
    elsewhere = w["root"] / "elsewhere.h5"
    shutil.move(shard, elsewhere)
    shard.symlink_to(elsewhere)
    return str(w["data"])


def _external_link(w) -> str:
    with h5py.File(w["root"] / "secret.h5", "w") as f:
        f["data"] = np.arange(3)
    with h5py.File(sorted(w["data"].glob("shard-*.h5"))[0], "r+") as f:
        f["demo/000000/extra"] = h5py.ExternalLink(str(w["root"] / "secret.h5"), "/data")
    reseal(w["data"])
    return str(w["data"])


def _run_copy(w, change=None, done: bool = True) -> str:
    run = w["root"] / "run_copy"
    shutil.copytree(w["run"], run)
    if not done:
        (run / "done.json").unlink()
    if change is not None:
        record = json.loads((run / "config.json").read_text())
        content = change(record)
        (run / "config.json").write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    return str(run)


def _symlinked_model(w) -> str:
    run = Path(_run_copy(w))
    (run / "model.pt").unlink()
    (run / "model.pt").symlink_to(w["run"] / "model.pt")  # another run's weights
    return str(run)


def _set(record, dotted: str, value):
    *parents, key = dotted.split(".")
    target = record
    for p in parents:
        target = target[p]
    target[key] = value
    return record


def _policy(w, content) -> str:
    folder = w["demo"]
    desc = json.loads((folder / "policy.json").read_text())
    new = content(desc) if callable(content) else content
    (folder / "policy.json").write_bytes(new if isinstance(new, bytes) else new.encode() if isinstance(new, str)
                                         else json.dumps(new).encode())
    return str(folder)


def _activations_with(w, member: str, npy: bytes) -> str:
    """A copy of the analysis whose run's activations file has `member` replaced by the bytes `npy`."""
    import zipfile

    copy = w["root"] / "analysis_copy"
    shutil.copytree(w["analysis"], copy)
    metrics = (copy / "metrics.json").read_text().replace(str(w["analysis"]), str(copy))
    (copy / "metrics.json").write_text(metrics)
    entry = json.loads(metrics)["runs"][str(w["run"])]["activations"]
    with zipfile.ZipFile(entry) as src:
        members = {name: src.read(name) for name in src.namelist()}
    members[member] = npy
    with zipfile.ZipFile(entry, "w") as dst:
        for name, data in members.items():
            dst.writestr(name, data)
    return str(copy)


def _huge_activations(w) -> str:
    """A copy of the analysis whose run's activations file declares a member of 10^12 float32."""
    import io

    npy = io.BytesIO()
    np.lib.format.write_array_header_1_0(npy, {"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)})
    npy.write(bytes(64))
    return _activations_with(w, "perform.npy", npy.getvalue())


def _activations_meta(w, meta: str) -> str:
    """A copy of the analysis whose run's activations carry `meta` as their metadata."""
    import io

    npy = io.BytesIO()
    np.save(npy, np.array(meta))
    return _activations_with(w, "meta.npy", npy.getvalue())


def _cfg(w, name: str, content: str | bytes) -> str:
    path = w["root"] / "configs" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


def _demo_with_eval(w) -> str:
    (w["demo"] / "eval.json").write_text('{"kept": true}')
    return str(w["demo"])


DEEP = "[" * 200_000 + "]" * 200_000
TINY = json.dumps({"embed_dim": 8, "hidden_size": 12, "cnn_channels": 4, "batch_size": 3, "epochs": 1,
                   "test_fraction": 0.5, "lr": 1e300})


def _check(w, data: str) -> list[str]:
    return ["collect", "--out", data, "--check-only", "--verify-episodes", "1"]


def _train(w, data: str) -> list[str]:
    return ["train", "--data", data, "--out", f"{w['root']}/t"]


def _analyze(w, run: str) -> list[str]:
    return ["analyze", "--runs", run, "--out", f"{w['root']}/a"]


def _eval(w, checkpoint: str) -> list[str]:
    return ["demo", "eval", "--checkpoint", checkpoint, "--episodes", "1"]


def _collect_with(w, name: str, content: str | bytes) -> list[str]:
    return ["collect", "--out", f"{w['root']}/c", "--config", _cfg(w, name, content)]


# (id, argv builder, expected text in the one error line)
CASES = [
    # files from elsewhere: dataset manifests
    ("manifest-deep", lambda w: _train(w, _manifest(w, lambda m: DEEP.encode())), "nested more than 64 levels"),
    ("manifest-not-utf8", lambda w: _check(w, _manifest(w, lambda m: b'{"format": "\xff\xfe"}')), "not UTF-8"),
    ("manifest-list", lambda w: _check(w, _manifest(w, lambda m: [m])), "manifest.json: expected an object, got list"),
    ("manifest-missing-key", lambda w: _check(w, _manifest(w, lambda m: {k: v for k, v in m.items() if k != "shards"})),
     "manifest.json: missing key 'shards'"),
    ("manifest-wrong-type", lambda w: _check(w, _manifest(w, lambda m: {**m, "complete": "yes"})),
     "manifest.json: key 'complete': expected true or false, got str"),
    ("manifest-escape", lambda w: _check(w, _manifest(w, lambda m: {**m, "shards": {
        "../escape/shard-00000.h5": next(iter(m["shards"].values()))}})), "is not a file name inside"),
    ("manifest-incomplete", lambda w: _train(w, _manifest(w, lambda m: {**m, "complete": False})),
     "the collection is not complete"),
    # shards
    ("shard-swapped", lambda w: _check(w, _swapped_shard(w)), "its size or SHA-256 differs from what"),
    ("shard-symlink", lambda w: _train(w, _symlinked_shard(w)), "is a symbolic link"),
    ("shard-external-link", lambda w: _train(w, _external_link(w)), "demo/000000/extra is a ExternalLink"),
    ("header-env-module", lambda w: _check(w, _shard_attrs(w, env_id=f"{EVIL}:Reach-v0")),
     f"header env_id: env id '{EVIL}:Reach-v0' is not a mirrorlab env"),
    ("header-huge-frames", lambda w: _check(w, _shard_attrs(w, frame_size=100_000)),
     "header frame_size is 100000, expected 16..1024"),
    ("header-render-human", lambda w: _check(w, _env_kwargs(w, render_mode="human")), 'render "rgb_array" only'),
    ("header-nan-weight", lambda w: _check(w, _env_kwargs(w, reward_dist_weight=float("nan"))),
     "env kwarg 'reward_dist_weight' must be a finite number"),
    ("header-inf-noise", lambda w: _check(w, _env_kwargs(w, init_noise=float("inf"))),
     "env kwarg 'init_noise' must be a finite number"),
    ("header-negative-radius", lambda w: _check(w, _env_kwargs(w, success_radius=-1)),
     "env_kwargs: success_radius must be a finite number > 0"),
    # run folders
    ("run-symlinked-model", lambda w: _analyze(w, _symlinked_model(w)),
     "model.pt is a symbolic link"),
    ("run-unfinished", lambda w: _analyze(w, _run_copy(w, done=False)),
     "finish it with `mirrorlab train --data"),
    ("run-huge-core", lambda w: _analyze(w, _run_copy(w, lambda r: _set(r, "config.hidden_size", 10**6))),
     "key 'config.hidden_size' is 1000000, more than 8192"),
    ("run-ids-not-integers", lambda w: _analyze(w, _run_copy(w, lambda r: _set(r, "train_episode_ids", ["a"]))),
     "key 'train_episode_ids'[0]: expected an integer"),
    ("run-env-module", lambda w: _analyze(w, _run_copy(w, lambda r: _set(r, "data.env_id", f"{EVIL}:R-v0"))),
     "key 'data.env_id': env id"),
    ("run-record-deep", lambda w: _analyze(w, _run_copy(w, lambda r: DEEP.encode())),
     "config.json: JSON nested more than 64"),
    ("run-record-list", lambda w: _analyze(w, _run_copy(w, lambda r: [r])),
     "config.json: expected an object, got list"),
    # demonstrator checkpoints
    ("policy-env-module", lambda w: _eval(w, _policy(w, lambda d: {**d, "env_id": f"{EVIL}:R-v0"})),
     "key 'env_id': env id"),
    ("policy-huge-net", lambda w: _eval(w, _policy(w, lambda d: {**d, "net_arch": [999_999] * 2})),
     "makes a network of 1e+12 weights"),
    ("policy-list", lambda w: _eval(w, _policy(w, "[]")),
     "policy.json: expected an object, got list"),
    ("policy-not-utf8", lambda w: _eval(w, _policy(w, b'{"format": "\xff"}')), "policy.json: not UTF-8 text"),
    # activations
    ("activations-huge-member", lambda w: ["video", "--run", str(w["run"]), "--analysis", _huge_activations(w),
                                           "--episode", "0", "--out", f"{w['root']}/v.mp4"],
     "member perform.npy declares shape (1000000, 1000000)"),
    ("activations-meta-list", lambda w: ["video", "--run", str(w["run"]), "--analysis", _activations_meta(w, "[]"),
                                         "--episode", "0", "--out", f"{w['root']}/v.mp4"],
     "meta: expected an object, got list"),
    ("activations-meta-deep", lambda w: ["video", "--run", str(w["run"]), "--analysis", _activations_meta(w, DEEP),
                                         "--episode", "0", "--out", f"{w['root']}/v.mp4"], "meta: JSON nested more"),
    # config files
    ("config-deep", lambda w: _collect_with(w, "deep.json", DEEP),
     "nested more than 64"),
    ("config-toml-deep", lambda w: _collect_with(w, "deep.toml", f"a = {DEEP}"),
     "nested more than 64"),
    ("config-not-utf8", lambda w: _collect_with(w, "bad.json", b'{"\xff": 1}'),
     "not UTF-8 text"),
    # hostile values
    ("train-lr-overflow", lambda w: _train(w, str(w["data"])) + ["--config", _cfg(w, "lr.json", TINY)],
     "the loss diverged; lower lr"),
    ("collect-babble-inf", lambda w: _collect_with(w, "b.json", '{"babble_scale": Infinity}'),
     "babble_scale must be a finite"),
    ("demo-eval-episodes-huge", lambda w: ["demo", "eval", "--checkpoint", "scripted", "--episodes", str(10**9)],
     "episodes must be in 1..100000"),
    ("demo-train-net-huge", lambda w: ["demo", "train", "--out", f"{w['root']}/d", "--config",
                                       _cfg(w, "n.json", '{"net_arch": [1000000, 1000000]}')], "makes a network"),
    ("demo-train-buffer-huge", lambda w: ["demo", "train", "--out", f"{w['root']}/d", "--config",
                                          _cfg(w, "bu.json", '{"buffer_size": 1000000000000}')],
     "buffer_size must be at most"),
    ("demo-train-name-too-long", lambda w: ["demo", "train", "--out", f"{w['root']}/{'x' * 300}", "--timesteps", "1"],
     "File name too long"),
    ("demo-eval-overwrite", lambda w: _eval(w, _demo_with_eval(w)),
     "already holds eval.json; pass --force"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_a_fault_is_one_line_exit_2_imports_nothing_and_damages_nothing(hostile, capsys, case):
    _, build, expected = case
    argv = build(hostile)
    capsys.readouterr()
    before = snapshot(hostile["root"]), snapshot(hostile["analysis"]), snapshot(hostile["run"])
    assert cli(argv) == 2
    err = capsys.readouterr().err
    lines = error_lines(err)
    assert len(lines) == 1 and expected in lines[0], err
    assert "Traceback" not in err
    assert not hostile["flag"].exists() and EVIL not in sys.modules
    after = snapshot(hostile["root"]), snapshot(hostile["analysis"]), snapshot(hostile["run"])
    # Every file that was there is unchanged (a command that got as far as starting work, such as training
    # until the loss diverged, may have added its own output folder).
    assert {k: v for k, v in after[0].items() if k in before[0]} == before[0]
    assert after[1:] == before[1:]


# --- two writers on one folder ---------------------------------------------------------------------------------
COLLECT = ["--episodes", "4", "--babble", "0", "--frame-size", "16", "--episodes-per-shard", "2", "--workers", "1",
           "--verify-episodes", "0"]


def _mirrorlab(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mirrorlab.experiments.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def test_a_second_collect_on_the_same_out_is_refused_and_the_first_finishes(tmp_path):
    out = tmp_path / "data"
    first = _mirrorlab("collect", "--out", str(out), *COLLECT)
    try:
        deadline = time.monotonic() + 120
        while f"pid {first.pid}" not in ((out / ".mirrorlab-lock").read_text() if (out / ".mirrorlab-lock").exists()
                                         else ""):
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.01)
        os.kill(first.pid, signal.SIGSTOP)  # hold the first writer mid-collection, whatever the machine's speed
        second = _mirrorlab("collect", "--out", str(out), *COLLECT)
        _, err = second.communicate(timeout=120)
        os.kill(first.pid, signal.SIGCONT)
        assert second.returncode == 2 and len(error_lines(err)) == 1, err
        assert f"another `mirrorlab collect` (pid {first.pid}) is writing to this folder" in err
        _, first_err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            os.kill(first.pid, signal.SIGCONT)
            first.kill()
    assert first.returncode == 0, first_err
    assert cli(["collect", "--out", str(out), "--check-only", "--verify-episodes", "0"]) == 0


# --- a full disk -----------------------------------------------------------------------------------------------
def _small_disk(folder: Path, disk_kib: int, file_kib: int):
    """A tmpfs of `disk_kib` (as root); elsewhere a limit of `file_kib` on each file the child writes, which
    fails the same writes with EFBIG instead of ENOSPC. Returns (popen kwargs, cleanup)."""
    import resource

    folder.mkdir()
    if os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={disk_kib}k", "tmpfs",
                                             str(folder)], capture_output=True).returncode == 0:
        return {}, lambda: subprocess.run(["umount", str(folder)], check=True)

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_kib * 1024, file_kib * 1024))

    return {"preexec_fn": limit}, lambda: None


def test_a_full_disk_stops_collect_with_one_line_and_leaves_only_whole_shards(tmp_path):
    disk = tmp_path / "disk"
    popen, cleanup = _small_disk(disk, disk_kib=120, file_kib=8)
    try:
        out = disk / "data"
        done = _mirrorlab("collect", "--out", str(out), "--episodes", "16", *COLLECT[2:], **popen)
        _, err = done.communicate(timeout=300)
        assert done.returncode == 2, err
        lines = error_lines(err)
        assert len(lines) == 1 and "the disk is full" in lines[0] and "nothing was replaced" in lines[0], err
        assert "Traceback" not in err and not list(out.rglob("*mirrorlab-tmp*"))  # temp files removed
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["complete"] is False
        assert sorted(p.name for p in out.glob("shard-*.h5")) == sorted(manifest["shards"])  # only whole shards
        assert cli(["collect", "--out", str(out), "--check-only", "--verify-episodes", "0"]) == 2  # readers refuse
    finally:
        cleanup()
