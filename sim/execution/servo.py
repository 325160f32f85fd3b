""":class:`ChunkServo`: the plan (:mod:`~pushcut.sim.execution.plan`) and the rate profile
(:mod:`~pushcut.sim.execution.rate`) with their state, the one way a chunk becomes joint commands.

    servo = ChunkServo(start, action_hz, PIPER_MOTION)
    servo.play(chunk, now)                       # synchronous: the chunk starts now (what the simulator does)
    for k in range(ticks):                       # one call per servo tick, 1 / motion.servo_hz apart
        command = servo.command(now + k * servo.dt)

A chunk played at ``now`` reaches action ``j`` at ``now + (j + 1) / action_hz``; the path between actions is linear,
averaged over ``smoothing_actions`` action periods, and starts exactly at the current plan value; the rate profile
then keeps every command within the joint speed and acceleration limits. After the last action the plan holds it.
The robot's async mode (``play(chunk, now, observed_at=...)``) drops the actions already stale when a chunk arrives
and crossfades it into the plan still running.
"""

from __future__ import annotations

import numpy as np

from pushcut.sim import piper_spec as spec
from pushcut.sim.execution.limits import PIPER_MOTION, MotionLimits
from pushcut.sim.execution.plan import Plan, merge_chunk
from pushcut.sim.execution.rate import RateProfile


class ChunkServo:
    def __init__(
        self, start: np.ndarray, action_hz: float, motion: MotionLimits = PIPER_MOTION, envelope: bool = True
    ) -> None:
        """``envelope``: the profile clamps to the joint envelope and brakes before it (the simulator); without it
        (the robot's executor) the safety filter does both, with the same limits, and reports it."""
        if not 0.0 < action_hz <= motion.servo_hz:
            raise ValueError(f"action_hz={action_hz} must be positive and at most servo_hz={motion.servo_hz}")
        self.action_hz, self.motion = float(action_hz), motion
        self.dt = 1.0 / motion.servo_hz
        self.smoothing_s = motion.smoothing_actions / self.action_hz
        self.profile = RateProfile(start, motion.rate if envelope else motion.rate_without_envelope, self.dt)
        self.plan: Plan | None = None

    def reset(self, start: np.ndarray) -> None:
        """At rest at ``start``, no plan."""
        self.profile.reset(start)
        self.plan = None

    def clear(self) -> None:
        """Drop the plan: :meth:`command` brings the arms to rest where the profile is."""
        self.plan = None

    @property
    def last_command(self) -> np.ndarray:
        return self.profile.command

    def value(self, t: float) -> np.ndarray:
        """The plan's value at ``t`` (before the rate profile); the last command when there is no plan."""
        if self.plan is None:
            return self.profile.command
        self.plan.advance(t)
        return self.plan.value(t)

    def play(
        self, chunk: np.ndarray, now: float, observed_at: float | None = None, crossfade_steps: int = 0
    ) -> int | None:
        """Start ``chunk`` (k, 14) at ``now``; with ``observed_at`` (async) its first actions may be stale and it
        crossfades over ``crossfade_steps`` actions into the running plan. Returns the stale actions dropped, or
        None when all were stale (the plan is unchanged)."""
        actions = np.asarray(chunk, dtype=float)
        if actions.ndim != 2 or actions.shape[1] != spec.ACTION_DIM or len(actions) == 0:
            raise ValueError(f"a chunk has shape (k >= 1, {spec.ACTION_DIM}), got {actions.shape}")
        current = self.value(now)
        start = now if observed_at is None else observed_at
        plan, dropped = merge_chunk(self.plan, now, current, actions, start, self.action_hz, crossfade_steps,
                                    self.smoothing_s)  # fmt: skip
        if plan is None:
            return None
        self.plan = plan
        return dropped

    def command(self, t: float) -> np.ndarray:
        """The joint command of the servo tick at ``t`` (call once per tick, in time order)."""
        return self.profile.step(self.value(t))

    def targets(self, times: np.ndarray) -> np.ndarray:
        """The plan's values at the ticks ``times`` (k,), ascending — what :meth:`command` would hand the rate profile
        at them — all at once, leaving the plan where it is (:meth:`advance` it past the ticks really played).
        :func:`~pushcut.sim.execution.rate.run_profiles` turns them into commands, several envs together."""
        if self.plan is None:
            raise ValueError("no plan: play a chunk first")
        if self.plan.smoothing_s > 0.0:
            return self.plan.smoothed_many(times)
        index, values = self.plan.index, []
        for t in times:
            self.plan.advance(t)
            values.append(self.plan.value(t))
        self.plan.index = index
        return np.array(values)

    def advance(self, t: float) -> int:
        """Actions of the plan reached by ``t`` since the last call."""
        return 0 if self.plan is None else self.plan.advance(t)

    def remaining(self, t: float) -> int:
        return 0 if self.plan is None else self.plan.remaining(t)

    def exhausted(self, t: float) -> bool:
        return self.plan is None or self.plan.exhausted(t)
