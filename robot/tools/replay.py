"""`pushcut robot replay`: a simulated demonstration played on the arms through the trial executor and its safety
filter, then the tracking error (commanded vs measured, per joint) and the timing: a direct check of the twin's
dynamics against the real arms.

Order: the pre-flight (:func:`~pushcut.robot.tools.preflight.preflight`) must pass, the arms walk to the ready pose
(:func:`~pushcut.robot.trials.play.go_ready`, through the same filter) and must arrive, the demonstration's first
action must be that pose; only then does the demonstration play. The demonstration is a chunk source to the
:class:`~pushcut.robot.control.executor.ChunkExecutor`: every request is answered at once with the demonstration's
timeline sampled at the executor's action times (``t0 + (j + 1) / rate``, the first request at ``t0``), so stale
dropping and crossfading leave it unchanged; ``speed`` slows the rate. After the last action the arms get
``SETTLE_S`` to arrive, measured too. The actual duration ends when the measured arm joints reach the last action
(within ``ARRIVED_RAD``, and stay there), so it includes the arms' lag and the filter's slowing.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pushcut.robot.control.executor import ChunkExecutor, Observation, TickRecord
from pushcut.robot.drivers.interface import Robot
from pushcut.robot.tools.demo_file import Demo, ReplayError, check_speed
from pushcut.robot.tools.preflight import preflight
from pushcut.robot.trials.play import executor_config, go_ready, safety_config
from pushcut.robot.trials.rig import Rig
from pushcut.sim import piper_spec as spec

SETTLE_S = 1.0
ARRIVED_RAD = 0.035  # arm joints this close to the last action: arrived (the twin's servo leaves ~1.5 deg)
START_TOLERANCE_RAD = 0.05  # the demonstration's first action vs the ready pose the arms were homed to
CHUNK = 10
_ARM_DIMS = np.r_[spec.LEFT_ARM_SLICE, spec.RIGHT_ARM_SLICE]
_GRIPPERS = (spec.LEFT_GRIPPER_INDEX, spec.RIGHT_GRIPPER_INDEX)


class TimelineSource:
    """The demonstration as a chunk source: answers at once with its actions at the requested times."""

    def __init__(self, actions: np.ndarray, rate_hz: float, chunk: int = CHUNK) -> None:
        self.actions, self.rate, self.chunk = np.asarray(actions, dtype=float), float(rate_hz), chunk
        self.t0: float | None = None  # the first request: action j is reached at t0 + (j + 1) / rate

    def at(self, times: np.ndarray) -> np.ndarray:
        """The demonstration's command at ``times`` (linear between actions, the first before, the last after)."""
        steps = (np.asarray(times, dtype=float) - self.t0) * self.rate - 1.0
        index = np.arange(len(self.actions))
        return np.stack([np.interp(steps, index, self.actions[:, d]) for d in range(spec.ACTION_DIM)], axis=-1)

    def request_async(
        self, images: Mapping[str, np.ndarray], state: np.ndarray, instruction: str, **kwargs: Any
    ) -> Future[np.ndarray]:
        now = time.monotonic()
        if self.t0 is None:
            self.t0 = now
        future: Future[np.ndarray] = Future()
        future.set_result(self.at(now + (np.arange(self.chunk) + 1) / self.rate))
        return future

    @property
    def end(self) -> float:
        """When the last action is reached (inf before the first request)."""
        return math.inf if self.t0 is None else self.t0 + len(self.actions) / self.rate


@dataclass(frozen=True)
class JointError:
    name: str
    unit: str  # deg, or mm for the grippers
    rms: float
    max: float
    filter_max: float  # largest |commanded - demonstration|: how far the safety filter held the command back


@dataclass
class ReplayReport:
    demo: str
    task: str
    robot: str
    speed: float
    safety: str
    end_reason: str  # done | fault | operator_stop | ...
    fault: str | None
    planned_s: float  # the demonstration's length at this speed
    actual_s: float | None  # first request until the measured arms reach the last action (None: not within SETTLE_S)
    ticks: int
    late_ticks: int  # ticks more than one servo period late
    period_error_p95_ms: float
    period_error_max_ms: float
    joints: list[JointError] = field(default_factory=list)
    safety_events: dict[str, int] = field(default_factory=dict)
    sim_success: bool | None = None  # the twin's task predicate after the replay (None on real arms)

    @property
    def completed(self) -> bool:
        return self.end_reason == "done"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "completed": self.completed}


class _Tracker:
    """Collects (commanded, measured, demonstration) per servo tick."""

    def __init__(self, source: TimelineSource) -> None:
        self.source, self.times, self.commanded, self.measured = source, [], [], []

    def on_tick(self, tick: TickRecord) -> None:
        if self.source.t0 is not None:
            self.times.append(tick.time)
            self.commanded.append(tick.commanded)
            self.measured.append(tick.measured)

    def arrival(self, last: np.ndarray) -> float | None:
        """Seconds from the first request until the measured arm joints reached ``last`` and stayed; None if not."""
        if not self.times:
            return None
        away = np.abs(np.array(self.measured)[:, _ARM_DIMS] - last[_ARM_DIMS]).max(axis=1) > ARRIVED_RAD
        if away[-1]:
            return None
        first = int(np.flatnonzero(away)[-1]) + 1 if away.any() else 0
        return float(self.times[first] - self.source.t0)

    def errors(self) -> list[JointError]:
        if not self.times:
            return []
        commanded, measured = np.array(self.commanded), np.array(self.measured)
        demo = self.source.at(np.array(self.times))
        scale = np.full(spec.ACTION_DIM, math.degrees(1.0))
        scale[list(_GRIPPERS)] = spec.GRIPPER_STROKE_M * 1000.0
        error, held = np.abs(commanded - measured) * scale, np.abs(commanded - demo) * scale
        return [
            JointError(
                name,
                "mm" if i in _GRIPPERS else "deg",
                float(np.sqrt(np.mean(error[:, i] ** 2))),
                float(error[:, i].max()),
                float(held[:, i].max()),
            )
            for i, name in enumerate(spec.ACTION_NAMES)
        ]


