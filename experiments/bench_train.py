"""`mirrorlab bench train`: does data loading starve embodied training?

Times, side by side in one run and on the same batches, (a) the trainer's own pipeline (episodes
read from HDF5 and checked, kept in its bounded in-memory cache after the first epoch, then a
training step) and (b) a bare PyTorch loop over the same batches already in memory. Prints sequences/s
of each, their ratio (target >= 0.8) and the process's peak memory. Without `--data` it first collects
a small scripted dataset.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import tempfile
import time
from pathlib import Path

from mirrorlab.errors import UserError
from mirrorlab.experiments.cli import OneLineParser


def main(argv: list[str]) -> int:
    parser = OneLineParser(prog="mirrorlab bench train", description=__doc__)
    parser.add_argument("--data", type=Path, default=None, help="a dataset of `mirrorlab collect` (default: make one)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating timed epochs of each loop; best kept")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 100:
        raise UserError(f"--rounds must be in 1..100, got {args.rounds}")

    import torch

    from mirrorlab.agents.collection import CollectConfig
    from mirrorlab.agents.conditions import get_condition
    from mirrorlab.agents.runs import TrainConfig, build_core, data_signature, split_episodes
    from mirrorlab.agents.training import embodied_batch_loss, training_batches
    from mirrorlab.envs.paired import PairedDataset
    from mirrorlab.experiments.stages.collection import collect

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = Path(tmp) / "data"
            collect(dataclasses.replace(CollectConfig(), episodes=64, babble=32, frame_size=32, verify_episodes=0),
                    data, show_progress=False)
        config = TrainConfig()
        torch.set_num_threads(config.threads)
        with PairedDataset(data) as ds:
            signature = data_signature(ds.header)
            train_ids, _ = split_episodes([r.episode_id for r in ds.episodes("demo")], config.test_fraction)
            has_babble = bool(ds.episodes("babble"))
        batches, _ = training_batches(config, data, train_ids, has_babble)
        condition = get_condition("shared")
        model = build_core(config, signature)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)

        def step(kind, batch):
            loss, _ = embodied_batch_loss(model, condition, config, kind, batch, batch["actions"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return batch["actions"].shape[0]

        in_memory = list(batches.epoch(config.seed, 0))
        best = {"pipeline": 0.0, "bare": 0.0}
        for r in range(args.rounds):
            for name in ("pipeline", "bare"):
                t0 = time.perf_counter()
                source = batches.epoch(config.seed, r) if name == "pipeline" else in_memory
                n = sum(step(kind, batch) for kind, batch in source)
                best[name] = max(best[name], n / (time.perf_counter() - t0))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ratio = best["pipeline"] / best["bare"]
    print(f"embodied training, {signature['frame_size']} px, batch {config.batch_size} episodes of "
          f"{signature['max_steps']} steps, {config.threads} thread(s); load average {os.getloadavg()[0]:.1f}:")
    print(f"  trainer pipeline (HDF5 -> checks -> cache -> step): {best['pipeline']:.1f} sequences/s")
    print(f"  bare loop over the same batches in memory:          {best['bare']:.1f} sequences/s")
    print(f"  ratio {ratio:.2f} (target >= 0.8: {'met' if ratio >= 0.8 else 'NOT met'}); peak memory {peak_mib:.0f} MiB")
    return 0
