"""mirrorlab.agents.demonstrator and `mirrorlab demo`: SB3 training, a checkpoint that cannot run code, evaluation."""

import json
import os
import pickle
import zipfile

import gymnasium as gym
import numpy as np
import pytest
import torch

import mirrorlab.envs  # noqa: F401
from mirrorlab.agents.demonstrator import (
    DemoTrainConfig,
    evaluate_policy_on_seeds,
    load_demonstrator,
    make_other_env,
    train_demonstrator,
)
from mirrorlab.errors import UserError
from mirrorlab.experiments.cli import main as cli

TINY = dict(timesteps=60, learning_starts=30, batch_size=8, net_arch=(16,))


def tiny_train(out, **extra):
    out.mkdir(parents=True)
    return train_demonstrator(DemoTrainConfig(**{**TINY, **extra}), out, show_progress=False)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "sac"
    tiny_train(out)
    return out


def observations(n=20):
    env = make_other_env("mirrorlab/PlanarReach-v0")
    obs = np.stack([env.reset(seed=s)[0] for s in range(n)])
    env.close()
    return obs


def test_save_load_round_trip_predicts_exactly_what_sb3_predicts(checkpoint):
    from stable_baselines3 import SAC

    record = json.loads((checkpoint / "config.json").read_text())
    assert record["config"]["algo"] == "sac" and record["seeds"] == [0] and "versions" in record
    assert list((checkpoint / "tb").iterdir())  # TensorBoard logs
    env = make_other_env("mirrorlab/PlanarReach-v0")
    loaded = load_demonstrator(checkpoint, env)
    obs = observations()
    a, _ = loaded.predict(obs, deterministic=True)
    # SB3's own zip, opened here only because this test wrote it a moment ago: the same actions.
    b, _ = SAC.load(checkpoint / "sb3_model.zip", device="cpu").predict(obs, deterministic=True)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (20, 2) and np.all(np.abs(a) <= 1)
    env.close()


def test_training_is_reproducible_with_a_seed(checkpoint, tmp_path):
    tiny_train(tmp_path / "again")
    first = torch.load(checkpoint / "policy.pt", weights_only=True)
    second = torch.load(tmp_path / "again" / "policy.pt", weights_only=True)
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_ppo_round_trip(tmp_path):
    from stable_baselines3 import PPO

    tiny_train(tmp_path / "ppo", algo="ppo", n_steps=32, n_epochs=1)
    obs = observations(5)
    env = make_other_env("mirrorlab/PlanarReach-v0")
    a = load_demonstrator(tmp_path / "ppo", env).predict(obs, deterministic=True)[0]
    b = PPO.load(tmp_path / "ppo" / "sb3_model.zip", device="cpu").predict(obs, deterministic=True)[0]
    np.testing.assert_array_equal(a, b)
    env.close()


class _RunsCode:
    """Unpickling this runs a shell command: the attack a checkpoint must not be able to carry."""

    def __init__(self, flag):
        self.flag = str(flag)

    def __reduce__(self):
        return (os.system, (f"touch {self.flag}",))


