"""Open-loop replay of demonstrations (`pushcut sim replay`): the physics gap between engines.

Each episode of a dataset written by `pushcut sim demo` is replayed in the chosen engine: the env is built with the
dataset's recorded settings (randomisation, action rate, step limit, instruction split; no cameras, images take no
part), reset on the episode's seed, and the recorded actions are played open loop until the task succeeds or they
run out. Replayed in the engine that recorded them, the episodes must succeed again (the control); in another
engine, the success rate and how far the joints and the task's privileged bodies drift from the recording (at the
same step, before each action) measure how differently the two engines move the same commands.

This is the simulator's replay; `pushcut robot replay` (robot/tools/replay.py) plays a dataset on the real arms.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pushcut.common.stats import wilson_interval
from pushcut.sim import piper_spec as spec
from pushcut.sim.dataset import DemoDataset, Episode
from pushcut.sim.env import DualPiperEnv, EnvConfig
from pushcut.sim.randomization import RandomizationConfig
from pushcut.sim.world import ENGINES

# The recorded env settings that decide the physics and the episode; cameras, image size and the head camera's
# calibration only decide the pictures.
REPLAYED_SETTINGS: tuple[str, ...] = ("action_hz", "step_limit", "instruction_split")
GRIPPERS = [spec.LEFT_GRIPPER_INDEX, spec.RIGHT_GRIPPER_INDEX]
ARM_JOINTS = [i for i in range(spec.ACTION_DIM) if i not in GRIPPERS]


@dataclass(frozen=True)
class EpisodeReplay:
    """One replayed episode: whether it succeeded, after how many of its ``length`` actions, and the largest drift
    from the recording before any action: arm joints (rad), grippers (opening fraction, 0..1) and privileged bodies
    (m; None when the dataset has no privileged positions of this task's bodies)."""

    seed: int
    length: int
    success: bool
    steps: int
    joint_drift_rad: float
    gripper_drift: float
    body_drift_m: float | None


@dataclass(frozen=True)
class ReplaySummary:
    """A dataset replayed in one engine: successes out of episodes with the Wilson 95 % interval."""

    task: str
    engine: str
    recorded_engine: str
    data: str
    episodes: int
    successes: int
    success_rate: float
    wilson_low: float
    wilson_high: float
    failed_seeds: list[int]
    median_joint_drift_rad: float
    median_gripper_drift: float
    median_body_drift_m: float | None
    wall_time_s: float
    replays: list[EpisodeReplay]

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def line(self) -> str:
        body = "n/a" if self.median_body_drift_m is None else f"{100 * self.median_body_drift_m:.1f} cm"
        return (
            f"{self.task:<18} {self.recorded_engine} -> {self.engine}: success {self.successes}/{self.episodes} = "
            f"{self.success_rate:.0%} (95 % CI {self.wilson_low:.0%}-{self.wilson_high:.0%}), median max drift: "
            f"joints {self.median_joint_drift_rad:.3f} rad, grippers {self.median_gripper_drift:.2f}, bodies {body}; "
            f"failed seeds {self.failed_seeds}"
        )


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r} for a replay; expected one of {', '.join(ENGINES)}")
    return engine


def replay_overrides(dataset: DemoDataset, engine: str) -> dict[str, Any]:
    """The env overrides that rebuild the dataset's episodes in ``engine`` (module docstring)."""
    recorded = dataset.index["env_config"]
    overrides: dict[str, Any] = {name: recorded[name] for name in REPLAYED_SETTINGS if name in recorded}
    known = {f.name for f in dataclasses.fields(RandomizationConfig)}
    randomization = {k: v for k, v in (recorded.get("randomization") or {}).items() if k in known}
    overrides["randomization"] = RandomizationConfig(**randomization)
    return {**overrides, "cameras": (), "engine": check_engine(engine)}


def replay_episode(env: DualPiperEnv, episode: Episode) -> EpisodeReplay:
    """Reset ``env`` on the episode's seed and play its actions open loop until success or their end."""
    env.reset(seed=episode.seed)
    recorded = episode.object_positions
    has_bodies = recorded is not None and recorded.shape[1] == len(env.privileged_bodies())
    joint_drift, gripper_drift, body_drift, steps = 0.0, 0.0, 0.0, 0
    for t, action in enumerate(episode.actions):
        gap = np.abs(env.measured_joints() - episode.states[t])
        joint_drift = max(joint_drift, float(gap[ARM_JOINTS].max()))
        gripper_drift = max(gripper_drift, float(gap[GRIPPERS].max()))
        if has_bodies:
            gap = np.linalg.norm(env.object_positions() - recorded[t], axis=1)
            body_drift = max(body_drift, float(gap.max()))
        _, _, terminated, truncated, _ = env.step(action)
        steps += 1
        if terminated or truncated:
            break
    bodies = body_drift if has_bodies else None
    return EpisodeReplay(episode.seed, len(episode), env.success, steps, joint_drift, gripper_drift, bodies)


def replay_dataset(
    data: str | Path,
    engine: str,
    episodes: int | None = None,
    on_episode: Callable[[EpisodeReplay], None] | None = None,
) -> ReplaySummary:
    """Replay the first ``episodes`` (default: all) of the dataset in ``data`` in ``engine``."""
    from pushcut.sim.registry import make

    check_engine(engine)
    if episodes is not None and episodes < 1:
        raise ValueError(f"episodes={episodes} must be at least 1")
    dataset = DemoDataset(data)
    count = len(dataset) if episodes is None else min(episodes, len(dataset))
    if count == 0:
        raise ValueError(f"{data} holds no episodes to replay")
    start = time.perf_counter()
    env = make(dataset.task, **replay_overrides(dataset, engine))
    replays: list[EpisodeReplay] = []
    try:
        for i in range(count):
            replays.append(replay_episode(env, dataset.episode(i)))
            if on_episode is not None:
                on_episode(replays[-1])
    finally:
        env.close()
    return summarize(dataset, engine, replays, time.perf_counter() - start)


def summarize(dataset: DemoDataset, engine: str, replays: Sequence[EpisodeReplay], seconds: float) -> ReplaySummary:
    successes = sum(r.success for r in replays)
    low, high = wilson_interval(successes, len(replays))
    body = [r.body_drift_m for r in replays if r.body_drift_m is not None]
    return ReplaySummary(
        task=dataset.task,
        engine=engine,
        recorded_engine=str(dataset.index["env_config"].get("engine", EnvConfig.engine)),
        data=str(dataset.root),
        episodes=len(replays),
        successes=successes,
        success_rate=successes / len(replays),
        wilson_low=low,
        wilson_high=high,
        failed_seeds=[r.seed for r in replays if not r.success],
        median_joint_drift_rad=float(np.median([r.joint_drift_rad for r in replays])),
        median_gripper_drift=float(np.median([r.gripper_drift for r in replays])),
        median_body_drift_m=float(np.median(body)) if body else None,
        wall_time_s=round(seconds, 2),
        replays=list(replays),
    )
