"""Where one imitation job's time goes: one (dataset, seed) job of a finished study under the stack sampler.

    python scripts/profile_imitation_job.py results/medium 0 [--dataset third_person/identical]

Runs `imitate_dataset` with the study's own imitation settings on every run of that dataset and seed (the
job `mirrorlab study` runs), in this process, and prints the wall time and three tables: by imitation method,
by kind of work and by innermost function (the rules of `mirrorlab bench study`). Nothing is written.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from mirrorlab.experiments.bench_profile import StackSampler, breakdown, label_of, own_function, table
from mirrorlab.experiments.bench_study import KINDS, method_tag
from mirrorlab.experiments.stages.imitation import imitate_dataset
from mirrorlab.experiments.stages.study import PRESETS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", type=Path, help="a finished study's folder (its runs/ and data/)")
    parser.add_argument("seed", type=int, help="the seed of the job")
    parser.add_argument("--dataset", default="third_person/identical", help="view/appearance of the dataset")
    parser.add_argument("--interval", type=float, default=0.01, help="seconds between stack samples")
    args = parser.parse_args()
    config_path = args.study / "config.json"
    if not config_path.is_file():
        print(f"study: {args.study} has no config.json (not a study folder)", file=sys.stderr)
        return 2
    preset = json.loads(config_path.read_text()).get("preset")
    if preset not in PRESETS:
        print(f"study: {args.study} was not run from a preset (its imitation settings are in its config.json); "
              f"expected one of {', '.join(PRESETS)}", file=sys.stderr)
        return 2
    runs = sorted(str(p) for p in (args.study / "runs" / args.dataset).glob(f"*__seed{args.seed}"))
    if not runs:
        print(f"--dataset {args.dataset}: no runs of seed {args.seed} under {args.study / 'runs'}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    with StackSampler(args.interval, tagger=method_tag) as sampler:
        out = imitate_dataset(str(args.study / "data" / args.dataset), runs, PRESETS[preset].imitate, args.seed)
    print(f"wall {time.perf_counter() - started:.1f} s, {len(out['rows'])} rows, {len(runs)} runs (preset {preset})")
    print("\n".join(table(breakdown(sampler, lambda _stack, tag: tag), "by method")))
    print("\n".join(table(breakdown(sampler, lambda stack, _tag: label_of(stack, KINDS, True)), "by kind of work")))
    print("\n".join(table(breakdown(sampler, own_function), "by innermost function", top=25)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
