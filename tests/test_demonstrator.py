import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs  # noqa: F401
from agents.demonstrator import evaluate_policy_on_seeds, load_demonstrator, load_model
from experiments.cli import main as cli
from experiments.demo import DemoTrainConfig, make_other_env, train
from experiments.errors import UserError

TINY = dict(timesteps=60, learning_starts=30, batch_size=8, net_arch=(16,))


def tiny_train(out, **extra):
    return train(DemoTrainConfig(**{**TINY, **extra}), out, show_progress=False)


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


def test_save_load_round_trip_predicts_the_same(checkpoint):
    record = json.loads((checkpoint / "config.json").read_text())
    assert record["config"]["algo"] == "sac" and record["seeds"] == [0] and "versions" in record
    assert list((checkpoint / "tb").iterdir())  # TensorBoard logs
    env = make_other_env("mirrorlab/PlanarReach-v0")
    model = load_demonstrator(checkpoint, env)
    again = load_model(checkpoint / "model.zip", env)
    obs = observations()
    a, _ = model.predict(obs, deterministic=True)
    b, _ = again.predict(obs, deterministic=True)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (20, 2) and np.all(np.abs(a) <= 1)
    env.close()


def test_training_is_reproducible_with_a_seed(checkpoint, tmp_path):
    tiny_train(tmp_path / "again")
    first, second = load_model(checkpoint), load_model(tmp_path / "again")
    for (name, p), (_, q) in zip(first.policy.state_dict().items(), second.policy.state_dict().items()):
        assert torch.equal(p, q), name


def test_ppo_round_trip(tmp_path):
    tiny_train(tmp_path / "ppo", algo="ppo", n_steps=32, n_epochs=1)
    obs = observations(5)
    env = make_other_env("mirrorlab/PlanarReach-v0")
    a = load_demonstrator(tmp_path / "ppo", env).predict(obs, deterministic=True)[0]
    b = load_demonstrator(tmp_path / "ppo", env).predict(obs, deterministic=True)[0]
    np.testing.assert_array_equal(a, b)
    env.close()


def test_missing_or_corrupt_checkpoints_name_the_file(checkpoint, tmp_path):
    env = make_other_env("mirrorlab/PlanarReach-v0")
    with pytest.raises(UserError, match=f"{tmp_path / 'none'} does not exist"):
        load_demonstrator(tmp_path / "none", env)
    broken = tmp_path / "broken"
    broken.mkdir()
    with pytest.raises(UserError, match=r"missing .*config\.json"):
        load_demonstrator(broken, env)
    (broken / "config.json").write_text((checkpoint / "config.json").read_text())
    with pytest.raises(UserError, match=r"missing .*broken/model\.zip"):
        load_demonstrator(broken, env)
    (broken / "model.zip").write_bytes(b"garbage")
    with pytest.raises(UserError, match=r"broken/model\.zip is corrupt"):
        load_demonstrator(broken, env)
    data = (checkpoint / "model.zip").read_bytes()
    (broken / "model.zip").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"broken/model\.zip is corrupt"):
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
    assert "already exists" in capsys.readouterr().err
    assert cli(["demo", "eval", "--checkpoint", str(out), "--episodes", "3"]) == 0
    printed = capsys.readouterr().out
    for name in ("trained", "scripted", "random"):
        assert name in printed
    record = json.loads((out / "eval.json").read_text())
    assert record["results"]["scripted"]["success_rate"] >= record["results"]["random"]["success_rate"]
    assert cli(["demo", "eval", "--checkpoint", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err
