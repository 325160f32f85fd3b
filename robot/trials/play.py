"""One trial's execution: the action-chunk executor (:mod:`pushcut.robot.control.executor`, with its safety filter)
driving the rig, fed by the policy client, observing through the trial's recorder, reduced to what the trial row
keeps; and the slow walk of the real arms to the ready pose before a trial."""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from pushcut.robot.control.executor import ChunkExecutor, ChunkSource, ExecutionReport, ExecutorConfig, Observation
from pushcut.robot.control.safety import SafetyConfig, SafetyEvent
from pushcut.robot.drivers.interface import RobotFault
from pushcut.robot.trials.recording import TrialRecorder
from pushcut.robot.trials.rig import Rig
from pushcut.sim import piper_spec as spec
from pushcut.trials_db.database import SafetyEventRecord

SAFETY_PRESETS = ("default", "first_run")  # SafetyConfig.piper_default() / SafetyConfig.first_run()
_ARM_DIMS = np.r_[spec.LEFT_ARM_SLICE, spec.RIGHT_ARM_SLICE]


@dataclass(frozen=True)
class TrialResult:
    end_reason: str  # done | max_actions | fault | operator_stop | policy_error | watchdog
    actions: int
    fault: str | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    chunks: int
    safety_events: tuple[SafetyEventRecord, ...]  # interventions only (routine smoothing is counted)
    report: ExecutionReport | None  # the executor's full report (None when it never started)
    ticks: int = 0
    smoothed_ticks: int = 0  # ticks the safety filter's rate limits reshaped (routine)
    outage: str | None = None  # the policy stopped answering during the trial (watchdog, failed requests)

    def interruption(self) -> str | None:
        """Why this trial says nothing about the policy (an outage or a robot fault), or None."""
        if self.end_reason == "fault":
            return f"robot fault: {self.fault}"
        if self.outage or self.end_reason in ("watchdog", "policy_error"):
            return self.outage or self.fault or f"the policy server failed ({self.end_reason})"
        return None

    def summary(self) -> str:
        """'smoothed 12% of 300 ticks; events: joint_limit 1' for the operator's per-trial line."""
        smoothed = f"smoothed {self.smoothed_ticks / self.ticks:.0%} of {self.ticks} ticks" if self.ticks else ""
        counts = self.report.event_counts if self.report is not None else {}
        events = ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items())) or "none"
        return "; ".join(part for part in (smoothed, f"events: {events}") if part)


def safety_config(preset: str) -> SafetyConfig:
    if preset not in SAFETY_PRESETS:
        raise ValueError(f"safety preset must be one of {SAFETY_PRESETS}, got {preset!r}")
    return SafetyConfig.piper_default() if preset == "default" else SafetyConfig.first_run()


def execute(
    rig: Rig,
    source: ChunkSource,
    action_hz: float,
    recorder: TrialRecorder,
    instruction: str,
    stop: threading.Event,
    max_actions: int,
    safety: str = "default",
    servo_hz: float = 100.0,
    chunking: str = "sync",
) -> TrialResult:
    """Play the policy behind ``source`` (the policy client) at ``action_hz`` on ``rig`` until done (sim: the task
    predicate), ``max_actions``, a fault, ``stop``, the watchdog (the policy stopped answering: the arms hold) or
    repeated policy errors. The recorder must be started: its newest frames are the policy's images."""
    try:
        recorder.images(timeout_s=10.0)  # the first frames, before the servo loop (observe() must be quick)
    except RobotFault as error:
        return TrialResult("fault", 0, f"cameras: {error}", None, None, 0, (), None)

    def observe() -> Observation:
        return Observation(recorder.images(), rig.robot.get_state().vector, instruction)

    # an outage ends the trial
    config = executor_config(servo_hz, action_hz, rig.feedback_timeout_s)
    config = replace(config, stop_on_watchdog=True, chunking=chunking)
    executor = ChunkExecutor(rig.robot, source, observe, config, safety_config(safety), action_hz,
                             on_tick=recorder.on_tick)  # fmt: skip
    done = rig.sim.success if rig.sim is not None else None
    report = executor.run(stop=stop, done=done, max_actions=max_actions)
    events = tuple(
        SafetyEventRecord(t=max(0.0, (e.time or recorder.t0) - recorder.t0), reason=e.reason.value, detail=_detail(e))
        for e in report.safety_events
    )
    latency = report.latency_ms
    return TrialResult(
        end_reason=report.reason, actions=report.actions_played, fault=report.fault,
        latency_p50_ms=None if math.isnan(latency.p50) else latency.p50,
        latency_p95_ms=None if math.isnan(latency.p95) else latency.p95,
        chunks=report.chunks_received, safety_events=events, report=report, ticks=report.ticks,
        smoothed_ticks=report.smoothed_ticks, outage=report.outage,
    )  # fmt: skip


