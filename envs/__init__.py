"""MuJoCo arm environments (self and other arm at a table), registered as `mirrorlab/...` ids, the
paper's toy world, episodes and the paired perform/observe dataset format.

Importing this package only registers the ids with gymnasium (entry points are strings): no GL
backend is probed and no context is created until an env module is imported by `gymnasium.make`.
"""

import gymnasium

ENV_IDS = ("mirrorlab/PlanarReach-v0", "mirrorlab/Arm3DReach-v0", "mirrorlab/ViperXReach-v0")
MAX_EPISODE_STEPS = {"mirrorlab/PlanarReach-v0": 50, "mirrorlab/Arm3DReach-v0": 100,
                     "mirrorlab/ViperXReach-v0": 100}
_ENTRY_POINTS = {"mirrorlab/PlanarReach-v0": "mirrorlab.envs.reach:PlanarReachEnv",
                 "mirrorlab/Arm3DReach-v0": "mirrorlab.envs.reach:Arm3DReachEnv",
                 "mirrorlab/ViperXReach-v0": "mirrorlab.envs.reach:ViperXReachEnv"}

for _env_id in ENV_IDS:
    if _env_id not in gymnasium.registry:
        gymnasium.register(id=_env_id, entry_point=_ENTRY_POINTS[_env_id],
                           max_episode_steps=MAX_EPISODE_STEPS[_env_id])
