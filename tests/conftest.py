"""Test-wide settings: tests run two at a time (pytest -n 2) on 2 cores, so BLAS and torch get one
thread each; oversubscribed BLAS threads spin and make numpy-heavy tests tens of times slower."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

torch.set_num_threads(1)
threadpool_limits(limits=1)
