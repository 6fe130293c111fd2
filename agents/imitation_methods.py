"""The imitation methods, one record each: what a method sees, whether it asks an expert, how it acts.

Adding a method is one function and one `Method` row in `METHODS`. A method's `build(ctx)` returns a
function video -> actor (`act(obs, t)`) and what it cost (expert queries); methods of a trained core
(`per_run`) get the core in `ctx.core`. Reports build their table from these records, never from names.

| method | family | sees | expert? | how it acts |
|---|---|---|---|---|
| `oracle` | bound | the true actions | - | replays the demonstrator's actions |
| `random` | bound | nothing | - | uniform random actions |
| `goal_given` | reference | the target | - | the demonstrator driving the self arm to the anatomical goal (not imitation) |
| `goal_given_specular` | reference | the mirrored target | - | ... to the specular goal (mirrored videos only) |
| `what_then_how` | baseline | the video's first frame | no | a CNN reads the target from the video, the self arm's own reaching controller goes there |
| `bc` | baseline | the video | no | a frame-window CNN fitted on videos with the demonstrator's actions, fed videos at test too (open loop) |
| `bco` | baseline | the video | no | BCO: inverse dynamics fitted on the self arm's own babbling, reads the video's actions (open loop) |
| `bco_alpha` | baseline | the video + own rollouts | no | BCO(alpha): the inverse dynamics refitted on its own rollouts of the fit videos |
| `dagger` | baseline | own camera + video | yes (counted) | closed-loop tracking policy (own frames t-1, t, the video's t+1) improved by DAgger |
| `handover` | baseline | own camera + video | yes (counted) | an ensemble of DAgger's policy hands control to the expert where it disagrees, at DAgger's query budget (agents/handover.py) |
| `inverse` | core | the video | no | the core's inverse head on the video, replayed open loop |
| `closed_loop` | core | own camera + video | no | the core's observe path in closed loop: own frames up to t, the video's after |
| `synthesis` | mirror system | the video + own first frame | no | analysis by synthesis: actions whose forward-predicted frames match the video |
| `latent` | mirror system | the video + own first frame | no | latent matching: the perform-mode states track the video's observe-mode states |
| `goal_inference` | mirror system | the video + own first frame | no | the video's final observe-mode state read as a goal the perform path reaches |

The three mirror-system methods use only the core: its observe path reads the video, its grounded perform
path (started from the own first frame) plans, from the inverse head's estimate, every test video in one
batch; with `replan_every` they re-plan from the own frame of that step (re-encoding where the arm is).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from mirrorlab.agents.handover import build_handover
from mirrorlab.agents.imitation_task import ImitationTask, Replay, Video
from mirrorlab.agents.runs import DEVICES, check_seed
from mirrorlab.errors import UserError

Actor = Callable[[Any, int], np.ndarray]


@dataclass(frozen=True)
class ImitateConfig:
    """Every default of the imitation test."""

    episodes: int = 20             # test videos scored per dataset and appearance (at most half the held-out set)
    seed: int = 0
    appearances: tuple[str, ...] = ("held_out_color",)  # rendered test appearances beside each dataset's own
    learners: bool = True          # the learnt baselines: what_then_how, BC, BCO, BCO(alpha), DAgger
    mirror_conditions: tuple[str, ...] = ("shared",)    # conditions whose cores plan (synthesis, latent, goal)
    policy_epochs: int = 20        # epochs of a frame policy's first fit
    refit_epochs: int = 10         # ... and of each DAgger / BCO(alpha) refit, which starts from the last policy
    policy_lr: float = 1e-3
    bco_iterations: int = 2        # BCO(alpha): refits on the learner's own rollouts
    dagger_iterations: int = 3
    dagger_episodes: int = 4       # expert-labelled rollouts per DAgger iteration
    plan_iterations: int = 150     # the mirror-system planners: Adam steps of the plan (all test videos at once)
    replan_every: int = 0          # re-plan from the own frame every this many steps (grounded cores; 0: never)
    replan_iterations: int = 30
    learner_episodes: int = 0      # training videos the learnt baselines fit on (0: all the runs trained on)
    patching: bool = True          # activation patching on the mirror_conditions' cores (agents/patching.py)
    overimitation: bool = False    # every method also imitates detour demonstration pairs (agents/overimitation.py)
    bootstrap: int = 2000          # resamples of (seeds, videos) for the intervals
    workers: int = 1               # (dataset, seed) jobs scored in parallel
    device: str = "cpu"            # where the cores and the frame policies run ("auto": a GPU if visible)

    def validate(self) -> None:
        from mirrorlab.agents.conditions import check_conditions
        from mirrorlab.envs.scene import OTHER_APPEARANCES

        for name in ("episodes", "policy_epochs", "refit_epochs", "dagger_episodes", "plan_iterations", "bootstrap"):
            if getattr(self, name) < 1:
                raise UserError(f"config: {name} must be >= 1, got {getattr(self, name)}")
        for name in ("dagger_iterations", "bco_iterations", "replan_every", "replan_iterations", "learner_episodes"):
            if getattr(self, name) < 0:
                raise UserError(f"config: {name} must be >= 0, got {getattr(self, name)}")
        if not (self.policy_lr > 0 and math.isfinite(self.policy_lr)):
            raise UserError(f"config: policy_lr must be a positive number, got {self.policy_lr}")
        if any(a not in OTHER_APPEARANCES for a in self.appearances):
            raise UserError(f"config: appearances must name some of {', '.join(OTHER_APPEARANCES)}")
        if self.mirror_conditions:  # empty: no core plans (the arm3d and tuning presets)
            check_conditions(self.mirror_conditions, "config: mirror_conditions")
        check_seed(self.seed, "config: seed")
        if self.device not in DEVICES:
            raise UserError(f"config: device must be one of {', '.join(DEVICES)}, got {self.device!r}")


@dataclass
class Core:
    """A trained run's core as the core methods use it, with what it read from each video (cached)."""

    model: Any
    label: str
    condition: str
    observe_window: tuple[int, ...]
    lesion: Any = None           # applied inside the recurrence while it watches (agents/lesion.py)
    perform_lesion: Any = None   # ... while it plans (None: `lesion`); a mean-ablation has a mean per mode
    _watched: dict[tuple[str, int], Any] = field(default_factory=dict)

    def watch(self, videos: list[Video]):
        """(observe-mode states [N, T, H], inferred actions [N, T, A]) of the core watching `videos`, each
        video read once (in one batch) however many methods ask."""
        from mirrorlab.agents.imitation import watch

        new = [v for v in videos if (v.appearance, v.episode_id) not in self._watched]
        if new:
            states, inferred = watch(self.model, np.stack([v.frames for v in new]), self.observe_window, self.lesion)
            for i, v in enumerate(new):
                self._watched[(v.appearance, v.episode_id)] = (states[i], inferred[i])
        read = [self._watched[(v.appearance, v.episode_id)] for v in videos]
        return torch.stack([r[0] for r in read]), torch.stack([r[1] for r in read])

    @property
    def planning_lesion(self) -> Any:
        """The lesion of the perform path, which the planners run."""
        return self.lesion if self.perform_lesion is None else self.perform_lesion


