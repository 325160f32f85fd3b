"""A simulated demonstration read for replay on the arms: one episode file of ``pushcut sim demo`` (the RoboTwin HDF5
layout of :mod:`pushcut.sim.dataset`: ``joint_action/vector`` (T, 14) actions, attrs task / seed / action_hz).
Everything is checked before anything connects: a wrong file is one line naming what is wrong and what is expected.
h5py is imported only here, when a file is read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pushcut.sim import piper_spec as spec


class ReplayError(RuntimeError):
    """Replay cannot start (bad input, pre-flight failed, homing failed); the message says what to fix."""


@dataclass(frozen=True)
class Demo:
    path: Path
    task: str
    seed: int | None
    action_hz: float
    instruction: str
    actions: np.ndarray  # (T, 14) absolute joint targets, radians; grippers in [0, 1]

    @property
    def duration_s(self) -> float:
        """At full speed."""
        return len(self.actions) / self.action_hz


def load_demo(path: Path, task: str | None = None) -> Demo:
    """Read and check one episode file; ``task``, when given, is the task set up on the table."""
    if not path.is_file():
        raise ReplayError(f"demo file {path} does not exist (an episode of `pushcut sim demo`: DIR/data/episodeN.hdf5)")
    try:
        import h5py
    except ImportError as error:
        raise ReplayError(f"reading {path} needs h5py (pip install h5py): {error}") from None
    try:
        with h5py.File(path, "r") as f:
            attrs = dict(f.attrs)
            if "joint_action/vector" not in f:
                raise ReplayError(f"{path} has no joint_action/vector: not an episode of `pushcut sim demo`")
            actions = np.asarray(f["joint_action/vector"][:], dtype=np.float64)
    except OSError as error:
        raise ReplayError(f"{path} is not a readable HDF5 file: {error}") from None
    missing = [key for key in ("task", "action_hz") if key not in attrs]
    if missing:
        raise ReplayError(f"{path} lacks the attribute(s) {missing}: not an episode of `pushcut sim demo`")
    name = str(attrs["task"])
    if actions.ndim != 2 or actions.shape[1] != spec.ACTION_DIM or len(actions) == 0:
        raise ReplayError(f"{path}: actions have shape {actions.shape}; the Piper pair replays (T, {spec.ACTION_DIM}) "
                          "demonstrations (left j1..6, gripper, right j1..6, gripper)")  # fmt: skip
    if not np.isfinite(actions).all():
        raise ReplayError(f"{path}: the actions contain NaN or inf")
    if task is not None and task != name:
        raise ReplayError(f"{path} is a demonstration of {name!r}, but the task set up is {task!r}")
    low, high = spec.action_limits()
    outside = np.flatnonzero(((actions < low - 1e-6) | (actions > high + 1e-6)).any(axis=0))
    if len(outside):
        raise ReplayError(f"{path}: actions outside the Piper's limits in {[spec.ACTION_NAMES[i] for i in outside]}")
    hz = float(attrs["action_hz"])
    if not 0 < hz <= 100:
        raise ReplayError(f"{path}: action_hz {hz} must be within (0, 100]")
    seed = int(attrs["seed"]) if "seed" in attrs else None
    return Demo(path, name, seed, hz, str(attrs.get("instruction", "")), actions)


def check_speed(speed: float) -> None:
    if not 0 < speed <= 1:
        raise ReplayError(f"--speed {speed} must be within (0, 1]: a fraction of the demonstration's speed")
