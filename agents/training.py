"""Training the core under a condition: the toy loop and the embodied loop, side by side.

Both ask `agents.conditions` what a condition trains (the loss), and whose labels each observe run
learns from (`observe_label_order`: a fresh derangement per epoch for `shuffled_labels`). Every random
choice is drawn from (seed, epoch), so a (config, seed) pair gives the same weights bit for bit on CPU,
and a killed embodied run resumed from its last checkpoint ends exactly where an uninterrupted one does.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from mirrorlab.agents.batches import CachedItems, EpisodeBatches, EpisodeItems
from mirrorlab.agents.conditions import Condition, get_condition, observe_label_order, training_loss
from mirrorlab.agents.core import MirrorCore
from mirrorlab.agents.replay import SurpriseReplay
from mirrorlab.agents.reward import reward_weights, weighted_mean
from mirrorlab.agents.runs import TrainConfig, build_core, data_signature, resolve_device, split_episodes, to_device
from mirrorlab.config import replace_checked
from mirrorlab.envs.toy import ToySequences
from mirrorlab.errors import UserError
from mirrorlab.files import (
    atomic_torch_save,
    atomic_write_json,
    atomic_write_text,
    claim_output_dir,
    load_torch,
    read_json,
)
from mirrorlab.provenance import provenance


def selectivity_loss(perform_hidden: torch.Tensor, observe_hidden: torch.Tensor) -> torch.Tensor:
    """Minus the mean over units of each unit's perform-observe Pearson r over the batch's (episode, step)
    pairs: the dose-response's training term (Leavitt & Morcos 2021 regularise class selectivity so).
    `selectivity_weight` > 0 times this rewards mirror-like units, < 0 penalises them."""
    p = perform_hidden.reshape(-1, perform_hidden.shape[-1])
    o = observe_hidden.reshape(-1, observe_hidden.shape[-1])
    p, o = p - p.mean(0), o - o.mean(0)
    r = (p * o).sum(0) / (p.norm(dim=0) * o.norm(dim=0) + 1e-8)
    return -r.mean()


# --- the toy world ------------------------------------------------------------------------------------------
def train_toy_core(model: MirrorCore, data: ToySequences, condition: Condition, *, epochs: int,
                   batch_size: int, lr: float, forward_weight: float, inverse_weight: float,
                   seed: int, selectivity_weight: float = 0.0) -> list[dict[str, float]]:
    """Adam on the condition's loss (plus `selectivity_weight` x selectivity_loss); returns per-epoch mean
    losses. The untrained condition returns at once."""
    from mirrorlab.agents.toy import toy_losses

    history: list[dict[str, float]] = []
    if not condition.trained:
        return history
    actions = torch.from_numpy(data.actions)
    sensory = torch.from_numpy(data.sensory)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    n = len(data)
    batch_rng = np.random.default_rng([seed, 1])
    model.train()
    for epoch in range(epochs):
        order = batch_rng.permutation(n)
        labels_of = torch.from_numpy(observe_label_order(condition, n, seed, epoch))
        sums = {"forward": 0.0, "inverse": 0.0}
        for start in range(0, n, batch_size):
            idx = torch.from_numpy(order[start:start + batch_size])
            forward_loss, inverse_loss, selectivity = toy_losses(model, actions[idx], sensory[idx],
                                                                 actions[labels_of[idx]])
            loss = training_loss(condition, forward_loss, inverse_loss, forward_weight, inverse_weight)
            if selectivity_weight:
                loss = loss + selectivity_weight * selectivity
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            sums["forward"] += forward_loss.item() * len(idx)
            sums["inverse"] += inverse_loss.item() * len(idx)
        history.append({k: v / n for k, v in sums.items()})
    return history


# --- the embodied arms --------------------------------------------------------------------------------------
class TrainingDiverged(UserError):
    """A NaN or infinite loss: training stops and names the last good checkpoint."""


def _diverged(run_dir: Path, config: TrainConfig, what: str) -> None:
    last = _latest_checkpoint(run_dir)
    raise TrainingDiverged(f"{run_dir}: the loss diverged; lower lr (now {config.lr:g}): {what}; last good "
                           f"checkpoint: {last if last else 'none (diverged in the first epoch)'}")


def _latest_checkpoint(run_dir: Path) -> Path | None:
    found = sorted((run_dir / "checkpoints").glob("epoch-*.pt"))
    return found[-1] if found else None


def _history_csv(history: list[dict[str, float]]) -> str:
    buf = io.StringIO()
    keys = sorted({k for row in history for k in row}, key=lambda k: (k != "epoch", k))
    writer = csv.DictWriter(buf, fieldnames=keys or ["epoch"])
    writer.writeheader()
    writer.writerows(history)
    return buf.getvalue()


def run_record(config: TrainConfig, dataset, data_path: Path) -> dict[str, Any]:
    """The run's config.json: provenance, the dataset it is tied to, and its episode split."""
    demo_ids = [r.episode_id for r in dataset.episodes("demo")]
    train_ids, test_ids = split_episodes(demo_ids, config.test_fraction)
    if config.train_episodes:
        if config.train_episodes > len(train_ids):
            raise UserError(f"config: train_episodes is {config.train_episodes}, the dataset has {len(train_ids)} "
                            "training episodes")
        train_ids = train_ids[:config.train_episodes]
    record = provenance(config, seeds=[config.seed])
    record.update(data=data_signature(dataset.header), data_fingerprint=dataset.fingerprint,
                  data_path=str(Path(data_path).resolve()), other_appearance=dataset.header.other_appearance,
                  observe_camera=dataset.header.observe_camera,
                  train_episode_ids=train_ids, test_episode_ids=test_ids)
    if config.inverse_babble:
        babble_ids = [r.episode_id for r in dataset.episodes("babble")]
        if not babble_ids:
            raise UserError(f"config: inverse_babble needs babbling episodes; {data_path} has none")
        record["train_babble_ids"], record["test_babble_ids"] = split_episodes(babble_ids, config.test_fraction,
                                                                               "babble")
    return record


