"""The speed tools: the stack sampler on planted work, FLOP counting on a known product, the speed-ups of the
encoder's hot paths bit for bit against the code they replaced, and `bench limits` / `bench study` end to end."""

import contextlib
import dataclasses
import time

import numpy as np
import pytest
import torch
from torch.nn import functional as F

import mirrorlab.agents.embodied as embodied
import mirrorlab.encoders.cnn as cnn
from mirrorlab.experiments import bench_limits, bench_study
from mirrorlab.experiments.bench_profile import Rule, StackSampler, breakdown, label_of, own_function, table
from mirrorlab.experiments.cli import main as cli


# --- the stack sampler ---------------------------------------------------------------------------------------
def _waits_long():
    time.sleep(0.075)


def _waits_short():
    time.sleep(0.025)


def _planted():
    for _ in range(4):  # interleaved, so a late look at the stack under load cannot move much time across
        _waits_long()
        _waits_short()


def test_sampler_charges_planted_work_to_the_right_functions():
    with StackSampler(0.002, tagger=lambda frames: "planted" if any(f.f_code.co_name == "_planted"
                                                                    for f in frames) else None) as sampler:
        _planted()
    rules = [Rule("long", "test_bench.py", "_waits_long"), Rule("short", "test_bench.py", "_waits_short")]
    by_kind = breakdown(sampler, lambda s, _t: label_of(s, rules, innermost=True))
    assert by_kind["long"] == pytest.approx(0.3, abs=0.06) and by_kind["short"] == pytest.approx(0.1, abs=0.06)
    assert sampler.total == pytest.approx(sampler.wall, abs=0.05)  # every interval charged once
    assert breakdown(sampler, lambda _s, t: t)["planted"] == pytest.approx(0.4, abs=0.08)
    outer = breakdown(sampler, lambda s, _t: label_of(s, [Rule("outer", "test_bench.py", "_planted"), *rules],
                                                      innermost=False))
    assert outer["outer"] == pytest.approx(0.4, abs=0.08)  # the outermost match wins when asked
    assert breakdown(sampler, own_function)["tests/test_bench.py:_waits_long"] == by_kind["long"]


def _sleeps():
    time.sleep(0.2)


def _spins():
    start = time.thread_time()
    while time.thread_time() - start < 0.1:  # 0.1 s of this thread's CPU, however loaded the machine
        pass


def test_sampler_charges_cpu_seconds_to_work_not_to_waiting():
    with StackSampler(0.002) as sampler:
        _sleeps()
        _spins()
    cpu = breakdown(sampler, own_function, cpu=True)
    assert cpu["tests/test_bench.py:_spins"] == pytest.approx(0.1, abs=0.03)
    assert cpu["tests/test_bench.py:_sleeps"] < 0.02
    assert breakdown(sampler, own_function)["tests/test_bench.py:_sleeps"] == pytest.approx(0.2, abs=0.06)
    assert sampler.total_cpu == pytest.approx(sum(cpu.values()))


def test_rules_match_functions_qualified_names_and_classes():
    class Actor:
        def __call__(self):
            return Actor.__call__.__code__

    code = Actor().__call__()
    assert Rule("x", "test_bench.py", "__call__").matches(code)
    assert Rule("x", "test_bench.py", "Actor").matches(code)  # any method of the class
    assert not Rule("x", "test_bench.py", "Act").matches(code)
    assert not Rule("x", "other_file.py").matches(code)


def test_table_shares_add_up():
    from collections import Counter

    lines = table(Counter({"a": 3.0, "b": 1.0}), "t")
    assert lines[0] == "t (4.0 s):" and "75%" in lines[2] and "25%" in lines[3]
    lines = table(Counter({"a": 3.0, "b": 1.0}), "t", cpu=Counter({"a": 1.0, "b": 1.0}))
    assert lines[0] == "t (4.0 s, 2.0 CPU s):" and lines[2].endswith("50%") and "75%" in lines[2]