def test_a_crafted_checkpoint_cannot_run_code(checkpoint, tmp_path):
    env = make_other_env("mirrorlab/PlanarReach-v0")
    flag = tmp_path / "code-ran"
    # 1. A pickle hidden in the weights file: torch's weights-only loader refuses it.
    bad = tmp_path / "weights"
    bad.mkdir()
    (bad / "policy.json").write_text((checkpoint / "policy.json").read_text())
    state = torch.load(checkpoint / "policy.pt", weights_only=True)
    torch.save({**state, "extra": _RunsCode(flag)}, bad / "policy.pt")
    with pytest.raises(UserError, match=r"policy\.pt: not a readable weights file"):
        load_demonstrator(bad, env)
    # 2. SB3's zip with a `:serialized:` payload (the attack on SB3's loader): mirrorlab never opens it,
    #    neither beside a valid checkpoint nor alone.
    zipped = tmp_path / "zipped"
    zipped.mkdir()
    for name in ("policy.json", "policy.pt"):
        (zipped / name).write_bytes((checkpoint / name).read_bytes())
    with zipfile.ZipFile(checkpoint / "sb3_model.zip") as src, zipfile.ZipFile(zipped / "sb3_model.zip", "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "data":
                payload = json.loads(data)
                payload["evil"] = {":type:": "<class 'object'>",
                                   ":serialized:": __import__("base64").b64encode(pickle.dumps(_RunsCode(flag))).decode()}
                data = json.dumps(payload).encode()
            dst.writestr(item, data)
    load_demonstrator(zipped, env).predict(observations(2))
    only_zip = tmp_path / "only_zip"
    only_zip.mkdir()
    (only_zip / "model.zip").write_bytes((zipped / "sb3_model.zip").read_bytes())
    with pytest.raises(UserError, match=r"missing .*policy\.json \(an SB3 model\.zip alone is never loaded"):
        load_demonstrator(only_zip, env)
    assert cli(["collect", "--out", str(tmp_path / "data"), "--demonstrator", str(zipped), "--episodes", "1",
                "--babble", "0", "--frame-size", "16", "--workers", "1", "--verify-episodes", "0"]) == 0
    # 3. A description with anything beyond the known keys, or weights beyond the architecture: refused.
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "policy.pt").write_bytes((checkpoint / "policy.pt").read_bytes())
    desc = json.loads((checkpoint / "policy.json").read_text())
    (extra / "policy.json").write_text(json.dumps({**desc, "custom_objects": "x"}))
    with pytest.raises(UserError, match="expected exactly the keys"):
        load_demonstrator(extra, env)
    (extra / "policy.json").write_text(json.dumps(desc))
    torch.save({**state, "stowaway": torch.zeros(3)}, extra / "policy.pt")
    with pytest.raises(UserError, match="do not match the described SAC policy"):
        load_demonstrator(extra, env)
    env.close()
    assert not flag.exists()


