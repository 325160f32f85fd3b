"""Dual-Piper MuJoCo simulation: world, RoboTwin-style tasks, experts, vectorised envs, demonstration datasets.

Importing this package is cheap and never imports mujoco: `pushcut.sim.piper_spec` is shared with the torch-free,
mujoco-free robot side. The heavy parts load on first use:

    from pushcut.sim import make
    env = make("click_bell")
"""

from __future__ import annotations

import os

# MuJoCo needs a GL backend before it is imported; osmesa renders on any CPU (Debian package libosmesa6).
os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])


def make(task: str, **overrides):
    """Create the environment of a registered task; keyword overrides set fields of `EnvConfig`."""
    from pushcut.sim.registry import make as _make

    return _make(task, **overrides)


def task_names() -> list[str]:
    from pushcut.sim.registry import task_names as _task_names

    return _task_names()
