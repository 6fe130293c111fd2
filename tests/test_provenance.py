import json

import numpy as np
import pytest

from experiments.errors import UserError
from experiments.provenance import (atomic_save_npz, atomic_write_json, atomic_write_text, ensure_writable_dir,
                                    provenance)
from experiments.replicate import ReplicateConfig


def test_atomic_writers_replace_whole_files_and_leave_no_temp_files(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "one")
    atomic_write_text(tmp_path / "a.txt", "two")
    atomic_write_json(tmp_path / "b.json", {"x": np.float32(1.5), "y": np.arange(2)})
    atomic_save_npz(tmp_path / "c.npz", r=np.ones(3))
    assert (tmp_path / "a.txt").read_text() == "two"
    assert json.loads((tmp_path / "b.json").read_text()) == {"x": 1.5, "y": [0, 1]}
    with np.load(tmp_path / "c.npz", allow_pickle=False) as data:
        assert data["r"].tolist() == [1.0, 1.0, 1.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.json", "c.npz"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    atomic_write_json(tmp_path / "m.json", {"ok": 1})
    with pytest.raises(TypeError):
        atomic_write_json(tmp_path / "m.json", {"bad": object()})
    assert json.loads((tmp_path / "m.json").read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_provenance_records_config_versions_and_commit():
    record = provenance(ReplicateConfig(), seeds=[42])
    assert record["config"]["hidden_size"] == 96 and record["seeds"] == [42]
    assert record["versions"]["torch"] and record["versions"]["python"]
    assert "git_commit" in record


def test_an_unwritable_output_folder_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="--out .*file/out: cannot write there"):
        ensure_writable_dir(blocker / "out", "--out")
    assert ensure_writable_dir(tmp_path / "new" / "dir", "--out").is_dir()
