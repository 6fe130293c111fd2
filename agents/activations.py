r"""The activations stage: a trained core's hidden states on its dataset, recorded once, read by every later stage.

`mirrorlab analyze` records each run on every episode of its dataset and writes one file per run;
the mirror measures, the videos, imitation and the spillover study all read that file rather than
re-running the core. Format: one `.npz` (numpy's zip of `.npy` arrays; read with
`np.load(path, allow_pickle=False)`: no pickles), T steps, H hidden units, A action dimensions:

| array              | shape, dtype        | meaning                                                         |
|--------------------|---------------------|-----------------------------------------------------------------|
| `episode_ids`      | [N] int64           | the dataset's demo episode ids, ascending                       |
| `held_out`         | [N] bool            | True for the run's held-out episodes (never trained on)         |
| `actions`          | [N, T, A] float32   | the episode's actions                                           |
| `perform`          | [N, T, H] float32   | perform run: the core driven by the actions                     |
| `observe`          | [N, T, H] float32   | observe run: the core watching the other arm execute them       |
| `self_observe`     | [N, T, H] float32   | the observe path watching the *self* arm's own video of them    |
| `inferred`         | [N, T, A] float32   | the inverse head's actions while observing the other arm        |
| `perform_distance`, `observe_distance` | [N, T+1] float64 | self / other fingertip-to-target distance (m) |
| `babble_ids`       | [M] int64           | babble episode ids (M may be 0)                                 |
| `babble_perform`, `babble_self_observe` | [M, T, H] float32 | the same runs on the self arm's babbling |
| `babble_distance`  | [M, T+1] float64    | the self arm's distance to its target while babbling            |
| `meta`             | 0-d str (JSON)      | run folder and name, condition, seed, other_appearance, dataset fingerprint and path, `inverse_r2`, `forward_mse` and `forward_action_sensitivity` (forward error with another held-out episode's actions over the error with the true ones) on the held-out episodes, `inverse_r2_babble` (the inverse head on the self arm's own babbling video, on the babble episodes it never learnt from; NaN when there are none), `format_version` |

Timestep t of every [.., T, ..] array is action t and the state it produced.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mirrorlab.errors import UserError
from mirrorlab.files import atomic_save_npz, check_record, check_value, load_npz, parse_json, refuse_symlinks

FORMAT_VERSION = 1
_ARRAYS = ("episode_ids", "held_out", "actions", "perform", "observe", "self_observe", "inferred", "perform_distance",
           "observe_distance", "babble_ids", "babble_perform", "babble_self_observe", "babble_distance")


@dataclass
class Activations:
    """One run's recorded activations (see the module docstring for every array)."""

    episode_ids: np.ndarray
    held_out: np.ndarray
    actions: np.ndarray
    perform: np.ndarray
    observe: np.ndarray
    self_observe: np.ndarray
    inferred: np.ndarray
    perform_distance: np.ndarray
    observe_distance: np.ndarray
    babble_ids: np.ndarray
    babble_perform: np.ndarray
    babble_self_observe: np.ndarray
    babble_distance: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def split(self, held_out: bool = True) -> dict[str, np.ndarray]:
        """The demo arrays of the held-out (or the training) episodes only."""
        keep = self.held_out == held_out
        return {name: getattr(self, name)[keep] for name in _ARRAYS if not name.startswith("babble")
                and name != "held_out"}


def save_activations(path: str | Path, acts: Activations) -> Path:
    arrays = {name: getattr(acts, name) for name in _ARRAYS}
    meta = {**acts.meta, "format_version": FORMAT_VERSION}
    return atomic_save_npz(path, **arrays, meta=np.array(json.dumps(meta, sort_keys=True)))


_META_SCHEMA = {"format_version": int, "run": str, "name": str, "condition": str, "seed": int,
                "other_appearance": str, "data_fingerprint": str, "data_path": str}
# Each array's dimensions by name (N demo episodes, M babble episodes, T steps, H units, A action dims).
_DIMS = {"episode_ids": "N", "held_out": "N", "actions": "NTA", "perform": "NTH", "observe": "NTH",
         "self_observe": "NTH", "inferred": "NTA", "perform_distance": "NS", "observe_distance": "NS",
         "babble_ids": "M", "babble_perform": "MTH", "babble_self_observe": "MTH", "babble_distance": "MS"}


