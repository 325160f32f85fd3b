"""The safety filter: invariants for any stream of proposals (hypothesis), no false interventions, reasons; the
kinematics and capsule distances it relies on, against piper_spec and brute force."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import safety_reference as reference  # tests/: the geometric layer as it was before issue 25
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pushcut.common.conventions import DEFAULT_ACTION_HZ
from pushcut.robot.control import kinematics as kin
from pushcut.robot.control.safety import (
    ChunkRejected,
    FilterState,
    Reason,
    SafetyConfig,
    filter_command,
    validate_chunk,
)
from pushcut.robot.control.safety_geometry import ROUNDING_M, GeometryCache, guard, margins
from pushcut.sim import piper_spec as spec

DEFAULT = SafetyConfig.piper_default()
FIRST_RUN = SafetyConfig.first_run()
GRIPPING = replace(DEFAULT, gripper_max_speed=1.5)
HOME = spec.READY_ACTION
ARM = np.r_[0:6, 7:13]
EPS = 1e-9


def geometry_margins(config: SafetyConfig, command: np.ndarray) -> tuple[np.ndarray, float]:
    workspace, clearance, _ = margins(config.limits.geometry, command[None])
    return workspace[0], float(clearance[0])


def play(config: SafetyConfig, start: np.ndarray, proposals, dt: float):
    """Filter a stream; returns the commands (with the start first) and the events per tick."""
    state = FilterState.at_rest(start)
    commands, events = [state.command], []
    for proposal in proposals:
        state, tick_events = filter_command(state, proposal, dt, config)
        commands.append(state.command)
        events.append(tick_events)
    return np.array(commands), events


def assert_invariants(config: SafetyConfig, commands: np.ndarray, events, dt: float) -> None:
    lim = config.limits
    assert np.isfinite(commands).all()
    assert (commands >= lim.low - EPS).all() and (commands <= lim.high + EPS).all(), "left the envelope"
    steps = np.diff(commands, axis=0)
    assert (np.abs(steps) <= lim.max_speed * dt * (1 + 1e-9) + 1e-12).all(), "faster than the speed limit"
    accel = np.diff(np.vstack([np.zeros(14), steps]), axis=0)  # starts at rest
    for k, tick_events in enumerate(events):
        hard_stop = any(e.reason in (Reason.WORKSPACE, Reason.ARM_DISTANCE) and "hold" in e.detail
                        for e in tick_events)  # fmt: skip
        if not hard_stop:
            over = np.abs(accel[k]) > lim.max_accel * dt * dt * (1 + 1e-9) + 1e-12
            assert not over.any(), f"tick {k}: acceleration limit exceeded on {np.flatnonzero(over)}"
        assert all(isinstance(e.reason, Reason) and e.detail for e in tick_events)
    for command in commands:
        workspace, clearance = geometry_margins(config, command)
        assert workspace.min() >= -1e-9, f"TCP outside the workspace box by {-workspace.min():.4f} m"
        assert clearance >= -1e-9, f"arms closer than the minimum by {-clearance:.4f} m"
        if config.limits.geometry is not None:  # and by the reference check of before issue 25
            workspace, clearance, _ = reference.margins(config.limits.geometry, command[None])
            assert workspace.min() >= -1e-9 and clearance[0] >= -1e-9, "outside by the reference check"


# ------------------------------------------------------------------ streams of arbitrary proposals
KINDS = ("nan", "inf", "huge", "jump", "wild_config", "near", "repeat", "gripper")


def make_proposals(kinds: list[str], seed: int, config: SafetyConfig) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    lim = config.limits
    last = HOME.copy()
    out = []
    for kind in kinds:
        p = last.copy()
        if kind == "nan":
            p[rng.random(14) < 0.3] = np.nan
            p[rng.integers(14)] = np.nan
        elif kind == "inf":
            p[rng.integers(14)] = rng.choice([np.inf, -np.inf])
        elif kind == "huge":
            p[rng.random(14) < 0.5] = rng.choice([1e6, -1e6, 1e308, -1e308, 7.0, -7.0])
        elif kind == "jump":
            p = rng.uniform(lim.low - 0.5, lim.high + 0.5)
        elif kind == "wild_config":  # anywhere in the joint space: often below the table or arms crossing
            p = rng.uniform(np.r_[spec.action_limits()[0]], np.r_[spec.action_limits()[1]])
        elif kind == "near":
            p = last + rng.normal(0.0, 0.02, 14)
        elif kind == "gripper":
            p[[6, 13]] = rng.uniform(-0.5, 1.5, 2)
        out.append(p)
        if np.isfinite(p).all() and np.abs(p).max() < 100:
            last = p
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=60),
    seed=st.integers(0, 2**32 - 1),
    config=st.sampled_from([DEFAULT, FIRST_RUN, GRIPPING]),
    dt=st.sampled_from([0.005, 0.01, 1 / 30]),
    hold_each=st.integers(1, 4),
)
def test_any_stream_stays_within_every_limit(kinds, seed, config, dt, hold_each):
    proposals = [p for p in make_proposals(kinds, seed, config) for _ in range(hold_each)]
    commands, events = play(config, HOME, proposals, dt)
    assert_invariants(config, commands, events, dt)
    assert not any(np.isnan(c).any() for c in commands)


@settings(max_examples=30, deadline=None)
@given(offset=st.lists(st.floats(-0.4, 0.4), min_size=12, max_size=12), seed=st.integers(0, 2**32 - 1))
def test_any_safe_start_stays_safe_under_wild_targets(offset, seed):
    start = HOME.copy()
    start[ARM] += offset
    start = np.clip(start, DEFAULT.limits.low, DEFAULT.limits.high)
    workspace, clearance = geometry_margins(DEFAULT, start)
    assume(workspace.min() > 0.0 and clearance > 0.0)
    proposals = make_proposals(["wild_config"] * 8 + ["jump"] * 8, seed, DEFAULT)
    commands, events = play(DEFAULT, start, [p for p in proposals for _ in range(25)], 0.005)
    assert_invariants(DEFAULT, commands, events, 0.005)


def test_a_start_outside_the_margin_is_led_back_and_never_gets_worse():
    rest = np.concatenate([spec.REST_POSE, [0.0], spec.REST_POSE, [0.0]])  # j2, j3 on the spec limits
    lim = DEFAULT.limits
    assert (rest < lim.low).any() or (rest > lim.high).any()
    proposals = [rest] * 5 + [HOME] * 200 + [rest] * 50  # stay, go to READY, try to go back to REST
    commands, events = play(DEFAULT, rest, proposals, 0.01)
    outside = np.maximum(lim.low - commands, 0.0) + np.maximum(commands - lim.high, 0.0)
    assert (np.diff(outside, axis=0) <= 1e-12).all(), "moved further outside the envelope"
    assert (commands[-1] >= lim.low - EPS).all() and (commands[-1] <= lim.high + EPS).all()
    steps = np.abs(np.diff(commands, axis=0))
    assert (steps <= lim.max_speed * 0.01 + 1e-12).all()


def test_an_inconsistent_state_still_keeps_the_envelope_and_the_speed_limit():
    lim = DEFAULT.limits
    start = HOME.copy()
    start[0] = lim.high[0] - 0.01
    velocity = np.zeros(14)
    velocity[0] = 50.0  # far beyond anything the filter would produce, heading for the limit
    state = FilterState(start, velocity, start.copy())
    commands = [start]
    for _ in range(50):
        state, _ = filter_command(state, start + 1.0, 0.01, DEFAULT)
        commands.append(state.command)
    commands = np.array(commands)
    assert (commands <= lim.high + EPS).all()
    assert (np.abs(np.diff(commands, axis=0)) <= lim.max_speed * 0.01 + 1e-12).all()


def test_a_start_outside_the_workspace_may_only_improve():
    below = find_config(lambda ws, clr: -0.08 < ws.min() < -0.02 and clr > 0.05, seed=4)
    start_margin = geometry_margins(DEFAULT, below)[0].min()
    rng = np.random.default_rng(0)
    proposals = [below + np.r_[rng.normal(0, 0.3, 6), 0, rng.normal(0, 0.3, 6), 0] for _ in range(40)]
    commands, events = play(DEFAULT, below, [p for p in proposals for _ in range(10)] + [HOME] * 300, 0.01)
    worst = min(geometry_margins(DEFAULT, c)[0].min() for c in commands)
    assert worst >= start_margin - 1e-9, "moved further out of the box"
    assert geometry_margins(DEFAULT, commands[-1])[0].min() > 0.0, "not led back inside"


def test_geometry_checks_can_be_switched_off():
    config = replace(DEFAULT, check_workspace=False, min_arm_distance_m=None)
    assert config.limits.geometry is None
    below = find_config(lambda ws, clr: ws.min() < -0.05 and clr > 0.05, seed=1)
    commands, events = play(config, HOME, [below] * 400, 0.01)
    np.testing.assert_allclose(commands[-1], below, atol=1e-9)
    assert Reason.WORKSPACE not in reasons(events)


# ------------------------------------------------------------------ no false interventions
@settings(max_examples=40, deadline=None)
@given(
    amplitude=st.lists(st.floats(0.0, 0.25), min_size=14, max_size=14),
    frequency=st.floats(0.05, 0.5),
    dt=st.sampled_from([0.005, 0.01]),
)
def test_a_safe_slow_trajectory_passes_bit_for_bit(amplitude, frequency, dt):
    t = np.arange(int(2.0 / dt)) * dt
    amplitude = np.array(amplitude)
    amplitude[[6, 13]] = np.minimum(amplitude[[6, 13]], 0.2)
    # Smooth and slow: starts at rest (1 - cos), speed <= 0.25 * 2 pi * 0.5 < 0.8 rad/s, acceleration < 2.5 rad/s^2.
    sign = np.where(np.arange(14) % 7 == 6, -1.0, 1.0)  # grippers close from open
    proposals = HOME + sign * amplitude * (1 - np.cos(2 * np.pi * frequency * t))[:, None]
    lim = DEFAULT.limits
    assume(((proposals >= lim.low + 0.05) & (proposals <= lim.high - 0.05))[:, ARM].all())
    for proposal in proposals[:: max(1, len(proposals) // 20)]:
        workspace, clearance = geometry_margins(DEFAULT, proposal)
        assume(workspace.min() > 0.05 and clearance > 0.05)
    commands, events = play(DEFAULT, HOME, proposals, dt)
    assert not [e for tick in events for e in tick], "a false intervention"
    np.testing.assert_array_equal(commands[1:], proposals)


def test_a_linearly_interpolated_slow_chunk_passes_unchanged():
    # A slow policy at 16.7 Hz (0.4 rad/s): each action boundary changes the velocity by ~0.04 rad/s, 4 rad/s^2 at
    # 100 Hz, under the 20 rad/s^2 limit.
    times = np.arange(40) / DEFAULT_ACTION_HZ
    actions = HOME + 0.2 * (1 - np.cos(2 * np.pi * 0.3 * times))[:, None] * np.where(np.arange(14) % 7 == 6, 0.0, 1.0)
    servo = np.concatenate([[a + (b - a) * k / 6 for k in range(1, 7)] for a, b in zip(actions[:-1], actions[1:])])
    start = actions[0]
    commands, events = play(DEFAULT, start, servo, 0.01)
    assert not [e for tick in events for e in tick]
    np.testing.assert_array_equal(commands[1:], servo)


# ------------------------------------------------------------------ each layer names its reason
def reasons(events) -> set[Reason]:
    return {e.reason for tick in events for e in tick}


def test_non_finite_proposal_is_held_and_reported():
    state = FilterState.at_rest(HOME)
    bad = HOME.copy()
    bad[3] = np.nan
    bad[9] = np.inf
    state, events = filter_command(state, bad, 0.01, DEFAULT)
    np.testing.assert_array_equal(state.command, HOME)
    event = next(e for e in events if e.reason is Reason.NON_FINITE)
    assert event.indices == (3, 9) and event.names == ("left_joint4", "right_joint3")


def test_envelope_speed_acceleration_and_gripper_reasons():
    far = HOME.copy()
    far[0] = 10.0  # beyond joint 1's limit
    far[6] = 1.7  # gripper beyond open
    _, events = play(GRIPPING, HOME, [far] * 100, 0.01)
    found = reasons(events)
    assert {Reason.JOINT_LIMIT, Reason.GRIPPER_RANGE, Reason.ACCELERATION, Reason.VELOCITY} <= found
    closing = HOME.copy()
    closing[13] = 0.0
    _, events = play(GRIPPING, HOME, [closing] * 10, 0.01)
    assert Reason.GRIPPER_RATE in reasons(events)
    event = next(e for tick in events for e in tick if e.reason is Reason.GRIPPER_RATE)
    assert event.indices == (13,) and event.proposed == (0.0,) and 0.0 < event.result[0] < 1.0


def test_a_jump_is_reached_smoothly_without_overshoot():
    goal = HOME.copy()
    goal[ARM] += 0.4
    commands, _ = play(DEFAULT, HOME, [goal] * 300, 0.005)
    np.testing.assert_allclose(commands[-1], goal, atol=1e-9)
    progress = (commands[:, ARM] - HOME[ARM]) / 0.4
    assert progress.max() <= 1.0 + 1e-9, "overshoot"
    assert (np.diff(progress, axis=0) >= -1e-12).all(), "moved backwards"


def find_config(predicate, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lim = DEFAULT.limits
    for _ in range(20000):
        candidate = HOME.copy()
        candidate[ARM] = rng.uniform(lim.low[ARM], lim.high[ARM])
        if predicate(*geometry_margins(DEFAULT, candidate)):
            return candidate
    raise AssertionError("no configuration found")


def test_workspace_violations_brake_or_hold_and_never_pass():
    below = find_config(lambda ws, clr: ws.min() < -0.05 and clr > 0.05, seed=1)
    commands, events = play(DEFAULT, HOME, [below] * 400, 0.005)
    assert Reason.WORKSPACE in reasons(events)
    assert_invariants(DEFAULT, commands, events, 0.005)
    event = next(e for tick in events for e in tick if e.reason is Reason.WORKSPACE)
    assert "TCP" in event.detail and set(event.indices) <= set(ARM)


def test_arm_distance_violations_brake_or_hold_and_never_pass():
    crossing = find_config(lambda ws, clr: ws.min() > 0.0 and clr < -0.05, seed=2)
    commands, events = play(DEFAULT, HOME, [crossing] * 400, 0.005)
    assert Reason.ARM_DISTANCE in reasons(events)
    assert_invariants(DEFAULT, commands, events, 0.005)
    event = next(e for tick in events for e in tick if e.reason is Reason.ARM_DISTANCE)
    assert "apart" in event.detail and len(event.indices) == 12


# ------------------------------------------------------------------ chunks and configs
def test_validate_chunk_rejects_bad_shapes_and_holds_non_finite_rows():
    for bad in (np.zeros((3, 13)), np.zeros(14), np.zeros((0, 14)), [["a"] * 14], np.zeros((2, 14, 1))):
        with pytest.raises(ChunkRejected):
            validate_chunk(bad, HOME)
    chunk = np.tile(HOME, (4, 1)) + np.arange(4)[:, None] * 0.01
    chunk[0, 2] = np.nan
    chunk[2, 5] = -np.inf
    clean, events = validate_chunk(chunk.astype(np.float32), HOME)
    assert clean.dtype == np.float64 and np.isfinite(clean).all()
    np.testing.assert_array_equal(clean[0], HOME)
    np.testing.assert_array_equal(clean[2], clean[1])
    assert events[0].reason is Reason.NON_FINITE and events[0].indices == (2, 5)
    clean, events = validate_chunk(np.tile(HOME, (3, 1)), HOME)
    assert events == []


def test_configs_tighten_piper_spec_and_refuse_nonsense():
    lim = DEFAULT.limits
    low, high = spec.action_limits()
    np.testing.assert_allclose(lim.low[ARM], low[ARM] + math.radians(3))
    np.testing.assert_allclose(lim.high[ARM], high[ARM] - math.radians(3))
    assert (lim.max_speed[ARM] == spec.MAX_JOINT_SPEED_RAD_S).all()
    assert FIRST_RUN.max_joint_speed < DEFAULT.max_joint_speed
    assert FIRST_RUN.joint_margin_rad > DEFAULT.joint_margin_rad
    assert FIRST_RUN.min_arm_distance_m > DEFAULT.min_arm_distance_m
    for bad in (
        {"max_joint_speed": spec.MAX_JOINT_SPEED_RAD_S + 0.1},
        {"max_joint_speed": 0.0},
        {"max_joint_accel": math.inf},
        {"joint_margin_rad": -0.01},
        {"joint_margin_rad": 1.0},
        {"workspace_low": (0.0, 0.0, 2.0)},
        {"link_radii_m": (0.05,)},
        {"gripper_max_speed": 0.0},
    ):
        with pytest.raises(ValueError):
            SafetyConfig(**bad)
    for pose in (spec.READY_POSE, spec.REST_POSE):
        workspace, clearance = geometry_margins(DEFAULT, np.concatenate([pose, [1.0], pose, [1.0]]))
        assert workspace.min() > 0.0 and clearance > 0.0


def test_filter_refuses_malformed_calls():
    state = FilterState.at_rest(HOME)
    with pytest.raises(ValueError):
        filter_command(state, HOME[:13], 0.01, DEFAULT)
    with pytest.raises(ValueError):
        filter_command(state, HOME, 0.0, DEFAULT)
    with pytest.raises(ValueError):
        FilterState.at_rest(np.full(14, np.nan))


# ------------------------------------------------------------------ kinematics and capsule distances
def test_chain_points_match_piper_spec_forward_kinematics():
    rng = np.random.default_rng(0)
    joints = rng.uniform(spec.JOINT_LIMITS_RAD[:, 0], spec.JOINT_LIMITS_RAD[:, 1], (6, 6))
    bases = np.tile(kin.mount_frames(), (3, 1, 1))
    points = kin.chain_points(joints, bases)
    for k in range(6):
        world = bases[k]
        frames = spec.forward_kinematics(joints[k])
        expected = [world[:3, 3]] + [(world @ frames[i])[:3, 3] for i in (0, 2, 3, 5)]
        np.testing.assert_allclose(points[k, :5], expected, atol=1e-12)
        np.testing.assert_allclose(points[k, kin.TCP], (world @ spec.tcp_pose(joints[k]))[:3, 3], atol=1e-12)


def brute_force(p0, p1, q0, q1, n=401):
    s = np.linspace(0.0, 1.0, n)
    a = p0 + s[:, None] * (p1 - p0)
    b = q0 + s[:, None] * (q1 - q0)
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)).min()


coordinate = st.floats(-1.0, 1.0, allow_nan=False)
point = st.tuples(coordinate, coordinate, coordinate).map(np.array)


@settings(max_examples=150, deadline=None)
@given(p0=point, p1=point, q0=point, q1=point, special=st.sampled_from(["none", "parallel", "point", "touch"]))
def test_segment_distance_matches_brute_force(p0, p1, q0, q1, special):
    if special == "parallel":
        q1 = q0 + 0.7 * (p1 - p0)
    elif special == "point":
        p1 = p0.copy()
    elif special == "touch":
        q0 = p0 + 0.3 * (p1 - p0)
    dist, s, t = kin.segment_distances(p0[None, None], p1[None, None], q0[None, None], q1[None, None])
    dist, s, t = float(dist[0, 0, 0]), float(s[0, 0, 0]), float(t[0, 0, 0])
    reference = brute_force(p0, p1, q0, q1)
    grid = (np.linalg.norm(p1 - p0) + np.linalg.norm(q1 - q0)) / 400
    assert dist <= reference + 1e-9
    assert dist >= reference - grid - 1e-9
    assert 0.0 <= s <= 1.0 and 0.0 <= t <= 1.0
    closest = np.linalg.norm((p0 + s * (p1 - p0)) - (q0 + t * (q1 - q0)))
    assert closest == pytest.approx(dist, abs=1e-7)


def test_chain_clearance_and_its_lower_bound_against_brute_force():
    rng = np.random.default_rng(5)
    radii = np.array([0.05, 0.045, 0.04, 0.04, 0.045, 0.025])
    axis = np.array([1.0, 0.0, 0.0])
    for _ in range(40):
        a = np.cumsum(rng.normal(0, 0.15, (7, 3)), axis=0) + [-0.3, 0, 0]
        b = np.cumsum(rng.normal(0, 0.15, (7, 3)), axis=0) + [0.3, 0, 0]
        clearance, pairs = kin.chain_clearance(a[None], b[None], radii)
        expected = min(
            brute_force(a[i], a[i + 1], b[j], b[j + 1], 201) - radii[i] - radii[j] for i in range(6) for j in range(6)
        )
        assert clearance[0] <= expected + 1e-9 and clearance[0] >= expected - 0.01
        i, j = pairs[0]
        pair = brute_force(a[i], a[i + 1], b[j], b[j + 1], 201) - radii[i] - radii[j]
        assert pair == pytest.approx(expected, abs=0.01)
        assert kin.clearance_lower_bound(a[None], b[None], axis, radii.max())[0] <= clearance[0] + 1e-12


# ------------------------------------------------------------------ the fast geometry against its reference (issue 25)
NO_BOX = replace(DEFAULT, check_workspace=False)
NO_CLEARANCE = replace(DEFAULT, min_arm_distance_m=None)
GEOMETRY_CONFIGS = [DEFAULT, FIRST_RUN, NO_BOX, NO_CLEARANCE]


def random_configs(rng: np.random.Generator, count: int, spread: float | str | None, config: SafetyConfig):
    """``count`` 14-D configurations inside the envelope: READY plus normal noise of ``spread`` rad on the arm joints
    (arms in the box, apart), uniform over the envelope (``None``: mostly out of the box, now and then touching), or
    ``"contact"``: of 256 uniform ones, those whose links are closest to a random clearance in [-5, 8] cm."""
    lim = config.limits
    pool = 256 if spread == "contact" else count
    configs = np.tile(HOME, (pool, 1))
    if spread is None or spread == "contact":
        configs[:, ARM] = rng.uniform(lim.low[ARM], lim.high[ARM], (pool, len(ARM)))
    else:
        configs[:, ARM] += rng.normal(0.0, spread, (pool, len(ARM)))
    configs = np.clip(configs, lim.low, lim.high)
    if spread == "contact":
        points = kin.chain_points(configs.reshape(pool, 2, 7)[:, :, :6], np.tile(kin.mount_frames(), (pool, 1, 1)))
        radii = np.asarray(config.link_radii_m)
        clearance = kin.chain_gaps(points.reshape(pool, 2, 7, 3), radii[:, None] + radii).reshape(pool, -1).min(1)
        configs = configs[np.argsort(np.abs(clearance - rng.uniform(-0.05, 0.08)))[:count]]
    return configs


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    spread=st.sampled_from([0.3, 0.8, None, "contact"]),
    count=st.sampled_from([1, 2]),
    config=st.sampled_from(GEOMETRY_CONFIGS),
)
def test_fast_margins_are_never_larger_than_the_reference(seed, spread, count, config):
    limits = config.limits.geometry
    configs = random_configs(np.random.default_rng(seed), count, spread, config)
    workspace, clearance, pairs = margins(limits, configs)
    ref_workspace, ref_clearance, ref_pairs = reference.margins(limits, configs)
    assert (workspace <= ref_workspace).all() and (clearance <= ref_clearance).all(), "less conservative"
    finite = np.isfinite(ref_clearance)
    np.testing.assert_allclose(workspace, ref_workspace, rtol=0, atol=ROUNDING_M * 1.01)  # by the allowance only
    np.testing.assert_allclose(clearance[finite], ref_clearance[finite], rtol=0, atol=ROUNDING_M * 1.01)
    assert (np.isfinite(clearance) == finite).all()
    for k in np.flatnonzero(clearance < -1e-6):  # a collision names a closest pair of links (ties: adjacent links)
        points = reference.chain_points(configs[k, ARM].reshape(2, 6), limits.bases[:2])
        left, right = points[:1], points[1:]
        surface = reference.segment_pairs(left[:, :-1], np.diff(left, axis=1), right[:, :-1], np.diff(right, axis=1))
        surface = surface[0][0] - (limits.radii[:, None] + limits.radii[None, :])
        assert surface[tuple(pairs[k])] == pytest.approx(surface[tuple(ref_pairs[k])], abs=1e-12)


def guard_both(config: SafetyConfig, previous, previous_velocity, candidate, velocity, dt, caches):
    limits, accel_step = config.limits.geometry, config.limits.max_accel * dt
    args = (limits, previous, previous_velocity, candidate, velocity, accel_step, dt)
    return guard(*args, caches[0]), reference.guard(*args, caches[1])


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    spread=st.sampled_from([0.3, 0.8, None, "contact"]),
    speed=st.sampled_from([0.0, 0.3, 3.0]),
    dt=st.sampled_from([0.005, 0.01]),
    config=st.sampled_from(GEOMETRY_CONFIGS),
    warm=st.booleans(),
)
def test_fast_guard_intervenes_whenever_the_reference_does(seed, spread, speed, dt, config, warm):
    """For any last command and joint-space candidate (with each version's own cache from the tick before, or none):
    every arm the reference brakes or holds, the fast check brakes or holds too, for the same reasons; and the fast
    check intervenes only where the reference was within a micrometre of doing so."""
    rng = np.random.default_rng(seed)
    lim = config.limits
    previous = random_configs(rng, 1, spread, config)[0]
    velocities = np.clip(rng.normal(0.0, speed + 1e-9, (3, 14)), -lim.max_speed, lim.max_speed)
    velocities[:, [6, 13]] = 0.0
    caches = (None, None)
    if warm:  # the tick before: where the previous command came from, with each version's cache
        before = np.clip(previous - velocities[0] * dt, lim.low, lim.high)
        (_, fast_cache, _), (_, ref_cache, _) = guard_both(config, before, velocities[0], previous, velocities[0], dt,
                                                           caches)  # fmt: skip
        caches = (fast_cache, ref_cache)
        if fast_cache is not None and ref_cache is not None:  # the fast cache never promises more room
            assert fast_cache.left <= ref_cache.left and fast_cache.right <= ref_cache.right
            assert fast_cache.clearance <= ref_cache.clearance
    candidate = np.clip(previous + velocities[1] * dt, lim.low, lim.high)
    (fast, _, fast_findings), (ref, _, ref_findings) = guard_both(
        config, previous, velocities[2], candidate, velocities[1], dt, caches
    )
    assert {(f.reason, f.arms) for f in ref_findings} <= {(f.reason, f.arms) for f in fast_findings}
    for arm in (spec.LEFT_ARM_SLICE, spec.RIGHT_ARM_SLICE):
        if (ref[arm] != candidate[arm]).any():
            assert (fast[arm] != candidate[arm]).any() or (fast[arm] == ref[arm]).all(), "the reference limited more"
    if fast_findings and not ref_findings:
        stop = candidate + velocities[1] * np.abs(velocities[1]) * lim.geometry.half_inv_accel
        workspace, clearance, _ = reference.margins(lim.geometry, np.array([candidate, stop]))
        assert min(workspace.min(), clearance.min()) < 1e-6, "a false intervention"


def test_fast_guard_caches_only_what_it_checked():
    lim = DEFAULT.limits
    state = FilterState.at_rest(HOME)
    state, events = filter_command(state, HOME, 0.005, DEFAULT)
    assert not events and isinstance(state.geometry, GeometryCache)
    workspace, clearance = geometry_margins(DEFAULT, HOME)
    assert state.geometry.left <= workspace[0] and state.geometry.right <= workspace[1]
    assert state.geometry.clearance <= clearance
    np.testing.assert_array_equal(state.geometry.configs[0], HOME)
    assert lim.geometry is not None


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    special=st.sampled_from(["none", "parallel", "point", "touch", "collinear"]),
    count=st.integers(1, 3),
)
def test_chain_gaps_match_the_reference_segment_distances(seed, special, count):
    rng = np.random.default_rng(seed)
    chains = np.cumsum(rng.normal(0.0, 0.2, (count, 2, 7, 3)), axis=2)
    if special == "parallel":
        chains[:, 1, 3] = chains[:, 1, 2] + 0.5 * (chains[:, 0, 3] - chains[:, 0, 2])
    elif special == "point":
        chains[:, 0, 4] = chains[:, 0, 3]
    elif special == "touch":
        chains[:, 1, 1] = chains[:, 0, 1] + 0.3 * (chains[:, 0, 2] - chains[:, 0, 1])
    elif special == "collinear":
        chains[:, 1, 2] = chains[:, 0, 2] + 1.5 * (chains[:, 0, 3] - chains[:, 0, 2])
        chains[:, 1, 3] = chains[:, 0, 2] + 2.5 * (chains[:, 0, 3] - chains[:, 0, 2])
    offsets = rng.uniform(0.0, 0.1, (6, 6))
    gaps = kin.chain_gaps(chains, offsets)
    a, b = chains[:, 0], chains[:, 1]
    expected = reference.segment_pairs(a[:, :-1], np.diff(a, axis=1), b[:, :-1], np.diff(b, axis=1))[0] - offsets
    np.testing.assert_allclose(gaps, expected, rtol=0, atol=1e-12)


def test_fast_chain_points_match_the_reference():
    rng = np.random.default_rng(3)
    joints = rng.uniform(spec.JOINT_LIMITS_RAD[:, 0], spec.JOINT_LIMITS_RAD[:, 1], (8, 6))
    bases = np.tile(kin.mount_frames(), (4, 1, 1))
    np.testing.assert_allclose(kin.chain_points(joints, bases), reference.chain_points(joints, bases), atol=1e-14)
    basis = kin.chain_basis(bases)
    np.testing.assert_array_equal(kin.chain_points(joints.reshape(4, 2, 6), bases, basis),
                                  kin.chain_points(joints, bases))  # fmt: skip
