"""Chunks of several envs stepped at once (sim/chunk_step.py) give exactly the per-tick execution: the vectorised
plan, the row-wise rate profile, and whole envs (physics, success, early exit, servo state) bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from chunk_reference import assert_same_state, env_state, step_chunk_per_tick
from hypothesis import given, settings
from hypothesis import strategies as st
from tests_support import click_bell_expert_actions

from pushcut.common.conventions import DEFAULT_ACTION_HZ
from pushcut.sim import make
from pushcut.sim import piper_spec as spec
from pushcut.sim.chunk_step import step_chunks
from pushcut.sim.execution import PIPER_MOTION, ChunkServo
from pushcut.sim.execution.rate import RateProfile, rate_limit, rate_limit_rows, run_profiles

DT = 1.0 / PIPER_MOTION.servo_hz
SMALL = {"image_width": 64, "image_height": 48}


def walk(rng: np.random.Generator, start: np.ndarray, length: int, step: float) -> np.ndarray:
    """A jittery chunk (a token policy's jumps) around ``start``, partly outside the envelope."""
    return start + np.cumsum(rng.uniform(-step, step, (length, spec.ACTION_DIM)), axis=0)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), lag=st.floats(0.0, 0.2), crossfade=st.integers(0, 4))
def test_plan_values_of_many_ticks_equal_the_per_tick_values(seed, lag, crossfade):
    """Sync and async (stale actions, crossfade, anchor offset) plans; ticks before, inside and after the plan."""
    rng = np.random.default_rng(seed)
    servo = ChunkServo(spec.READY_ACTION, DEFAULT_ACTION_HZ)
    now = 0.0
    for _ in range(3):
        servo.play(walk(rng, servo.last_command, 8, 0.1), now, observed_at=now - lag, crossfade_steps=crossfade)
        times = now + DT * np.arange(-3, 60)
        batched = servo.targets(times)
        index = servo.plan.index
        for t, value in zip(times, batched, strict=True):
            np.testing.assert_array_equal(value, servo.plan.smoothed(t))
        assert servo.plan.index == index  # the plan is left where it was
        for t in times[3:30]:
            servo.command(t)
        now = times[29] + DT


def random_rows(rng: np.random.Generator, n: int, lim) -> tuple[np.ndarray, ...]:
    """Profile states and targets covering the fast path, on-target rows, limits, the envelope and infeasible
    starts (speeds the envelope cannot absorb)."""
    span = lim.high - lim.low
    last = lim.low + rng.uniform(-0.02, 1.02, (n, spec.ACTION_DIM)) * span
    v0 = rng.uniform(-1.2, 1.2, (n, spec.ACTION_DIM)) * np.minimum(lim.max_speed, 4.0)
    target = last + rng.choice([0.0, 1e-4, 0.003, 0.05, 0.5], (n, 1)) * rng.normal(size=(n, spec.ACTION_DIM))
    target = np.minimum(np.maximum(target, lim.low), lim.high)
    last_target = np.where(rng.random((n, 1)) < 0.5, last, last + rng.normal(0, 0.01, (n, spec.ACTION_DIM)))
    gliding = rng.random(n) < 0.3  # tracking already: last == last_target, v0 = the step that led here
    v0[gliding] = ((target - last) / DT)[gliding] * rng.choice([1.0, 0.999], (gliding.sum(), 1))
    return last, v0, last_target, target


@pytest.mark.parametrize("limits", [PIPER_MOTION.rate, PIPER_MOTION.rate_without_envelope])
def test_rate_limit_rows_is_rate_limit_on_every_row(limits):
    rng = np.random.default_rng(0)
    last, v0, last_target, target = random_rows(rng, 4000, limits)
    commands, velocities, returned_target = rate_limit_rows(last, v0, last_target, target, DT, limits)
    kinds = set()
    for i in range(len(last)):
        row_target = target[i]
        command, velocity = rate_limit(last[i], v0[i], last_target[i], row_target, DT, limits)
        np.testing.assert_array_equal(commands[i], command)
        np.testing.assert_array_equal(velocities[i], velocity)
        assert returned_target[i] == (command is row_target)
        kinds.add("target" if command is row_target else "limited")
    assert kinds == {"target", "limited"}


