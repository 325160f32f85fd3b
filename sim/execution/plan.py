"""The execution's command timeline (pure logic, no clock): interpolation, smoothing, stale actions, crossfading.

A :class:`Plan` is a piecewise-linear function of time through points ``(times[i], values[i])``. The first point is
the anchor (where the command was when the plan was made); every later point is one policy action.

Timing convention (the simulator's, ``DualPiperEnv``): a chunk observed at ``t_obs`` and played at ``action_hz``
holds action ``j`` during step ``j``, and the servo target moves linearly from action ``j - 1`` to action ``j`` over
that step, so the command *reaches* action ``j`` at ``tau_j = t_obs + (j + 1) / action_hz``.

:func:`merge_chunk` turns a chunk that arrived ``latency`` seconds after its observation into the next plan:

1. stale actions: the first ``d = ceil(latency * action_hz)`` actions belong to steps that have already begun
   (LeRobot/RTC's ``d = ceil(latency / dt)``); they are dropped, and the plan goes from the current command straight
   to action ``d`` (``tau_d`` is always in the future, by at most one step);
2. crossfade: over the overlap with the old plan, the new value blends the old plan (sampled at the same instant)
   into the new chunk::

       a'_j = (1 - w_k) * old(tau_j) + w_k * new_j,   w_k = (k + 1) / (K + 1),   k = j - d = 0 .. K - 1

   and ``a'_j = new_j`` after that, with ``K = min(crossfade_steps, kept actions due before the old plan's last
   action)``: the old plan is never extended (no extrapolation, no blending towards a hold), and a plan that had
   already run out is not blended. ``K = 0`` switches at once; the first segment still starts at the current
   command, so a new plan never jumps, and the safety filter's rate limits apply to whatever remains.

Smoothing (``smoothing_s`` > 0, the executor's default: one action period). The piecewise-linear path has a velocity
step at every action; played at a 100 Hz servo rate that step happens within one 10 ms tick, so a change of
``dv`` between two actions demands ``dv / 0.01 s`` of acceleration: 0.2 rad/s (a token policy's jitter of a few
bins, or an expert's corner) already exceeds the filter's 20 rad/s^2, and the command then lags its target for
several ticks. :meth:`Plan.value` therefore returns the path averaged over a centred window of ``smoothing_s``
(a box filter: C1, the same velocity step spread over the window, ``dv / smoothing_s``; it cuts each corner by at
most ``dv * smoothing_s / 8``, 2 mm-scale for the worst expert corners, and adds no delay). The window looks back
at the path really followed before the anchor (``past``), and a new plan starts exactly at the current command: the
difference at the anchor fades out linearly over one window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Plan:
    times: np.ndarray  # (n,) ascending absolute seconds; times[0] is the anchor
    values: np.ndarray  # (n, 14)
    index: int = 0  # the current segment starts at point ``index``
    smoothing_s: float = 0.0  # width of the centred averaging window of :meth:`value` (0: linear)
    past_times: np.ndarray = field(default_factory=lambda: np.zeros(0))  # the path before the anchor (smoothing)
    past_values: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    offset: np.ndarray | None = None  # added at the anchor, fading out over one window

    def __post_init__(self) -> None:
        past = len(self.past_times)
        self._knots = np.concatenate([self.past_times, self.times]) if past else self.times
        self._points = np.vstack([self.past_values, self.values]) if past else self.values
        steps = np.diff(self._knots)[:, None] * (self._points[1:] + self._points[:-1]) / 2.0
        self._area = np.vstack([np.zeros((1, self._points.shape[1])), np.cumsum(steps, axis=0)])

    def advance(self, t: float) -> int:
        """Move to the segment containing ``t``; returns how many actions were reached on the way."""
        start = self.index
        last = len(self.times) - 1
        while self.index < last and self.times[self.index + 1] <= t:
            self.index += 1
        return self.index - start

    def value(self, t: float) -> np.ndarray:
        """The command at ``t`` (after :meth:`advance`): linear between points, the last action after the end;
        averaged over ``smoothing_s`` when it is set (module docstring)."""
        if self.smoothing_s > 0.0:
            return self.smoothed(t)
        i = self.index
        if i >= len(self.times) - 1:
            return self.values[-1]
        t0, t1 = self.times[i], self.times[i + 1]
        w = min(max((t - t0) / (t1 - t0), 0.0), 1.0)
        return self.values[i] + w * (self.values[i + 1] - self.values[i])

    def smoothed(self, t: float) -> np.ndarray:
        """The path (past included) averaged over ``[t - w/2, t + w/2]``, plus the fading anchor offset."""
        w = self.smoothing_s
        value = (self._integral(t + w / 2) - self._integral(t - w / 2)) / w
        if self.offset is not None:
            value = value + self.offset * min(max(1.0 - (t - self.times[0]) / w, 0.0), 1.0)
        return value

    def smoothed_many(self, times: np.ndarray) -> np.ndarray:
        """:meth:`smoothed` at each of ``times`` (k,) -> (k, 14) in one go: the same arithmetic element by element,
        so the same values as k calls (the simulator evaluates a whole chunk's servo ticks this way)."""
        w = self.smoothing_s
        t = np.asarray(times, dtype=float)
        value = (self._integral_many(t + w / 2) - self._integral_many(t - w / 2)) / w
        if self.offset is not None:
            value = value + self.offset * np.minimum(np.maximum(1.0 - (t - self.times[0]) / w, 0.0), 1.0)[:, None]
        return value

    def _integral_many(self, x: np.ndarray) -> np.ndarray:
        """:meth:`_integral` at each of ``x`` (k,) -> (k, 14)."""
        knots, points = self._knots, self._points
        if len(knots) < 2:
            return np.array([self._integral(v) for v in x]).reshape(len(x), points.shape[1])
        i = np.clip(np.searchsorted(knots, x, side="right") - 1, 0, len(knots) - 2)
        dt, span = x - knots[i], knots[i + 1] - knots[i]
        bend = (dt * dt / (2.0 * span))[:, None]
        inside = self._area[i] + dt[:, None] * points[i] + bend * (points[i + 1] - points[i])
        after = self._area[-1] + (x - knots[-1])[:, None] * points[-1]
        before = (x - knots[0])[:, None] * points[0]
        return np.where((x <= knots[0])[:, None], before, np.where((x >= knots[-1])[:, None], after, inside))

    def _integral(self, x: float) -> np.ndarray:
        """The integral of the linear path from its first knot to ``x`` (held values outside the knots)."""
        knots, points = self._knots, self._points
        if x <= knots[0]:
            return (x - knots[0]) * points[0]
        if x >= knots[-1]:
            return self._area[-1] + (x - knots[-1]) * points[-1]
        i = int(np.searchsorted(knots, x, side="right")) - 1
        dt, span = x - knots[i], knots[i + 1] - knots[i]
        return self._area[i] + dt * points[i] + (dt * dt / (2.0 * span)) * (points[i + 1] - points[i])

    def remaining(self, t: float) -> int:
        """Actions not yet reached at ``t``."""
        return int(len(self.times) - np.searchsorted(self.times, t, side="right"))

    def exhausted(self, t: float) -> bool:
        return t >= self.times[-1]

    def sample(self, times: np.ndarray, past: bool = False) -> np.ndarray:
        """Linear values at ``times`` ``(m,)`` -> ``(m, 14)``, holding the first/last point outside the plan
        (``past``: the path before the anchor counts)."""
        knots, points = (self._knots, self._points) if past else (self.times, self.values)
        if len(knots) == 1:
            return np.repeat(points[:1], len(times), axis=0)
        hi = np.clip(np.searchsorted(knots, times, side="right"), 1, len(knots) - 1)
        lo = hi - 1
        span = np.maximum(knots[hi] - knots[lo], 1e-12)
        w = np.clip((times - knots[lo]) / span, 0.0, 1.0)[:, None]
        return points[lo] + w * (points[hi] - points[lo])


def stale_count(latency_s: float, action_hz: float) -> int:
    """Actions of a chunk already stale when it arrives ``latency_s`` after its observation."""
    return max(0, math.ceil(latency_s * action_hz - 1e-9))


def crossfade_weights(steps: int, count: int) -> np.ndarray:
    """``w_k = (k + 1) / (steps + 1)`` for ``k < steps``, then 1; ``count`` weights."""
    k = np.arange(count)
    return np.where(k < steps, (k + 1) / (steps + 1), 1.0)


def merge_chunk(
    old: Plan | None,
    now: float,
    current: np.ndarray,
    chunk: np.ndarray,
    observed_at: float,
    action_hz: float,
    crossfade_steps: int,
    smoothing_s: float = 0.0,
) -> tuple[Plan | None, int]:
    """The plan after ``chunk`` ``(k, 14)`` arrives at ``now`` with the command at ``current``; ``old`` is the plan
    being played (None when holding). Returns the new plan (None when every action is stale) and the number of
    stale actions dropped. With ``smoothing_s`` the new plan averages its path over that window (module docstring)."""
    dropped = stale_count(now - observed_at, action_hz)
    if dropped >= len(chunk):
        return None, len(chunk)
    kept = chunk[dropped:]
    times = observed_at + (np.arange(dropped, len(chunk)) + 1) / action_hz
    overlap = 0 if old is None else int(np.searchsorted(times, old.times[-1], side="right"))
    steps = min(crossfade_steps, overlap)
    if steps > 0:
        w = crossfade_weights(steps, len(kept))[:, None]
        kept = (1.0 - w) * old.sample(times) + w * kept
    plan_times, plan_values = np.concatenate([[now], times]), np.vstack([current, kept])
    if smoothing_s <= 0.0:
        return Plan(plan_times, plan_values), dropped
    start = now - smoothing_s / 2.0
    if old is None:  # holding: the path before now stood still at the current command
        past_times, past_values = np.array([start]), current[None, :]
    else:
        knots = old._knots
        inside = knots[(knots > start) & (knots < now)]
        past_times = np.concatenate([[start], inside])
        past_values = old.sample(past_times, past=True)
    plan = Plan(plan_times, plan_values, smoothing_s=smoothing_s, past_times=past_times, past_values=past_values)
    plan.offset = current - plan.smoothed(now)  # start exactly at the current command
    return plan, dropped
