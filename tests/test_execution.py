"""The one execution (sim/execution): its limits hold for any chunks, the safety filter passes what it produces, and
the twin driven through the executor follows the same joints as the simulator for the same chunks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests_support import click_bell_expert_actions

from pushcut.common.conventions import DEFAULT_ACTION_HZ
from pushcut.robot.control.executor import ChunkExecutor, ExecutorConfig, Observation
from pushcut.robot.control.safety import ROUTINE_REASONS, FilterState, SafetyConfig, filter_command
from pushcut.sim import piper_spec as spec
from pushcut.sim.execution import PIPER_MOTION, ChunkServo, MotionLimits
from pushcut.sim.execution.limits import ARM_INDICES
from pushcut.testing.robot_doubles import ScriptedSource

DT = 1.0 / PIPER_MOTION.servo_hz
TICKS_PER_ACTION = round(PIPER_MOTION.servo_hz / DEFAULT_ACTION_HZ)


def random_chunks(seed: int, count: int, length: int, step: float, inset: float = 0.0) -> list[np.ndarray]:
    """A random walk of joint targets around READY (steps up to ``step`` rad per action, a token policy's jumps
    included) inside the envelope less ``inset`` rad, grippers flipping at random."""
    rng = np.random.default_rng(seed)
    q, chunks = spec.READY_ACTION.copy(), []
    low, high = PIPER_MOTION.rate.low + inset, PIPER_MOTION.rate.high - inset
    for _ in range(count):
        rows = []
        for _ in range(length):
            q = q + rng.uniform(-step, step, spec.ACTION_DIM)
            q[[spec.LEFT_GRIPPER_INDEX, spec.RIGHT_GRIPPER_INDEX]] = rng.integers(0, 2, 2)
            q = np.clip(q, low, high)
            rows.append(q.copy())
        chunks.append(np.array(rows))
    return chunks


def play(servo: ChunkServo, chunks: list[np.ndarray]) -> np.ndarray:
    """Commands (ticks, 14) of the chunks played back to back, synchronously (the simulator's way)."""
    t, commands = 0.0, []
    for chunk in chunks:
        servo.play(chunk, t)
        for _ in range(len(chunk) * TICKS_PER_ACTION):
            commands.append(servo.command(t))
            t += DT
    return np.array(commands)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), step=st.floats(0.001, 0.4), length=st.integers(1, 25))
def test_commands_keep_the_envelope_speed_and_acceleration_for_any_chunks(seed, step, length):
    servo = ChunkServo(spec.READY_ACTION, DEFAULT_ACTION_HZ)
    commands = play(servo, random_chunks(seed, 4, length, step))
    lim = PIPER_MOTION.rate
    assert (commands >= lim.low - 1e-12).all() and (commands <= lim.high + 1e-12).all()
    path = np.vstack([spec.READY_ACTION, commands])[:, ARM_INDICES]
    velocity = np.diff(path, axis=0) / DT
    assert np.abs(velocity).max() <= PIPER_MOTION.max_joint_speed * (1 + 1e-9)
    assert np.abs(np.diff(velocity, axis=0)).max() <= PIPER_MOTION.max_joint_accel * DT * (1 + 1e-9) + 1e-9


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), step=st.floats(0.001, 0.4), length=st.integers(1, 25))
def test_the_safety_filter_passes_what_the_execution_plays(seed, step, length):
    """The executor's profile leaves the envelope to the filter; away from it (farther than the 0.225 rad a joint at
    3 rad/s needs to stop at 20 rad/s^2), the filter (same limits) reshapes nothing: routine rate limiting happens
    once, in the execution, as in the simulator. (Closer, the filter brakes, as the simulator's profile does, and
    says so: a joint_limit intervention.)"""
    servo = ChunkServo(spec.READY_ACTION, DEFAULT_ACTION_HZ, envelope=False)
    safety = SafetyConfig(check_workspace=False, min_arm_distance_m=None)  # geometry is not the execution's job
    state = FilterState.at_rest(spec.READY_ACTION)
    stop = PIPER_MOTION.max_joint_speed**2 / (2 * PIPER_MOTION.max_joint_accel)
    for command in play(servo, random_chunks(seed, 4, length, step, inset=stop + 0.01)):
        state, events = filter_command(state, command, DT, safety)
        assert not [e for e in events if e.reason in ROUTINE_REASONS], events
        assert np.abs(state.command - command).max() <= 1e-9


def test_limits_refuse_what_the_piper_cannot_do():
    with pytest.raises(ValueError, match="max_joint_speed"):
        MotionLimits(max_joint_speed=2 * spec.MAX_JOINT_SPEED_RAD_S)
    with pytest.raises(ValueError, match="max_joint_accel"):
        MotionLimits(max_joint_accel=float("inf"))
    with pytest.raises(ValueError, match="chunk"):
        ChunkServo(spec.READY_ACTION, DEFAULT_ACTION_HZ).play(np.zeros((3, 7)), 0.0)
    assert SafetyConfig.piper_default().max_joint_accel == PIPER_MOTION.max_joint_accel  # one definition


def expert_chunks(seed: int, length: int = 8) -> list[np.ndarray]:
    actions = click_bell_expert_actions(seed, still=8)  # a few still actions after the press
    return [actions[i : i + length] for i in range(0, len(actions), length)]


def test_the_twin_through_the_executor_follows_the_simulator_for_the_same_chunks():
    """Expert actions of click_bell as chunks of 8, open loop: once through DualPiperEnv.step_chunk, once through
    the executor (sync), its safety filter and the real-time MuJoCo twin. Same joints at every chunk boundary (within
    what real-time jitter allows), the bell pressed in both."""
    from pushcut.robot.drivers.sim_robot import SimRobot, SimRobotConfig
    from pushcut.sim import make

    seed, chunks = 3, expert_chunks(3)
    env = make("click_bell", cameras=())
    env.reset(seed=seed)
    sim_states = [env.measured_joints()]
    for chunk in chunks:
        env.step_chunk(chunk)
        sim_states.append(env.measured_joints())
    assert env.success

    robot = SimRobot(SimRobotConfig(task="click_bell"))
    robot.reset(seed)
    robot.connect()
    source = ScriptedSource(lambda i, state: chunks[min(i, len(chunks) - 1)], latency=0.0)

    def observe() -> Observation:
        return Observation({}, robot.get_state().vector, "")

    try:
        executor = ChunkExecutor(robot, source, observe, ExecutorConfig(), SafetyConfig.piper_default(),
                                 DEFAULT_ACTION_HZ)  # fmt: skip
        report = executor.run(max_actions=sum(len(c) for c in chunks))
    finally:
        source.close()
        robot.close()
    twin_states = [state for _, state in source.requests]  # observed at each chunk boundary
    if robot.slipped_s > 0.02:  # the machine could not keep the twin in real time: nothing to judge
        pytest.skip(f"the twin's clock slipped {robot.slipped_s:.2f} s behind the wall clock (a loaded machine)")
    assert report.reason == "max_actions" and report.smoothed_ticks == 0 and not report.safety_events
    assert robot.success()
    n = min(len(twin_states), len(sim_states))
    assert n >= len(chunks)
    error = np.abs(np.array(twin_states[:n]) - np.array(sim_states[:n]))[:, ARM_INDICES].max()
    assert error < 0.03, f"the twin is {error:.3f} rad off the simulator at a chunk boundary"
