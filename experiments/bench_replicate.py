"""`mirrorlab bench replicate`: where the replication's time goes, measured side by side in one run.

Prints, for one cell of the default protocol, the seconds of training, of the sequence-level
permutation null (B from the config) and of cross-mode decoding, and their ratios to training
(the null must not dominate), and of every measure of a cell together. With `--full`, also the wall
time of the whole default replication (5 conditions x 5 seeds) against its 180 s target on 2 cores.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from mirrorlab.experiments.cli import OneLineParser


def main(argv: list[str]) -> int:
    parser = OneLineParser(prog="mirrorlab bench replicate", description=__doc__)
    parser.add_argument("--full", action="store_true", help="also time the whole default replication")
    args = parser.parse_args(argv)

    import torch
    from threadpoolctl import threadpool_limits

    from mirrorlab.agents.conditions import get_condition
    from mirrorlab.agents.toy import build_toy_core, record_toy_activations
    from mirrorlab.agents.training import train_toy_core
    from mirrorlab.analysis.decoding import cross_condition_decoding
    from mirrorlab.analysis.measures import measure_mirroring
    from mirrorlab.analysis.mirror_stats import mirror_unit_test
    from mirrorlab.envs.toy import make_effects, make_sequences
    from mirrorlab.experiments.stages.replication import ReplicateConfig, replicate

    torch.set_num_threads(1)
    threadpool_limits(limits=1)
    c = ReplicateConfig()
    rng = np.random.default_rng(42)
    effects = make_effects(c.n_actions, c.sensory_dim, rng)
    train = make_sequences(c.n_train, c.seq_len, effects, c.decay, c.noise_sigma, rng)
    test = make_sequences(c.n_test, c.seq_len, effects, c.decay, c.noise_sigma, rng)
    model = build_toy_core(c.n_actions, c.sensory_dim, c.action_embed_dim, c.hidden_size, False, 42)
    t0 = time.perf_counter()
    train_toy_core(model, train, get_condition("shared"), epochs=c.epochs, batch_size=c.batch_size, lr=c.lr,
                   forward_weight=c.forward_weight, inverse_weight=c.inverse_weight, seed=42)
    t_train = time.perf_counter() - t0
    acts = record_toy_activations(model, test)
    t0 = time.perf_counter()
    mirror_unit_test(acts.perform, acts.observe, c.n_permutations, np.random.default_rng(2))
    t_null = time.perf_counter() - t0
    t0 = time.perf_counter()
    cross_condition_decoding(acts.perform, acts.observe, test.actions, np.random.default_rng(3),
                             n_folds=c.decode_folds, n_shuffles=c.decode_shuffles)
    t_decode = time.perf_counter() - t0
    t0 = time.perf_counter()
    measure_mirroring(acts.perform, acts.observe, test.actions, 42, c.measure_settings())
    t_all = time.perf_counter() - t0
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"one cell (shared, seed 42, 1 thread): train {t_train:.2f} s | null B={c.n_permutations} "
          f"{t_null:.2f} s ({t_null / t_train:.2f}x train) | decoding {t_decode:.2f} s "
          f"({t_decode / t_train:.2f}x train) | every measure {t_all:.2f} s ({t_all / t_train:.2f}x train)")
    if args.full:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            replicate(c, Path(tmp) / "run", show_progress=False)
            wall = time.perf_counter() - t0
        print(f"default replication (5 conditions x 5 seeds): {wall:.0f} s; target 180 s; ratio "
              f"{wall / 180:.2f} (<= 1 meets it)")
    return 0
