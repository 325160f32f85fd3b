"""The executor's public data: its config, what it asks the policy with, what it reports (see
:mod:`pushcut.robot.control.executor`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from pushcut.robot.control.safety import SafetyEvent
from pushcut.sim.execution import PIPER_MOTION, MotionLimits


@dataclass(frozen=True)
class Observation:
    """What one policy request is made of: RGB uint8 (H, W, 3) per camera, the 14-D measured state, the instruction."""

    images: dict[str, np.ndarray]
    state: np.ndarray
    instruction: str


class ChunkSource(Protocol):
    """Anything shaped like ``PolicyClient.request_async``: a Future of a result with ``.actions`` (chunk, 14)
    (a bare array is accepted too)."""

    def request_async(
        self, images: Mapping[str, np.ndarray], state: np.ndarray, instruction: str, **kwargs: Any
    ) -> Future[Any]: ...


CHUNKING_MODES = ("sync", "async")


@dataclass(frozen=True)
class ExecutorConfig:
    servo_hz: float = PIPER_MOTION.servo_hz  # commands per second sent to the robot
    # "sync" (the simulator's execution, which policies are trained and evaluated on): play a chunk to its last
    # action, observe, wait for the next chunk holding there, start it; max_actions counts actions played.
    # "async": ask for the next chunk while the current one plays, drop its actions made stale by the latency and
    # crossfade it in (no waiting; max_actions counts action periods of wall time).
    chunking: str = "sync"
    crossfade_steps: int = 5  # async: actions over which an overlapping old plan fades into a new chunk (0: switch)
    # the plan is averaged over this many action periods (sim/execution/plan.py: a C1 path, so the velocity change
    # between two actions is spread over the window instead of one servo tick); 0 plays the piecewise-linear path
    smoothing_actions: float = PIPER_MOTION.smoothing_actions
    # the execution's speed, acceleration and envelope (None: PIPER_MOTION, the simulator's); servo_hz and
    # smoothing_actions above take precedence over its own
    motion: MotionLimits | None = None
    # request when actions left <= ceil(latency estimate * action_hz) + this: a small margin plays most of each chunk
    # open-loop, as the policy was trained and evaluated (a large one replans after every action or two)
    prefetch_margin_actions: int = 1
    initial_latency_s: float = 0.5  # latency estimate before the first measurement
    latency_window: int = 20  # the estimate is the largest of the last N latencies
    watchdog_s: float = 1.0  # a request unanswered this long: hold position until a chunk arrives
    # before the run's first chunk the arms are still and nothing is being judged: the watchdog waits this long
    # (a first inference on a busy or cold server may take seconds; a dead server is still found quickly)
    first_chunk_watchdog_s: float = 5.0
    stop_on_watchdog: bool = False  # end the run ("watchdog") when the watchdog fires instead of waiting, holding
    request_timeout_s: float = 10.0  # give a request up after this (an error) and ask again
    max_consecutive_errors: int = 3  # failed / rejected / given-up requests in a row: stop ("policy_error")
    retry_delay_s: float = 0.2  # wait this long after an error before asking again
    feedback_timeout_s: float = 0.2  # robot feedback older than this is a fault (feedback lost)
    spin_s: float = 0.0005  # busy-wait this long before each deadline (sleep alone is too coarse)
    estop_on_operator_stop: bool = True  # operator stop -> robot.emergency_stop() (a fault always does)
    max_events: int = 10_000  # events kept in the report (counts per reason are always complete)
    log_interval_s: float = 1.0  # at most one warning per reason per interval (debug logs get every event)

    def __post_init__(self) -> None:
        positive = ("servo_hz", "initial_latency_s", "watchdog_s", "first_chunk_watchdog_s", "request_timeout_s",
                    "feedback_timeout_s")  # fmt: skip
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"ExecutorConfig.{name} must be positive, got {getattr(self, name)}")
        if min(self.crossfade_steps, self.prefetch_margin_actions, self.spin_s, self.retry_delay_s) < 0:
            raise ValueError("crossfade_steps, prefetch_margin_actions, spin_s and retry_delay_s must be >= 0")
        if self.chunking not in CHUNKING_MODES:
            raise ValueError(f"ExecutorConfig.chunking must be one of {CHUNKING_MODES}, got {self.chunking!r}")
        if not 0.0 <= self.smoothing_actions <= 4.0:
            raise ValueError(f"ExecutorConfig.smoothing_actions must be in [0, 4], got {self.smoothing_actions}")
        if self.latency_window < 1 or self.max_consecutive_errors < 1 or self.max_events < 0:
            raise ValueError("latency_window and max_consecutive_errors must be >= 1, max_events >= 0")


@dataclass(frozen=True, slots=True)
class TickRecord:
    time: float  # monotonic seconds (the tick's deadline)
    commanded: np.ndarray  # (14,) what the robot reported as sent
    measured: np.ndarray  # (14,) the state read at the start of the tick


@dataclass(frozen=True)
class Stats:
    """Summary of a sample (milliseconds where it holds times)."""

    n: int = 0
    mean: float = math.nan
    p50: float = math.nan
    p95: float = math.nan
    p99: float = math.nan
    max: float = math.nan

    @classmethod
    def of(cls, values: list[float] | np.ndarray) -> Stats:
        if len(values) == 0:
            return cls()
        v = np.asarray(values, dtype=float)
        p50, p95, p99 = np.percentile(v, [50, 95, 99])
        return cls(len(v), float(v.mean()), float(p50), float(p95), float(p99), float(v.max()))


@dataclass
class ExecutionReport:
    reason: str  # "done" | "max_actions" | "fault" | "operator_stop" | "policy_error" | "watchdog"
    actions_played: int = 0  # policy actions reached
    action_periods: int = 0  # action periods since the first chunk started, holds included
    ticks: int = 0
    chunks_requested: int = 0
    chunks_received: int = 0
    chunks_late: int = 0  # arrived while the robot was holding (plan ran out, or watchdog), or wholly stale
    chunks_rejected: int = 0
    stale_dropped: int = 0  # actions dropped as stale by the measured latency
    request_errors: int = 0
    latency_ms: Stats = field(default_factory=Stats)  # observation -> chunk received
    period_error_ms: Stats = field(default_factory=Stats)  # tick start - deadline
    overruns: int = 0  # ticks more than a period late (the schedule is re-anchored, not caught up)
    safety_events: list[SafetyEvent] = field(default_factory=list)  # interventions, consecutive ticks merged
    event_counts: dict[str, int] = field(default_factory=dict)  # interventions per reason (merged events)
    smoothed_ticks: int = 0  # ticks on which the safety filter's rate limits reshaped the command (routine)
    profiled_ticks: int = 0  # ticks on which the execution's motion profile limited the plan (as the sim env does)
    smoothing_counts: dict[str, int] = field(default_factory=dict)  # those ticks per routine reason
    outage: str | None = None  # the policy stopped answering (watchdog, request errors): the first such message
    fault: str | None = None
    duration_s: float = 0.0