def test_profiles_run_together_equal_each_profile_stepped_alone():
    rng = np.random.default_rng(1)
    starts = [spec.READY_ACTION + rng.normal(0, 0.1, spec.ACTION_DIM) for _ in range(5)]
    targets = np.stack([walk(rng, s, 40, step) for s, step in zip(starts, [0.001, 0.05, 0.0005, 0.02, 0.2])])
    alone = [RateProfile(s, PIPER_MOTION.rate, DT) for s in starts]
    together = [RateProfile(s, PIPER_MOTION.rate, DT) for s in starts]
    run = run_profiles(together, targets)
    for row, (profile, played) in enumerate(zip(alone, [40, 1, 17, 40, 33], strict=True)):
        for k in range(played):
            np.testing.assert_array_equal(run.commands[row, k], profile.step(targets[row, k]))
        run.commit(together[row], row, played)
        for key in ("command", "velocity", "target", "ticks", "limited_ticks"):
            np.testing.assert_array_equal(getattr(together[row], key), getattr(profile, key), err_msg=key)
    assert 0 < run.limited.sum() < run.limited.size  # both tracked and limited ticks
    with pytest.raises(ValueError, match="same limits"):
        run_profiles([RateProfile(starts[0], PIPER_MOTION.rate, DT), RateProfile(starts[0], PIPER_MOTION.rate, 0.02)],
                     targets[:2])  # fmt: skip


def expert_actions(seed: int) -> np.ndarray:
    return click_bell_expert_actions(seed, still=12)


def test_envs_stepped_together_equal_envs_stepped_per_tick():
    """Three envs at once (one pressing the bell mid-chunk, two jittering into the step limit mid-chunk), and a bad
    chunk for one env on the way: every state, outcome and image as with the per-tick execution (images_if_ended
    False: an episode that ended renders no image)."""
    seeds, limit = [2, 5, 9], 30
    batched = [make("click_bell", step_limit=limit, **SMALL) for _ in seeds]
    per_tick = [make("click_bell", step_limit=limit, **SMALL) for _ in seeds]
    for a, b, seed in zip(batched, per_tick, seeds, strict=True):
        a.reset(seed=seed)
        b.reset(seed=seed)
    rng = np.random.default_rng(3)
    expert = expert_actions(2)
    outcomes, unrendered = set(), 0
    for call in range(6):
        chunks = [expert[8 * call : 8 * call + 8]] + [walk(rng, e.commanded_action, 8, 0.06) for e in per_tick[1:]]
        chunks = [c if len(c) else chunks[1] for c in chunks]
        bad = call == 1
        if bad:
            chunks[2] = np.zeros((8, 7))  # rejected: that env must not move, the others step on
        results = step_chunks(batched, chunks, images_if_ended=False)
        for i, (a, b) in enumerate(zip(batched, per_tick, strict=True)):
            if bad and i == 2:
                assert isinstance(results[i], ValueError)
                before = env_state(b)
                assert_same_state(env_state(a), before)
                continue
            expected = step_chunk_per_tick(b, chunks[i])
            assert_same_state(env_state(a), env_state(b))
            got = results[i]
            assert (got.steps_executed, got.terminated, got.truncated) == (
                expected.steps_executed, expected.terminated, expected.truncated)  # fmt: skip
            if not (got.terminated or got.truncated):
                np.testing.assert_array_equal(got.observation["observation"]["head_camera"]["rgb"],
                                              expected.observation["observation"]["head_camera"]["rgb"])  # fmt: skip
            else:  # ended (images_if_ended=False): nothing rendered, the rest of the observation as usual
                assert got.observation["observation"] == {}
                unrendered += 1
                np.testing.assert_array_equal(got.observation["joint_action"]["vector"],
                                              expected.observation["joint_action"]["vector"])  # fmt: skip
            outcomes.add((got.terminated, got.truncated, 0 < got.steps_executed < 8))
    assert (True, False, True) in outcomes and (False, True, True) in outcomes  # early exits: success and limit
    assert unrendered >= 3  # each episode's end (and the calls after it)
    assert batched[0].step_chunk(expert[:3]).steps_executed == 0  # a finished episode executes nothing more
    for env in batched + per_tick:
        env.close()
