"""A test-only task whose success a near-random policy reaches about half the time, so that GRPO groups have mixed
outcomes in seconds. Registered through PUSHCUT_TASK_MODULES (so spawned env workers and torchrun ranks see it)."""

from __future__ import annotations

import mujoco
import numpy as np

from pushcut.sim.registry import register_task
from pushcut.sim.tasks.click_bell import ClickBell

LOWER_BY = 0.03  # metres the bell-side TCP must drop below its start height


@register_task
class LowerTowardBell(ClickBell):
    name = "test_lower_toward_bell"
    description = "Test task: lower the bell-side gripper by 3 cm."

    def initialize_episode(self, env, rng: np.random.Generator) -> dict[str, str]:
        slots = super().initialize_episode(env, rng)
        mujoco.mj_forward(env.model, env.data)  # the arms are at home: read the TCP height there
        self.start_z = float(env.tcp_pose(self.arm).position[2])
        return slots

    def check_success(self, env) -> bool:
        return float(env.tcp_pose(self.arm).position[2]) < self.start_z - LOWER_BY


FAULT_FILE_ENV = "PUSHCUT_TEST_FAULT_FILE"  # a file listing seeds whose reset raises (fault injection)


@register_task
class CrashOnListedSeeds(LowerTowardBell):
    name = "test_crash_on_listed_seeds"
    description = "Test task: like test_lower_toward_bell, but reset raises for the seeds listed in a file."

    def initialize_episode(self, env, rng: np.random.Generator) -> dict[str, str]:
        import os
        from pathlib import Path

        path = os.environ.get(FAULT_FILE_ENV)
        if path and Path(path).is_file() and str(env.seed_value) in Path(path).read_text().split():
            raise RuntimeError(f"injected fault for seed {env.seed_value}")
        return super().initialize_episode(env, rng)
