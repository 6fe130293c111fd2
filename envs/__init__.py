"""MuJoCo arm environments (self and other arm at a table), registered as `mirrorlab/...` ids.

Importing this package chooses a headless GL backend *before* mujoco is imported (EGL, falling
back to OSMesa) and registers the environments with gymnasium.
"""

from envs import _headless

_headless.select_backend()

import gymnasium  # noqa: E402

ENV_IDS = ("mirrorlab/PlanarReach-v0", "mirrorlab/Arm3DReach-v0")
MAX_EPISODE_STEPS = {"mirrorlab/PlanarReach-v0": 50, "mirrorlab/Arm3DReach-v0": 100}
_ENTRY_POINTS = {"mirrorlab/PlanarReach-v0": "envs.reach:PlanarReachEnv",
                 "mirrorlab/Arm3DReach-v0": "envs.reach:Arm3DReachEnv"}

for _env_id in ENV_IDS:
    if _env_id not in gymnasium.registry:
        gymnasium.register(id=_env_id, entry_point=_ENTRY_POINTS[_env_id],
                           max_episode_steps=MAX_EPISODE_STEPS[_env_id])