def check_resumable(run_dir: Path, record: dict[str, Any]) -> None:
    """A run folder holding an earlier record must have been made by the same config on the same data."""
    path = run_dir / "config.json"
    if not path.is_file():
        return
    earlier = read_json(path, "run record")
    if not isinstance(earlier, dict):
        raise UserError(f"{path}: not a run record")
    if earlier.get("data_fingerprint") != record["data_fingerprint"]:
        raise UserError(f"{run_dir}: holds a run trained on a different dataset (fingerprint "
                        f"{str(earlier.get('data_fingerprint'))[:12]} vs {record['data_fingerprint'][:12]}); "
                        "use another --out")
    now = json.loads(json.dumps(record["config"]))
    before = earlier.get("config")
    if isinstance(before, dict):  # read as read_run reads a record: a field added since counts as its default
        before = json.loads(json.dumps(dataclasses.asdict(replace_checked(TrainConfig(), before, f"{path}: config"))))
    if before != now:
        changed = sorted(k for k, v in now.items() if (before or {}).get(k) != v)
        raise UserError(f"{run_dir}: holds a run with a different config ({', '.join(changed)}); use another --out")


def train_run(config: TrainConfig, data_path: str | Path, run_dir: str | Path, show_progress: bool = False,
              on_epoch: Callable[[int, dict[str, float]], None] | None = None, device: str = "cpu") -> dict[str, Any]:
    """Train (or resume) one embodied run in `run_dir`; returns the summary also written to done.json.
    Rerunning on a finished run returns its summary at once; a folder holding anything but a run of
    the same config on the same dataset is refused before any work."""
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    from mirrorlab.envs.paired import PairedDataset

    config.validate()
    device = resolve_device(device)
    data_path, run_dir = Path(data_path), Path(run_dir)
    torch.set_num_threads(config.threads)
    condition = get_condition(config.condition)
    with PairedDataset(data_path) as dataset:
        record = run_record(config, dataset, data_path)
        has_babble = bool(dataset.episodes("babble"))
    claim_output_dir(run_dir, "train", resume=True)
    check_resumable(run_dir, record)
    if (run_dir / "done.json").is_file():
        return read_json(run_dir / "done.json", "run summary")
    model = build_core(config, record["data"]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    start_epoch, history, state = _resume(run_dir, model, optimizer)
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    if not (run_dir / "config.json").is_file():
        atomic_write_json(run_dir / "config.json", record)
    epochs = config.epochs if condition.trained else 0
    writer = SummaryWriter(str(run_dir / "tb")) if epochs > start_epoch else None
    if epochs > start_epoch:
        batches, label_actions = training_batches(config, data_path, record["train_episode_ids"], has_babble,
                                                  record.get("train_babble_ids"))
        replay = surprise_replay(config, batches, state)
    bar = tqdm(range(start_epoch, epochs), desc=f"{config.condition} seed {config.seed}", unit="epoch",
               disable=not show_progress, initial=start_epoch, total=epochs)
    for epoch in bar:
        row = train_epoch(model, optimizer, condition, config, batches, label_actions, replay, epoch, run_dir, device)
        history.append(row)
        for k, v in row.items():
            if k != "epoch":
                writer.add_scalar(f"losses/{k}", v, epoch + 1)
        bar.set_postfix({k: f"{v:.4f}" for k, v in row.items() if k != "epoch"})
        if on_epoch is not None:
            on_epoch(epoch, row)
        if (epoch + 1) % config.checkpoint_every == 0 or epoch + 1 == epochs:
            checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1,
                          "history": history}
            if replay is not None:
                checkpoint["replay"] = replay.state_dict()
            atomic_torch_save(run_dir / "checkpoints" / f"epoch-{epoch + 1:04d}.pt", checkpoint)
    bar.close()
    if writer is not None:
        writer.close()
    atomic_torch_save(run_dir / "model.pt", model.state_dict())
    atomic_write_text(run_dir / "history.csv", _history_csv(history))
    summary = {"condition": config.condition, "seed": config.seed, "epochs": epochs,
               "final": history[-1] if history else None, "device": device}
    atomic_write_json(run_dir / "done.json", summary)
    return summary