def test_missing_or_corrupt_checkpoints_name_the_file(checkpoint, tmp_path):
    env = make_other_env("mirrorlab/PlanarReach-v0")
    with pytest.raises(UserError, match=f"{tmp_path / 'none'} does not exist"):
        load_demonstrator(tmp_path / "none", env)
    broken = tmp_path / "broken"
    broken.mkdir()
    with pytest.raises(UserError, match=r"missing .*policy\.json"):
        load_demonstrator(broken, env)
    (broken / "policy.json").write_text((checkpoint / "policy.json").read_text())
    with pytest.raises(UserError, match=r"broken/policy\.pt: not found"):
        load_demonstrator(broken, env)
    data = (checkpoint / "policy.pt").read_bytes()
    (broken / "policy.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"broken/policy\.pt: not a readable weights file"):
        load_demonstrator(broken, env)
    (broken / "policy.json").write_text("{not json")
    with pytest.raises(UserError, match=r"broken/policy\.json: not readable JSON"):
        load_demonstrator(broken, env)
    env.close()
    arm3d = gym.make("mirrorlab/Arm3DReach-v0", actor="other")
    with pytest.raises(UserError, match="was trained on mirrorlab/PlanarReach-v0"):
        load_demonstrator(checkpoint, arm3d)
    arm3d.close()


@pytest.mark.parametrize("env_id", ["mirrorlab/PlanarReach-v0", "mirrorlab/Arm3DReach-v0"])
def test_scripted_demonstrator_reaches(env_id):
    result = evaluate_policy_on_seeds(lambda: make_other_env(env_id), lambda env: load_demonstrator("scripted", env),
                                      list(range(1_000_000, 1_000_010)))
    assert result["success_rate"] >= 0.8


def test_demo_cli_train_and_eval(tmp_path, capsys):
    out = tmp_path / "ckpt"
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"learning_starts": 20, "batch_size": 8, "net_arch": [8]}))
    assert cli(["demo", "train", "--timesteps", "30", "--out", str(out), "--config", str(config)]) == 0
    assert cli(["demo", "train", "--timesteps", "30", "--out", str(out)]) == 2
    assert "already holds results" in capsys.readouterr().err
    assert cli(["demo", "eval", "--checkpoint", str(out), "--episodes", "3"]) == 0
    printed = capsys.readouterr().out
    for name in ("trained", "scripted", "random"):
        assert name in printed
    record = json.loads((out / "eval.json").read_text())
    assert record["results"]["scripted"]["success_rate"] >= record["results"]["random"]["success_rate"]
    assert cli(["demo", "eval", "--checkpoint", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err
    # An existing eval.json is replaced only with --force, and refused before any episode runs.
    before = (out / "eval.json").read_bytes()
    assert cli(["demo", "eval", "--checkpoint", str(out), "--episodes", "2"]) == 2
    assert "already holds eval.json; pass --force" in capsys.readouterr().err
    assert (out / "eval.json").read_bytes() == before
    assert cli(["demo", "eval", "--checkpoint", str(out), "--episodes", "2", "--force"]) == 0
    assert json.loads((out / "eval.json").read_text())["config"]["episodes"] == 2


def test_demo_train_force_keeps_the_old_checkpoint_when_the_new_training_fails(checkpoint, tmp_path, monkeypatch,
                                                                                capsys):
    import shutil

    import mirrorlab.agents.demonstrator as demonstrator

    out = tmp_path / "ckpt"
    shutil.copytree(checkpoint, out)
    (out / ".mirrorlab-output.json").write_text(json.dumps({"command": "demo"}))
    before = (out / "policy.pt").read_bytes()

    def fails(config, folder, show_progress=True):
        (folder / "policy.pt").write_bytes(b"half")
        raise UserError(f"{folder}/policy.pt: the disk is full")

    monkeypatch.setattr(demonstrator, "train_demonstrator", fails)
    assert cli(["demo", "train", "--timesteps", "30", "--out", str(out), "--force"]) == 2
    assert "the disk is full" in capsys.readouterr().err
    assert (out / "policy.pt").read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_the_same_seed_trains_the_same_policy(tmp_path):
    """SAC on CPU is bit-for-bit reproducible at a fixed seed and thread count (torch_threads, recorded in
    config.json): the policy depends on the thread count, so it is a config value, not the machine's."""
    short = dict(timesteps=300, learning_starts=100, batch_size=32, net_arch=(16, 16))
    weights = []
    for name in ("a", "b"):
        tiny_train(tmp_path / name, **short)
        weights.append(torch.load(tmp_path / name / "policy.pt", weights_only=True))
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key
    tiny_train(tmp_path / "c", **short, seed=1)  # and the comparison can fail: another seed, other weights
    other = torch.load(tmp_path / "c" / "policy.pt", weights_only=True)
    assert any(not torch.equal(weights[0][k], other[k]) for k in other)


def _description(checkpoint, tmp_path, **changes):
    folder = tmp_path / "described"
    folder.mkdir(exist_ok=True)
    (folder / "policy.pt").write_bytes((checkpoint / "policy.pt").read_bytes())
    desc = json.loads((checkpoint / "policy.json").read_text())
    (folder / "policy.json").write_text(json.dumps({**desc, **changes}))
    return folder


def test_a_policy_json_naming_a_module_as_env_imports_nothing(checkpoint, tmp_path, monkeypatch):
    import sys

    flag = tmp_path / "imported"
    (tmp_path / "evil_policy_env.py").write_text(f"open({str(flag)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    folder = _description(checkpoint, tmp_path, env_id="evil_policy_env:Reach-v0")
    assert cli(["demo", "eval", "--checkpoint", str(folder), "--episodes", "1"]) == 2
    assert not flag.exists() and "evil_policy_env" not in sys.modules


@pytest.mark.parametrize("changes, expected", [
    ({"net_arch": [999_999, 999_999]}, "key 'net_arch': [999999, 999999] makes a network of 1e+12 weights"),
    ({"net_arch": "256"}, "key 'net_arch': expected a list, got str"),
    ({"format_version": "1"}, "key 'format_version': expected an integer, got str"),
    ({"env_id": ["mirrorlab/PlanarReach-v0"]}, "key 'env_id': expected a string, got list"),
])
def test_sizes_and_types_a_policy_json_declares_are_checked_before_allocating(checkpoint, tmp_path, changes,
                                                                               expected):
    folder = _description(checkpoint, tmp_path, **changes)
    with pytest.raises(UserError) as err:
        load_demonstrator(folder, make_other_env("mirrorlab/PlanarReach-v0"))
    assert expected in str(err.value) and "policy.json" in str(err.value), err.value


def test_a_symlinked_weights_file_is_refused(checkpoint, tmp_path):
    folder = tmp_path / "linked"
    folder.mkdir()
    (folder / "policy.json").write_text((checkpoint / "policy.json").read_text())
    (folder / "policy.pt").symlink_to(checkpoint / "policy.pt")
    with pytest.raises(UserError, match=r"linked/policy\.pt is a symbolic link"):
        load_demonstrator(folder, make_other_env("mirrorlab/PlanarReach-v0"))
