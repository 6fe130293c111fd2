"""`mirrorlab bench limits`: how close embodied training comes to what this machine's cores can do.

Measured in one run, on this process's threads (default 1, as each study worker trains):
- the machine's limit: dense float32 GFLOP per CPU-second of a large matmul (2048 x 2048) and of a
  large 3x3 convolution (64 -> 64 channels, 64 x 64 px), the best of a few rounds. Rates are per
  CPU-second of this process, which other processes on a shared machine barely move (wall-clock
  rates fall with every other job on the cores); wall times are printed beside them;
- one training step of the embodied core at a run's shapes (TrainConfig's batch of episodes, the
  study's frame size and episode length, synthetic frames: FLOPs do not depend on pixel values): its
  FLOPs counted by torch's FlopCounterMode (forward and backward; the optimiser's elementwise updates
  are not FLOPs it counts), its seconds, the rate it reaches and that rate's fraction of the limit;
- the ceiling for this model size: the core's own convolutions (CNN encoder on the watched windows,
  deconvolutional decoder on the hidden states, forward and backward) alone at the same shapes. Small
  channel counts make these kernels memory-bound, so even they reach only part of the dense limit;
- side by side in the same rounds, the step with the core in channels-last memory format: an option,
  not the default, since its convolutions round differently (weights are not bit-identical);
- with `--batch-scan`, the CPU cost per training sequence at other batch sizes.
"""

from __future__ import annotations

import os
import resource
import time
from typing import Any, Callable

from mirrorlab.errors import UserError
from mirrorlab.experiments.cli import OneLineParser

SIGNATURE = {"env_id": "mirrorlab/PlanarReach-v0", "frame_size": 32, "action_dim": 2, "max_steps": 50}


def best_seconds(fn: Callable[[], Any], rounds: int, repeats: int = 1) -> tuple[float, float]:
    """(wall, CPU) seconds per call: the fastest of `rounds` timings of `repeats` calls each (after one
    warm-up call), the least disturbed measurement on a shared machine. CPU time counts only this
    process's work (all its threads), so it barely moves when other processes load the cores."""
    fn()
    wall = cpu = float("inf")
    for _ in range(rounds):
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(repeats):
            fn()
        wall = min(wall, (time.perf_counter() - start) / repeats)
        cpu = min(cpu, (time.process_time() - start_cpu) / repeats)
    return wall, cpu


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call as torch counts them (matmuls and convolutions, forward and backward)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def dense_limit(rounds: int = 3) -> dict[str, float]:
    """GFLOP per CPU-second of a large float32 matmul and a large 3x3 convolution on the current torch threads."""
    import torch
    from torch.nn import functional as F

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2048, 2048, generator=g), torch.randn(2048, 2048, generator=g)
    x, w = torch.randn(16, 64, 64, 64, generator=g), torch.randn(64, 64, 3, 3, generator=g)
    out = {}
    for name, fn in (("matmul", lambda: a @ b), ("conv", lambda: F.conv2d(x, w, padding=1))):
        out[name] = count_flops(fn) / best_seconds(fn, rounds)[1] / 1e9
    return out


def synthetic_batch(signature: dict[str, Any], batch_size: int, seed: int = 0) -> dict[str, Any]:
    """A demo batch of the trainer's shapes: actions and uint8 frames of both arms."""
    import torch

    g = torch.Generator().manual_seed(seed)
    B, T, S, A = batch_size, signature["max_steps"], signature["frame_size"], signature["action_dim"]
    frames = lambda: torch.randint(0, 256, (B, T + 1, 3, S, S), dtype=torch.uint8, generator=g)  # noqa: E731
    return {"actions": torch.rand(B, T, A, generator=g) * 2 - 1, "perform": {"frames": frames()},
            "observe": {"frames": frames()}}


def training_step(config, signature: dict[str, Any], batch: dict[str, Any], channels_last: bool = False):
    """(model, one trainer step on `batch`: the loss of agents.training, backward, Adam)."""
    import torch

    from mirrorlab.agents.conditions import get_condition
    from mirrorlab.agents.runs import build_core
    from mirrorlab.agents.training import embodied_batch_loss

    model = build_core(config, signature)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    condition = get_condition(config.condition)

    def step() -> None:
        augment = torch.Generator().manual_seed(config.seed) if config.augment_shift else None
        loss, _ = embodied_batch_loss(model, condition, config, "demo", batch, batch["actions"], augment)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model, step


def conv_only(model, config, batch: dict[str, Any]) -> Callable[[], None]:
    """The core's convolutions alone at the step's shapes: encoder on the windows, decoder on hidden states."""
    import torch

    from mirrorlab.agents.embodied import observed_input

    B, T = batch["actions"].shape[:2]
    windows = observed_input(batch["observe"]["frames"], tuple(config.observe_window))
    x = windows.reshape(B * T, -1, *windows.shape[-2:]).float() / 255.0 - 0.5
    hidden = torch.randn(B * T, config.hidden_size)
    encoder, decoder = model.sensory_encoder.convs, model.forward_head

    def run() -> None:
        (encoder(x).sum() + decoder(hidden).sum()).backward()
    return run