def _check_shapes(arrays: dict[str, np.ndarray], label: str) -> None:
    """Every array has its documented rank and agrees with the others on N, M, T, H, A (S = T + 1)."""
    sizes: dict[str, tuple[int, str]] = {}
    for name, dims in _DIMS.items():
        array = arrays[name]
        if array.ndim != len(dims) or array.dtype.kind not in "biuf":
            raise UserError(f"{label}: array {name} has shape {array.shape} and dtype {array.dtype}, expected "
                            f"numbers of {len(dims)} dimensions ({', '.join(dims)}); rerun `mirrorlab analyze`")
        for dim, size in zip(dims, array.shape):
            if dim == "S":
                dim, size = "T", size - 1
            if sizes.setdefault(dim, (size, name))[0] != size:
                raise UserError(f"{label}: array {name} disagrees with {sizes[dim][1]} on {dim} ({size} vs "
                                f"{sizes[dim][0]}); rerun `mirrorlab analyze`")


def load_activations(path: str | Path) -> Activations:
    """A recorded activations file, checked: its meta a JSON object of the documented keys, every array of
    its documented rank, the arrays agreeing on their sizes; one line naming the file otherwise."""
    label = f"activations file {path}"
    refuse_symlinks([Path(path)], label)
    arrays = load_npz(path, "activations file")
    missing = [name for name in (*_ARRAYS, "meta") if name not in arrays]
    if missing:
        raise UserError(f"activations file {path}: missing arrays {', '.join(missing)}; rerun `mirrorlab analyze`")
    meta_text = arrays.pop("meta")
    if meta_text.dtype.kind != "U" or meta_text.ndim != 0:
        raise UserError(f"{label}: meta must be one JSON string, got {meta_text.dtype} of shape {meta_text.shape}")
    meta = parse_json(str(meta_text), f"{label}: meta")
    check_value(meta, dict, f"{label}: meta")
    if meta.get("format_version") != FORMAT_VERSION:
        raise UserError(f"activations file {path}: format version {meta.get('format_version')}, this mirrorlab "
                        f"reads {FORMAT_VERSION}; rerun `mirrorlab analyze`")
    check_record(meta, _META_SCHEMA, f"{label}: meta")
    _check_shapes(arrays, label)
    return Activations(**{name: arrays[name] for name in _ARRAYS}, meta=meta)


def _frames(episodes: list[dict[str, Any]], side: str) -> np.ndarray:
    """[N, T+1, 3, S, S] uint8 frames of one side of every episode."""
    return np.stack([e[side]["frames"] for e in episodes]).transpose(0, 1, 4, 2, 3)


def babble_scored(run, episode_id: int) -> bool:
    """Whether a babble episode can score the inverse head: it never learnt from it. With `inverse_babble`
    only the held-out babble ids qualify; with the self arm's own video (`inverse_data="self"`) none do."""
    if run.config.inverse_data != "other":
        return False
    held = run.test_babble_ids
    return held is None or episode_id in held


def _pooled_r2(truth: list[np.ndarray], inferred: list[np.ndarray]) -> float:
    """R^2 over every scored step (NaN when none was scored)."""
    from sklearn.metrics import r2_score

    truth_all = np.concatenate(truth) if truth else np.zeros((0, 1))
    return float(r2_score(truth_all, np.concatenate(inferred))) if len(truth_all) else float("nan")


class _ForwardScore:
    """The forward head's held-out pixel error with the true actions and with another held-out episode's actions
    from the same starts, summed over batches (their ratio is `forward_action_sensitivity`; 1: the forward head
    ignores the actions)."""

    def __init__(self) -> None:
        self.true_sum, self.true_n, self.other_sum, self.other_n = 0.0, 0, 0.0, 0

    def add(self, model, actions, own, start, window, predicted, batch_size: int) -> None:
        """One batch of held-out episodes: actions [N, T, A], own frames [N, T+1, 3, S, S], the core's forward
        prediction with the true actions [N, T, 3, S, S]."""
        import torch

        from mirrorlab.agents.core import record
        from mirrorlab.agents.embodied import observed_input
        from mirrorlab.encoders.cnn import frames_as_targets

        n = len(actions)
        target = frames_as_targets(torch.from_numpy(own[:, 1:])).numpy()
        self.true_sum += float(((predicted - target) ** 2).mean()) * n
        self.true_n += n
        if n >= 2:  # the same starts, each with another held-out episode's actions
            other = record(model, np.roll(actions, 1, axis=0), observed_input(own, window), batch_size, start)
            self.other_sum += float(((other.forward_prediction - target) ** 2).mean()) * n
            self.other_n += n

    @property
    def mse(self) -> float:
        return self.true_sum / self.true_n if self.true_n else float("nan")

    @property
    def sensitivity(self) -> float:
        return (self.other_sum / self.other_n) / self.mse if self.other_n and self.true_sum else float("nan")


