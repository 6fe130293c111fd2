"""Every command against a table of bad inputs: exit status 2, one line on stderr naming the flag, key or
file and what was expected, no traceback, and no file changed in the folders it was pointed at.

A new command joins the table. Cases that need finished work (a dataset, a run, an analysis) get it from
the session's tiny fixtures, copied into this test's folder so the check covers it too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mirrorlab.experiments.cli import COMMAND_MODULES
from mirrorlab.experiments.cli import main as cli


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file's size and modification time, and every folder (a folder's own mtime moves when a
    command probes that it can write there, which changes nothing)."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else (0, 0)
            for p in root.rglob("*")}


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


@pytest.fixture
def world(tmp_path, analyzed_runs):
    """A folder holding a dataset, two runs, an analysis, a foreign folder, a plain file and config files."""
    runs, analysis = analyzed_runs
    data = Path(json.loads((runs[0] / "config.json").read_text())["data_path"])
    shutil.copytree(data, tmp_path / "data")
    w = {"root": tmp_path, "data": tmp_path / "data", "run": runs[0], "analysis": analysis}
    w["file"] = Path(write(tmp_path / "a_file.txt", "not a folder"))
    write(tmp_path / "thesis" / "chapter.tex", "mine")
    w["thesis"] = tmp_path / "thesis"
    return w


def cfg(w, name: str, content) -> str:
    return write(w["root"] / "configs" / name, content if isinstance(content, str) else json.dumps(content))


# (id, argv builder, expected text in the one stderr line)
CASES = [
    # replicate
    ("replicate-negative-seed", lambda w: ["replicate", "--out", f"{w['root']}/r", "--seeds", "-1"], "seeds"),
    ("replicate-huge-seed", lambda w: ["replicate", "--out", f"{w['root']}/r", "--seeds", "99999999999"], "2^32"),
    ("replicate-empty-conditions", lambda w: ["replicate", "--out", f"{w['root']}/r", "--conditions", ""],
     "at least one condition"),
    ("replicate-duplicate-conditions", lambda w: ["replicate", "--out", f"{w['root']}/r", "--conditions",
                                                  "shared,shared"], "each condition once"),
    ("replicate-negative-lr", lambda w: ["replicate", "--out", f"{w['root']}/r", "--config",
                                         cfg(w, "lr.json", {"lr": -0.1})], "lr must be a positive number"),
    ("replicate-zero-permutations", lambda w: ["replicate", "--out", f"{w['root']}/r", "--config",
                                               cfg(w, "b.json", {"n_permutations": 0})], "n_permutations"),
    ("replicate-zero-folds", lambda w: ["replicate", "--out", f"{w['root']}/r", "--config",
                                        cfg(w, "f.json", {"decode_folds": 0})], "decode_folds must be >= 2"),
    ("replicate-alpha", lambda w: ["replicate", "--out", f"{w['root']}/r", "--config",
                                   cfg(w, "a.json", {"alpha": 1.5})], "alpha must be in (0, 1)"),
    ("replicate-workers", lambda w: ["replicate", "--out", f"{w['root']}/r", "--workers", "-1"], "workers"),
    ("replicate-out-is-file", lambda w: ["replicate", "--out", str(w["file"])], "is a file"),
    ("replicate-out-unwritable", lambda w: ["replicate", "--out", "/proc/mirrorlab-out"], "cannot write there"),
    ("replicate-out-foreign", lambda w: ["replicate", "--out", str(w["thesis"]), "--force"], "did not write"),
    ("replicate-resume-truncated-config", lambda w: ["replicate", "--out", _truncated_replicate(w), "--resume"],
     "not readable JSON"),
    ("replicate-bad-toml", lambda w: ["replicate", "--out", f"{w['root']}/r", "--config", cfg(w, "x.toml", "a = [")],
     "not valid TOML"),
    ("replicate-unknown-flag", lambda w: ["replicate", "--out", f"{w['root']}/r", "--seed", "3"],
     "unrecognized arguments"),
    # sweep
    ("sweep-workers", lambda w: ["sweep", "--out", f"{w['root']}/s", "--workers", "-1"], "--workers"),
    ("sweep-missing-grid", lambda w: ["sweep", "--out", f"{w['root']}/s", "--grid", f"{w['root']}/none.toml"],
     "does not exist"),
    ("sweep-negative-seed", lambda w: ["sweep", "--out", f"{w['root']}/s", "--grid",
                                       cfg(w, "g.toml", "seeds = [-3]\nhidden_size = [8]")], "seeds"),
    # demo
    ("demo-train-timesteps", lambda w: ["demo", "train", "--out", f"{w['root']}/d", "--timesteps", "0"], "timesteps"),
    ("demo-train-seed", lambda w: ["demo", "train", "--out", f"{w['root']}/d", "--seed", "-4"], "seed"),
    ("demo-train-algo", lambda w: ["demo", "train", "--out", f"{w['root']}/d", "--algo", "dqn"], "invalid choice"),
    ("demo-train-threads", lambda w: ["demo", "train", "--out", f"{w['root']}/d", "--config",
                                      cfg(w, "t.json", {"torch_threads": 100000})], "torch_threads"),
    ("demo-eval-episodes", lambda w: ["demo", "eval", "--checkpoint", "scripted", "--episodes", "0"], "episodes"),
    ("demo-eval-missing", lambda w: ["demo", "eval", "--checkpoint", f"{w['root']}/none"], "does not exist"),
    # collect
    ("collect-appearance", lambda w: ["collect", "--out", f"{w['root']}/c", "--other-appearance", "ghostly"],
     "other_appearance must be one of"),
    ("collect-frame-size", lambda w: ["collect", "--out", f"{w['root']}/c", "--frame-size", "20"], "frame_size"),
    ("collect-seed", lambda w: ["collect", "--out", f"{w['root']}/c", "--seed", "-5"], "seed"),
    ("collect-workers", lambda w: ["collect", "--out", f"{w['root']}/c", "--workers", "-1"], "workers"),
    ("collect-out-file", lambda w: ["collect", "--out", str(w["file"]), "--episodes", "1"], "is a file"),
    ("collect-out-foreign", lambda w: ["collect", "--out", str(w["thesis"]), "--episodes", "1"], "did not write"),
    ("collect-check-missing", lambda w: ["collect", "--out", f"{w['root']}/none", "--check-only"], "no such dataset"),
    ("collect-corrupt-shard", lambda w: ["collect", "--out", _corrupt_shard(w), "--check-only"],
     "not a readable HDF5 file"),
    # train
    ("train-missing-data", lambda w: ["train", "--data", f"{w['root']}/none", "--out", f"{w['root']}/t"],
     "no such dataset"),
    ("train-condition", lambda w: ["train", "--data", str(w["data"]), "--out", f"{w['root']}/t", "--condition", "x"],
     "unknown condition 'x'"),
    ("train-seed", lambda w: ["train", "--data", str(w["data"]), "--out", f"{w['root']}/t", "--seed", "-1"], "seed"),
    ("train-epochs", lambda w: ["train", "--data", str(w["data"]), "--out", f"{w['root']}/t", "--epochs", "-2"],
     "epochs"),
    ("train-inverse-weight", lambda w: ["train", "--data", str(w["data"]), "--out", f"{w['root']}/t",
                                        "--inverse-weight", "-1"], "inverse_weight must be a number >= 0"),
    ("train-threads", lambda w: ["train", "--data", str(w["data"]), "--out", f"{w['root']}/t", "--config",
                                 cfg(w, "th.json", {"threads": 100000})], "threads must be at most"),
    ("train-nan-lr", lambda w: ["train", "--data", str(w["data"]), "--out", f"{w['root']}/t", "--config",
                                cfg(w, "nan.json", '{"lr": NaN}')], "lr must be a positive number"),
    ("train-out-foreign", lambda w: ["train", "--data", str(w["data"]), "--out", str(w["thesis"])], "did not write"),
    ("train-other-dataset", lambda w: ["train", "--data", _other_dataset(w), "--out", _copy_run(w), "--epochs", "1",
                                       "--config", cfg(w, "tiny.json", _tiny_train())], "different dataset"),
    ("train-bad-checkpoint", lambda w: ["train", "--data", str(w["data"]), "--out", _keyless_checkpoint(w),
                                        "--epochs", "1", "--config", cfg(w, "tiny.json", _tiny_train())],
     "not a checkpoint of this run"),
    # analyze
    ("analyze-not-a-run", lambda w: ["analyze", "--runs", str(w["thesis"]), "--out", f"{w['root']}/a"],
     "not a finished `mirrorlab train` run"),
    ("analyze-alpha", lambda w: ["analyze", "--runs", str(w["run"]), "--out", f"{w['root']}/a", "--config",
                                 cfg(w, "al.json", {"alpha": 2.0})], "alpha must be in (0, 1)"),
    ("analyze-workers", lambda w: ["analyze", "--runs", str(w["run"]), "--out", f"{w['root']}/a", "--workers", "-3"],
     "--workers"),
    ("analyze-out-file", lambda w: ["analyze", "--runs", str(w["run"]), "--out", str(w["file"])], "is a file"),
    ("analyze-other-data", lambda w: ["analyze", "--runs", str(w["run"]), "--out", f"{w['root']}/a", "--data",
                                      _other_dataset(w)], "made from a different dataset"),
    ("analyze-corrupt-weights", lambda w: ["analyze", "--runs", _corrupt_weights(w), "--out", f"{w['root']}/a"],
     "model.pt: not a readable weights file"),
    # curve
    ("curve-seeds", lambda w: ["curve", "--out", f"{w['root']}/cu", "--seeds", "0"], "--seeds"),
    ("curve-workers", lambda w: ["curve", "--out", f"{w['root']}/cu", "--workers", "-2"], "--workers"),
    ("curve-axes", lambda w: ["curve", "--out", f"{w['root']}/cu", "--axes", "epochs,speed"], "--axes"),
    ("curve-out-foreign", lambda w: ["curve", "--out", str(w["thesis"])], "did not write"),
    # imitate
    ("imitate-workers", lambda w: ["imitate", "--run", str(w["run"]), "--analysis", str(w["analysis"]), "--out",
                                   f"{w['root']}/i", "--workers", "-1"], "workers"),
    ("imitate-episodes", lambda w: ["imitate", "--run", str(w["run"]), "--analysis", str(w["analysis"]), "--out",
                                    f"{w['root']}/i", "--episodes", "0"], "episodes must be >= 1"),
    ("imitate-flag", lambda w: ["imitate", "--run", str(w["run"]), "--analysis", str(w["analysis"]), "--out",
                                f"{w['root']}/i", "--no-closed-loop"], "unrecognized arguments"),
    ("imitate-device", lambda w: ["imitate", "--run", str(w["run"]), "--analysis", str(w["analysis"]), "--out",
                                  f"{w['root']}/i", "--device", "tpu"], "--device"),
    ("imitate-bad-analysis", lambda w: ["imitate", "--run", str(w["run"]), "--analysis", _truncated_analysis(w),
                                        "--out", f"{w['root']}/i"], "not readable JSON"),
    # spillover
    ("spillover-not-analyzed", lambda w: ["spillover", "--runs", str(w["run"]), "--analysis", str(w["thesis"]),
                                          "--out", f"{w['root']}/sp"], "not found"),
    ("spillover-updates", lambda w: ["spillover", "--runs", str(w["run"]), "--analysis", str(w["analysis"]), "--out",
                                     f"{w['root']}/sp", "--config", cfg(w, "sp.json", {"fit_updates": 0})],
     "fit_updates must be >= 1"),
    ("spillover-scale", lambda w: ["spillover", "--runs", str(w["run"]), "--analysis", str(w["analysis"]), "--out",
                                   f"{w['root']}/sp", "--config", cfg(w, "sc.json", {"reward_scale": -1})],
     "reward_scale must be a positive number"),
    ("spillover-not-a-run", lambda w: ["spillover", "--runs", str(w["thesis"]), "--analysis", str(w["analysis"]),
                                       "--out", f"{w['root']}/sp"], "not a finished `mirrorlab train` run"),
    # video
    ("video-episode", lambda w: ["video", "--run", str(w["run"]), "--analysis", str(w["analysis"]), "--episode", "99",
                                 "--out", f"{w['root']}/v.mp4"], "--episode"),
    ("video-other-data", lambda w: ["video", "--run", str(w["run"]), "--analysis", str(w["analysis"]), "--episode",
                                    "0", "--out", f"{w['root']}/v.mp4", "--data", _other_dataset(w)],
     "made from a different dataset"),
    ("video-exists", lambda w: ["video", "--run", str(w["run"]), "--analysis", str(w["analysis"]), "--episode", "0",
                                "--out", write(w["root"] / "old.mp4", "x")], "already exists"),
    # render
    ("render-size", lambda w: ["render", "--env", "mirrorlab/PlanarReach-v0", "--out", f"{w['root']}/x.mp4",
                               "--size", "50"], "--size"),
    ("render-out-folder", lambda w: ["render", "--env", "mirrorlab/PlanarReach-v0", "--out", _folder_mp4(w)],
     "is a folder"),
    ("render-seed", lambda w: ["render", "--env", "mirrorlab/PlanarReach-v0", "--out", f"{w['root']}/x.mp4",
                               "--seed", "-1"], "--seed"),
    # export
    ("export-bad-id", lambda w: ["export", "--data", str(w["data"]), "--out", "no version", "--minari-root",
                                 f"{w['root']}/mi"], "name-v0"),
    ("export-missing-data", lambda w: ["export", "--data", f"{w['root']}/none", "--out", "m/x-v0", "--minari-root",
                                       f"{w['root']}/mi"], "no such dataset"),
    ("export-format", lambda w: ["export", "--data", str(w["data"]), "--out", "m/x-v0", "--format", "parquet"],
     "invalid choice"),
    # study
    ("study-preset", lambda w: ["study", "--out", f"{w['root']}/st", "--preset", "huge"], "invalid choice"),
    ("study-fresh-foreign", lambda w: ["study", "--out", str(w["thesis"]), "--fresh"], "did not write"),
    ("study-on-replicate-output", lambda w: ["study", "--out", _replicate_output(w)], "not of `mirrorlab study`"),
    ("study-demonstrator-missing", lambda w: ["study", "--out", f"{w['root']}/st", "--demonstrator",
                                              f"{w['root']}/no-demo"], "does not exist"),
    ("study-demonstrator-not-a-checkpoint", lambda w: ["study", "--out", f"{w['root']}/st", "--demonstrator",
                                                       str(w["thesis"])], "missing"),
    ("study-config-unknown-key", lambda w: ["study", "--out", f"{w['root']}/st", "--config",
                                            cfg(w, "st.toml", "[imitate]\nnope = 1\n")], "unknown key 'imitate.nope'"),
    ("study-config-type", lambda w: ["study", "--out", f"{w['root']}/st", "--config",
                                     cfg(w, "ty.toml", "[train]\nepochs = \"ten\"\n")],
     "train.epochs: expected int, got 'ten'"),
    ("study-config-missing", lambda w: ["study", "--out", f"{w['root']}/st", "--config", f"{w['root']}/none.toml"],
     "none.toml does not exist"),
    ("study-config-planned", lambda w: ["study", "--out", f"{w['root']}/st", "--config",
                                        cfg(w, "pl.toml", "[train]\nseed = 3\n")], "set `seeds` instead"),
    ("study-config-range", lambda w: ["study", "--out", f"{w['root']}/st", "--config",
                                      cfg(w, "ra.json", {"analyze": {"alpha": 2}})], "analyze.alpha must be in (0, 1)"),
    # report
    ("report-not-a-study", lambda w: ["report", "--out", str(w["thesis"])], "not a study folder"),
    ("report-replicate-output", lambda w: ["report", "--out", _replicate_output(w)], "not a study folder"),
    # lesion
    ("lesion-not-a-run", lambda w: ["lesion", "--runs", str(w["thesis"]), "--analysis", str(w["analysis"]), "--out",
                                    f"{w['root']}/le"], "not a finished `mirrorlab train` run"),
    # bench
    ("bench-all-options", lambda w: ["bench", "all", "--full"], "takes no options"),
    ("bench-train-rounds", lambda w: ["bench", "train", "--rounds", "0"], "--rounds"),
    ("bench-unknown", lambda w: ["bench", "nothing"], "unknown benchmark"),
]


def _truncated_replicate(w) -> str:
    out = w["root"] / "rep"
    write(out / ".mirrorlab-output.json", json.dumps({"command": "replicate"}))
    write(out / "config.json", '{"config": {"n_actions": ')
    return str(out)


def _corrupt_shard(w) -> str:
    from tests.test_paired import reseal

    shard = sorted(w["data"].glob("shard-*.h5"))[0]
    shard.write_bytes(shard.read_bytes()[:3000])
    reseal(w["data"])  # the manifest agrees: the shard's own bytes must be what is refused
    return str(w["data"])


def _tiny_train() -> dict:
    from tests.conftest import TINY_TRAIN

    return TINY_TRAIN


def _copy_run(w) -> str:
    target = w["root"] / "run_copy"
    shutil.copytree(w["run"], target)
    (target / "done.json").unlink()
    return str(target)


def _other_dataset(w) -> str:
    """The same dataset with one episode's content changed: a different fingerprint."""
    import h5py

    from tests.test_paired import reseal

    shard = sorted(w["data"].glob("shard-*.h5"))[0]
    with h5py.File(shard, "r+") as f:
        f["demo/000000"].attrs["content_sha256"] = "0" * 64
    reseal(w["data"])
    return str(w["data"])