@dataclass
class Context:
    """What a method is built from: the task, the config, the seed (of the runs scored), the expert, a core."""

    task: ImitationTask
    config: ImitateConfig
    seed: int
    device: str
    expert: Actor
    core: Core | None = None
    fits: dict[str, Any] = field(default_factory=dict)  # first fits several methods start from (this seed)

    @property
    def learner_videos(self) -> list[Video]:
        """What the learnt baselines fit on: the runs' training videos (the first `learner_episodes`, if set)
        and the fit videos, so they see what the cores saw."""
        n = self.config.learner_episodes
        return (self.task.train[:n] if n else self.task.train) + self.task.fit

    def first_fit(self, key: str, data: Callable[[], tuple[np.ndarray, np.ndarray]]):
        """One first fit per kind of data however many methods start from it (BC and DAgger's first policy
        are the same fit of the same video windows; BCO and BCO(alpha) the same inverse dynamics); each
        caller gets its own copy, as refits train a policy in place."""
        import copy

        if key not in self.fits:
            self.fits[key] = _fit(self, *data())
        return copy.deepcopy(self.fits[key])


Built = tuple[Callable[[Video], Actor], dict[str, Any]]


@dataclass(frozen=True)
class Method:
    name: str
    family: str                  # bound, reference, baseline, core, mirror system
    sees: str
    expert: bool                 # asks an expert during learning
    build: Callable[[Context], Built]
    per_run: bool = False        # one row per trained core
    learner: bool = False        # a learnt baseline (skipped with `learners=False`)
    planner: bool = False        # plans through the core (only `mirror_conditions`)
    options: Callable[[Video], dict | None] = lambda _v: None  # reset options of the self arm's rollout

    @property
    def record(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family, "sees": self.sees, "expert": self.expert}


def replay(actions: Callable[[Video], np.ndarray]) -> Callable[[Video], Actor]:
    """An open-loop method: the actions it reads from a video, replayed."""
    return lambda video: Replay(actions(video))


# --- bounds and references -----------------------------------------------------------------------------
def _oracle(ctx: Context) -> Built:
    return replay(lambda v: v.actions), {}


def _random(ctx: Context) -> Built:
    rng = np.random.default_rng([ctx.config.seed, ctx.seed, 1])
    return replay(lambda v: rng.uniform(-1, 1, v.actions.shape)), {}


