"""The per-tick way of stepping a chunk (DualPiperEnv.step_chunk before pushcut.sim.chunk_step): the reference that
the batched path must reproduce bit for bit (tests/test_chunk_step.py, tests/test_rollout.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from pushcut.sim.env import ChunkResult, DualPiperEnv


def step_chunk_per_tick(env: DualPiperEnv, actions, images_if_ended: bool = True) -> ChunkResult:
    """Validate, play on the servo, then one ``servo.command`` per tick (``_advance``) until success or the limit."""
    chunk = np.asarray(actions, dtype=float)
    targets = np.stack([env.validate_action(a) for a in chunk])
    executed = 0
    if not (env.success or env.elapsed_steps >= env.step_limit):
        env.servo.play(targets, env._clock)
    for _ in targets:
        if env.success or env.elapsed_steps >= env.step_limit:
            break
        env._advance()
        executed += 1
    return env.end_chunk(executed, images_if_ended)


def env_state(env: DualPiperEnv) -> dict[str, Any]:
    """Everything a chunk changes: physics, servo command and profile, plan position, clock, counters."""
    profile = env.servo.profile
    return {
        "qpos": env.data.qpos.copy(), "qvel": env.data.qvel.copy(), "ctrl": env.data.ctrl.copy(),
        "target": env.commanded_action, "clock": env._clock, "elapsed": env.elapsed_steps, "success": env.success,
        "command": profile.command.copy(), "velocity": profile.velocity.copy(), "last_target": profile.target.copy(),
        "ticks": profile.ticks, "limited_ticks": profile.limited_ticks,
        "plan_index": None if env.servo.plan is None else env.servo.plan.index,
    }  # fmt: skip


def assert_same_state(a: dict[str, Any], b: dict[str, Any]) -> None:
    for key, value in a.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, b[key], err_msg=key)
        else:
            assert value == b[key], key


class PerTickEnvs:
    """In-process envs stepped the per-tick way, with the members rollouts use (a VectorEnv)."""

    def __init__(self, task: str, num_envs: int, overrides: dict[str, Any]) -> None:
        from pushcut.sim import make

        self.envs = [make(task, **overrides) for _ in range(num_envs)]
        self.num_envs, self.tasks = num_envs, [task] * num_envs

    def reset(self, seeds):
        return [env.reset(seed=seed)[0] for env, seed in zip(self.envs, seeds, strict=True)]

    def step_chunk(self, chunks, images_if_ended: bool = True):
        return [None if c is None else step_chunk_per_tick(e, c, images_if_ended)
                for e, c in zip(self.envs, chunks, strict=True)]  # fmt: skip

    def call(self, method_name, per_env_args=None):
        return [getattr(env, method_name) for env in self.envs]

    def close(self) -> None:
        for env in self.envs:
            env.close()
