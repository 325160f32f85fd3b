"""One trial's execution: the action-chunk executor (:mod:`pushcut.robot.executor`, with its safety filter) driving
the rig, fed by the policy client, observing through the trial's recorder, reduced to what the trial row keeps."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

from pushcut.robot.recording import TrialRecorder
from pushcut.robot.trials_db import SafetyEventRecord

SAFETY_PRESETS = ("default", "first_run")  # SafetyConfig.piper_default() / SafetyConfig.first_run()


@dataclass(frozen=True)
class TrialResult:
    end_reason: str  # done | max_actions | fault | operator_stop | policy_error
    actions: int
    fault: str | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    chunks: int
    safety_events: tuple[SafetyEventRecord, ...]
    report: Any  # the executor's full ExecutionReport (None when it never started)


def safety_config(preset: str) -> Any:
    from pushcut.robot.safety import SafetyConfig

    if preset not in SAFETY_PRESETS:
        raise ValueError(f"safety preset must be one of {SAFETY_PRESETS}, got {preset!r}")
    return SafetyConfig.piper_default() if preset == "default" else SafetyConfig.first_run()


def execute(
    rig: Any,
    client: Any,
    info: Any,
    recorder: TrialRecorder,
    instruction: str,
    stop: threading.Event,
    max_actions: int,
    safety: str = "default",
    servo_hz: float = 100.0,
) -> TrialResult:
    """Play the served policy on ``rig`` until done (sim: the task predicate), ``max_actions``, a fault, ``stop``
    or repeated policy errors. The recorder must be started: its newest frames are the policy's images."""
    from pushcut.robot.executor import ChunkExecutor, ExecutorConfig, Observation
    from pushcut.robot.interface import RobotFault

    try:
        recorder.images(timeout_s=10.0)  # the first frames, before the servo loop (observe() must be quick)
    except RobotFault as error:
        return TrialResult("fault", 0, f"cameras: {error}", None, None, 0, (), None)

    def observe() -> Observation:
        return Observation(recorder.images(), rig.robot.get_state().vector, instruction)

    executor = ChunkExecutor(rig.robot, client, observe, ExecutorConfig(servo_hz=max(servo_hz, info.action_hz)),
                             safety_config(safety), info.action_hz, on_tick=recorder.on_tick)  # fmt: skip
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
        chunks=report.chunks_received, safety_events=events, report=report,
    )  # fmt: skip


def _detail(event: Any) -> str:
    """The event's text without its reason prefix (the reason has its own column)."""
    text = str(event)
    prefix = f"{event.reason.value}: "
    return text[len(prefix) :] if text.startswith(prefix) else text