def _goal_given(ctx: Context) -> Built:
    return (lambda _v: ctx.expert), {}


# --- learnt baselines ----------------------------------------------------------------------------------
def _fit(ctx: Context, windows: np.ndarray, labels: np.ndarray, policy=None, iteration: int = 0):
    from mirrorlab.agents.imitation import fit_frame_policy

    c = ctx.config
    return fit_frame_policy(windows, labels, epochs=c.policy_epochs if policy is None else c.refit_epochs,
                            lr=c.policy_lr, seed=ctx.seed * 100 + iteration, policy=policy, device=ctx.device)


def _video_windows(videos: list[Video]) -> np.ndarray:
    from mirrorlab.agents.imitation import episode_windows

    return episode_windows(np.stack([v.frames for v in videos]))


def _infer(policy, windows: np.ndarray) -> np.ndarray:
    import torch

    from mirrorlab.agents.imitation import _tensor

    with torch.no_grad():
        return policy.eval()(_tensor(windows, policy)).cpu().numpy()


def _what_then_how(ctx: Context) -> Built:
    """The target read from the video's first frame (a CNN fitted on every training and fit video with its
    target), then reached by the self arm's own scripted controller (no imitation of the movement)."""
    task = ctx.task
    videos = ctx.learner_videos
    d = 2 if task.env.unwrapped.planar else 3
    targets = np.stack([v.target[:d] for v in videos])
    scale = 1.25 * float(np.abs(targets).max()) or 1.0
    first = np.stack([v.frames[0].transpose(2, 0, 1)[None] for v in videos])
    reader = _fit(ctx, first, (targets / scale).astype(np.float32))
    def make(video: Video) -> Actor:
        from mirrorlab.agents.scripted import ScriptedReacher

        goal = np.zeros(3)
        goal[:d] = _infer(reader, video.frames[0].transpose(2, 0, 1)[None, None])[0] * scale
        if d == 2:
            goal[2] = video.target[2]  # a planar arm's targets lie in its plane
        controller = ScriptedReacher(task.env)
        physics = task.physics
        return lambda _obs, _t: controller.action(goal=physics.from_base_frame("self", goal))
    return make, {}


