"""The rate profile: one servo tick's step toward a target under speed and acceleration limits (pure numpy).

The same function is the executor's motion profile (with :data:`~pushcut.sim.execution.limits.PIPER_MOTION`), the
sim env's (the same limits) and the safety filter's rate layer (with the filter's limits, equal or stricter), so a
command that the execution produced passes the filter unchanged unless something is unsafe.

Per dimension, the step from the last command keeps |velocity| <= max speed and |acceleration| <= max acceleration,
brakes in time to stop inside the envelope, and approaches the target no faster than it can stop on it (a jump in
the targets gives a smooth move without overshoot). A dimension with an infinite acceleration limit (a gripper) is
limited in speed only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class RateLimits:
    """Per-dimension arrays (computed once per set of limits)."""

    low: np.ndarray  # envelope
    high: np.ndarray
    middle: np.ndarray  # (low + high) / 2
    half_range: np.ndarray  # (high - low) / 2
    max_speed: np.ndarray  # per second; inf for an unlimited dimension
    max_accel: np.ndarray  # per second^2; inf for grippers
    inv_accel: np.ndarray  # 1 / max_accel (0 for grippers)
    half_inv_accel: np.ndarray  # 1 / (2 max_accel)
    approach_floor: np.ndarray  # 0 where accelerations are limited, inf elsewhere (no approach braking)

    @classmethod
    def build(cls, low: np.ndarray, high: np.ndarray, max_speed: np.ndarray, max_accel: np.ndarray) -> RateLimits:
        low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
        accel = np.asarray(max_accel, dtype=float)
        floor = np.where(np.isinf(accel), math.inf, 0.0)
        return cls(low, high, (low + high) / 2, (high - low) / 2, np.asarray(max_speed, dtype=float), accel,
                   1.0 / accel, 0.5 / accel, floor)  # fmt: skip


def rate_limit(
    last: np.ndarray, v0: np.ndarray, last_target: np.ndarray, target: np.ndarray, dt: float, lim: RateLimits
) -> tuple[np.ndarray, np.ndarray]:
    """The next command (``target`` itself when nothing limits) and its velocity, ``dt`` after ``last`` moving at
    ``v0``; ``last_target`` is the target of the previous tick (its change is the target's own velocity).

    Braking speed: from speed ``v`` a joint decelerating at ``a`` one tick after the next stops within
    ``v dt + v^2 / 2a``; the largest ``v`` with that distance <= ``d`` is ``2d / (sqrt(dt^2 + 2d/a) + dt)``. It
    bounds the speed towards each envelope limit and, relative to the target's own velocity, the approach to the
    target, so both can always be reached without exceeding the acceleration.
    """
    error = target - last
    exact = error / dt  # the velocity that lands on the target this tick
    # Fast path: tracking the target already, and landing on it keeps speed, acceleration and a stop inside the
    # envelope (stopping point = target + v|v| / 2a) within bounds.
    stop = target + exact * np.abs(exact) * lim.half_inv_accel
    within = (
        (np.abs(exact) <= lim.max_speed)
        & (np.abs(exact - v0) <= lim.max_accel * dt)
        & (np.abs(stop - lim.middle) <= lim.half_range)
    )
    if within.all() and (last == last_target).all():
        return target, exact
    distances = np.maximum(np.stack((np.abs(error), lim.high - last, last - lim.low)), 0.0)
    braking = 2.0 * distances / (np.sqrt(dt * dt + 2.0 * distances * lim.inv_accel) + dt)
    direction = np.sign(error)
    target_speed = direction * (target - last_target) / dt  # the target's speed away from the command
    approach = np.maximum(target_speed + braking[0], lim.approach_floor)
    desired = direction * np.minimum(distances[0] / dt, approach)
    accel_step = lim.max_accel * dt
    up = np.minimum(np.minimum(lim.max_speed, v0 + accel_step), braking[1])
    down = np.maximum(np.maximum(-lim.max_speed, v0 - accel_step), -braking[2])
    infeasible = down > up  # only from an inconsistent start: keep speed and envelope, drop the acceleration bound
    if infeasible.any():
        up = np.where(infeasible, np.minimum(lim.max_speed, braking[1]), up)
        down = np.where(infeasible, np.maximum(-lim.max_speed, -braking[2]), down)
    velocity = np.minimum(np.maximum(desired, down), up)
    on_target = velocity == exact
    if on_target.all():
        return target, exact
    command = np.where(on_target, target, last + velocity * dt)
    # Never step outside the envelope through rounding, nor further out than the last command already was.
    command = np.minimum(np.maximum(command, np.minimum(lim.low, last)), np.maximum(lim.high, last))
    return command, (command - last) / dt


class RateProfile:
    """:func:`rate_limit` with its state (last command, its velocity, the last target), one call per servo tick.
    ``limited_ticks`` counts the ticks on which it changed the target by more than ``tolerance``."""

    def __init__(self, start: np.ndarray, limits: RateLimits, dt: float, tolerance: float = 1e-3) -> None:
        if not dt > 0.0:
            raise ValueError(f"dt must be positive, got {dt}")
        self.limits, self.dt, self.tolerance = limits, float(dt), tolerance
        self.reset(start)

    def reset(self, start: np.ndarray) -> None:
        """At rest at ``start``."""
        self.command = np.array(start, dtype=float)
        self.velocity = np.zeros_like(self.command)
        self.target = self.command.copy()
        self.limited_ticks = 0
        self.ticks = 0

    def step(self, target: np.ndarray) -> np.ndarray:
        """The command for this tick toward ``target``."""
        target = np.minimum(np.maximum(np.asarray(target, dtype=float), self.limits.low), self.limits.high)
        command, velocity = rate_limit(self.command, self.velocity, self.target, target, self.dt, self.limits)
        self.ticks += 1
        if command is not target and np.abs(command - target).max() > self.tolerance:
            self.limited_ticks += 1
        self.command, self.velocity, self.target = command, velocity, target
        return command