# --- FLOPs and limits ----------------------------------------------------------------------------------------
def test_flops_of_a_known_product_are_counted_exactly():
    a, b = torch.ones(64, 32), torch.ones(32, 16)
    assert bench_limits.count_flops(lambda: a @ b) == 2 * 64 * 32 * 16
    x, w = torch.ones(2, 3, 8, 8), torch.ones(4, 3, 3, 3)
    assert bench_limits.count_flops(lambda: F.conv2d(x, w, padding=1)) == 2 * 2 * 4 * 8 * 8 * 3 * 9


def test_bench_limits_prints_the_limit_and_the_fraction(capsys):
    assert cli(["bench", "limits", "--rounds", "1", "--frame-size", "16", "--batch-scan", "2,4"]) == 0
    out = capsys.readouterr().out
    for text in ("dense matmul", "GFLOP per CPU-second", "FLOPs counted", "of the dense limit", "ceiling for this size",
                 "channels-last", "load average", "peak memory", "batch   2:", "batch   4:"):
        assert text in out, text


@pytest.mark.parametrize("argv, flag", [(["limits", "--threads", "0"], "--threads"),
                                        (["limits", "--batch-scan", "8,x"], "--batch-scan"),
                                        (["study", "--interval", "0"], "--interval"),
                                        (["study", "--top", "0"], "--top")])
def test_bench_bad_input_is_one_line(capsys, argv, flag):
    assert cli(["bench", *argv]) == 2
    err = capsys.readouterr().err
    assert flag in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


# --- the speed-ups are bit-identical to the code they replaced --------------------------------------------------
def reference_scale(frames):
    """encoders/cnn.py before the speed-up."""
    return frames.float() / 255.0 - 0.5


def reference_shift(frames, pad, generator):
    """encoders/cnn.py's random_shift before the speed-up: a padded float copy, cropped, cast back."""
    if pad <= 0:
        return frames
    B, S = frames.shape[0], frames.shape[-1]
    padded = F.pad(frames.reshape(B, -1, S, S).float(), (pad, pad, pad, pad), mode="replicate")
    offsets = torch.randint(0, 2 * pad + 1, (B, 2), generator=generator).tolist()
    crops = [padded[b, :, y:y + S, x:x + S] for b, (y, x) in enumerate(offsets)]
    return torch.stack(crops).to(frames.dtype).reshape(frames.shape)


def reference_forward(self, frames):
    lead = frames.shape[:-4]
    x = reference_scale(frames.reshape(-1, 3 * self.n_frames, self.frame_size, self.frame_size))
    return self.project(self.convs(x)).reshape(*lead, -1)


def test_pixel_scaling_is_bit_identical_and_leaves_float_input_alone():
    every = torch.arange(256, dtype=torch.uint8)
    assert torch.equal(cnn.scale_pixels(every), reference_scale(every))
    floats = torch.rand(4, 3, 16, 16) * 255
    kept = floats.clone()
    assert torch.equal(cnn.scale_pixels(floats), reference_scale(floats)) and torch.equal(floats, kept)


@pytest.mark.parametrize("pad", [0, 1, 2, 4])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_random_shift_is_bit_identical(pad, dtype):
    frames = (torch.rand(5, 7, 3, 3, 16, 16, generator=torch.Generator().manual_seed(pad)) * 255).to(dtype)
    new = cnn.random_shift(frames, pad, torch.Generator().manual_seed(11))
    old = reference_shift(frames, pad, torch.Generator().manual_seed(11))
    assert new.dtype == frames.dtype and torch.equal(new, old)
    if pad:
        assert not torch.equal(new, frames)  # it does shift


@contextlib.contextmanager
def reference_code():
    import mirrorlab.agents.imitation as imitation

    saved = (cnn.FrameEncoder.forward, cnn.random_shift, embodied.frames_as_targets, imitation.random_shift)
    cnn.FrameEncoder.forward, cnn.random_shift, embodied.frames_as_targets, imitation.random_shift = \
        reference_forward, reference_shift, reference_scale, reference_shift
    try:
        yield
    finally:
        cnn.FrameEncoder.forward, cnn.random_shift, embodied.frames_as_targets, imitation.random_shift = saved


