"""mirrorlab.files and mirrorlab.provenance: atomic writes, safe reads, output folders only the tool replaces."""

import json
import os

import numpy as np
import pytest

from mirrorlab.errors import UserError
from mirrorlab.files import (
    MARKER,
    TEMP_SUFFIX,
    atomic_save_npz,
    atomic_write_json,
    atomic_write_text,
    check_new_file,
    claim_output_dir,
    ensure_writable_dir,
    load_npz,
    load_torch,
    read_json,
)
from mirrorlab.provenance import provenance


def test_atomic_writers_replace_whole_files_and_leave_no_temp_files(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "one")
    atomic_write_text(tmp_path / "a.txt", "two")
    atomic_write_json(tmp_path / "b.json", {"x": np.float32(1.5), "y": np.arange(2)})
    atomic_save_npz(tmp_path / "c.npz", r=np.ones(3))
    assert (tmp_path / "a.txt").read_text() == "two"
    assert json.loads((tmp_path / "b.json").read_text()) == {"x": 1.5, "y": [0, 1]}
    assert load_npz(tmp_path / "c.npz")["r"].tolist() == [1.0, 1.0, 1.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.json", "c.npz"]
    assert oct((tmp_path / "a.txt").stat().st_mode & 0o777) != oct(0o600)  # readable by others, like any result


def test_a_failed_write_keeps_the_old_file(tmp_path):
    atomic_write_json(tmp_path / "m.json", {"ok": 1})
    with pytest.raises(TypeError):
        atomic_write_json(tmp_path / "m.json", {"bad": object()})
    assert json.loads((tmp_path / "m.json").read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_damaged_files_are_one_clear_error_naming_the_file(tmp_path):
    (tmp_path / "t.json").write_text('{"cut": ')
    with pytest.raises(UserError, match=r"t\.json: not readable JSON"):
        read_json(tmp_path / "t.json")
    atomic_save_npz(tmp_path / "a.npz", x=np.arange(100))
    data = (tmp_path / "a.npz").read_bytes()
    (tmp_path / "a.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"a\.npz: not a readable \.npz"):
        load_npz(tmp_path / "a.npz")


def test_an_npz_carrying_a_pickle_is_refused_and_runs_nothing(tmp_path):
    import io
    import pickle
    import zipfile

    flag = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {flag}",))

    npy = io.BytesIO()  # an object-dtype .npy, as numpy writes one: a header, then a pickle
    np.lib.format.write_array_header_1_0(npy, {"descr": "|O", "fortran_order": False, "shape": (1,)})
    npy.write(pickle.dumps(Payload()))
    with zipfile.ZipFile(tmp_path / "evil.npz", "w") as z:
        z.writestr("x.npy", npy.getvalue())
    with pytest.raises(UserError, match=r"evil\.npz: not a readable \.npz"):
        load_npz(tmp_path / "evil.npz")
    assert not flag.exists()


def test_weights_only_loading_refuses_a_pickle_that_would_run_code(tmp_path):
    import torch

    flag = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {flag}",))

    torch.save({"w": torch.zeros(2), "evil": Payload()}, tmp_path / "bad.pt")
    with pytest.raises(UserError, match=r"bad\.pt: not a readable weights file"):
        load_torch(tmp_path / "bad.pt")
    assert not flag.exists()


def test_provenance_records_config_versions_and_commit():
    from mirrorlab.experiments.stages.replication import ReplicateConfig

    record = provenance(ReplicateConfig(), seeds=[42])
    assert record["config"]["hidden_size"] == 96 and record["seeds"] == [42]
    assert record["versions"]["torch"] and record["versions"]["python"] and record["versions"]["mirrorlab"]
    assert "git_commit" in record


def test_an_unwritable_or_file_output_folder_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="--out .*file/out: cannot write there"):
        ensure_writable_dir(blocker / "out", "--out")
    with pytest.raises(UserError, match="is a file"):
        claim_output_dir(blocker, "replicate")
    assert ensure_writable_dir(tmp_path / "new" / "dir", "--out").is_dir()


def test_output_folders_are_replaced_only_when_the_tool_made_them_for_that_command(tmp_path):
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "chapter1.tex").write_text("years of work")
    for kwargs in ({}, {"force": True}, {"resume": True}):
        with pytest.raises(UserError, match="did not write"):
            claim_output_dir(thesis, "study", **kwargs)
    assert (thesis / "chapter1.tex").read_text() == "years of work"

    out = claim_output_dir(tmp_path / "rep", "replicate")
    assert json.loads((out / MARKER).read_text())["command"] == "replicate"
    atomic_write_text(out / "report.md", "r")
    with pytest.raises(UserError, match="already holds results of `mirrorlab replicate`"):
        claim_output_dir(out, "replicate")
    with pytest.raises(UserError, match="holds the results of `mirrorlab replicate`, not of `mirrorlab study`"):
        claim_output_dir(out, "study", force=True)
    assert (out / "report.md").exists()
    claim_output_dir(out, "replicate", resume=True)
    assert (out / "report.md").exists()
    claim_output_dir(out, "replicate", force=True)
    assert not (out / "report.md").exists() and (out / MARKER).exists()


def test_a_kill_mid_write_leaves_only_debris_the_next_run_removes(tmp_path):
    out = claim_output_dir(tmp_path / "rep", "replicate")
    stale = out / f".config.json.abc{TEMP_SUFFIX}.json"
    stale.write_text("half a conf")
    claim_output_dir(out, "replicate", resume=True)
    assert not stale.exists()
    # A folder holding nothing but debris and the marker counts as empty: a plain rerun works.
    stale.write_text("half a conf")
    claim_output_dir(out, "replicate")
    assert not stale.exists()


def test_single_output_files_are_not_overwritten_without_force(tmp_path):
    video = tmp_path / "v.mp4"
    assert check_new_file(video, False, ".mp4") == video
    video.write_bytes(b"old")
    with pytest.raises(UserError, match="already exists; pass --force"):
        check_new_file(video, False, ".mp4")
    assert check_new_file(video, True, ".mp4") == video
    with pytest.raises(UserError, match="must end in .mp4"):
        check_new_file(tmp_path / "v.avi", False, ".mp4")
    with pytest.raises(UserError, match="is a folder"):
        (tmp_path / "dir.mp4").mkdir()
        check_new_file(tmp_path / "dir.mp4", True, ".mp4")