def _resume(run_dir: Path, model: MirrorCore, optimizer: torch.optim.Optimizer
            ) -> tuple[int, list[dict[str, float]], dict[str, Any] | None]:
    """Load the run's last checkpoint into model and optimizer, if any: (epochs done, history, the checkpoint)."""
    latest = _latest_checkpoint(run_dir)
    if latest is None:
        return 0, [], None
    state = load_torch(latest, "checkpoint")
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        return int(state["epoch"]), list(state["history"]), state
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise UserError(f"{latest}: not a checkpoint of this run ({type(err).__name__}: {str(err)[:120]}); "
                        "delete it to restart from the one before") from None


def surprise_replay(config: TrainConfig, batches: EpisodeBatches, checkpoint: dict[str, Any] | None
                    ) -> SurpriseReplay | None:
    """The run's surprise buffers (None unless `replay="surprise"`), restored from a checkpoint when resuming."""
    if config.replay != "surprise":
        return None
    replay = SurpriseReplay(batches.sources, config.batch_size, config.replay_fraction, config.replay_buffer)
    if checkpoint is not None:
        if "replay" not in checkpoint:
            raise UserError("checkpoint: holds no surprise buffer, but the run replays at surprise; delete it to "
                            "restart from the one before")
        replay.load_state_dict(checkpoint["replay"])
    return replay


