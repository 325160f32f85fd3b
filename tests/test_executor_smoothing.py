"""Readable safety events: the smoothed plan (a C1 path: the velocity change between two actions spread over one
action period instead of one servo tick), routine rate limiting counted instead of logged per tick, interventions
merged per episode, and outages (watchdog) reported as such."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pushcut.robot.control.executor import ChunkExecutor, ExecutorConfig, Observation
from pushcut.robot.control.safety import ROUTINE_REASONS, FilterState, Reason, SafetyConfig, filter_command
from pushcut.sim.execution.plan import Plan, merge_chunk
from pushcut.sim.piper_spec import READY_ACTION
from pushcut.testing.robot_doubles import RecordingRobot, ScriptedSource

HZ = 250 / 15
ARMS = np.r_[0:6, 7:13]


@st.composite
def paths(draw):
    n = draw(st.integers(2, 7))
    gaps = draw(st.lists(st.floats(0.02, 0.2), min_size=n - 1, max_size=n - 1))
    times = np.concatenate([[0.0], np.cumsum(gaps)])
    values = np.array(draw(st.lists(st.lists(st.floats(-1.0, 1.0), min_size=14, max_size=14), min_size=n,
                                    max_size=n)))  # fmt: skip
    return times, values, draw(st.floats(0.02, 0.2))


@settings(max_examples=60, deadline=None)
@given(paths())
def test_the_smoothed_path_is_continuous_and_its_acceleration_is_the_velocity_step_over_the_window(path):
    times, values, window = path
    plan = Plan(times, values, smoothing_s=window)
    h = 0.001
    grid = np.arange(times[0] - window, times[-1] + window, h)
    smooth = np.array([plan.value(t) for t in grid])
    slopes = np.vstack([np.zeros(14), np.diff(values, axis=0) / np.diff(times)[:, None], np.zeros(14)])
    speed = np.abs(slopes).max(axis=0)
    assert (np.abs(np.diff(smooth, axis=0)) <= speed * h + 1e-9).all()
    accel = np.abs(np.diff(smooth, 2, axis=0)) / h**2
    bound = (slopes.max(axis=0) - slopes.min(axis=0)) / window
    assert (accel <= bound + 1e-5 / h**2).all()


@settings(max_examples=40, deadline=None)
@given(st.floats(-2.0, 2.0), st.floats(0.02, 0.1))
def test_a_straight_path_is_played_unchanged(speed, window):
    times = np.linspace(0.0, 1.0, 11)
    values = np.outer(times, np.full(14, speed))
    plan = Plan(times, values, smoothing_s=window)
    for t in np.linspace(window / 2, 1.0 - window / 2, 25):
        np.testing.assert_allclose(plan.value(t), speed * t, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(paths(), st.floats(0.0, 0.3), st.floats(0.0, 0.05))
def test_a_new_smoothed_plan_starts_exactly_at_the_current_command(path, now_fraction, latency):
    times, values, window = path
    old = Plan(times, values, smoothing_s=window)
    now = times[0] + now_fraction * (times[-1] - times[0])
    old.advance(now)
    current = old.value(now)
    chunk = np.random.default_rng(0).uniform(-1.0, 1.0, (8, 14))
    plan, _ = merge_chunk(old, now, current, chunk, now - latency, HZ, 3, smoothing_s=window)
    np.testing.assert_allclose(plan.value(now), current, atol=1e-12)
    after = plan.value(now + 1e-4)
    assert np.abs(after - current).max() < 1e-2  # no jump right after the join either


def _run(smoothing: float | None, chunk_of, seconds: float = 1.5, config_overrides: dict | None = None,
         hang_from: int | None = None):  # fmt: skip
    robot = RecordingRobot()
    source = ScriptedSource(chunk_of, latency=0.03, hang_from=hang_from)
    overrides = dict(config_overrides or {})
    if smoothing is not None:
        overrides["smoothing_actions"] = smoothing
    config = ExecutorConfig(**{"chunking": "async", **overrides})

    def observe() -> Observation:
        return Observation({}, robot.get_state().vector, "")

    executor = ChunkExecutor(robot, source, observe, config, SafetyConfig.piper_default(), HZ)
    try:
        return executor.run(max_actions=int(seconds * HZ)), robot
    finally:
        source.close()


def test_a_jittery_policy_is_smoothed_by_the_plan_and_the_rest_is_counted_not_logged():
    rng = np.random.default_rng(1)
    t0 = time.monotonic()

    def jittery(i: int, state: np.ndarray) -> np.ndarray:  # a slow sweep plus a token policy's bin jitter
        t = time.monotonic() - t0 + (np.arange(8) + 1) / HZ
        chunk = READY_ACTION + np.outer(0.15 * np.sin(2.0 * t), np.ones(14)) * (np.arange(14) % 7 != 6)
        return chunk + rng.normal(0.0, 0.01, chunk.shape) * (np.arange(14) % 7 != 6)

    linear, _ = _run(0.0, jittery)
    smoothed, robot = _run(None, jittery)  # the default: one action period
    # The execution's motion profile shapes the linear path (as the simulator's does); the filter, with the same
    # limits, then has nothing left to reshape.
    assert linear.profiled_ticks > 0  # (how many depends on the servo loop's timing: see the test below)
    assert linear.smoothed_ticks == smoothed.smoothed_ticks == 0
    for report in (linear, smoothed):
        assert not [e for e in report.safety_events if e.reason in ROUTINE_REASONS]
        assert set(report.smoothing_counts) <= {r.value for r in ROUTINE_REASONS}
        assert set(report.event_counts) <= {"starved"} and report.outage is None  # (a loaded machine: late chunks)
    commands = robot.commands()[:, ARMS]
    assert np.abs(np.diff(commands, 2, axis=0)).max() <= 20.0 * 0.01**2 + 1e-9  # the filter's bound still holds


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_why_nearly_every_tick_was_acceleration_limited_and_is_no_longer(seed):
    """The root cause, without the servo loop's timing: a slow sweep with a token policy's jitter (0.01 rad) played
    linearly at 100 Hz puts each velocity step between two actions into one tick, beyond 20 rad/s^2 almost every
    time; averaged over one action period the same path needs the filter on a few ticks, and stays within a few
    mrad of the linear one (less than its jitter)."""
    rng = np.random.default_rng(seed)
    times = np.arange(40) / HZ
    arms = np.arange(14) % 7 != 6
    values = READY_ACTION + (np.outer(0.15 * np.sin(2.0 * times), np.ones(14)) + rng.normal(0, 0.01, (40, 14))) * arms
    config = SafetyConfig.piper_default()
    shares, paths = [], []
    for window in (0.0, 1.0 / HZ):
        plan, state, limited, path = Plan(times, values, smoothing_s=window), None, 0, []
        ticks = np.arange(0.01, times[-1], 0.01)
        for t in ticks:
            plan.advance(t)
            path.append(plan.value(t))
            state = state or FilterState.at_rest(path[-1])
            state, events = filter_command(state, path[-1], 0.01, config)
            limited += any(e.reason in ROUTINE_REASONS for e in events)
        shares.append(limited / len(ticks))
        paths.append(np.array(path))
    assert shares[0] > 0.8 and shares[1] < 0.25 and shares[0] > 4 * shares[1], shares
    assert np.abs(paths[1] - paths[0]).max() < 0.02  # corners cut by dv * window / 8, jitter partly averaged out


def test_an_intervention_on_consecutive_ticks_is_one_event():
    def beyond(i: int, state: np.ndarray) -> np.ndarray:
        chunk = np.tile(READY_ACTION, (8, 1))
        chunk[:, 4] = 3.0  # left joint5 far past its 1.22 rad limit, all along
        return chunk

    report, robot = _run(None, beyond, seconds=1.2)
    limits = [e for e in report.safety_events if e.reason is Reason.JOINT_LIMIT]
    assert report.event_counts.get("joint_limit") == len(limits) == 1  # braking and clamping: one episode
    (episode,) = limits
    assert episode.indices == (4,) and episode.ticks > 5 and episode.end > episode.time
    assert f"({episode.ticks} ticks, " in str(episode)
    assert robot.commands()[:, 4].max() <= SafetyConfig.piper_default().limits.high[4] + 1e-9


def test_the_watchdog_is_an_outage_and_can_end_the_run_with_the_arms_holding():
    def steady(i: int, state: np.ndarray) -> np.ndarray:
        return np.tile(READY_ACTION, (8, 1))

    fast = {"watchdog_s": 0.3, "request_timeout_s": 5.0}
    report, robot = _run(None, steady, seconds=5.0, hang_from=2, config_overrides={**fast, "stop_on_watchdog": True})
    assert report.reason == "watchdog" and report.duration_s < 3.0
    assert report.outage.startswith("the policy stopped answering: no chunk")
    assert not robot.estopped and report.fault is None
    assert [e.reason for e in report.safety_events][-1:] == [Reason.WATCHDOG]  # maybe after "starved"
    assert {e.reason for e in report.safety_events} <= {Reason.STARVED, Reason.WATCHDOG}
    report, _ = _run(None, steady, seconds=1.5, hang_from=2, config_overrides=fast)
    assert report.reason == "max_actions" and report.outage is not None  # held, but still an outage


def test_before_the_first_chunk_the_watchdog_waits_longer_the_arms_being_still():
    def steady(i: int, state: np.ndarray) -> np.ndarray:
        return np.tile(READY_ACTION, (8, 1))

    slow_start = {"watchdog_s": 0.2, "first_chunk_watchdog_s": 1.0, "stop_on_watchdog": True}
    report, _ = _run(None, steady, seconds=1.0, hang_from=0, config_overrides=slow_start)
    assert report.reason == "watchdog" and 0.95 < report.duration_s < 3.0 and report.chunks_received == 0
    waited = re.match(r"the policy stopped answering: no chunk (\d+) ms after the request", report.outage)
    assert waited and int(waited[1]) >= 1000  # not watchdog_s (0.2 s): nothing had moved yet