def _keyless_checkpoint(w) -> str:
    import torch

    run = Path(_copy_run(w))
    for ckpt in (run / "checkpoints").glob("*.pt"):
        torch.save({"weights": torch.zeros(1)}, ckpt)
    return str(run)


def _corrupt_weights(w) -> str:
    run = Path(_copy_run(w))
    write(run / "done.json", "{}")
    (run / "model.pt").write_bytes(b"PK\x03\x04 not weights")
    return str(run)


def _truncated_analysis(w) -> str:
    out = w["root"] / "an"
    write(out / "metrics.json", '{"runs": {')
    return str(out)


def _folder_mp4(w) -> str:
    (w["root"] / "folder.mp4").mkdir()
    return str(w["root"] / "folder.mp4")


def _replicate_output(w) -> str:
    out = w["root"] / "rep_done"
    write(out / ".mirrorlab-output.json", json.dumps({"command": "replicate"}))
    write(out / "report.md", "results")
    return str(out)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(world, capsys, case):
    _, build, expected = case
    argv = build(world)
    before = snapshot(world["root"]), snapshot(world["analysis"]), snapshot(world["run"])
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and expected in err, err
    assert "Traceback" not in err
    assert (snapshot(world["root"]), snapshot(world["analysis"]), snapshot(world["run"])) == before


def test_every_command_is_in_the_table():
    commands = {m.rsplit(".", 1)[1] for m in COMMAND_MODULES}
    covered = {c[0].split("-")[0] for c in CASES}
    assert commands <= covered, commands - covered


@pytest.mark.parametrize("value, expected", [("bogus", "MUJOCO_GL='bogus' is not a backend MuJoCo knows")])
def test_an_unusable_gl_backend_is_one_clear_line(tmp_path, value, expected):
    done = subprocess.run([sys.executable, "-m", "mirrorlab.experiments.cli", "render", "--env",
                           "mirrorlab/PlanarReach-v0", "--out", str(tmp_path / "x.mp4"), "--size", "32"],
                          env={**os.environ, "MUJOCO_GL": value}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and expected in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not list(tmp_path.iterdir())
