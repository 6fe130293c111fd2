"""`mirrorlab train`: train the embodied core on a paired dataset under one condition and seed.

Checkpoints every `checkpoint_every` epochs (atomically); rerunning the same command resumes from
the last one and ends with the same weights as an uninterrupted run: batch order and label shuffles
are drawn from (seed, epoch), and the optimiser state is restored. Losses go to TensorBoard
(`RUN/tb`) and to `RUN/history.csv`. A NaN loss stops training, naming the step and the last good
checkpoint.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.conditions import CONDITIONS, get_condition
from experiments.config import build_config, replace_checked
from experiments.errors import UserError
from experiments.provenance import atomic_write_json, atomic_write_text, provenance

INVERSE_DATA = ("other", "self")


@dataclass(frozen=True)
class TrainConfig:
    """Every default of embodied training."""

    condition: str = "shared"
    seed: int = 0
    embed_dim: int = 64
    hidden_size: int = 96
    cnn_channels: int = 16
    lr: float = 1e-3
    batch_size: int = 8            # episodes per batch
    epochs: int = 12
    forward_weight: float = 1.0
    inverse_weight: float = 1.0    # the "tuning parameter" of mirroring (seed 000)
    inverse_data: str = "other"    # "other": the inverse head learns from the other arm's video;
                                   # "self": only from the self arm's own video (tests self -> other transfer)
    use_babble: bool = True        # the self arm's motor babbling trains the forward head (and the inverse, if "self")
    test_fraction: float = 0.25    # held-out demo episodes (the highest ids), never trained on
    checkpoint_every: int = 1
    threads: int = 1
    cache_mib: int = 1024          # decoded episodes kept in memory per run (each of demo and babble)

    def validate(self) -> None:
        get_condition_or_error(self.condition)
        if self.inverse_data not in INVERSE_DATA:
            raise UserError(f"config: inverse_data must be one of {', '.join(INVERSE_DATA)}, got {self.inverse_data!r}")
        for name in ("embed_dim", "hidden_size", "cnn_channels", "batch_size", "checkpoint_every", "threads",
                     "cache_mib"):
            if getattr(self, name) < 1:
                raise UserError(f"config: {name} must be >= 1, got {getattr(self, name)}")
        if self.epochs < 0:
            raise UserError(f"config: epochs must be >= 0, got {self.epochs}")
        if not 0 < self.test_fraction < 1:
            raise UserError(f"config: test_fraction must be in (0, 1), got {self.test_fraction}")


def get_condition_or_error(name: str):
    try:
        return get_condition(name)
    except ValueError as err:
        raise UserError(f"config: {err}") from None


class TrainingDiverged(UserError):
    """A NaN or infinite loss: training stops and names the last good checkpoint."""


def split_episodes(episode_ids: list[int], test_fraction: float) -> tuple[list[int], list[int]]:
    """Train and held-out demo episode ids: the highest ids are held out, so adding episodes to a
    dataset never moves a held-out episode into training."""
    ids = sorted(episode_ids)
    n_test = max(1, math.ceil(len(ids) * test_fraction))
    if n_test >= len(ids):
        raise UserError(f"dataset: {len(ids)} demo episodes cannot be split with test_fraction {test_fraction}")
    return ids[:-n_test], ids[-n_test:]


def data_signature(header) -> dict[str, Any]:
    """What a run must agree on with any dataset it is used with."""
    return {"env_id": header.env_id, "frame_size": int(header.frame_size), "action_dim": int(header.action_dim),
            "max_steps": int(header.max_steps)}


def check_signature(run_signature: dict[str, Any], header, run_dir: Path, data_path: Path) -> None:
    now = data_signature(header)
    diff = [f"{k}: run {run_signature.get(k)!r} vs data {now[k]!r}" for k in now if run_signature.get(k) != now[k]]
    if diff:
        raise UserError(f"{run_dir}: the run does not match the dataset {data_path} ({'; '.join(diff)})")


def build_model(config: TrainConfig, signature: dict[str, Any]):
    from agents.embodied import build_embodied_core

    return build_embodied_core(signature["action_dim"], signature["frame_size"], config.embed_dim,
                               config.hidden_size, config.cnn_channels,
                               get_condition(config.condition).separate_cores, config.seed)


def _atomic_torch_save(obj: Any, path: Path) -> None:
    import torch

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path: Path) -> dict[str, Any]:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{path}: checkpoint not found") from None
    except Exception as err:  # torch raises many types for a corrupt or foreign file
        raise UserError(f"{path}: not a readable mirrorlab checkpoint ({type(err).__name__}: {err})") from None


def _latest_checkpoint(run_dir: Path) -> Path | None:
    found = sorted((run_dir / "checkpoints").glob("epoch-*.pt"))
    return found[-1] if found else None


class _Batches:
    """Per-epoch batches of whole episodes, in an order drawn from (seed, epoch)."""

    def __init__(self, data_path: Path, n_steps: int, train_ids: list[int], use_babble: bool, batch_size: int,
                 cache_bytes: int):
        from torch.utils.data import Subset

        from agents.windows import CachedWindows, PairedWindows

        # One window per episode: the window is the whole episode and the stride longer than any.
        demo = PairedWindows(data_path, window=n_steps, kind="demo", stride=n_steps)
        keep = set(train_ids)
        self.demo = CachedWindows(Subset(demo, [i for i, ref in enumerate(demo.refs) if ref.episode_id in keep]),
                                  cache_bytes)
        self.babble = None
        if use_babble:
            self.babble = CachedWindows(PairedWindows(data_path, window=n_steps, kind="babble", stride=n_steps),
                                        cache_bytes)
        self.batch_size = batch_size

    def epoch(self, seed: int, epoch: int):
        """(kind, batch) pairs: demo and babble batches interleaved in a seeded order."""
        import torch
        from torch.utils.data import DataLoader

        loaders = [("demo", self.demo)] + ([("babble", self.babble)] if self.babble is not None else [])
        plan = []
        for kind, ds in loaders:
            gen = torch.Generator().manual_seed(int(np.random.default_rng([seed, epoch, len(plan)]).integers(2**62)))
            plan.append((kind, iter(DataLoader(ds, batch_size=self.batch_size, shuffle=True, generator=gen))))
        order_rng = np.random.default_rng([seed, epoch, 99])
        counts = [math.ceil(len(ds) / self.batch_size) for _, ds in loaders]
        schedule = np.concatenate([np.full(c, k) for k, c in enumerate(counts)])
        for k in order_rng.permutation(schedule):
            kind, it = plan[k]
            yield kind, next(it)


def train(config: TrainConfig, data_path: Path, run_dir: Path, show_progress: bool = True) -> dict[str, Any]:
    """Train (or resume) one run; returns its final summary (also written to RUN/done.json)."""
    import torch
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    from agents.embodied import batch_loss
    from envs.paired import PairedDataset

    config.validate()
    torch.set_num_threads(config.threads)
    condition = get_condition(config.condition)
    with PairedDataset(data_path) as data:
        header = data.header
        demo_ids = [r.episode_id for r in data.episodes("demo")]
        has_babble = bool(data.episodes("babble"))
    signature = data_signature(header)
    train_ids, test_ids = split_episodes(demo_ids, config.test_fraction)

    config_path = run_dir / "config.json"
    if config_path.is_file():
        earlier = json.loads(config_path.read_text())
        check_signature(earlier["data"], header, run_dir, data_path)
        if earlier["config"] != json.loads(json.dumps(dataclasses.asdict(config))):
            changed = sorted(k for k, v in dataclasses.asdict(config).items() if earlier["config"].get(k) != v)
            raise UserError(f"{run_dir}: holds a run with a different config ({', '.join(changed)}); "
                            "use another --out")
    if (run_dir / "done.json").is_file():
        return json.loads((run_dir / "done.json").read_text())
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    record = provenance(config, seeds=[config.seed])
    record.update(data=signature, data_path=str(data_path),
                  other_appearance=json.loads(header.env_kwargs).get("other_appearance"),
                  train_episode_ids=train_ids, test_episode_ids=test_ids)
    atomic_write_json(config_path, record)

    model = build_model(config, signature)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    history: list[dict[str, float]] = []
    start_epoch = 0
    latest = _latest_checkpoint(run_dir)
    if latest is not None:
        state = load_checkpoint(latest)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, history = int(state["epoch"]), list(state["history"])
    epochs = config.epochs if condition.trained else 0
    batches = (_Batches(data_path, signature["max_steps"], train_ids, config.use_babble and has_babble,
                        config.batch_size, config.cache_mib << 20) if epochs else None)
    writer = SummaryWriter(str(run_dir / "tb")) if epochs else None
    bar = tqdm(range(start_epoch, epochs), desc=f"{config.condition} seed {config.seed}", unit="epoch",
               disable=not show_progress, initial=start_epoch, total=epochs)
    for epoch in bar:
        model.train()
        sums: dict[str, list[float]] = {}
        for b, (kind, batch) in enumerate(batches.epoch(config.seed, epoch)):
            learns_inverse = kind == "demo" or config.inverse_data == "self"
            inverse_side = (("observe" if config.inverse_data == "other" else "perform") if learns_inverse else None)
            perm = None
            if condition.shuffle_observe_labels and inverse_side is not None:
                perm = torch.from_numpy(np.random.default_rng([config.seed, epoch, b, 7]).permutation(
                    batch["actions"].shape[0]))
            loss, parts = batch_loss(model, condition, batch, inverse_side, config.forward_weight,
                                     config.inverse_weight, perm)
            if not torch.isfinite(loss):
                last = _latest_checkpoint(run_dir)
                raise TrainingDiverged(f"{run_dir}: loss is {loss.item()} at epoch {epoch} batch {b}; last good "
                                       f"checkpoint: {last if last else 'none (diverged in the first epoch)'}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            for k, v in parts.items():
                sums.setdefault(k, []).append(v)
        row = {"epoch": epoch + 1, **{k: float(np.mean(v)) for k, v in sums.items()}}
        history.append(row)
        for k, v in row.items():
            if k != "epoch":
                writer.add_scalar(f"losses/{k}", v, epoch + 1)
        bar.set_postfix({k: f"{v:.4f}" for k, v in row.items() if k != "epoch"})
        if (epoch + 1) % config.checkpoint_every == 0 or epoch + 1 == epochs:
            _atomic_torch_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1,
                                "history": history}, run_dir / "checkpoints" / f"epoch-{epoch + 1:04d}.pt")
    bar.close()
    if writer is not None:
        writer.close()
    _atomic_torch_save(model.state_dict(), run_dir / "model.pt")
    buf = io.StringIO()
    keys = sorted({k for row in history for k in row}, key=lambda k: (k != "epoch", k))
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    w.writerows(history)
    atomic_write_text(run_dir / "history.csv", buf.getvalue())
    summary = {"condition": config.condition, "seed": config.seed, "epochs": epochs,
               "final": history[-1] if history else None}
    atomic_write_json(run_dir / "done.json", summary)
    return summary


def read_run_record(run_dir: Path) -> dict[str, Any]:
    """The provenance record (config, data signature, episode split) of a finished run."""
    config_path = run_dir / "config.json"
    if not (run_dir / "done.json").is_file() or not config_path.is_file():
        raise UserError(f"{run_dir}: not a finished `mirrorlab train` run (config.json and done.json expected)")
    try:
        return json.loads(config_path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{config_path}: not valid JSON ({err})") from None


def load_run(run_dir: Path):
    """(config, record, model) of a finished run, the model in eval mode."""
    record = read_run_record(run_dir)
    config = replace_checked(TrainConfig(), record["config"], str(run_dir / "config.json"))
    model = build_model(config, record["data"])
    model.load_state_dict(load_checkpoint(run_dir / "model.pt"))
    model.eval()
    return config, record, model


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train the embodied core on a paired dataset (resumable)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="a dataset folder written by `mirrorlab collect`")
    p.add_argument("--condition", default=None, help=f"one of {', '.join(CONDITIONS)} (default: shared)")
    p.add_argument("--seed", type=int, default=None, help="seed of initialisation and batch order (default: 0)")
    p.add_argument("--out", type=Path, required=True, help="run folder; rerunning resumes from its last checkpoint")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: 12)")
    p.add_argument("--inverse-data", default=None, choices=INVERSE_DATA,
                   help="which arm's video trains the inverse head (default: other)")
    p.add_argument("--inverse-weight", type=float, default=None, help="weight of the inverse loss (default: 1.0)")
    p.add_argument("--config", default=None, help="a .toml or .json file setting any TrainConfig field")
    p.set_defaults(func=main)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return build_config(TrainConfig(), args.config, {
        "condition": args.condition, "seed": args.seed, "epochs": args.epochs, "inverse_data": args.inverse_data,
        "inverse_weight": args.inverse_weight})


def main(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    started = time.perf_counter()
    summary = train(config, args.data, args.out)
    print(f"run: {args.out} ({summary['epochs']} epochs, final {summary['final']}); "
          f"{time.perf_counter() - started:.1f} s")
    return 0
