"""Stepping the chunks of several envs at once, exactly as `DualPiperEnv.step_chunk` steps each in turn.

An `EnvPool` worker holds several envs (rollouts run 8 per core). A chunk of k actions is k x 6 servo ticks per env,
and the rate profile of a tick (:func:`~pushcut.sim.execution.rate.rate_limit`, sequential in time) costs a few dozen
small numpy calls: per env and tick it cost as much as the physics. Servo commands do not depend on the physics (the
plan and the profile only see the chunk and the clock), so :func:`step_chunks` computes them ahead, for all envs
together:

1. ``begin_chunk`` per env: validate the chunk, play it on the env's servo, the servo clock at each tick;
2. the plan's values at all those ticks per env (``ChunkServo.targets``, vectorised over the ticks), then the rate
   profiles of all envs over the ticks, one row per env (``run_profiles``: one numpy call per tick for all envs);
3. ``play_commands`` per env: the physics under those commands, the success check after every action, early exit;
   each env's profile and plan are then set to where the ticks it really played leave them;
4. ``end_chunk`` per env: render the observation (``images_if_ended=False``: not for an episode that has ended,
   whose last observation a rollout does not use).

The commands are the per-tick ones bit for bit (tests/test_env.py steps envs both ways), so episodes do not change.
An env that raises gets its exception back in its slot; the others are stepped regardless.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from pushcut.sim.execution.rate import run_profiles

if TYPE_CHECKING:
    from pushcut.sim.env import ChunkResult, DualPiperEnv


def step_chunks(
    envs: Sequence[DualPiperEnv], chunks: Sequence, images_if_ended: bool = True
) -> list[ChunkResult | Exception]:
    """``env.step_chunk(chunk, images_if_ended)`` for each pair, with the servo work of all envs done together
    (module docstring); an env's entry is its exception when it raised (a bad chunk: before anything moved)."""
    results: list[ChunkResult | Exception | None] = [None] * len(envs)
    executed = [0] * len(envs)
    moving: dict[tuple, list[tuple[int, int, np.ndarray, np.ndarray]]] = {}  # profile key -> (env, count, times, plan)
    for i, (env, actions) in enumerate(zip(envs, chunks, strict=True)):
        try:
            started = env.begin_chunk(actions)
            if started is not None:
                count, times = started
                profile = env.servo.profile
                key = (id(profile.limits), profile.dt, profile.tolerance)
                moving.setdefault(key, []).append((i, count, times, env.servo.targets(times)))
        except Exception as error:  # handed back to the caller, per env
            results[i] = error
    for group in moving.values():
        ticks = max(len(times) for _, _, times, _ in group)
        padded = np.stack([np.vstack([plan, np.repeat(plan[-1:], ticks - len(plan), axis=0)]) for *_, plan in group])
        run = run_profiles([envs[i].servo.profile for i, *_ in group], padded)
        for row, (i, count, times, _) in enumerate(group):
            env = envs[i]
            try:
                executed[i] = env.play_commands(run.commands[row], count)
                played = executed[i] * env.ticks_per_action
                if played:
                    run.commit(env.servo.profile, row, played)
                    env.servo.advance(times[played - 1])
            except Exception as error:
                results[i] = error
    for i, env in enumerate(envs):
        if results[i] is None:
            try:
                results[i] = env.end_chunk(executed[i], images_if_ended)
            except Exception as error:
                results[i] = error
    return results  # type: ignore[return-value]
