"""mirrorlab.files, mirrorlab.records and mirrorlab.provenance: atomic writes, safe reads (JSON from others into
checked records), output folders only the tool replaces and one writer at a time."""

import json
import os

import numpy as np
import pytest

from mirrorlab.errors import UserError
from mirrorlab.files import (
    LOCK,
    MARKER,
    TEMP_SUFFIX,
    atomic_save_npz,
    atomic_write_json,
    atomic_write_text,
    check_new_file,
    claim_output_dir,
    contained_path,
    ensure_writable_dir,
    load_npz,
    load_torch,
    locked_output_dir,
    read_json,
    staged_output_dir,
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


# --- files from elsewhere ------------------------------------------------------------------------------------
@pytest.mark.parametrize("content, expected", [
    ("[" * 200_000 + "]" * 200_000, "nested more than 64 levels deep"),
    (b'{"a": "\xff\xfe"}', "not UTF-8 text (byte 7)"),
    ('[1, 2]', "expected an object, got list"),
    ('{"command": 3}', "key 'command': expected a string, got int"),
    ('{"commands": "train"}', "missing key 'command'"),
    ('{"command": true}', "key 'command': expected a string, got bool"),
])
def test_hostile_json_is_one_line_naming_the_file_and_key(tmp_path, content, expected):
    path = tmp_path / "record.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(UserError) as err:
        read_json(path, "run record", schema={"command": str})
    assert expected in str(err.value) and "record.json" in str(err.value) and "\n" not in str(err.value)


def test_strings_holding_brackets_do_not_count_as_nesting(tmp_path):
    (tmp_path / "ok.json").write_text(json.dumps({"text": "[" * 1000, "n": [[1]]}))
    assert read_json(tmp_path / "ok.json", schema={"n": list})["n"] == [[1]]
    assert read_json(tmp_path / "ok.json", schema={"text": str, "n": (list, dict)})["text"] == "[" * 1000


def test_an_oversized_json_file_is_refused_before_it_is_read(tmp_path, monkeypatch):
    import mirrorlab.records as records

    monkeypatch.setattr(records, "MAX_JSON_BYTES", 100)
    (tmp_path / "big.json").write_text(json.dumps({"x": "y" * 200}))
    with pytest.raises(UserError, match=r"big\.json: 2\d\d bytes, more than the 100"):
        read_json(tmp_path / "big.json")


def test_names_read_from_files_stay_inside_their_folder(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "shard.h5").write_text("x")
    (tmp_path / "secret").write_text("y")
    assert contained_path(folder, "shard.h5", "manifest") == folder / "shard.h5"
    for name in ("../secret", "/etc/passwd", "sub/../../secret", ".hidden", 7):
        with pytest.raises(UserError, match="manifest: .*(not a file name inside|expected a string)"):
            contained_path(folder, name, "manifest")
    (folder / "link.h5").symlink_to(tmp_path / "secret")
    with pytest.raises(UserError, match=r"link\.h5 is a symbolic link"):
        contained_path(folder, "link.h5", "manifest")


def test_an_npz_member_declaring_more_data_than_it_holds_is_refused_before_allocating(tmp_path):
    import io
    import zipfile

    npy = io.BytesIO()  # a header declaring 10^12 float32 (4 TB), then 16 bytes of data
    np.lib.format.write_array_header_1_0(npy, {"descr": "<f4", "fortran_order": False, "shape": (10**12,)})
    npy.write(bytes(16))
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as z:
        z.writestr("perform.npy", npy.getvalue())
    with pytest.raises(UserError, match=r"huge\.npz: member perform\.npy declares shape \(1000000000000,\)"):
        load_npz(tmp_path / "huge.npz")


def test_a_second_writer_to_a_locked_folder_is_refused_and_the_first_keeps_its_files(tmp_path):
    out = tmp_path / "data"
    with locked_output_dir(out, "collect", resume=True):
        atomic_write_text(out / "shard-00000.h5", "first")
        with pytest.raises(UserError, match=r"--out .*data: another `mirrorlab collect` \(pid \d+\) is writing to "
                                            "this folder; wait for it"):
            with locked_output_dir(out, "collect", resume=True, force=True):
                pass
        assert (out / "shard-00000.h5").read_text() == "first"
    with locked_output_dir(out, "collect", force=True):  # released: the next writer gets it, and --force
        assert (out / LOCK).exists() and not (out / "shard-00000.h5").exists()  # keeps only the held lock
    assert claim_output_dir(out, "collect", resume=True) == out  # the lock file is not a foreign file


def test_the_lock_is_never_taken_in_a_folder_the_tool_may_not_use(tmp_path):
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "chapter.tex").write_text("mine")
    with pytest.raises(UserError, match="did not write"):
        with locked_output_dir(thesis, "collect", resume=True):
            pass
    assert [p.name for p in thesis.iterdir()] == ["chapter.tex"]


def test_a_full_disk_leaves_the_old_file_and_no_temp_file(tmp_path):
    import errno

    atomic_write_text(tmp_path / "metrics.json", "old")

    def fill_then_fail(tmp):
        tmp.write_text("half of the new")
        raise OSError(errno.ENOSPC, "No space left on device")

    from mirrorlab.files import atomic_write_via

    with pytest.raises(UserError, match=r"metrics\.json: the disk is full .*nothing was replaced"):
        atomic_write_via(tmp_path / "metrics.json", fill_then_fail)
    assert (tmp_path / "metrics.json").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_force_replaces_a_staged_result_only_once_the_new_one_is_complete(tmp_path):
    out = tmp_path / "demo"
    with staged_output_dir(out, "demo") as folder:
        atomic_write_text(folder / "policy.json", "old")
    with pytest.raises(UserError, match="already holds results"):
        with staged_output_dir(out, "demo"):
            pass
    with pytest.raises(KeyboardInterrupt):  # interrupted half way: the old result stays, the half is removed
        with staged_output_dir(out, "demo", force=True) as folder:
            assert folder != out
            atomic_write_text(folder / "policy.json", "half")
            raise KeyboardInterrupt
    assert (out / "policy.json").read_text() == "old"
    with staged_output_dir(out, "demo", force=True) as folder:
        atomic_write_text(folder / "policy.json", "new")
        assert (out / "policy.json").read_text() == "old"  # still there while the new one is written
    assert (out / "policy.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]  # no staging debris
