import csv
import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

import mirrorlab.experiments.sweep as sweep_mod
from mirrorlab.errors import UserError
from mirrorlab.experiments.cli import main as cli
from mirrorlab.experiments.sweep import load_grid, parse_grid, plan, sweep

REPO = Path(__file__).resolve().parents[1]
TINY_BASE = dict(n_train=64, n_test=20, hidden_size=8, action_embed_dim=8, epochs=1, n_permutations=320,
                 decode_folds=2, decode_shuffles=2, align_permutations=20, congruence_permutations=20,
                 lag_permutations=20, max_lag=2)


def write_grid(tmp_path: Path, text: str, name: str = "grid.toml") -> str:
    """A TOML grid: `text` (the top-level keys), then the tiny protocol in [base] less what `text` sets."""
    axes = {line.split("=")[0].strip() for line in text.splitlines()}
    base = "\n".join(f"{k} = {v}" for k, v in TINY_BASE.items() if k not in axes)
    path = tmp_path / name
    path.write_text(f"{text}\n[base]\n{base}\n")
    return str(path)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def cell_mtimes(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")}


def test_tiny_grid_end_to_end_resumes_without_recomputing(tmp_path, capsys):
    grid_file = write_grid(tmp_path, "seeds = [0, 1]\ninverse_weight = [0.0, 1.0]\nnoise_sigma = [0.05, 0.5]")
    out = tmp_path / "sweep"
    assert cli(["sweep", "--out", str(out), "--grid", grid_file, "--workers", "1"]) == 0
    assert "20 cells computed, 0 reused" in capsys.readouterr().out

    rows = read_csv(out / "sweep.csv")
    assert len(rows) == 4 * 2
    assert {(r["inverse_weight"], r["noise_sigma"], r["seed"]) for r in rows} == {
        (w, s, seed) for w in ("0.0", "1.0") for s in ("0.05", "0.5") for seed in ("0", "1")}
    for r in rows:
        for cond in ("shared", "separate", "untrained"):
            assert 0.0 <= float(r[f"{cond}_mirror_frac_fdr"]) <= 1.0
        assert float(r["trained_minus_untrained_mirror_frac_fdr"]) == pytest.approx(
            float(r["shared_mirror_frac_fdr"]) - float(r["untrained_mirror_frac_fdr"]))
        assert float(r["shared_minus_separate_aligned_cka_debiased_excess"]) == pytest.approx(
            float(r["shared_aligned_cka_debiased_excess"]) - float(r["separate_aligned_cka_debiased_excess"]))
    summary = read_csv(out / "summary.csv")
    assert len(summary) == 4 and all(s["n_seeds"] == "2" for s in summary)
    pngs = sorted((out / "heatmaps").glob("*.png"))
    assert {p.stem for p in pngs} == {c for c, *_ in sweep_mod.HEATMAPS}
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    record = json.loads((out / "config.json").read_text())
    assert record["command"] == "sweep" and record["grid"]["axes"] == {"inverse_weight": [0.0, 1.0],
                                                                       "noise_sigma": [0.05, 0.5]}
    assert record["base_config"]["n_train"] == 64 and "versions" in record and "git_commit" in record
    # 8 shared + 8 separate; the untrained network ignores lambda, so one untrained cell per (noise, seed).
    assert len(cell_mtimes(out)) == 8 + 8 + 4

    before = cell_mtimes(out)
    csv_before = (out / "sweep.csv").read_text()
    grid = load_grid(grid_file)
    assert sweep(grid, out, workers=1, show_progress=False, log=lambda _: None)["computed"] == 0
    assert cell_mtimes(out) == before

    # A killed sweep: two cells never written, a half-written temp file left behind. Only those two rerun,
    # in a pool of worker processes, and the results are the same as before.
    gone = sorted(before)[:2]
    for name in gone:
        (out / "cells" / name).unlink()
    (out / "cells" / f".{gone[0]}.abc.mirrorlab-tmp.json").write_text("{")
    result = sweep(grid, out, workers=2, show_progress=False, log=lambda _: None)
    assert (result["computed"], result["reused"]) == (2, 18)
    after = cell_mtimes(out)
    assert set(after) == set(before)
    assert all(after[n] == before[n] for n in before if n not in gone)
    assert (out / "sweep.csv").read_text() == csv_before


BAD_GRIDS = {
    "unknown parameter": ("noise = [0.1, 0.2]", "unknown parameter 'noise'"),
    "empty axis": ("noise_sigma = []", "axis 'noise_sigma' is empty"),
    "wrong type": ('n_actions = [4, "six"]', "n_actions[1]: expected int, got 'six'"),
    "float for int": ("hidden_size = [8, 12.5]", "hidden_size[1]: expected int, got 12.5"),
    "scalar axis": ("noise_sigma = 0.1", "axis 'noise_sigma' must be a list"),
    "seeds": ('seeds = ["a"]', "seeds[0]: expected int"),
    "invalid point": ("n_actions = [1, 6]", "at n_actions=1: config: n_actions must be >= 2"),
    "workers axis": ("workers = [1, 2]", "workers is not a grid axis"),
    "too few permutations on an axis": ("n_permutations = [100]", "n_permutations must be >= 320"),
    "missing condition": ('conditions = ["shared", "untrained"]', "must include separate"),
}


@pytest.mark.parametrize("case", sorted(BAD_GRIDS))
def test_bad_grid_is_one_clear_line_and_runs_nothing(tmp_path, capsys, monkeypatch, case):
    text, expected = BAD_GRIDS[case]
    monkeypatch.setattr(sweep_mod, "run_cell", lambda *a: pytest.fail("a cell ran"))
    out = tmp_path / "sweep"
    assert cli(["sweep", "--out", str(out), "--grid", write_grid(tmp_path, text), "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err, err
    assert not out.exists()


def test_bad_grid_json_and_foreign_out_dir(tmp_path, capsys):
    path = tmp_path / "grid.json"
    path.write_text(json.dumps({"noise_sigma": [0.1], "base": {"hidden_sise": 8}}))
    assert cli(["sweep", "--out", str(tmp_path / "o"), "--grid", str(path)]) == 2
    assert "base: unknown key 'hidden_sise'" in capsys.readouterr().err
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="did not write"):
        sweep(parse_grid({"base": TINY_BASE}, "test"), foreign, workers=1, show_progress=False)
    assert (foreign / "notes.txt").read_text() == "mine"


def test_hidden_size_axis_raises_permutations_to_the_bonferroni_minimum():
    base = {k: v for k, v in TINY_BASE.items() if k != "hidden_size"}
    grid = parse_grid({"hidden_size": [8, 16], "seeds": [0], "base": base}, "test")
    _, jobs, notes = plan(grid)
    assert {(j.config.hidden_size, j.config.n_permutations) for j in jobs} == {(8, 320), (16, 640)}
    assert notes == ["hidden_size=16: n_permutations raised from 320 to 640 so that Bonferroni over 16 units "
                     "at alpha=0.05 can reject"]


def test_default_grid_varies_lambda_and_fits_the_budget():
    built_in = load_grid(None)
    assert set(built_in.axes) >= {"inverse_weight", "noise_sigma"} and 0.0 in built_in.axes["inverse_weight"]
    entries, jobs, _ = plan(built_in)
    trained = [j for j in jobs if j.condition != "untrained"]
    # 16 points x 3 seeds; about 15 s per trained cell at hidden 96 on one idle core: < 30 min on 2 cores.
    assert (len(entries), len(trained), len(jobs) - len(trained)) == (48, 96, 12)
    assert all(j.config.epochs == 20 and j.config.n_train == 2000 for j in trained)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def ray_head(home: Path):
    """A Ray cluster started as the README says (`ray start --head`), with token authentication on (a token in
    ~/.ray/auth_token, the state in which `ray start --head` turns it on): its own HOME, port and temp folder, so
    it never meets a cluster already running on the machine; stopped by killing only its own processes."""
    import shutil
    import signal
    import tempfile
    import time

    ray_cli = str(Path(sys.executable).parent / "ray")
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RAY_ADDRESS")} | {"HOME": str(home)}
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's unix socket paths must fit 107 bytes
    port = _free_port()
    subprocess.run([ray_cli, "get-auth-token", "--generate"], env=env, check=True, capture_output=True, timeout=60)
    try:
        started = subprocess.run([ray_cli, "start", "--head", f"--port={port}", f"--temp-dir={temp}", "--num-cpus=2",
                                  "--include-dashboard=false", "--disable-usage-stats"], env=env, capture_output=True,
                                 text=True, timeout=180)
        assert started.returncode == 0, started.stderr
        assert "Token authentication is enabled" in started.stderr + started.stdout
        yield f"127.0.0.1:{port}", env
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            ours = [int(d.name) for d in Path("/proc").iterdir() if d.name.isdigit() and _cmdline_has(d, temp)]
            for pid in ours:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            time.sleep(3 if ours and sig == signal.SIGTERM else 0)
        shutil.rmtree(temp, ignore_errors=True)


def _cmdline_has(proc: Path, text: str) -> bool:
    try:
        return text in (proc / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def test_a_cluster_started_as_the_readme_says_runs_the_same_cells_and_resumes(tmp_path):
    """`ray start --head` turns token authentication on; `mirrorlab sweep --ray-address HOST:PORT` joins it with
    no RAY_AUTH_MODE set, computes every cell, and a rerun after a lost cell computes only that one."""
    grid_file = write_grid(tmp_path, "seeds = [3]\ninverse_weight = [0.5, 2.0]")
    out = tmp_path / "sweep"
    command = [sys.executable, "-m", "mirrorlab.experiments.cli", "sweep", "--out", str(out), "--grid", grid_file]
    with ray_head(tmp_path / "home") as (address, env):
        done = subprocess.run([*command, "--ray-address", address], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
        assert "5 cells computed, 0 reused" in done.stdout
        rows = read_csv(out / "sweep.csv")
        assert [(r["inverse_weight"], r["seed"]) for r in rows] == [("0.5", "3"), ("2.0", "3")]
        before = cell_mtimes(out)
        shared = sorted(n for n in before if n.startswith("shared-"))[0]
        (out / "cells" / shared).unlink()
        done = subprocess.run([*command, "--ray-address", address], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0 and "1 cells computed, 4 reused" in done.stdout, done.stdout + done.stderr
        assert all(cell_mtimes(out)[n] == t for n, t in before.items() if n != shared)

    # Same cells as the local path: a local run over the Ray results recomputes nothing.
    assert sweep(load_grid(grid_file), out, workers=1, show_progress=False, log=lambda _: None)["computed"] == 0


def test_a_dead_ray_address_is_one_line_within_30_s_and_writes_nothing(tmp_path):
    import time

    grid_file = write_grid(tmp_path, "seeds = [3]")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "mirrorlab.experiments.cli", "sweep", "--out", str(tmp_path / "sweep"),
                           "--grid", grid_file, "--ray-address", f"127.0.0.1:{_free_port()}"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - started
    assert done.returncode == 2 and elapsed < 30, (elapsed, done.stderr)
    assert done.stderr.count("\n") == 1 and "nothing answers" in done.stderr and "ray start --head" in done.stderr
    assert not (tmp_path / "sweep").exists()


def test_the_hidden_grid_is_shipped_named_and_complete():
    grid = load_grid("hidden")
    assert grid.axes == {"hidden_size": (8, 16, 32, 48, 64, 96, 128, 256)}
    assert grid.seeds == (42, 1, 2, 3, 4) and grid.conditions == ("shared", "separate", "untrained")
    entries, cells, notes = plan(grid)
    assert len(entries) == 8 * 5 and len(cells) == 8 * 5 * 3
    # Every point keeps the paper's protocol and a Bonferroni that can reject over both tails.
    assert all(c.config.n_train == 2000 and c.config.epochs == 20 and c.config.n_permutations >= 2 * c.config.hidden_size / 0.05
               for c in cells)
    assert any("hidden_size=256" in n for n in notes)