def measure(config, signature: dict[str, Any], rounds: int) -> dict[str, float]:
    """Every figure of the table, timed in the same process and rounds."""
    batch = synthetic_batch(signature, config.batch_size)
    model, step = training_step(config, signature, batch)
    _, step_cl = training_step(config, signature, batch, channels_last=True)
    ceiling = conv_only(model, config, batch)
    out = {f"{k}_gflops": v for k, v in dense_limit(rounds).items()}
    out["step_gflop"], out["conv_gflop"] = count_flops(step) / 1e9, count_flops(ceiling) / 1e9
    times = {name: (float("inf"), float("inf")) for name in ("step", "step_cl", "conv")}
    for _ in range(rounds):  # interleaved, so each sees the same load
        for name, fn in (("step", step), ("step_cl", step_cl), ("conv", ceiling)):
            wall, cpu = best_seconds(fn, 1, 3)
            times[name] = (min(times[name][0], wall), min(times[name][1], cpu))
    for name, (wall, cpu) in times.items():
        out[f"{name}_s"], out[f"{name}_cpu_s"] = wall, cpu
    return out


def report(m: dict[str, float], config, signature: dict[str, Any], threads: int) -> list[str]:
    """Rates are FLOPs per CPU-second of this process (robust to other load); wall times beside them."""
    limit = max(m["matmul_gflops"], m["conv_gflops"])
    step_rate, conv_rate = m["step_gflop"] / m["step_cpu_s"], m["conv_gflop"] / m["conv_cpu_s"]
    return [
        f"machine limit on {threads} thread(s) of {os.cpu_count()} CPUs, GFLOP per CPU-second (load average "
        f"{os.getloadavg()[0]:.1f}):",
        f"  dense matmul 2048^2:           {m['matmul_gflops']:8.1f}",
        f"  dense conv 3x3 64->64, 64 px:  {m['conv_gflops']:8.1f}",
        f"embodied core, one training step (batch {config.batch_size} episodes x {signature['max_steps']} steps, "
        f"{signature['frame_size']} px, {config.cnn_channels} channels, GRU {config.hidden_size}):",
        f"  FLOPs counted:                 {m['step_gflop']:8.2f} GFLOP (of which its convolutions "
        f"{m['conv_gflop']:.2f})",
        f"  CPU seconds per step:          {m['step_cpu_s']:8.3f} (wall {m['step_s']:.3f})",
        f"  rate:                          {step_rate:8.1f} GFLOP per CPU-second = {step_rate / limit:.0%} of the "
        f"dense limit (target >= 25%)",
        f"  ceiling for this size: its convolutions alone {conv_rate:.1f} = {conv_rate / limit:.0%} of the limit; "
        f"the whole step reaches {step_rate / conv_rate:.0%} of that",
        f"  channels-last (an option, not bit-identical): {m['step_cl_cpu_s']:.3f} CPU s per step, "
        f"{m['step_cpu_s'] / m['step_cl_cpu_s']:.2f}x the default",
        f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB",
    ]


def batch_scan(config, signature: dict[str, Any], sizes: list[int], rounds: int) -> list[str]:
    """CPU milliseconds per training sequence at each batch size, default and channels-last: whether
    larger batches would use the cores better (the step's kernels are already 400 frames wide)."""
    import dataclasses

    lines = [f"batch size scan, CPU ms per sequence (load average {os.getloadavg()[0]:.1f}):"]
    for size in sizes:
        c = dataclasses.replace(config, batch_size=size)
        batch = synthetic_batch(signature, size)
        per = [best_seconds(training_step(c, signature, batch, cl)[1], rounds)[1] * 1000 / size for cl in (False, True)]
        lines.append(f"  batch {size:3d}: {per[0]:6.1f} default, {per[1]:6.1f} channels-last")
    return lines


def main(argv: list[str]) -> int:
    parser = OneLineParser(prog="mirrorlab bench limits", description=__doc__)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: one study worker)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds; the best is kept")
    parser.add_argument("--frame-size", type=int, default=SIGNATURE["frame_size"], help="frame size in px")
    parser.add_argument("--batch-scan", default="", help="also CPU cost per sequence at these batch sizes (4,8,16)")
    args = parser.parse_args(argv)
    try:
        sizes = [int(b) for b in args.batch_scan.split(",") if b.strip()]
    except ValueError:
        raise UserError(f"--batch-scan must be comma-separated batch sizes, got {args.batch_scan!r}") from None
    if any(not 1 <= b <= 256 for b in sizes):
        raise UserError(f"--batch-scan sizes must be in 1..256, got {args.batch_scan!r}")
    if not 1 <= args.threads <= 256:
        raise UserError(f"--threads must be in 1..256, got {args.threads}")
    if not 1 <= args.rounds <= 100:
        raise UserError(f"--rounds must be in 1..100, got {args.rounds}")
    if args.frame_size % 16 or not 16 <= args.frame_size <= 256:
        raise UserError(f"--frame-size must be a multiple of 16 in 16..256, got {args.frame_size}")
    import torch

    from mirrorlab.agents.runs import TrainConfig

    torch.set_num_threads(args.threads)
    config, signature = TrainConfig(), {**SIGNATURE, "frame_size": args.frame_size}
    print("\n".join(report(measure(config, signature, args.rounds), config, signature, args.threads)))
    if sizes:
        print("\n".join(batch_scan(config, signature, sizes, args.rounds)))
    return 0
