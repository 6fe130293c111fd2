import csv
import json

import numpy as np
import pytest

from mirrorlab.config import replace_checked
from mirrorlab.errors import UserError
from mirrorlab.experiments.cli import main as cli
from mirrorlab.experiments.stages.replication import ReplicateConfig, replicate, run_cell

TINY = dict(n_train=64, n_test=20, hidden_size=8, action_embed_dim=8, epochs=2, seeds=[0, 1], n_permutations=320,
            decode_folds=2, decode_shuffles=2, max_lag=2)


def tiny_config(**extra) -> ReplicateConfig:
    return replace_checked(ReplicateConfig(), {**TINY, **extra}, "test")


def write_tiny(tmp_path, **extra):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps({**TINY, **extra}))
    return str(path)


def test_defaults_are_the_papers_protocol():
    c = ReplicateConfig()
    assert (c.n_actions, c.sensory_dim, c.decay, c.noise_sigma, c.seq_len) == (6, 16, 0.9, 0.05, 12)
    assert (c.n_train, c.n_test, c.hidden_size, c.action_embed_dim) == (2000, 300, 96, 96)
    assert (c.lr, c.batch_size, c.epochs, c.forward_weight, c.inverse_weight) == (1e-3, 64, 20, 1.0, 1.0)
    assert c.seeds[0] == 42 and len(c.seeds) >= 5
    assert set(c.conditions) == {"shared", "separate", "forward_only", "shuffled_labels", "untrained"}
    assert c.n_permutations >= 3840
    c.validate()


def test_a_seeded_cell_is_bit_identical_when_repeated():
    config = tiny_config()
    a, b = run_cell(config, "shared", 3), run_cell(config, "shared", 3)
    for key in a["arrays"]:
        assert np.array_equal(a["arrays"][key], b["arrays"][key], equal_nan=True), key
    assert a["row"] == b["row"]


def test_untrained_cell_is_the_shared_network_before_training():
    config = tiny_config()
    untrained = run_cell(config, "untrained", 0)
    zero_epochs = run_cell(replace_checked(config, {"epochs": 0}, "test"), "shared", 0)
    assert np.array_equal(untrained["arrays"]["perform"], zero_epochs["arrays"]["perform"])
    trained = run_cell(config, "shared", 0)
    assert not np.array_equal(untrained["arrays"]["perform"], trained["arrays"]["perform"])


def test_cli_writes_metrics_units_report_and_figures(tmp_path):
    out = tmp_path / "run"
    assert cli(["replicate", "--out", str(out), "--config", write_tiny(tmp_path), "--workers", "2"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["protocol"]["n_train"] == 64 and "versions" in metrics and "git_commit" in metrics
    required = ["seed", "frac_r_gt_0.75", "frac_abs_r_gt_0.6", "max_r", "min_r", "n_mirror_fdr",
                "n_mirror_bonferroni", "n_anti_mirror_fdr", "n_permutations", "inverse_accuracy", "forward_mse",
                "decode_perform_to_observe", "decode_observe_to_perform", "decode_chance"]
    assert set(metrics["conditions"]) == {"shared", "separate", "forward_only", "shuffled_labels", "untrained"}
    for entry in metrics["conditions"].values():
        assert [row["seed"] for row in entry["per_seed"]] == [0, 1]
        for row in entry["per_seed"]:
            assert set(required) <= set(row)
        lo, hi = entry["summary"]["max_r"]["ci95"]
        assert lo <= entry["summary"]["max_r"]["mean"] <= hi
    assert "minus_untrained" in metrics["conditions"]["shared"]
    rows = list(csv.DictReader((out / "units.csv").open()))
    assert len(rows) == 5 * 2 * 8
    assert {"condition", "seed", "unit", "r", "p", "q_fdr", "peak_lag"} <= set(rows[0])
    report = (out / "report.md").read_text()
    assert "paper" in report and "untrained" in report
    for k in range(1, 5):
        assert len(list((out / "figures").glob(f"fig{k}_*.png"))) == 1


def test_existing_results_are_never_silently_overwritten_and_resume_recomputes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    config = tiny_config(seeds=[0], conditions=["shared", "untrained"], workers=1)
    replicate(config, out, show_progress=False)
    cell = out / "cells" / "shared__seed0.json"
    stamp = cell.stat().st_mtime_ns
    with pytest.raises(UserError, match="already holds results"):
        replicate(config, out, show_progress=False)
    replicate(config, out, resume=True, show_progress=False)
    assert cell.stat().st_mtime_ns == stamp
    # A killed run: one cell missing. Resume computes just that one, and it equals a fresh run.
    (out / "cells" / "untrained__seed0.json").unlink()
    replicate(config, out, resume=True, show_progress=False)
    assert cell.stat().st_mtime_ns == stamp
    with pytest.raises(UserError, match="differs"):
        replicate(tiny_config(seeds=[0], conditions=["shared", "untrained"], workers=1, epochs=3), out, resume=True,
                  show_progress=False)
    replicate(config, out, force=True, show_progress=False)
    assert cell.stat().st_mtime_ns != stamp


@pytest.mark.parametrize("argv, message", [
    (["--conditions", "shared,mirrorish"], "unknown condition 'mirrorish'"),
    (["--seeds", "1,two"], "--seeds: expected comma-separated integers"),
    (["--epochs", "-1"], "epochs"),
])
def test_bad_flags_stop_with_one_clear_line(tmp_path, capsys, argv, message):
    assert cli(["replicate", "--out", str(tmp_path / "x"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("content, message", [
    ({"hiden_size": 12}, "unknown key 'hiden_size'"),
    ({"epochs": "many"}, "epochs: expected int, got 'many'"),
    ({"lr": True}, "lr: expected float"),
    ({"n_permutations": 100}, "n_permutations must be >= 3840"),
])
def test_bad_config_files_name_the_key(tmp_path, capsys, content, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    assert cli(["replicate", "--out", str(tmp_path / "x"), "--config", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_help_describes_every_option(capsys):
    assert cli(["replicate", "--help"]) == 0
    text = capsys.readouterr().out
    for flag in ("--out", "--seeds", "--conditions", "--epochs", "--workers", "--config", "--force", "--resume"):
        assert flag in text
