"""A trained embodied core on disk: what a run folder holds, how to build, save and load its core.

| file                      | content                                                                 |
|---------------------------|-------------------------------------------------------------------------|
| `.mirrorlab-output.json`  | marker: the folder belongs to `mirrorlab train`                         |
| `config.json`             | the `TrainConfig`, seed, versions, git commit; the dataset's signature, fingerprint and path; the appearance of the other arm; the train / held-out episode ids (and babble ids, with `inverse_babble`) |
| `checkpoints/epoch-NNNN.pt` | model and optimiser state, epoch, loss history (weights-only torch) |
| `model.pt`                | the final weights (a state_dict, weights-only torch)                    |
| `history.csv`, `tb/`      | per-epoch losses (CSV and TensorBoard)                                  |
| `done.json`               | the final summary, written last: a run without it is unfinished        |

Nothing in a run folder is unpickled: weights load with `torch.load(weights_only=True)`, the rest is JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mirrorlab.agents.conditions import get_condition
from mirrorlab.config import replace_checked
from mirrorlab.envs.episodes import check_env_id
from mirrorlab.errors import UserError
from mirrorlab.files import check_value, folder_owner, load_torch, read_json, refuse_symlinks_in

INVERSE_DATA = ("other", "self")
# How the perform path starts (agents.embodied); the first is the default.
GROUNDINGS = ("start_frame_change", "start_frame", "none")
MAX_THREADS = 256
# The paper's future work as training options (agents.replay, agents.reward); the first of each is the default.
REPLAYS = ("uniform", "surprise")
REWARD_MODULATIONS = ("none", "self", "other")


@dataclass(frozen=True)
class TrainConfig:
    """Every default of embodied training: the config of one run."""

    condition: str = "shared"
    seed: int = 0
    # The learner's defaults come from the learning curve (`mirrorlab curve`, README): at 32 px, the frames
    # around each step stacked, stride-1 convolutions that keep sub-pixel motion, random shifts.
    embed_dim: int = 64
    hidden_size: int = 96
    cnn_channels: int = 16
    cnn_strides: tuple[int, ...] = (2, 1, 2, 1)
    observe_window: tuple[int, ...] = (-1, 0, 1)  # frames t + k stacked as the observe input of step t
    augment_shift: int = 2         # DrQ-style random shift (pixels) of the watched frames while training
    lr: float = 1e-3
    batch_size: int = 8            # episodes per batch
    epochs: int = 20
    # Pixel errors are ~100x smaller than action errors: at weight 1 the shared GRU serves the inverse head and
    # the forward head barely uses the actions (README: "The forward model").
    forward_weight: float = 10.0
    inverse_weight: float = 1.0    # the loss weight of the inverse objective: the tuning parameter of mirroring
    inverse_data: str = "other"    # "other": the inverse head learns from the other arm's video;
                                   # "self": only from the self arm's own video (tests self -> other transfer)
    # The perform path starts from the self arm's own first frame, and its forward head predicts the change from
    # that frame ("start_frame_change"), or the whole next frame ("start_frame"); or it starts from zeros ("none",
    # the paper's action-only path, whose forward head cannot know where the arm starts). README: "The forward
    # model" has the measurements behind the default.
    perform_grounding: str = GROUNDINGS[0]
    use_babble: bool = True        # the self arm's motor babbling trains the forward head (and the inverse, if "self")
    # The inverse head also learns from the self arm's labelled babbling (its own video), as an agent can
    # label its own movements: a general inverse model rather than one of the demonstrator's policy. Its
    # highest babble ids (test_fraction) are then held out of all training, so the babble R^2 stays honest.
    inverse_babble: bool = False
    # The selectivity dose-response: weight of a term rewarding (> 0) or penalising (< 0) each unit's
    # perform-observe correlation on demo batches (agents.training.selectivity_loss); 0: no term.
    selectivity_weight: float = 0.0
    # The paper's replay at surprise (agents.replay): "surprise" hands `replay_fraction` of each epoch's batches to
    # replays of the `replay_buffer` episodes (per kind) whose latest loss was largest, drawn in proportion to it;
    # the number of updates stays that of "uniform" (the default: every batch from the uniform pass).
    replay: str = "uniform"
    replay_fraction: float = 0.25
    replay_buffer: int = 16
    # The paper's reward-modulated learning (agents.reward): each step's loss weighted by the progress towards the
    # target of the self arm ("self") or the other arm ("other"), normalised to mean 1 over the batch and mixed
    # with 1 by `reward_strength` (1: a step without progress teaches nothing); "none": unweighted (the default).
    reward_modulation: str = "none"
    reward_strength: float = 1.0
    test_fraction: float = 0.25    # held-out demo episodes (the highest ids), never trained on
    train_episodes: int = 0        # 0: every other demo episode trains; n: only the first n (learning curves)
    checkpoint_every: int = 1
    threads: int = 1
    cache_mib: int = 1024          # decoded episodes kept in memory per run (each of demo and babble)

    @property
    def inverse_source(self) -> str:
        """What the inverse head learnt from, as reports name it: `other`, `self` or `other+babble`."""
        return "other+babble" if self.inverse_babble else self.inverse_data

    def validate(self, where: str = "config") -> None:
        get_condition(self.condition, f"{where}: condition")
        if self.inverse_data not in INVERSE_DATA:
            raise UserError(f"{where}: inverse_data must be one of {', '.join(INVERSE_DATA)}, got {self.inverse_data!r}")
        check_seed(self.seed, f"{where}: seed")
        if self.perform_grounding not in GROUNDINGS:
            raise UserError(f"{where}: perform_grounding must be one of {', '.join(GROUNDINGS)}, got "
                            f"{self.perform_grounding!r}")
        for name in ("embed_dim", "hidden_size", "cnn_channels", "batch_size", "checkpoint_every", "threads",
                     "cache_mib"):
            if getattr(self, name) < 1:
                raise UserError(f"{where}: {name} must be >= 1, got {getattr(self, name)}")
        if not self.cnn_strides or not all(1 <= s <= 4 for s in self.cnn_strides):
            raise UserError(f"{where}: cnn_strides must list strides in 1..4, got {list(self.cnn_strides)}")
        if not self.observe_window or len(set(self.observe_window)) != len(self.observe_window) or \
                any(abs(k) > 8 for k in self.observe_window):
            raise UserError(f"{where}: observe_window must list distinct frame offsets in -8..8, got "
                            f"{list(self.observe_window)}")
        if not 0 <= self.augment_shift <= 16:
            raise UserError(f"{where}: augment_shift must be in 0..16 pixels, got {self.augment_shift}")
        if self.threads > MAX_THREADS:
            raise UserError(f"{where}: threads must be at most {MAX_THREADS}, got {self.threads}")
        if self.epochs < 0:
            raise UserError(f"{where}: epochs must be >= 0, got {self.epochs}")
        for name in ("lr",):
            if not getattr(self, name) > 0 or not math.isfinite(getattr(self, name)):
                raise UserError(f"{where}: {name} must be a positive number, got {getattr(self, name)}")
        if not math.isfinite(self.selectivity_weight):
            raise UserError(f"{where}: selectivity_weight must be a number, got {self.selectivity_weight}")
        if self.replay not in REPLAYS:
            raise UserError(f"{where}: replay must be one of {', '.join(REPLAYS)}, got {self.replay!r}")
        if not 0 < self.replay_fraction < 1:
            raise UserError(f"{where}: replay_fraction must be in (0, 1), got {self.replay_fraction}")
        if self.replay == "surprise" and self.replay_buffer < self.batch_size:  # a replay batch is a full batch
            raise UserError(f"{where}: replay_buffer must be >= batch_size ({self.batch_size}), got "
                            f"{self.replay_buffer}")
        if self.reward_modulation not in REWARD_MODULATIONS:
            raise UserError(f"{where}: reward_modulation must be one of {', '.join(REWARD_MODULATIONS)}, got "
                            f"{self.reward_modulation!r}")
        if not 0 <= self.reward_strength <= 1:
            raise UserError(f"{where}: reward_strength must be in [0, 1], got {self.reward_strength}")
        for name in ("forward_weight", "inverse_weight"):
            if not getattr(self, name) >= 0 or not math.isfinite(getattr(self, name)):
                raise UserError(f"{where}: {name} must be a number >= 0, got {getattr(self, name)}")
        if self.inverse_babble and (self.inverse_data != "other" or not self.use_babble):
            raise UserError(f"{where}: inverse_babble needs inverse_data \"other\" and use_babble")
        if self.train_episodes < 0:
            raise UserError(f"{where}: train_episodes must be >= 0 (0: all), got {self.train_episodes}")
        if not 0 < self.test_fraction < 1:
            raise UserError(f"{where}: test_fraction must be in (0, 1), got {self.test_fraction}")


def check_seed(seed: int, where: str) -> int:
    """Seeds feed numpy, torch and MuJoCo: integers in [0, 2^32)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise UserError(f"{where}: expected an integer in [0, 2^32), got {seed!r}")
    return seed


DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str, where: str = "--device") -> str:
    """`auto` -> cuda when a GPU is visible, else cpu; an unavailable cuda is one clear error. Results are
    bit-reproducible on CPU only (GPU kernels are not deterministic)."""
    import torch

    if device not in DEVICES:
        raise UserError(f"{where}: expected one of {', '.join(DEVICES)}, got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError(f"{where}: cuda asked for, but torch sees no GPU here (use cpu or auto)")
    return device


def to_device(item: Any, device: str) -> Any:
    """A batch (nested dicts of tensors) on `device`."""
    if isinstance(item, dict):
        return {k: to_device(v, device) for k, v in item.items()}
    return item.to(device) if hasattr(item, "to") else item


def data_signature(header) -> dict[str, Any]:
    """What a run's core is built for: any dataset it is used with must agree."""
    return {"env_id": header.env_id, "frame_size": int(header.frame_size), "action_dim": int(header.action_dim),
            "max_steps": int(header.max_steps)}


def split_episodes(episode_ids: list[int], test_fraction: float, kind: str = "demo") -> tuple[list[int], list[int]]:
    """Train and held-out episode ids: the highest ids are held out, so adding episodes to a
    dataset never moves a held-out episode into training."""
    ids = sorted(episode_ids)
    n_test = max(1, math.ceil(len(ids) * test_fraction))
    if n_test >= len(ids):
        raise UserError(f"dataset: {len(ids)} {kind} episodes cannot be split with test_fraction {test_fraction}")
    return ids[:-n_test], ids[-n_test:]


def build_core(config: TrainConfig, signature: dict[str, Any]):
    from mirrorlab.agents.embodied import build_embodied_core

    return build_embodied_core(signature["action_dim"], signature["frame_size"], config.embed_dim,
                               config.hidden_size, config.cnn_channels,
                               get_condition(config.condition).separate_cores, config.seed,
                               tuple(config.observe_window), tuple(config.cnn_strides), config.perform_grounding)


@dataclass(frozen=True)
class Run:
    """A finished run: its folder, config and record (config.json as written by training)."""

    dir: Path
    config: TrainConfig
    record: dict[str, Any]

    @property
    def data_path(self) -> Path:
        return Path(self.record["data_path"])

    @property
    def data_fingerprint(self) -> str:
        return self.record["data_fingerprint"]

    @property
    def other_appearance(self) -> str:
        return self.record["other_appearance"]

    @property
    def view(self) -> str:
        """The camera the other arm was watched from (records before views existed: `other_view`)."""
        return self.record.get("observe_camera", "other_view")

    @property
    def watched(self) -> str:
        """What the core watched, as every stage keys and labels it: the other arm's appearance and the view,
        so runs on the same appearance seen from different cameras are never pooled."""
        return f"{self.other_appearance}, {self.view}"

    @property
    def train_episode_ids(self) -> list[int]:
        return [int(i) for i in self.record["train_episode_ids"]]

    @property
    def test_episode_ids(self) -> list[int]:
        return [int(i) for i in self.record["test_episode_ids"]]

    @property
    def test_babble_ids(self) -> list[int] | None:
        """Babble episodes held out of training (None: every babble episode trained, or there are none)."""
        ids = self.record.get("test_babble_ids")
        return None if ids is None else [int(i) for i in ids]

    @property
    def name(self) -> str:
        """`condition__seedN`, marked when the inverse head learnt from the self arm's own video."""
        suffix = "" if self.config.inverse_data == "other" else f"_{self.config.inverse_data}video"
        return f"{self.config.condition}{suffix}__seed{self.config.seed}"

    @property
    def label(self) -> str:
        return run_label(self)

    def load_core(self, device: str = "cpu"):
        """The trained core, in eval mode, on `device` (weights-only load)."""
        model = build_core(self.config, self.record["data"])
        state = load_torch(self.dir / "model.pt", f"run {self.dir}: weights")
        try:
            model.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as err:
            raise UserError(f"{self.dir}/model.pt: weights do not fit the run's config ({str(err)[:200]})") from None
        return model.to(device).eval()

    def check_data(self, dataset) -> None:
        """Refuse a dataset other than the one the run was trained on."""
        from mirrorlab.envs.paired import check_fingerprint

        check_fingerprint(self.data_fingerprint, dataset, f"run {self.dir}")


_RECORD_SCHEMA = {"config": dict, "data": dict, "data_fingerprint": str, "data_path": str, "other_appearance": str,
                  "train_episode_ids": list, "test_episode_ids": list}
_SIGNATURE_LIMITS = {"frame_size": 1024, "action_dim": 64, "max_steps": 100_000}
# Widths a run record may declare: a crafted config.json of hidden_size 10^6 (a GRU of 3 * 10^12 weights)
# is refused before the core is built.
_WIDTH_LIMITS = {"hidden_size": 8192, "embed_dim": 8192, "cnn_channels": 1024}


def read_run(run_dir: str | Path) -> Run:
    """A finished run folder, checked: one clear error for anything else (an unfinished run names the command
    that finishes it; a symbolic link anywhere in the folder, such as a model.pt borrowed from another run, is
    refused)."""
    run_dir = Path(run_dir).resolve()
    if not run_dir.is_dir():
        raise UserError(f"run {run_dir}: no such folder")
    refuse_symlinks_in(run_dir, f"run {run_dir}")
    if folder_owner(run_dir) != "train":
        raise UserError(f"run {run_dir}: not a finished `mirrorlab train` run (its marker and done.json expected)")
    where = f"run {run_dir}/config.json"
    record = read_json(run_dir / "config.json", "run record", schema=_RECORD_SCHEMA)
    if not (run_dir / "done.json").is_file():
        raise UserError(f"run {run_dir}: not a finished `mirrorlab train` run (no done.json: training stopped); "
                        f"finish it with `mirrorlab train --data {record['data_path']} --out {run_dir}` and the same "
                        "settings (it resumes)")
    for key in ("train_episode_ids", "test_episode_ids"):
        for i, value in enumerate(record[key]):
            check_value(value, int, f"{where}: key {key!r}[{i}]")
    for key, limit in _SIGNATURE_LIMITS.items():
        value = check_value(record["data"].get(key), int, f"{where}: key 'data.{key}'")
        if not 0 < value <= limit:
            raise UserError(f"{where}: key 'data.{key}' is {value}, expected 1..{limit}")
    check_env_id(record["data"].get("env_id"), f"{where}: key 'data.env_id'")
    config = replace_checked(TrainConfig(), record["config"], where)
    config.validate(where)
    for key, limit in _WIDTH_LIMITS.items():
        if getattr(config, key) > limit:
            raise UserError(f"{where}: key 'config.{key}' is {getattr(config, key)}, more than {limit}; refusing to "
                            "build it")
    return Run(run_dir, config, record)


def run_label(run) -> str:
    """A run (anything with its `name` and `config`) as every stage's rows and reports name it: the run name's
    condition (`shared`, `shared_selfvideo`, ...), plus `+babble` when its inverse head also learnt from the self
    arm's babbling, `@w<weight>` for an inverse weight other than 1, `@fw<weight>` for a forward weight other than
    the default, `@sel<weight>` for a selectivity term, `-ungrounded` for the action-only perform path and
    `-wholeframe` for a forward head that redraws the whole frame, `+surprise` / `+reward_self` / `+reward_other` for
    the replay and reward options, so runs that learnt differently are scored
    apart rather than pooled (the untrained core has no loss, so no training mark)."""
    label = run.name.split("__")[0]
    if run.config.perform_grounding != GROUNDINGS[0]:
        label += {"none": "-ungrounded", "start_frame": "-wholeframe"}[run.config.perform_grounding]
    if run.config.condition == "untrained":
        return label
    if run.config.inverse_babble:
        label += "+babble"
    if run.config.inverse_weight != 1.0:
        label += f"@w{run.config.inverse_weight:g}"
    if run.config.forward_weight != TrainConfig.forward_weight:
        label += f"@fw{run.config.forward_weight:g}"
    if run.config.selectivity_weight:
        label += f"@sel{run.config.selectivity_weight:g}"
    replay = getattr(run.config, "replay", REPLAYS[0])  # the replay and reward options (a config-like record may lack them)
    if replay != REPLAYS[0]:
        label += f"+{replay}"
    reward = getattr(run.config, "reward_modulation", REWARD_MODULATIONS[0])
    if reward != REWARD_MODULATIONS[0]:
        label += f"+reward_{reward}"
    return label