def home(robot: Robot, stop: threading.Event, action_hz: float, safety: str, servo_hz: float,
         feedback_timeout_s: float | None = None) -> None:  # fmt: skip
    """Walk to the ready pose through the filter; ReplayError unless the arms arrive."""
    rig = Rig(robot, [], feedback_timeout_s=feedback_timeout_s)
    report = go_ready(rig, stop, action_hz, safety=safety, servo_hz=servo_hz)
    if report.reason != "done":
        raise ReplayError(f"homing to the ready pose did not finish ({report.reason}"
                          f"{': ' + report.fault if report.fault else ''}); nothing was replayed")  # fmt: skip


def replay(
    robot: Robot,
    demo: Demo,
    speed: float = 0.5,
    safety: str = "first_run",
    servo_hz: float = 100.0,
    robot_name: str = "sim",
    stop: threading.Event | None = None,
    success: Any = None,
    feedback_timeout_s: float | None = None,
) -> ReplayReport:
    """Play ``demo`` on the connected ``robot``; ``success`` (the twin's predicate) is read after the replay.
    ReplayError, with nothing moved, when the input is bad or the pre-flight fails."""
    check_speed(speed)
    safety_config(safety)  # ValueError names the presets
    problems = preflight(robot)
    if problems:
        raise ReplayError("pre-flight failed, nothing moved: " + "; ".join(problems))
    stop = stop or threading.Event()
    rate = demo.action_hz * speed
    home(robot, stop, rate, safety, servo_hz, feedback_timeout_s)
    state = robot.get_state().vector
    start_gap = float(np.abs(demo.actions[0, _ARM_DIMS] - state[_ARM_DIMS]).max())
    if start_gap > START_TOLERANCE_RAD:
        raise ReplayError(f"the demonstration starts {math.degrees(start_gap):.1f} deg away from the ready pose the "
                          "arms are at: only demonstrations that start at the ready pose are replayed")  # fmt: skip
    source = TimelineSource(demo.actions, rate)
    tracker = _Tracker(source)

    def observe() -> Observation:
        return Observation({}, robot.get_state().vector, demo.instruction)

    def done() -> bool:
        return time.monotonic() >= source.end + SETTLE_S

    executor = ChunkExecutor(robot, source, observe, executor_config(servo_hz, rate, feedback_timeout_s),
                             safety_config(safety), rate, on_tick=tracker.on_tick)  # fmt: skip
    limit = len(demo.actions) + math.ceil((SETTLE_S + 2.0) * rate)  # a backstop: done() ends it first
    report = executor.run(stop=stop, done=done, max_actions=limit)
    actual = tracker.arrival(demo.actions[-1])
    return ReplayReport(
        demo=str(demo.path), task=demo.task, robot=robot_name, speed=speed, safety=safety, end_reason=report.reason,
        fault=report.fault, planned_s=len(demo.actions) / rate, actual_s=actual, ticks=report.ticks,
        late_ticks=report.overruns, period_error_p95_ms=_finite(report.period_error_ms.p95),
        period_error_max_ms=_finite(report.period_error_ms.max), joints=tracker.errors(),
        safety_events=dict(report.event_counts), sim_success=None if success is None else bool(success()),
    )  # fmt: skip


def _seconds(value: float | None) -> str:
    return f"{value:.2f} s" if value is not None else f"not arrived within {SETTLE_S} s of the end"


def _finite(value: float) -> float:
    return 0.0 if math.isnan(value) else float(value)


def format_report(report: ReplayReport) -> list[str]:
    fault = f" - {report.fault}" if report.fault else ""
    lines = [
        f"{report.demo}: {report.task} on {report.robot} at speed {report.speed} ({report.safety} safety): "
        f"{report.end_reason}{fault}",
        f"timing: planned {report.planned_s:.2f} s, actual {_seconds(report.actual_s)}, {report.ticks} ticks, "
        f"{report.late_ticks} late (> 1 period), period error p95 {report.period_error_p95_ms:.2f} ms "
        f"max {report.period_error_max_ms:.2f} ms",
        f"{'joint':<18} {'rms':>8} {'max':>8} {'held back':>10}  (commanded vs measured; filter vs demo)",
    ]
    for j in report.joints:
        lines.append(f"{j.name:<18} {j.rms:>8.2f} {j.max:>8.2f} {j.filter_max:>10.2f}  {j.unit}")
    if report.safety_events:
        lines.append("safety filter: " + ", ".join(f"{k} x{v}" for k, v in sorted(report.safety_events.items())))
    if report.sim_success is not None:
        lines.append(f"twin's task predicate after the replay: {'success' if report.sim_success else 'not met'}")
    return lines