def _detail(event: SafetyEvent) -> str:
    """The event's text without its reason prefix (the reason has its own column)."""
    text = str(event)
    prefix = f"{event.reason.value}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def executor_config(servo_hz: float, action_hz: float, feedback_timeout_s: float | None = None) -> ExecutorConfig:
    """The executor's settings for a trial, homing or replay; ``feedback_timeout_s`` None keeps the real arms' rule."""
    # Ctrl-C ends a trial with the arms holding their last command. No e-stop: a Piper's latches until its motor
    # power is released and the arm drops, too much for "this trial is over". Faults still e-stop.
    config = ExecutorConfig(servo_hz=max(servo_hz, action_hz), estop_on_operator_stop=False)
    return config if feedback_timeout_s is None else replace(config, feedback_timeout_s=feedback_timeout_s)


class HomeSource:
    """A chunk source walking the arms from the observed state straight to the ready pose
    (:data:`~pushcut.sim.piper_spec.READY_ACTION`) at ``speed`` rad/s per joint (grippers open at once); answers
    immediately, like a policy with no latency."""

    def __init__(self, action_hz: float, speed: float = 0.5, chunk: int = 10) -> None:
        self.step, self.chunk = speed / action_hz, chunk

    def request_async(
        self, images: Mapping[str, np.ndarray], state: np.ndarray, instruction: str, **kwargs: Any
    ) -> Future[np.ndarray]:
        q, actions = np.asarray(state, dtype=float).copy(), []
        for _ in range(self.chunk):
            q = q + np.clip(spec.READY_ACTION - q, -self.step, self.step)
            q[[spec.LEFT_GRIPPER_INDEX, spec.RIGHT_GRIPPER_INDEX]] = 1.0
            actions.append(q.copy())
        future: Future[np.ndarray] = Future()
        future.set_result(np.array(actions, dtype=np.float32))
        return future


def go_ready(rig: Rig, stop: threading.Event, action_hz: float, safety: str = "default", servo_hz: float = 100.0,
             speed: float = 0.5, tolerance: float = 0.03) -> ExecutionReport:  # fmt: skip
    """Move the arms to the ready pose through the executor and its safety filter (real robots: before each trial,
    after the operator confirmed the scene). Returns the executor's report; reason "done" when every joint is
    within ``tolerance`` rad of the ready pose."""
    ready = spec.READY_ACTION

    def observe() -> Observation:
        return Observation({}, rig.robot.get_state().vector, "")

    def there() -> bool:
        return bool(np.abs(rig.robot.get_state().vector[_ARM_DIMS] - ready[_ARM_DIMS]).max() < tolerance)

    distance = float(np.abs(rig.robot.get_state().vector[_ARM_DIMS] - ready[_ARM_DIMS]).max())
    limit = math.ceil((distance / speed + 3.0) * action_hz)  # the walk plus 3 s to settle
    executor = ChunkExecutor(rig.robot, HomeSource(action_hz, speed), observe,
                             executor_config(servo_hz, action_hz, rig.feedback_timeout_s),
                             safety_config(safety), action_hz)  # fmt: skip
    return executor.run(stop=stop, done=there, max_actions=limit)