def _demonstrations(ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    """Video windows [M, 3, 3, S, S] of the learners' videos and the demonstrator's actions [M, A]."""
    from mirrorlab.agents.imitation import step_windows

    videos = ctx.learner_videos
    return step_windows(np.stack([v.frames for v in videos]), [v.actions for v in videos])


def _bc(ctx: Context) -> Built:
    policy = ctx.first_fit("demonstrations", lambda: _demonstrations(ctx))
    return replay(lambda v: _infer(policy, _video_windows([v])[0])), {}


def _babble_idm(ctx: Context):
    from mirrorlab.agents.imitation import step_windows

    babble = ctx.task.babble
    return step_windows(np.stack([e["perform"]["frames"] for e in babble]), [e["actions"] for e in babble])


def _bco(ctx: Context) -> Built:
    idm = ctx.first_fit("babble", lambda: _babble_idm(ctx))
    return replay(lambda v: _infer(idm, _video_windows([v])[0])), {}


def _bco_alpha(ctx: Context) -> Built:
    """BCO(alpha) (Torabi et al. 2018): after the demonstrations, the imitator executes what it inferred on
    the fit videos and refits its inverse dynamics on those own transitions (its own camera), alpha times."""
    from mirrorlab.agents.imitation import episode_windows

    windows, actions = _babble_idm(ctx)
    idm = ctx.first_fit("babble", lambda: (windows, actions))
    all_windows, all_actions = [windows], [actions]
    for i in range(ctx.config.bco_iterations):
        for video in ctx.task.fit:
            inferred = _infer(idm, _video_windows([video])[0])
            own = ctx.task.rollout(video, Replay(inferred), camera=ctx.task.header.perform_camera)
            all_windows.append(episode_windows(own["frames"][None])[0])
            all_actions.append(own["actions"])
        idm = _fit(ctx, np.concatenate(all_windows), np.concatenate(all_actions), idm, i + 1)
    return replay(lambda v: _infer(idm, _video_windows([v])[0])), {}


def _dagger(ctx: Context) -> Built:
    from mirrorlab.agents.imitation import TrackingActor, dagger

    task, config = ctx.task, ctx.config
    flat, labels = _demonstrations(ctx)
    policy = ctx.first_fit("demonstrations", lambda: (flat, labels))

    def expert_rollout(policy, index: int):
        video = task.fit[index % len(task.fit)]
        seen: list[np.ndarray] = []
        labelled: list[np.ndarray] = []
        tracker = TrackingActor(policy.act, video.frames, record=seen)

        def act(obs, t):
            labelled.append(np.asarray(ctx.expert(obs, t), np.float32))
            return tracker(obs, t)

        task.rollout(video, act)
        return np.stack(seen), np.stack(labelled)

    schedule = [[i * config.dagger_episodes + j for j in range(config.dagger_episodes)]
                for i in range(config.dagger_iterations)]
    improved, queries = dagger(policy, flat, labels, expert_rollout, schedule,
                               lambda w, a, p, i: _fit(ctx, w, a, p, i))
    return (lambda v: TrackingActor(improved.act, v.frames)), {"expert_queries": queries}


# --- the core's own read-outs and the mirror system --------------------------------------------------------
def _inverse(ctx: Context) -> Built:
    return replay(lambda v: ctx.core.watch([v])[1][0].cpu().numpy()), {}


def _closed_loop(ctx: Context) -> Built:
    from mirrorlab.agents.imitation import CoreTracker

    core = ctx.core
    return (lambda v: CoreTracker(core.model, core.observe_window, v.frames, core.lesion)), {}


def match_for(kind: str, model, videos: list[Video], states: torch.Tensor):
    """What a mirror-system planner matches: the videos' frames (synthesis), their observe-mode states step by
    step (latent matching) or their final observe-mode state (goal inference)."""
    from mirrorlab.agents.imitation import match_frames, match_states

    if kind == "synthesis":
        return match_frames(np.stack([v.frames for v in videos]), model)
    return match_states(states, final_only=kind == "goal_inference")


def plan_videos(kind: str, ctx: Context, goal_videos: list[Video], hosts: list[Video] | None = None,
                init: np.ndarray | None = None) -> np.ndarray:
    """Plans [N, T, A] through the core for many videos at once, each from the own first frame of its host
    (the video itself, or another demonstration's start for patching), from `init` (zeros if None)."""
    from mirrorlab.agents.imitation import plan_through_core

    core, c, task = ctx.core, ctx.config, ctx.task
    states, _ = core.watch(goal_videos)
    hosts = goal_videos if hosts is None else hosts
    starts = np.stack([task.start_frame(v) for v in hosts]) if core.model.grounded else None
    init = np.zeros((len(hosts), *hosts[0].actions.shape), np.float32) if init is None else init
    return plan_through_core(core.model, match_for(kind, core.model, goal_videos, states), init,
                             iterations=c.plan_iterations, start_frames=starts, seed=ctx.seed,
                             lesion=core.planning_lesion)


def _planner(kind: str) -> Callable[[Context], Built]:
    def build(ctx: Context) -> Built:
        from mirrorlab.agents.imitation import PlanningActor

        core, c = ctx.core, ctx.config
        videos = [v for group in ctx.task.test.values() for v in group]
        states, inferred = core.watch(videos)
        plans = plan_videos(kind, ctx, videos, init=inferred.cpu().numpy())  # started from the inverse head
        index = {id(v): i for i, v in enumerate(videos)}

        def make(video: Video) -> Actor:
            i = index[id(video)]
            if not (c.replan_every and c.replan_iterations and core.model.grounded):
                return Replay(plans[i])
            match = match_for(kind, core.model, [video], states[i:i + 1])
            return PlanningActor(core.model, match, plans[i], replan_every=c.replan_every,
                                 replan_iterations=c.replan_iterations, seed=ctx.seed, lesion=core.planning_lesion)
        return make, {}
    return build


METHODS = (
    Method("oracle", "bound", "the true actions", False, _oracle),
    Method("random", "bound", "nothing", False, _random),
    Method("goal_given", "reference", "the target", False, _goal_given),
    Method("goal_given_specular", "reference", "the mirrored target", False, _goal_given,
           options=lambda v: {"target": v.specular_goal}),
    Method("what_then_how", "baseline", "the video's first frame", False, _what_then_how, learner=True),
    Method("bc", "baseline", "the video", False, _bc, learner=True),
    Method("bco", "baseline", "the video", False, _bco, learner=True),
    Method("bco_alpha", "baseline", "the video + own rollouts", False, _bco_alpha, learner=True),
    Method("dagger", "baseline", "own camera + video; expert labels", True, _dagger, learner=True),
    Method("handover", "baseline", "own camera + video; the expert drives where it is unsure", True, build_handover,
           learner=True),
    Method("inverse", "core", "the video", False, _inverse, per_run=True),
    Method("closed_loop", "core", "own camera + video", False, _closed_loop, per_run=True),
    Method("synthesis", "mirror system", "the video + own first frame", False, _planner("synthesis"), per_run=True,
           planner=True),
    Method("latent", "mirror system", "the video + own first frame", False, _planner("latent"), per_run=True,
           planner=True),
    Method("goal_inference", "mirror system", "the video + own first frame", False, _planner("goal_inference"),
           per_run=True, planner=True),
)
METHOD_RECORDS = {m.name: m.record for m in METHODS}
