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


def rate_limit_rows(
    last: np.ndarray, v0: np.ndarray, last_target: np.ndarray, target: np.ndarray, dt: float, lim: RateLimits
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`rate_limit` for n independent rows (n, D) in one call (several envs' profiles, one servo tick): row i
    of the command and velocity is bit for bit what ``rate_limit`` returns for row i, with its early returns taken
    per row; the third result marks the rows returned as their target (``rate_limit``'s ``command is target``)."""
    error = target - last
    exact = error / dt
    stop = target + exact * np.abs(exact) * lim.half_inv_accel
    within = (
        (np.abs(exact) <= lim.max_speed)
        & (np.abs(exact - v0) <= lim.max_accel * dt)
        & (np.abs(stop - lim.middle) <= lim.half_range)
    )
    fast = within.all(axis=-1) & (last == last_target).all(axis=-1)
    distances = np.maximum(np.stack((np.abs(error), lim.high - last, last - lim.low)), 0.0)
    braking = 2.0 * distances / (np.sqrt(dt * dt + 2.0 * distances * lim.inv_accel) + dt)
    direction = np.sign(error)
    target_speed = direction * (target - last_target) / dt
    approach = np.maximum(target_speed + braking[0], lim.approach_floor)
    desired = direction * np.minimum(distances[0] / dt, approach)
    accel_step = lim.max_accel * dt
    up = np.minimum(np.minimum(lim.max_speed, v0 + accel_step), braking[1])
    down = np.maximum(np.maximum(-lim.max_speed, v0 - accel_step), -braking[2])
    infeasible = down > up
    up = np.where(infeasible, np.minimum(lim.max_speed, braking[1]), up)
    down = np.where(infeasible, np.maximum(-lim.max_speed, -braking[2]), down)
    velocity = np.minimum(np.maximum(desired, down), up)
    on_target = velocity == exact
    command = np.where(on_target, target, last + velocity * dt)
    command = np.minimum(np.maximum(command, np.minimum(lim.low, last)), np.maximum(lim.high, last))
    same = fast | on_target.all(axis=-1)
    return np.where(same[:, None], target, command), np.where(same[:, None], exact, (command - last) / dt), same


@dataclass(frozen=True, eq=False)
class ProfileRun:
    """What several :class:`RateProfile` s return over K ticks (:func:`run_profiles`), one row per profile."""

    commands: np.ndarray  # (n, K, D)
    velocities: np.ndarray  # (n, K, D)
    targets: np.ndarray  # (n, K, D): the targets clamped to the envelope, as ``RateProfile.step`` keeps them
    limited: np.ndarray  # (n, K) bool: ticks that ``RateProfile.step`` counts in ``limited_ticks``

    def commit(self, profile: RateProfile, row: int, ticks: int) -> None:
        """Put ``profile`` (row ``row``) where ``ticks`` calls of ``step`` would have left it."""
        k = ticks - 1
        profile.command, profile.velocity = self.commands[row, k].copy(), self.velocities[row, k].copy()
        profile.target = self.targets[row, k].copy()
        profile.ticks += ticks
        profile.limited_ticks += int(self.limited[row, :ticks].sum())


def run_profiles(profiles: list[RateProfile], targets: np.ndarray) -> ProfileRun:
    """``profiles[i].step(targets[i, k])`` for k = 0 .. K-1, for every profile at once (one :func:`rate_limit_rows`
    call per tick) and without changing them: :meth:`ProfileRun.commit` sets each to its state after the ticks it
    really played. The profiles must share limits, dt and tolerance."""
    first = profiles[0]
    lim, dt = first.limits, first.dt
    if any(p.limits is not lim or p.dt != dt or p.tolerance != first.tolerance for p in profiles):
        raise ValueError("run_profiles needs profiles with the same limits, dt and tolerance")
    clamped = np.minimum(np.maximum(np.asarray(targets, dtype=float), lim.low), lim.high)
    commands, velocities = np.empty_like(clamped), np.empty_like(clamped)
    limited = np.zeros(clamped.shape[:2], dtype=bool)
    last = np.stack([p.command for p in profiles])
    v0 = np.stack([p.velocity for p in profiles])
    last_target = np.stack([p.target for p in profiles])
    for k in range(clamped.shape[1]):
        target = clamped[:, k]
        last, v0, same = rate_limit_rows(last, v0, last_target, target, dt, lim)
        commands[:, k], velocities[:, k], last_target = last, v0, target
        limited[:, k] = ~same & (np.abs(last - target).max(axis=-1) > first.tolerance)
    return ProfileRun(commands, velocities, clamped, limited)


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
