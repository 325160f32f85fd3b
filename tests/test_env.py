"""Environment behaviour: bad input, chunk stepping, observations, randomisation, config validation."""

import numpy as np
import pytest

from pushcut.sim import make
from pushcut.sim import piper_spec as spec
from pushcut.sim.demos import run_expert
from pushcut.sim.env import EnvConfig
from pushcut.sim.execution import PIPER_MOTION
from pushcut.sim.registry import make_config


@pytest.fixture(scope="module")
def env():
    env = make("click_bell", image_width=96, image_height=72)
    yield env
    env.close()


def test_unknown_task_lists_the_registered_tasks():
    with pytest.raises(ValueError, match="click_bell") as error:
        make("click_bel")
    assert "Did you mean 'click_bell'" in str(error.value)


def test_unknown_option_and_bad_config_values_are_named():
    with pytest.raises(ValueError, match="unknown env option"):
        make_config(camera="head_camera")
    with pytest.raises(ValueError, match="unknown camera"):
        EnvConfig(cameras=("top_camera",))
    with pytest.raises(ValueError, match="action_hz"):
        EnvConfig(action_hz=0.0)
    with pytest.raises(ValueError, match="randomization preset"):
        make_config(randomization="wild")


@pytest.mark.parametrize(
    "bad, pattern",
    [
        (np.zeros(13), r"shape \(14,\)"),
        (np.zeros((2, 14)), r"shape \(14,\)"),
        (np.full(14, np.nan), "NaN or inf"),
        (np.r_[np.zeros(13), np.inf], "right_gripper"),
    ],
)
def test_bad_actions_raise_value_error_and_env_stays_usable(env, bad, pattern):
    env.reset(seed=0)
    before = env.data.qpos.copy()
    with pytest.raises(ValueError, match=pattern):
        env.step(bad)
    np.testing.assert_array_equal(before, env.data.qpos)  # nothing moved
    obs, *_ = env.step(env.commanded_action)
    assert np.all(np.isfinite(obs["joint_action"]["vector"]))


def test_bad_chunk_is_rejected_before_anything_moves(env):
    env.reset(seed=0)
    chunk = np.repeat(env.commanded_action[None], 5, axis=0)
    chunk[3, 2] = np.nan
    before = env.elapsed_steps
    with pytest.raises(ValueError, match="NaN"):
        env.step_chunk(chunk)
    assert env.elapsed_steps == before
    with pytest.raises(ValueError, match=r"\(k, 14\)"):
        env.step_chunk(np.zeros((0, 14)))


def test_out_of_range_targets_are_clipped_and_speed_limited(env):
    env.reset(seed=0)
    wild = env.commanded_action
    wild[0] = 10.0  # far beyond joint1's limit
    env.step(wild)
    # From rest, one action period at 20 rad/s^2 covers at most a * t^2 / 2, far less than 3 rad/s * t.
    accel = PIPER_MOTION.max_joint_accel
    assert env.commanded_action[0] <= spec.READY_POSE[0] + accel * env.control_dt**2 / 2 + 1e-9
    for _ in range(40):
        env.step(wild)
    # The execution's envelope: the Piper's limit less the margin the safety filter keeps too.
    assert env.commanded_action[0] == pytest.approx(spec.JOINT_LIMITS_RAD[0, 1] - PIPER_MOTION.joint_margin_rad)


def test_step_chunk_stops_early_on_success(env):
    actions = []
    env.reset(seed=2)
    for action in env.task.expert(env):
        actions.append(action)
        env.step(action)
        if env.success:
            break
    assert env.success
    needed = len(actions)
    padded = np.concatenate([np.stack(actions), np.repeat(actions[-1][None], 10, axis=0)])
    env.reset(seed=2)
    result = env.step_chunk(padded)
    assert result.terminated and result.reward == 1.0 and result.steps_executed == needed
    assert env.step_chunk(padded[:3]).steps_executed == 0  # a finished episode executes nothing more


def test_step_limit_truncates(env):
    env.reset(seed=0)
    hold = np.repeat(env.commanded_action[None], env.step_limit + 5, axis=0)
    result = env.step_chunk(hold)
    assert result.truncated and not result.terminated and result.steps_executed == env.step_limit


def test_camera_matrices_project_the_tool_into_the_image(env):
    obs, _ = env.reset(seed=0)
    view = obs["observation"]["head_camera"]
    point = np.r_[env.tcp_pose("left").position, 1.0]
    camera = view["extrinsic_cv"] @ point
    assert camera[2] > 0  # in front of the camera
    u, v, w = view["intrinsic_cv"] @ camera
    assert 0 <= u / w < 96 and 0 <= v / w < 72


def test_randomization_is_seeded_and_bounded():
    env = make("click_bell", randomization="randomized", image_width=64, image_height=48)
    try:
        a, _ = env.reset(seed=5)
        table_a = env.table_z
        b, _ = env.reset(seed=5)
        np.testing.assert_array_equal(a["observation"]["head_camera"]["rgb"], b["observation"]["head_camera"]["rgb"])
        heights = []
        placed = 0
        for seed in range(12):
            env.reset(seed=seed)
            heights.append(env.table_z)
            placed += int(np.sum(env.data.mocap_pos[:, 2] > 0.5)) - 1  # the bell is a mocap body too
        assert all(spec.TABLE_TOP_Z - 0.03 <= h <= spec.TABLE_TOP_Z for h in heights)
        assert len(set(heights)) > 1 and table_a in heights
        assert placed > 0  # distractors appear
    finally:
        env.close()


def test_expert_runs_to_success_with_randomization():
    env = make("click_bell", randomization="randomized", cameras=())
    try:
        assert sum(run_expert(env, seed).success for seed in range(3)) >= 2
    finally:
        env.close()