def test_a_fitted_frame_policy_is_bit_identical_to_the_reference_code():
    from mirrorlab.agents.imitation import fit_frame_policy

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    windows = rng.integers(0, 256, (40, 3, 3, 16, 16), dtype=np.uint8)
    actions = rng.uniform(-1, 1, (40, 2)).astype(np.float32)
    fast = fit_frame_policy(windows, actions, epochs=2, batch_size=16, seed=3).state_dict()
    with reference_code():
        slow = fit_frame_policy(windows, actions, epochs=2, batch_size=16, seed=3).state_dict()
    assert all(torch.equal(fast[k], slow[k]) for k in fast)


def test_trained_weights_are_bit_identical_to_the_reference_code():
    from mirrorlab.agents.runs import TrainConfig

    torch.set_num_threads(1)
    config = TrainConfig(batch_size=2, cnn_channels=4, embed_dim=8, hidden_size=12)
    signature = {**bench_limits.SIGNATURE, "frame_size": 16, "max_steps": 6}
    batch = bench_limits.synthetic_batch(signature, config.batch_size)
    fast, fast_step = bench_limits.training_step(config, signature, batch)
    with reference_code():
        slow, slow_step = bench_limits.training_step(config, signature, batch)
        for _ in range(4):
            slow_step()
    for _ in range(4):
        fast_step()
    before = bench_limits.training_step(config, signature, batch)[0].state_dict()
    after = fast.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in after)  # training moved the weights
    assert all(torch.equal(after[k], slow.state_dict()[k]) for k in after)


# --- bench study ---------------------------------------------------------------------------------------------
def test_reduction_is_listed_and_keeps_imitation_when_asked():
    from mirrorlab.experiments.study import PRESETS

    medium = PRESETS["medium"]
    small = bench_study.reduced(medium, None)
    listed = bench_study.changes(medium, small)
    assert "seeds: (0, 1, 2, 3, 4) -> (0,)" in listed and "collect.demonstrator: 'sac' -> 'scripted'" in listed
    assert any(line.startswith("imitate.policy_epochs") for line in listed)
    kept = bench_study.reduced(medium, None, keep_imitation=True)
    assert kept.imitate == medium.imitate and kept.collect.episodes == medium.collect.episodes and kept.seeds == (0,)


def test_bench_study_profiles_every_stage_and_inside_imitation(tmp_path):
    from mirrorlab.agents.collection import CollectConfig
    from mirrorlab.agents.runs import TrainConfig
    from mirrorlab.experiments.stages.episode_video import VideoConfig
    from mirrorlab.experiments.stages.imitation import ImitateConfig
    from mirrorlab.experiments.study import StudyConfig
    from tests.conftest import TINY_TRAIN

    tiny = StudyConfig(toy=False, seeds=(0,), conditions=("shared", "untrained"),
                       appearances=("identical",), views=("third_person",),
                       collect=CollectConfig(frame_size=16, episodes=20, babble=3),
                       train=TrainConfig(**{**TINY_TRAIN, "epochs": 1, "test_fraction": 0.25}),
                       imitate=ImitateConfig(episodes=2, policy_epochs=1, refit_epochs=1, dagger_iterations=1,
                                             dagger_episodes=1, bco_iterations=1, plan_iterations=3,
                                             replan_iterations=1, bootstrap=50), video=VideoConfig(size=64))
    sampler, timings = bench_study.profile_study(dataclasses.replace(tiny, workers=2), tmp_path / "s", 0.002)
    assert set(timings["stages_s"]) >= {"collect", "train", "analyze", "imitate"} and timings["workers"] == 1
    text = "\n".join(bench_study.profile_lines(sampler, timings, 5))
    for line in ("by stage (the study's clock", "inside imitate, by method", "synthesis", "dagger", "task setup",
                 "planning through the core", "policy fits", "rendering", "load average"):
        assert line in text, line
    imitate = breakdown(sampler, lambda s, _t: label_of(s, bench_study.STAGES, innermost=False))["imitate"]
    assert imitate == pytest.approx(timings["stages_s"]["imitate"], rel=0.2)  # samples agree with the clock
    assert np.isfinite(sampler.total) and sampler.total == pytest.approx(sampler.wall, rel=0.05)
