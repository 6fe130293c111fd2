"""How fast the arm suite steps and renders, beside the floor of the same scene.

Measured in one run, interleaved round by round so both sides see the same machine load:
- env: `env.step` of a `obs_mode="pixels"` env (physics, bookkeeping and one 64x64 render);
- floor: the bare loop on the same scene, `mujoco.mj_step(nstep=frame_skip)` +
  `Renderer.update_scene` + `Renderer.render` with the same camera and render flags;
- vector: env steps per second of a gymnasium `AsyncVectorEnv` with two worker processes against
  the same with one.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time

import gymnasium as gym
import numpy as np

import mirrorlab.envs  # noqa: F401  (registers the ids)
from mirrorlab.envs._headless import import_mujoco
from mirrorlab.envs.scene import build_scene

mujoco = import_mujoco()


@dataclasses.dataclass
class EnvBench:
    env_id: str
    frame_size: int
    env_fps: float
    floor_fps: float
    env_cpu_fps: float  # steps per second of this process's CPU time: robust to other load
    floor_cpu_fps: float

    @property
    def ratio(self) -> float:
        return self.env_fps / self.floor_fps

    @property
    def cpu_ratio(self) -> float:
        return self.env_cpu_fps / self.floor_cpu_fps


def _floor_loop(env_id: str, frame_size: int):
    """The bare MuJoCo loop on the env's own scene, from the env's own initial state (frame cost
    depends on what is in view), reset as often as the env's time limit resets the env."""
    probe_env = gym.make(env_id)
    probe_env.reset(seed=0)
    probe = probe_env.unwrapped
    model = build_scene(probe.arm_spec, "identical", offscreen_size=max(512, frame_size)).compile()
    data = mujoco.MjData(model)
    data.qpos[:], data.qvel[:], data.mocap_pos[:] = probe.data.qpos, probe.data.qvel, probe.data.mocap_pos
    initial = (data.qpos.copy(), data.qvel.copy())
    frame_skip, camera, n = probe.frame_skip, probe.camera, probe.n_joints
    episode_steps = probe_env.spec.max_episode_steps
    probe_env.close()
    renderer = mujoco.Renderer(model, frame_size, frame_size)
    for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION,
                 mujoco.mjtRndFlag.mjRND_SKYBOX, mujoco.mjtRndFlag.mjRND_FOG):
        renderer.scene.flags[flag] = 0
    mujoco.mj_forward(model, data)

    def run(actions: np.ndarray) -> None:
        for t, action in enumerate(actions):
            if t % episode_steps == 0:
                data.qpos[:], data.qvel[:] = initial
            data.ctrl[:n] = action
            mujoco.mj_step(model, data, nstep=frame_skip)
            renderer.update_scene(data, camera=camera)
            renderer.render()

    return run, renderer


def _env_loop(env_id: str, frame_size: int):
    env = gym.make(env_id, obs_mode="pixels", frame_size=frame_size)

    def run(actions: np.ndarray) -> None:
        env.reset(seed=0)
        for action in actions:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset(seed=0)

    return run, env


def bench_env(env_id: str, frame_size: int = 64, steps: int = 2000, rounds: int = 5) -> EnvBench:
    env_run, env = _env_loop(env_id, frame_size)
    floor_run, renderer = _floor_loop(env_id, frame_size)
    n = env.action_space.shape[0]
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, n)).astype(np.float32)
    env_run(actions[:50]), floor_run(actions[:50])  # warm up: GL contexts, shader compilation
    env_times, floor_times, env_cpu, floor_cpu = [], [], [], []
    for _ in range(rounds):
        for run, times, cpu in ((env_run, env_times, env_cpu), (floor_run, floor_times, floor_cpu)):
            start, start_cpu = time.perf_counter(), time.process_time()
            run(actions)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    env.close(), renderer.close()
    # The fastest round is the least disturbed measurement of each loop.
    return EnvBench(env_id, frame_size, steps / min(env_times), steps / min(floor_times),
                    steps / min(env_cpu), steps / min(floor_cpu))


def _make_pixel_env(env_id: str, frame_size: int) -> gym.Env:

    return gym.make(env_id, obs_mode="pixels", frame_size=frame_size)


def bench_vector(env_id: str, frame_size: int = 64, steps: int = 1000) -> dict[str, float]:
    """Env steps per second of AsyncVectorEnv with 1 and with 2 worker processes."""
    fps = {}
    for num_envs in (1, 2):
        fn = functools.partial(_make_pixel_env, env_id, frame_size)
        vec = gym.vector.AsyncVectorEnv([fn] * num_envs, context="spawn")
        vec.reset(seed=0)
        rng = np.random.default_rng(0)
        actions = rng.uniform(-1, 1, (steps // num_envs + 20, *vec.action_space.shape)).astype(np.float32)
        for action in actions[:20]:
            vec.step(action)
        start = time.perf_counter()
        for action in actions[20:]:
            vec.step(action)
        fps[num_envs] = num_envs * (len(actions) - 20) / (time.perf_counter() - start)
        vec.close()
    return {"one_process_fps": fps[1], "two_process_fps": fps[2], "speedup": fps[2] / fps[1]}


def run(env_ids: list[str], frame_size: int = 64, steps: int = 2000, rounds: int = 5,
        vector_steps: int = 2000, print_fn=print) -> dict:
    """Run the suite benchmark, print a table, return the figures."""
    print_fn(f"mirrorlab bench envs: {frame_size}x{frame_size} frames, MUJOCO_GL="
             f"{os.environ.get('MUJOCO_GL')}, {os.cpu_count()} CPUs, best of {rounds} rounds of "
             f"{steps} steps, env and floor interleaved; load average {os.getloadavg()[0]:.1f}")
    print_fn(f"{'env':<28}{'env.step+render fps':>21}{'floor fps':>12}{'ratio':>8}"
             f"{'ratio by CPU time':>19}  (target >= 0.85)")
    results = {"frame_size": frame_size, "envs": {}, "vector": None}
    for env_id in env_ids:
        r = bench_env(env_id, frame_size, steps, rounds)
        results["envs"][env_id] = {"env_fps": r.env_fps, "floor_fps": r.floor_fps, "ratio": r.ratio,
                                   "cpu_ratio": r.cpu_ratio}
        print_fn(f"{env_id:<28}{r.env_fps:>21.0f}{r.floor_fps:>12.0f}{r.ratio:>8.2f}{r.cpu_ratio:>19.2f}")
    if vector_steps > 0:
        v = bench_vector(env_ids[0], frame_size, vector_steps)
        results["vector"] = v
        print_fn(f"AsyncVectorEnv on {env_ids[0]} (pixels): 1 process {v['one_process_fps']:.0f} "
                 f"steps/s, 2 processes {v['two_process_fps']:.0f} steps/s, speed-up "
                 f"{v['speedup']:.2f}x (target >= 1.6)")
    return results