def _record_babble(run, model, episodes, actions, mine, parts, babble) -> None:
    """A batch of babbling: the self arm's own states (perform and watching itself), and the inverse head's
    guesses on the episodes it never learnt from (`babble_scored`)."""
    scored = np.array([babble_scored(run, e["episode_id"]) for e in episodes])
    babble["truth"].append(actions[scored].reshape(-1, actions.shape[-1]))
    babble["inferred"].append(mine.inverse_prediction[scored].reshape(-1, actions.shape[-1]))
    parts["babble_ids"].append(np.array([e["episode_id"] for e in episodes], np.int64))
    parts["babble_perform"].append(mine.perform)
    parts["babble_self_observe"].append(mine.observe)
    parts["babble_distance"].append(np.stack([e["perform"]["distance"] for e in episodes]))


def _record_demos(run, model, episodes, actions, own, start, mine, parts, forward: _ForwardScore,
                  batch_size: int) -> None:
    """A batch of demonstrations: the core performing them and watching the other arm do them, aligned by
    (episode, timestep); the held-out ones also score the forward head."""
    from mirrorlab.agents.core import record
    from mirrorlab.agents.embodied import observed_input

    window = tuple(run.config.observe_window)
    watched = record(model, actions, observed_input(_frames(episodes, "observe"), window), batch_size, start)
    ids = np.array([e["episode_id"] for e in episodes], np.int64)
    held = np.array([i in set(run.test_episode_ids) for i in ids])
    for key, value in (("episode_ids", ids), ("held_out", held), ("actions", actions), ("perform", watched.perform),
                       ("observe", watched.observe), ("self_observe", mine.observe),
                       ("inferred", watched.inverse_prediction),
                       ("perform_distance", np.stack([e["perform"]["distance"] for e in episodes])),
                       ("observe_distance", np.stack([e["observe"]["distance"] for e in episodes]))):
        parts[key].append(value)
    if held.any():
        forward.add(model, actions[held], own[held], None if start is None else start[held], window,
                    watched.forward_prediction[held], batch_size)


def record_run_activations(run, dataset, batch_size: int = 16, device: str = "cpu") -> Activations:
    """Run `run`'s core (on `device`) over every episode of `dataset` (already checked to be the run's own)."""
    from sklearn.metrics import r2_score

    from mirrorlab.agents.core import record
    from mirrorlab.agents.embodied import observed_input, perform_start

    model = run.load_core(device)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in _ARRAYS}
    forward = _ForwardScore()
    babble: dict[str, list[np.ndarray]] = {"truth": [], "inferred": []}
    for kind in ("demo", "babble"):
        refs = dataset.episodes(kind)
        for s in range(0, len(refs), batch_size):
            episodes = [dataset.read_episode(r) for r in refs[s:s + batch_size]]
            actions = np.stack([e["actions"] for e in episodes]).astype(np.float32)
            own = _frames(episodes, "perform")
            start = perform_start(model, own)
            mine = record(model, actions, observed_input(own, tuple(run.config.observe_window)), batch_size, start)
            if kind == "babble":
                _record_babble(run, model, episodes, actions, mine, parts, babble)
            else:
                _record_demos(run, model, episodes, actions, own, start, mine, parts, forward, batch_size)
    T, H, A = dataset.header.max_steps, model.hidden_size, dataset.header.action_dim
    empty = {"babble_ids": np.zeros(0, np.int64), "babble_perform": np.zeros((0, T, H), np.float32),
             "babble_self_observe": np.zeros((0, T, H), np.float32), "babble_distance": np.zeros((0, T + 1))}
    arrays = {k: (np.concatenate(v) if v else empty[k]) for k, v in parts.items()}
    held_mask = arrays["held_out"]
    inverse_r2 = float(r2_score(arrays["actions"][held_mask].reshape(-1, A),
                                arrays["inferred"][held_mask].reshape(-1, A))) if held_mask.any() else float("nan")
    meta = {"run": str(run.dir), "name": run.name, "condition": run.config.condition, "seed": run.config.seed,
            "inverse_data": run.config.inverse_data, "inverse_weight": run.config.inverse_weight,
            "other_appearance": run.other_appearance, "data_fingerprint": run.data_fingerprint,
            "data_path": str(dataset.path), "inverse_r2": inverse_r2, "forward_mse": forward.mse,
            "forward_action_sensitivity": forward.sensitivity,
            # Random actions the inverse head never learnt from: no policy to recognise, so only reading the
            # movement scores here (NaN when no babbling episode was held out of the inverse head's data).
            "inverse_r2_babble": _pooled_r2(babble["truth"], babble["inferred"])}
    return Activations(**arrays, meta=meta)
