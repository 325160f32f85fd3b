"""The action-chunk executor: plays a chunk policy on a robot (:class:`~pushcut.robot.drivers.interface.Robot`)
at a fixed servo rate.

    executor = ChunkExecutor(robot, client, observe, ExecutorConfig(servo_hz=100), SafetyConfig.piper_default(),
                             action_hz=info.action_hz, on_tick=recorder.on_tick)
    report = executor.run(stop=stop_event, done=sim.success, max_actions=400)

A chunk becomes joint commands exactly as in the simulator (:class:`~pushcut.sim.execution.ChunkServo`, one
definition): the path through its actions, interpolated and smoothed over ``smoothing_actions`` action periods, then
the motion profile (the Piper's joint speed and acceleration, braking before the envelope). Two ways to schedule
chunks (``ExecutorConfig.chunking``):

- ``sync`` (default; how policies are trained and evaluated in simulation, and how SimpleVLA-RL and RoboTwin run
  them): play the chunk to its last action, observe, hold there while the policy answers, start the next chunk from
  where the command is. ``max_actions`` counts actions played, as the simulator's step limit does;
- ``async``: ask for the next chunk while the current one plays (when the actions left are at most
  ``ceil(latency estimate * action_hz) + prefetch_margin_actions``, the estimate being the largest of the last
  ``latency_window`` latencies), drop its actions already stale on arrival and crossfade it into the running plan;
  ``max_actions`` counts action periods of wall time, holds included. A plan that runs out holds (STARVED).

Each servo tick (absolute deadlines on the monotonic clock: sleep, then a short spin; lateness = period error):

1. read the robot; stop on a fault (``RobotState.faults``, a RobotFault, or feedback older than
   ``feedback_timeout_s``) or on the operator's ``stop`` event (then ``emergency_stop``);
2. collect a finished request: the chunk is validated (:func:`~pushcut.robot.control.safety.validate_chunk`) and
   played (above); errors are retried until ``max_consecutive_errors`` in a row;
3. request the next chunk in the background (``source.request_async`` with ``observe()``) when the mode says so;
4. the execution's command at the tick; a request unanswered for ``watchdog_s`` drops the plan and the profile
   brings the arms to rest (WATCHDOG; before the run's first chunk, while the arms are still,
   ``first_chunk_watchdog_s``);
5. pass it through :func:`~pushcut.robot.control.safety.filter_command` and send what it returns;
6. ``done()`` once per action period, ``max_actions`` every tick.

The safety filter's defaults are the execution's own limits, so what the executor plays passes it unchanged: what
its rate layer still reshapes (:data:`~pushcut.robot.control.safety.ROUTINE_REASONS`: velocity, acceleration,
gripper rate) is counted per tick (``smoothed_ticks``; ``profiled_ticks`` counts the ticks the execution's own
profile limited, as the simulator's does), logged at debug level only. Every other intervention (joint limit,
workspace, arm distance, hold, fault, stop) is kept in the report as one event per episode: the same reason on the
same dimensions on consecutive ticks is merged into one event (``ticks``, ``end``), and its start is logged
(warnings rate-limited per reason). A watchdog hold or a failed request is an outage (``report.outage``): the policy
stopped answering, which says nothing about the policy's skill; with ``stop_on_watchdog`` the run ends there
("watchdog") with the arms holding.

The robot's methods and ``observe()`` are only called from the thread running :meth:`run`; ``observe()`` runs inside
a tick, so it must be quick (heavy work such as encoding belongs to the source's thread).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace

import numpy as np

from pushcut.robot.control.executor_types import (
    ChunkSource,
    ExecutionReport,
    ExecutorConfig,
    Observation,
    Stats,
    TickRecord,
)
from pushcut.robot.control.safety import (
    ROUTINE_REASONS,
    ChunkRejected,
    FilterState,
    Reason,
    SafetyConfig,
    SafetyEvent,
    filter_command,
    validate_chunk,
)
from pushcut.robot.drivers.interface import Robot, RobotFault, RobotState
from pushcut.sim import piper_spec as spec
from pushcut.sim.execution import PIPER_MOTION, ChunkServo

__all__ = ["ChunkExecutor", "ChunkSource", "ExecutionReport", "ExecutorConfig", "Observation", "Stats", "TickRecord"]

log = logging.getLogger(__name__)


class _Stop(Exception):
    """Ends :meth:`ChunkExecutor.run` with an end reason (and, for interventions, the reason code and a message)."""

    def __init__(self, end: str, message: str = "") -> None:
        super().__init__(message or end)
        self.end, self.message = end, message


class ChunkExecutor:
    def __init__(
        self,
        robot: Robot,
        source: ChunkSource,
        observe: Callable[[], Observation],
        config: ExecutorConfig,
        safety: SafetyConfig,
        action_hz: float,
        on_tick: Callable[[TickRecord], None] | None = None,
    ) -> None:
        if not 0 < action_hz <= config.servo_hz:
            raise ValueError(f"action_hz={action_hz} must be positive and at most servo_hz={config.servo_hz}")
        self.robot, self.source, self.observe = robot, source, observe
        self.config, self.safety, self.action_hz, self.on_tick = config, safety, float(action_hz), on_tick

    # ------------------------------------------------------------------ the loop
    def run(
        self,
        stop: threading.Event | None = None,
        done: Callable[[], bool] | None = None,
        max_actions: int | None = None,
    ) -> ExecutionReport:
        """Play the policy until ``done()``, ``max_actions`` action periods, a fault, ``stop`` or repeated policy
        errors; the report says which and what happened on the way."""
        cfg = self.config
        period = 1.0 / cfg.servo_hz
        self._reset()
        report = self._report
        start = time.monotonic()
        try:
            state = self._read()
            self._check(state, stop)
            if not np.isfinite(state.vector).all():
                raise _Stop(Reason.FAULT.value, f"the robot reports a non-finite state: {state.vector}")
            self._filter = FilterState.at_rest(state.vector)
            self._servo.reset(state.vector)
            self._proposal = self._filter.command
            anchor, k = start, 0
            while True:
                deadline = anchor + k * period
                _wait_until(deadline, cfg.spin_s)
                late = time.monotonic() - deadline
                self._period_errors.append(late * 1000.0)
                if late > period:  # fell behind (a slow observe, a loaded machine): re-anchor, do not burst
                    report.overruns += 1
                    anchor = time.monotonic() - k * period
                    deadline = anchor + k * period
                self._tick(deadline, period, state, stop, done, max_actions)
                state = None
                k += 1
        except _Stop as end:
            report.reason = end.end
            intervention = end.end in (Reason.FAULT.value, Reason.OPERATOR_STOP.value, Reason.POLICY_ERROR.value)
            if intervention:
                self._event(time.monotonic(), SafetyEvent(Reason(end.end), detail=str(end)))
            if end.end == Reason.FAULT.value:
                report.fault = end.message
            if end.end == Reason.FAULT.value or (end.end == Reason.OPERATOR_STOP.value and cfg.estop_on_operator_stop):
                self._emergency_stop()
        except BaseException:
            log.exception("executor crashed; emergency stop")
            self._emergency_stop()
            raise
        finally:
            if self._pending is not None:
                self._pending[0].cancel()
            report.duration_s = time.monotonic() - start
            report.latency_ms = Stats.of(self._latencies_ms)
            report.period_error_ms = Stats.of(self._period_errors)
            report.event_counts = dict(self._counts)
            report.smoothing_counts = dict(self._routine)
            report.profiled_ticks = self._servo.profile.limited_ticks
        log.info("executor stopped: %s after %d actions, %d ticks", report.reason, report.actions_played, report.ticks)
        return report

    def _reset(self) -> None:
        self._report = ExecutionReport(reason="")
        motion = replace(
            self.config.motion or PIPER_MOTION,
            servo_hz=self.config.servo_hz,
            smoothing_actions=self.config.smoothing_actions,
        )
        # reset at the measured state; the envelope is the safety filter's (a joint limit stays an intervention)
        self._servo = ChunkServo(np.zeros(spec.ACTION_DIM), self.action_hz, motion, envelope=False)
        self._sync = self.config.chunking == "sync"
        self._pending: tuple[Future, float, list[float]] | None = None  # (future, observed at, [answered at])
        self._retry_at = 0.0
        self._errors_in_a_row = 0
        self._latency: deque[float] = deque(maxlen=self.config.latency_window)
        self._latencies_ms: list[float] = []
        self._period_errors: list[float] = []
        self._counts: Counter[str] = Counter()
        self._routine: Counter[str] = Counter()
        self._open: dict[tuple[Reason, tuple[int, ...]], tuple[int, int]] = {}  # (event index, tick) per episode
        self._tick_index = 0
        self._last_warned: dict[Reason, float] = {}
        self._holding: Reason | None = None
        self._first_play: float | None = None
        self._next_period = 0.0

    def _tick(self, t: float, period: float, state: RobotState | None, stop, done, max_actions) -> None:
        if state is None:
            state = self._read()
            self._check(state, stop)
        self._collect(t)
        self._maybe_request(t)
        proposal = self._propose(t)
        self._filter, events = filter_command(self._filter, proposal, period, self.safety)
        self._tick_index += 1
        routine = [e for e in events if e.reason in ROUTINE_REASONS]
        if routine:
            self._report.smoothed_ticks += 1
            self._routine.update(e.reason.value for e in routine)
            log.debug("smoothed: %s", "; ".join(map(str, routine)))
        for event in events:
            if event.reason not in ROUTINE_REASONS:
                self._event(t, event, merge=True)
        try:
            sent = self.robot.send_action(self._filter.command)
        except RobotFault as error:
            raise _Stop(Reason.FAULT.value, f"send failed: {error}") from None
        self._report.ticks += 1
        if self.on_tick is not None:
            self.on_tick(TickRecord(t, sent, state.vector))
        if self._sync:  # the simulator's clock: actions played (waiting for a chunk is not policy time)
            self._report.action_periods = self._report.actions_played
        if t >= self._next_period:  # once per action period
            self._next_period = t + 1.0 / self.action_hz
            if self._first_play is not None and not self._sync:
                self._report.action_periods = int((t - self._first_play) * self.action_hz + 1e-9)
            if done is not None and done():
                raise _Stop("done")
        if max_actions is not None and self._report.action_periods >= max_actions:
            raise _Stop("max_actions")

    # ------------------------------------------------------------------ robot
    def _read(self) -> RobotState:
        try:
            return self.robot.get_state()
        except RobotFault as error:
            raise _Stop(Reason.FAULT.value, str(error)) from None

    def _check(self, state: RobotState, stop: threading.Event | None) -> None:
        faults = list(state.faults) or [f"arm {i}: {a.fault}" for i, a in enumerate(state.arms) if a.fault]
        faults += [f"arm {i} is not enabled" for i, a in enumerate(state.arms) if not a.enabled]
        if faults:
            raise _Stop(Reason.FAULT.value, "; ".join(faults))
        age = time.monotonic() - state.timestamp
        if age > self.config.feedback_timeout_s:
            raise _Stop(Reason.FAULT.value, f"feedback lost: the newest robot state is {age * 1000:.0f} ms old")
        if stop is not None and stop.is_set():
            raise _Stop(Reason.OPERATOR_STOP.value, "operator stop")

    def _emergency_stop(self) -> None:
        try:
            self.robot.emergency_stop()
        except Exception:  # noqa: BLE001 - the robot may be what failed; nothing more to do from here
            log.exception("emergency stop failed")

    # ------------------------------------------------------------------ policy requests
    def _maybe_request(self, t: float) -> None:
        if self._pending is not None or t < self._retry_at:
            return
        if self._sync:  # the next observation when the plan's last action is reached, as the simulator observes
            if not self._servo.exhausted(t):
                return
        elif self._servo.plan is not None and self._holding is None:
            estimate = max(self._latency) if self._latency else self.config.initial_latency_s
            threshold = math.ceil(estimate * self.action_hz) + self.config.prefetch_margin_actions
            if self._servo.remaining(t) > threshold:
                return
        observed_at = time.monotonic()
        try:
            observation = self.observe()
        except RobotFault as error:
            raise _Stop(Reason.FAULT.value, f"observation failed: {error}") from None
        self._report.chunks_requested += 1
        try:
            future = self.source.request_async(observation.images, observation.state, observation.instruction)
        except Exception as error:  # noqa: BLE001 - e.g. a closed client: a policy error like any other
            self._error(t, f"request failed: {type(error).__name__}: {error}")
            return
        answered: list[float] = []  # when the chunk arrived (the latency excludes this loop's polling delay)
        future.add_done_callback(lambda _: answered.append(time.monotonic()))
        self._pending = (future, observed_at, answered)

    def _collect(self, t: float) -> None:
        if self._pending is None:
            return
        future, observed_at, answered = self._pending
        age = time.monotonic() - observed_at
        if not future.done():
            if age > self.config.request_timeout_s:
                future.cancel()
                self._pending = None
                self._error(t, f"no chunk {age:.1f} s after the request: giving it up")
            elif age > self._watchdog_s() and self._holding is not Reason.WATCHDOG:
                self._hold(t, Reason.WATCHDOG, f"no chunk {age * 1000:.0f} ms after the request: holding position")
            return
        self._pending = None
        try:
            result = future.result()
            actions, events = validate_chunk(getattr(result, "actions", result), self._proposal)
        except ChunkRejected as error:
            self._report.chunks_rejected += 1
            self._error(t, f"chunk rejected: {error}", Reason.CHUNK_REJECTED)
            return
        except Exception as error:  # noqa: BLE001 - any failure of the source is a policy error
            self._error(t, f"{type(error).__name__}: {error}")
            return
        for event in events:
            self._event(t, event)
        latency = (answered[0] if answered else time.monotonic()) - observed_at
        self._latency.append(latency)
        self._latencies_ms.append(latency * 1000.0)
        self._errors_in_a_row = 0
        report = self._report
        report.chunks_received += 1
        was_holding = self._holding is not None
        if self._holding is Reason.WATCHDOG:  # the new plan starts where the arms came to rest
            self._servo.clear()
        report.actions_played += self._servo.advance(t)
        if self._sync:  # the robot waited for this chunk: it starts now, nothing is stale
            dropped = self._servo.play(actions, t)
        else:
            dropped = self._servo.play(actions, t, observed_at, self.config.crossfade_steps)
        if dropped is None:  # every action already stale: keep what we had, ask again
            report.stale_dropped += len(actions)
            report.chunks_late += 1
            self._warn(Reason.STARVED, f"chunk arrived {latency * 1000:.0f} ms after its observation: all stale")
            return
        report.stale_dropped += dropped
        report.chunks_late += int(was_holding)
        self._holding = None
        if self._first_play is None:
            self._first_play = t

    def _watchdog_s(self) -> float:
        if self._first_play is None:  # nothing played yet: the arms are still
            return max(self.config.watchdog_s, self.config.first_chunk_watchdog_s)
        return self.config.watchdog_s

    def _error(self, t: float, message: str, reason: Reason = Reason.POLICY_ERROR) -> None:
        self._report.request_errors += 1
        self._errors_in_a_row += 1
        self._retry_at = t + self.config.retry_delay_s
        self._event(t, SafetyEvent(reason, detail=message))
        if reason is Reason.POLICY_ERROR:
            self._report.outage = self._report.outage or f"policy request failed: {message}"
        if self._errors_in_a_row >= self.config.max_consecutive_errors:
            raise _Stop(Reason.POLICY_ERROR.value, f"{self._errors_in_a_row} policy errors in a row (last: {message})")

    # ------------------------------------------------------------------ what to command
    def _propose(self, t: float) -> np.ndarray:
        """The shared execution's command at ``t`` (:class:`~pushcut.sim.execution.ChunkServo`: the plan, smoothed,
        through the motion profile); with no plan (or a watchdog hold) the profile brings the arms to rest."""
        if self._holding is Reason.WATCHDOG:
            self._servo.clear()
        self._report.actions_played += self._servo.advance(t)
        playing = self._servo.plan is not None
        if playing and not self._sync and self._servo.exhausted(t) and self._holding is None:
            self._hold(t, Reason.STARVED, "the plan ran out before the next chunk: holding the last action")
        self._proposal = self._servo.command(t)
        return self._proposal

    def _hold(self, t: float, reason: Reason, message: str) -> None:
        self._holding = reason
        self._event(t, SafetyEvent(reason, detail=message))
        if reason is Reason.WATCHDOG:
            self._report.outage = self._report.outage or f"the policy stopped answering: {message}"
            if self.config.stop_on_watchdog:
                raise _Stop(Reason.WATCHDOG.value, message)

    # ------------------------------------------------------------------ events
    def _event(self, t: float, event: SafetyEvent, merge: bool = False) -> None:
        """Record an intervention; with ``merge`` (the filter's, every tick) the same reason on the same dimensions
        as on the previous tick extends that event."""
        key = (event.reason, event.indices)
        events = self._report.safety_events
        episode = self._open.get(key) if merge else None
        if episode is not None and episode[1] >= self._tick_index - 1:
            index = episode[0]
            if episode[1] < self._tick_index:  # a second layer on the same tick adds no tick
                events[index] = replace(events[index], ticks=events[index].ticks + 1, end=t)
                self._open[key] = (index, self._tick_index)
            return
        self._counts[event.reason.value] += 1
        if len(events) < self.config.max_events:
            events.append(replace(event, time=t))
            if merge:
                self._open[key] = (len(events) - 1, self._tick_index)
        log.debug("%s", event)
        self._warn(event.reason, event, t)

    def _warn(self, reason: Reason, message: object, t: float | None = None) -> None:
        """Log ``message`` (formatted only if logged) unless this reason was logged less than log_interval_s ago."""
        t = time.monotonic() if t is None else t
        if t - self._last_warned.get(reason, -math.inf) >= self.config.log_interval_s:
            self._last_warned[reason] = t
            count = self._counts[reason.value]  # 0 for warnings that are not events (a stale chunk)
            if count:
                log.warning("%s (%d so far)", message, count)
            else:
                log.warning("%s", message)


def _wait_until(deadline: float, spin_s: float) -> None:
    """Sleep until ``spin_s`` before ``deadline``, then spin: time.sleep alone overshoots by 50-100 us or more."""
    remaining = deadline - time.monotonic()
    if remaining > spin_s:
        time.sleep(remaining - spin_s)
    while time.monotonic() < deadline:
        continue  # busy-wait for the last spin_s: the deadline precision the servo loop needs