def train_epoch(model: MirrorCore, optimizer: torch.optim.Optimizer, condition: Condition, config: TrainConfig,
                batches: EpisodeBatches, label_actions: dict[str, torch.Tensor], replay: SurpriseReplay | None,
                epoch: int, run_dir: Path, device: str) -> dict[str, float]:
    """One epoch of updates (the uniform pass, or with `replay` its replays in place of some batches); returns
    the epoch's history row of mean losses."""
    model.train()
    label_order = {kind: torch.from_numpy(observe_label_order(condition, len(a), config.seed, epoch))
                   for kind, a in label_actions.items()}
    sums: dict[str, list[float]] = {}
    augment = torch.Generator().manual_seed(int(np.random.default_rng([config.seed, epoch, 5]).integers(2**62)))
    schedule = batches.epoch(config.seed, epoch)
    if replay is not None:
        schedule = replay.epoch(schedule, len(batches), config.seed, epoch)
    for b, (kind, batch) in enumerate(schedule):
        labels = label_actions[kind][label_order[kind][batch["index"]]]
        surprise: list[torch.Tensor] | None = [] if replay is not None else None
        loss, parts = embodied_batch_loss(model, condition, config, kind, to_device(batch, device), labels.to(device),
                                          augment if config.augment_shift else None, episode_losses=surprise)
        if not torch.isfinite(loss):
            _diverged(run_dir, config, f"loss is {loss.item()} at epoch {epoch} batch {b}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        try:
            optimizer.step()
        except RuntimeError as err:  # an lr so large the step itself overflows float32
            if "overflow" not in str(err):
                raise
            _diverged(run_dir, config, f"the update overflowed at epoch {epoch} batch {b}")
        if surprise:
            replay.record(kind, batch["index"], surprise[0])
        for k, v in parts.items():
            sums.setdefault(k, []).append(v)
    return {"epoch": epoch + 1, **{k: float(np.mean(v)) for k, v in sums.items()}}


def training_batches(config: TrainConfig, data_path: Path, train_ids: list[int], has_babble: bool,
                     babble_ids: list[int] | None = None) -> tuple[EpisodeBatches, dict[str, torch.Tensor]]:
    """The trainer's data pipeline: whole episodes read (and checked) once, then kept in a bounded cache,
    batched per epoch; and every episode's actions, by kind, for re-pairing labels. `babble_ids`: the
    babble episodes that train (None: all)."""
    cache = config.cache_mib << 20
    demo = EpisodeItems(data_path, "demo", train_ids)
    babble = EpisodeItems(data_path, "babble", babble_ids) if config.use_babble and has_babble else None
    sources = {"demo": CachedItems(demo, cache), "babble": CachedItems(babble, cache) if babble else None}
    label_actions = {"demo": torch.from_numpy(demo.actions())}
    if babble is not None:
        label_actions["babble"] = torch.from_numpy(babble.actions())
    return EpisodeBatches(sources, config.batch_size), label_actions


def embodied_batch_loss(model: MirrorCore, condition: Condition, config: TrainConfig, kind: str,
                        batch: dict[str, Any], labels: torch.Tensor, augment: torch.Generator | None = None,
                        episode_losses: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of one batch of whole episodes. The inverse head learns from the other arm's video of
    demo episodes (`inverse_data="other"`) or from the self arm's own video of every episode
    (`"self"`); babble batches train only the forward head in the first case, unless `inverse_babble`
    adds the self arm's own babbling video to the inverse head's data. With `augment` (a
    seeded generator), the watched frames are randomly shifted by up to `augment_shift` pixels.
    Reward modulation, or a caller that wants each episode's loss (`episode_losses`, appended to: what replay at
    surprise ranks by), takes the per-step path (`step_batch_loss`); otherwise the loss is the batch means of
    agents.embodied, as it was before either existed."""
    from mirrorlab.agents.embodied import forward_loss, inverse_loss

    if config.reward_modulation != "none" or episode_losses is not None:
        loss, parts, per_episode = step_batch_loss(model, condition, config, kind, batch, labels, augment)
        if episode_losses is not None:
            episode_losses.append(per_episode)
        return loss, parts
    f_loss = forward_loss(model, batch["actions"], batch["perform"]["frames"])
    parts = {"forward": f_loss.item()}
    i_loss = None
    frames = inverse_frames(config, kind, batch, augment)
    if frames is not None:
        i_loss = inverse_loss(model, frames, labels, tuple(config.observe_window))
        parts["inverse"] = i_loss.item()
    loss = training_loss(condition, f_loss, i_loss, config.forward_weight, config.inverse_weight)
    return _with_selectivity(model, config, batch, loss, parts), parts


def inverse_frames(config: TrainConfig, kind: str, batch: dict[str, Any], augment: torch.Generator | None
                   ) -> torch.Tensor | None:
    """The video the inverse head learns from in this batch (randomly shifted with `augment`), or None."""
    from mirrorlab.encoders.cnn import random_shift

    self_video = config.inverse_data == "self" or (kind == "babble" and config.inverse_babble)
    watched = "perform" if self_video else "observe"
    if watched not in batch or not (kind == "demo" or self_video):
        return None
    frames = batch[watched]["frames"]
    return random_shift(frames, config.augment_shift, augment) if augment else frames


def _with_selectivity(model: MirrorCore, config: TrainConfig, batch: dict[str, Any], loss: torch.Tensor,
                      parts: dict[str, float]) -> torch.Tensor:
    """The loss plus the dose-response's selectivity term on demo batches (recorded in `parts`)."""
    if config.selectivity_weight and "observe" in batch:
        term = embodied_selectivity(model, batch, tuple(config.observe_window))
        parts["selectivity"] = term.item()
        loss = loss + config.selectivity_weight * term
    return loss


def step_batch_loss(model: MirrorCore, condition: Condition, config: TrainConfig, kind: str,
                    batch: dict[str, Any], labels: torch.Tensor, augment: torch.Generator | None = None
                    ) -> tuple[torch.Tensor, dict[str, float], torch.Tensor]:
    """embodied_batch_loss from each (episode, step)'s squared error, so each step can be weighted by its reward
    (agents.reward) and each episode's loss read off (agents.replay). The errors are agents.embodied's
    forward_step_errors and inverse_step_errors, the same objectives as forward_loss and inverse_loss before
    their mean (a test holds the unweighted means equal to them). Returns
    the loss, its logged parts (unweighted means) and each episode's surprise [B] (its own loss, unweighted)."""
    from mirrorlab.agents.embodied import forward_step_errors, inverse_step_errors

    f_steps = forward_step_errors(model, batch["actions"], batch["perform"]["frames"])
    weights = reward_weights(batch, config.reward_modulation, config.reward_strength)
    parts = {"forward": f_steps.mean().item()}
    i_steps = i_loss = None
    frames = inverse_frames(config, kind, batch, augment)
    if frames is not None:
        i_steps = inverse_step_errors(model, frames, labels, tuple(config.observe_window))
        i_loss = weighted_mean(i_steps, weights)
        parts["inverse"] = i_steps.mean().item()
    loss = training_loss(condition, weighted_mean(f_steps, weights), i_loss, config.forward_weight,
                         config.inverse_weight)
    surprise = training_loss(condition, f_steps.detach().mean(1), None if i_steps is None else
                             i_steps.detach().mean(1), config.forward_weight, config.inverse_weight)
    return _with_selectivity(model, config, batch, loss, parts), parts, surprise


def embodied_selectivity(model: MirrorCore, batch: dict[str, Any], observe_window: tuple[int, ...]) -> torch.Tensor:
    """selectivity_loss of a demo batch: the core performing its actions against watching the other arm
    execute them (the pairing the mirror measures use). Its own pass of both modes: the dose-response's
    runs pay for it, no other run does."""
    from mirrorlab.agents.embodied import observed_input, perform_start

    own = batch["perform"]["frames"]
    performed = model.perform(batch["actions"], perform_start(model, own))
    observed = model.observe(observed_input(batch["observe"]["frames"], observe_window))
    return selectivity_loss(performed.hidden, observed.hidden)
