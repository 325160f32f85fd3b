"""The chunk executor against an in-process policy (ScriptedSource) and a recording robot: ordering, interpolation,
prefetch, stale dropping, crossfade, holds, faults, stops. Timing checks are loose (the test machine is loaded):
they check logic and ordering, with the tick's own time as the reference."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import replace

import numpy as np
import pytest

from pushcut.robot.control.executor import ChunkExecutor, ExecutorConfig, Observation, TickRecord
from pushcut.robot.control.safety import Reason, SafetyConfig
from pushcut.robot.drivers.interface import Robot
from pushcut.sim.execution import MotionLimits
from pushcut.sim.execution.plan import Plan, crossfade_weights, merge_chunk, stale_count
from pushcut.sim.piper_spec import READY_ACTION
from pushcut.testing.robot_doubles import RecordingRobot, ScriptedSource

HZ = 20.0  # policy actions per second
CHUNK = 10
# The test trajectory moves every joint but the grippers, in directions that keep 0.8 rad of travel inside the
# limits and the TCPs inside the workspace box (arm lifting).
MOVING = np.r_[1.0, -1.0, 1.0, 1.0, -1.0, 1.0, 0.0, 1.0, -1.0, 1.0, 1.0, -1.0, 1.0, 0.0]
SAFETY = SafetyConfig.piper_default()


def ramp(t: float) -> np.ndarray:
    """A slow trajectory on absolute time: still for 0.3 s after the run starts, then 0.2 rad/s (smooth start)."""
    s = max(t - 0.3, 0.0)
    return READY_ACTION + MOVING * 0.2 * (s - 0.25 / math.pi * math.sin(math.pi * min(s, 0.25) / 0.25))


class Rig:
    """A recording robot, a scripted policy whose action j for a request made at t_req is f(t_req + (j+1)/HZ) -
    the value the plan should reach then - and an executor wired to them."""

    def __init__(self, f=ramp, latency=0.03, chunk=CHUNK, offset_per_chunk=0.0, config=None, safety=SAFETY,
                 hang_from=None, fail=None, make_chunk=None):  # fmt: skip
        self.t0 = time.monotonic()
        self.f = f
        self.robot = RecordingRobot()
        self.ticks: list[TickRecord] = []
        self.hooks: list = []

        def planned(i: int, state: np.ndarray) -> np.ndarray:
            t_req = self.source.requests[i][0] - self.t0
            offset = offset_per_chunk * (i % 2)
            return np.stack([f(t_req + (j + 1) / HZ) + offset * MOVING for j in range(chunk)])

        self.source = ScriptedSource(make_chunk or planned, latency=latency, hang_from=hang_from, fail=fail)
        config = config or ExecutorConfig(servo_hz=100.0, chunking="async")
        self.executor = ChunkExecutor(self.robot, self.source, self.observe, config, safety, HZ, self.on_tick)

    def observe(self) -> Observation:
        return Observation({"head_camera": np.zeros((4, 4, 3), np.uint8)}, self.robot.get_state().vector, "go")

    def on_tick(self, record: TickRecord) -> None:
        self.ticks.append(record)
        for hook in self.hooks:
            hook(record.time - self.t0)

    def run(self, **kwargs):
        try:
            return self.executor.run(**kwargs)
        finally:
            self.source.close()

    def commanded(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.array([r.time - self.t0 for r in self.ticks]), np.array([r.commanded for r in self.ticks]))


def reasons(report) -> set[str]:
    return {e.reason.value for e in report.safety_events}


def undisturbed(rig: Rig, report, after: float, settle: float = 0.3) -> np.ndarray:
    """Ticks after ``after`` s that are not within ``settle`` s after a stall of this loaded test machine (a tick
    more than 2.5 periods late) or a hold; skips the test when too few remain to judge."""
    times, _ = rig.commanded()
    gaps = np.diff(times, prepend=times[0])
    disturbances = list(times[gaps > 0.025]) + [e.time - rig.t0 for e in report.safety_events
                                                if e.reason in (Reason.STARVED, Reason.WATCHDOG)]  # fmt: skip
    keep = times > times[0] + after
    for t in disturbances:
        keep &= ~((times >= t - 0.03) & (times <= t + settle))
    if keep.sum() < 40:
        pytest.skip(f"the machine stalled too often to judge timing ({len(disturbances)} stalls)")
    return keep


def loaded(rig: Rig, report, nominal_latency: float) -> bool:
    """Whether this run saw a stall large enough to make a chunk late on its own."""
    times, _ = rig.commanded()
    return np.diff(times).max() > 0.15 or report.latency_ms.max > 1000 * nominal_latency + 150


def test_the_recording_robot_is_a_robot():
    assert isinstance(RecordingRobot(), Robot)


# ------------------------------------------------------------------ playing
def test_actions_are_played_in_order_interpolated_at_the_action_rate():
    rig = Rig(latency=0.03)
    report = rig.run(max_actions=50)
    assert report.reason == "max_actions" and report.action_periods == 50
    times, commands = rig.commanded()
    expected = np.array([rig.f(t) for t in times])
    moving = undisturbed(rig, report, after=0.35)  # after the first chunk arrived and the trajectory started
    error = np.abs(commands - expected)[moving].max()
    # Linear interpolation follows the ramp; holding each action for its step would be up to 0.2 / HZ = 0.01 off.
    assert error < 0.003, f"commands are {error:.4f} rad off the planned trajectory"
    assert (np.diff(commands[moving][:, 0]) > 0).mean() > 0.9, "not moving forward through the actions"
    assert report.actions_played >= 25 and report.chunks_received >= 4  # a merge can skip one point
    assert report.ticks >= 0.8 * report.duration_s * 100


def test_prefetch_requests_the_next_chunk_before_the_plan_runs_out():
    rig = Rig(latency=0.08)
    report = rig.run(max_actions=40)
    assert report.reason == "max_actions"
    if not loaded(rig, report, 0.08):
        assert report.chunks_late == 0 and not reasons(report) & {"starved", "watchdog"}
    assert report.chunks_received >= 4 and report.chunks_requested - report.chunks_received in (0, 1)
    assert 75 <= report.latency_ms.p50 <= 200


def test_default_prefetch_plays_most_of_each_chunk_open_loop():
    # The policy was trained and evaluated playing its chunks open-loop; the executor asks for the next chunk only
    # when the actions left just cover the latency, so each chunk plays all but its stale actions and the margin.
    rig = Rig(latency=0.08)  # ceil(0.08 s * 20 Hz) = 2 stale actions
    report = rig.run(max_actions=60)
    per_chunk = report.actions_played / report.chunks_received
    if not loaded(rig, report, 0.08):
        assert per_chunk >= CHUNK - 2 - ExecutorConfig().prefetch_margin_actions - 2, per_chunk


def test_stale_actions_are_dropped_by_the_measured_latency():
    rig = Rig(latency=0.12)  # ceil(0.12 s * 20 Hz) = 3 actions stale per chunk
    report = rig.run(max_actions=40)
    per_chunk = report.stale_dropped / report.chunks_received
    expected = stale_count(report.latency_ms.p50 / 1000.0, HZ)
    assert expected >= 3 and abs(per_chunk - expected) <= 1
    times, commands = rig.commanded()
    moving = undisturbed(rig, report, after=0.5)
    # Without dropping, the plan would lag the trajectory by the latency: 0.12 s * 0.2 rad/s = 0.024 rad.
    assert np.abs(commands - np.array([rig.f(t) for t in times]))[moving].max() < 0.004


def test_crossfade_blends_disagreeing_chunks_without_a_jump():
    loose = replace(SAFETY, max_joint_accel=1e6)  # let the proposals through as they are: test the plan itself
    steps = {}
    for fade in (0, 5):
        # A wide prefetch margin: chunks overlap by more than the 5 crossfade actions.
        config = ExecutorConfig(crossfade_steps=fade, prefetch_margin_actions=5, chunking="async",
                                motion=MotionLimits(max_joint_accel=1e6))
        rig = Rig(latency=0.03, offset_per_chunk=0.05, safety=loose, config=config)
        report = rig.run(max_actions=40)
        _, commands = rig.commanded()
        steady = undisturbed(rig, report, after=0.1, settle=0.15)[1:]
        steps[fade] = np.abs(np.diff(commands, axis=0))[steady].max()
        assert report.chunks_received >= 5
    # Switched at once, the 0.05 rad disagreement is crossed within one action (5 ticks); crossfaded, over several.
    assert steps[5] < 0.006, f"crossfaded chunks still step {steps[5]:.4f} rad per tick"
    assert steps[0] > 1.6 * steps[5]


# ------------------------------------------------------------------ holds and stops
def test_watchdog_holds_position_when_the_source_stops_answering():
    config = ExecutorConfig(watchdog_s=0.3, request_timeout_s=1.2, max_consecutive_errors=1, chunking="async")
    rig = Rig(latency=0.03, hang_from=3, config=config)
    report = rig.run(max_actions=1000)
    assert report.reason == "policy_error"
    watchdog = next(e for e in report.safety_events if e.reason is Reason.WATCHDOG)
    times, commands = rig.commanded()
    held = commands[times > watchdog.time - rig.t0 + 0.2]  # after the filter brought the arms to rest
    assert len(held) > 20 and np.abs(held - held[0]).max() < 1e-12, "did not hold position"
    before = commands[times <= watchdog.time - rig.t0]
    # Holding = braking to rest from the speed the arm had (at most v^2 / 2a further), never following the plan on.
    speed = np.abs(np.diff(before[-2:, 0])).max() * 100.0  # rad/s at the watchdog (100 Hz ticks)
    reach = speed**2 / (2 * SAFETY.max_joint_accel) + speed * 0.01 + 0.01
    assert before[:, 0].min() - 1e-9 <= held[0, 0] <= before[:, 0].max() + reach, "extrapolated instead of holding"


def test_the_plan_running_out_is_a_hold_and_a_late_chunk():
    rig = Rig(latency=lambda i: 0.03 if i < 2 else 0.8, chunk=6)  # 6 actions = 0.3 s, then 0.8 s latency
    report = rig.run(max_actions=40)
    assert "starved" in reasons(report) and report.chunks_late >= 1
    assert np.isfinite(rig.robot.commands()).all()


@pytest.mark.parametrize("how", ["status", "feedback_lost", "send_raises"])
def test_a_robot_fault_stops_the_loop(how):
    rig = Rig()

    def inject(t: float) -> None:
        if t > 0.4:
            if how == "status":
                rig.robot.faults = ("left: collision detected",)
            elif how == "feedback_lost" and rig.robot.feedback_frozen_at is None:
                rig.robot.feedback_frozen_at = time.monotonic()
            elif how == "send_raises":
                rig.robot.raise_on_send = "CAN write failed"

    rig.hooks.append(inject)
    report = rig.run(max_actions=1000)
    assert report.reason == "fault" and rig.robot.estopped
    assert {"status": "collision", "feedback_lost": "feedback lost", "send_raises": "CAN"}[how] in report.fault
    assert report.duration_s < 2.0
    assert any(e.reason is Reason.FAULT for e in report.safety_events)


def test_an_operator_stop_event_stops_it():
    rig = Rig()
    stop = threading.Event()
    rig.hooks.append(lambda t: stop.set() if t > 0.4 else None)
    report = rig.run(stop=stop, max_actions=1000)
    assert report.reason == "operator_stop" and rig.robot.estopped and report.duration_s < 2.0


def test_done_ends_it_and_is_asked_once_per_action_period():
    rig = Rig()
    calls = []

    def done() -> bool:
        calls.append(time.monotonic())
        return len(calls) >= 15

    report = rig.run(done=done, max_actions=1000)
    assert report.reason == "done" and len(calls) == 15
    rate = (len(calls) - 1) / (calls[-1] - calls[0])
    assert 0.6 * HZ <= rate <= 1.05 * HZ


# ------------------------------------------------------------------ bad chunks and errors
def test_a_nan_chunk_never_reaches_the_robot():
    def chunks(i: int, state: np.ndarray) -> np.ndarray:
        chunk = np.tile(READY_ACTION + 0.01 * i * MOVING, (CHUNK, 1))
        if i % 2:
            chunk[:, 2] = np.nan
            chunk[3, 8] = np.inf
        return chunk

    rig = Rig(make_chunk=chunks)
    report = rig.run(max_actions=30)
    assert report.reason == "max_actions"
    sent = rig.robot.commands()
    assert np.isfinite(sent).all()
    assert "non_finite" in reasons(report)


def test_wild_chunks_are_filtered_and_bad_shapes_rejected():
    rng = np.random.default_rng(0)

    def chunks(i: int, state: np.ndarray) -> np.ndarray:
        if i == 2:
            return np.zeros((CHUNK, 13))
        return rng.uniform(-8.0, 8.0, (CHUNK, 14))

    rig = Rig(make_chunk=chunks)
    report = rig.run(max_actions=25)
    assert report.reason == "max_actions" and report.chunks_rejected == 1
    assert "chunk_rejected" in reasons(report)
    sent = rig.robot.commands()
    lim = SAFETY.limits
    assert (sent >= lim.low - 1e-9).all() and (sent <= lim.high + 1e-9).all()
    assert (np.abs(np.diff(sent, axis=0)) <= lim.max_speed / 100 + 1e-9).all()


def test_repeated_policy_errors_stop_it():
    rig = Rig(fail=lambda i: i >= 1)
    report = rig.run(max_actions=1000)
    assert report.reason == "policy_error" and report.request_errors == 3
    assert sum(e.reason is Reason.POLICY_ERROR for e in report.safety_events) == 4  # 3 errors + the stop


def test_configs_refuse_nonsense():
    with pytest.raises(ValueError):
        ExecutorConfig(servo_hz=0)
    with pytest.raises(ValueError):
        ExecutorConfig(crossfade_steps=-1)
    with pytest.raises(ValueError):
        ChunkExecutor(RecordingRobot(), ScriptedSource(lambda i, s: None), lambda: None, ExecutorConfig(), SAFETY,
                      action_hz=500.0)  # fmt: skip


# ------------------------------------------------------------------ the plan (pure)
def test_merge_drops_stale_actions_and_crossfades_with_the_documented_weights():
    chunk = np.tile(np.arange(10.0)[:, None], (1, 14))
    old = Plan(np.array([0.0, 10.0]), np.zeros((2, 14)))  # the old plan holds 0
    plan, dropped = merge_chunk(old, now=1.12, current=np.full(14, -1.0), chunk=chunk, observed_at=1.0,
                                action_hz=20.0, crossfade_steps=3)  # fmt: skip
    assert dropped == 3 == stale_count(0.12, 20.0)
    assert plan.times[0] == 1.12 and plan.times[1] == pytest.approx(1.0 + 4 / 20.0) and plan.times[1] > 1.12
    np.testing.assert_allclose(plan.values[0], -1.0)
    w = crossfade_weights(3, 7)
    np.testing.assert_allclose(w, [0.25, 0.5, 0.75, 1, 1, 1, 1])
    np.testing.assert_allclose(plan.values[1:, 0], w * np.arange(3.0, 10.0))
    late, dropped = merge_chunk(old, 2.0, np.zeros(14), chunk, 1.0, 20.0, 3)
    assert late is None and dropped == 10
    # The old plan ends at 1.25 s: only the actions due by then (at 1.20, 1.25) overlap it, so K = 2.
    short = Plan(np.array([0.0, 1.25]), np.zeros((2, 14)))
    plan, _ = merge_chunk(short, 1.12, np.zeros(14), chunk, 1.0, 20.0, 5)
    np.testing.assert_allclose(plan.values[1:, 0], crossfade_weights(2, 7) * np.arange(3.0, 10.0))
    plan, _ = merge_chunk(None, 1.12, np.zeros(14), chunk, 1.0, 20.0, 5)
    np.testing.assert_allclose(plan.values[1:, 0], np.arange(3.0, 10.0))


def test_plan_interpolates_counts_and_holds_its_last_action():
    plan = Plan(np.array([0.0, 1.0, 2.0]), np.array([np.zeros(14), np.ones(14), np.full(14, 3.0)]))
    assert plan.advance(0.5) == 0 and plan.value(0.5)[0] == pytest.approx(0.5)
    assert plan.remaining(0.5) == 2
    assert plan.advance(1.5) == 1 and plan.value(1.5)[0] == pytest.approx(2.0)
    assert plan.advance(5.0) == 1 and plan.exhausted(5.0) and plan.value(5.0)[0] == 3.0
    np.testing.assert_allclose(plan.sample(np.array([-1.0, 0.25, 9.0]))[:, 0], [0.0, 0.25, 3.0])
