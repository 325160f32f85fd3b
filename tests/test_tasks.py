"""One test module over every registered task (MuJoCo Playground style)."""

import mujoco
import numpy as np
import pytest

from pushcut.sim import piper_spec as spec
from pushcut.sim.demos import run_expert
from pushcut.sim.registry import TASKS, make, task_names

TASK_NAMES = task_names()
SMALL = {"image_width": 64, "image_height": 48}
EXPERT_SEEDS = range(4)


@pytest.fixture(scope="module", params=TASK_NAMES)
def env(request):
    env = make(request.param, cameras=("head_camera", "left_camera", "right_camera"), **SMALL)
    yield env
    env.close()


def test_the_six_robotwin_tasks_are_registered():
    expected = {
        "stack_bowls_two",
        "handover_block",
        "pick_dual_bottles",
        "click_bell",
        "move_can_pot",
        "place_a2b_left",
    }
    assert expected <= set(TASK_NAMES)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_task_declares_limits_instructions_and_adaptations(name):
    task = TASKS[name]
    assert task.step_limit > 0
    assert len(task.seen_instructions) >= 20 and len(task.unseen_instructions) >= 5
    assert not set(task.seen_instructions) & set(task.unseen_instructions)
    assert len(set(task.seen_instructions)) == len(task.seen_instructions)


@pytest.mark.filterwarnings("ignore:.*Casting input x to numpy array")  # grippers are plain floats, as in RoboTwin
def test_reset_and_step_shapes_no_nan(env):
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    for cam in ("head_camera", "left_camera", "right_camera"):
        rgb = obs["observation"][cam]["rgb"]
        assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8 and rgb.std() > 0
    assert obs["joint_action"]["vector"].shape == (14,)
    assert obs["endpose"]["left_endpose"].shape == (7,)
    assert isinstance(obs["instruction"], str) and "{" not in obs["instruction"] and obs["instruction"]
    for template in env.task.seen_instructions + env.task.unseen_instructions:
        template.format(**env.instruction_slots)  # every placeholder is filled by the episode's slots
    action = env.commanded_action
    for _ in range(3):
        obs, reward, terminated, truncated, info = env.step(action)
    assert np.all(np.isfinite(env.data.qpos)) and np.all(np.isfinite(obs["joint_action"]["vector"]))
    assert reward in (0.0, 1.0) and not truncated
    # holding the start pose keeps the arms where they are (tracking within a few mrad)
    np.testing.assert_allclose(obs["joint_action"]["vector"][spec.LEFT_ARM_SLICE], spec.READY_POSE, atol=0.02)


def test_reset_is_deterministic_for_a_seed_and_differs_across_seeds(env):
    def state():
        return np.concatenate([env.data.qpos, env.data.mocap_pos.ravel()])

    a, _ = env.reset(seed=7)
    state_a = state()
    b, _ = env.reset(seed=7)
    np.testing.assert_array_equal(state_a, state())
    np.testing.assert_array_equal(a["observation"]["head_camera"]["rgb"], b["observation"]["head_camera"]["rgb"])
    assert a["instruction"] == b["instruction"]
    env.reset(seed=8)
    assert not np.array_equal(state_a, state())


def test_expert_succeeds_on_fixed_seeds_and_predicate_flips(env):
    successes = 0
    for seed in EXPERT_SEEDS:
        env.reset(seed=seed)
        assert not env.task.check_success(env), "the predicate must be false in the initial state"
        result = run_expert(env, seed)
        assert result.steps <= env.step_limit
        if not result.success:
            continue
        successes += 1
        assert env.task.check_success(env)
        # Constructed failure: the manipulated object moved 0.35 m away must break success.
        body = env.model.body(env.task.manipulated_body())
        if body.mocapid[0] >= 0:
            env.data.mocap_pos[body.mocapid[0]] += (0.35, 0.35, 0.0)
        else:
            adr = env.model.jnt_qposadr[body.jntadr[0]]
            env.data.qpos[adr : adr + 2] += (0.35, 0.35)
        mujoco.mj_forward(env.model, env.data)
        assert not env.task.check_success(env), "moving the objects away must break success"
    assert successes >= len(EXPERT_SEEDS) - 1, f"expert succeeded on {successes}/{len(EXPERT_SEEDS)} fixed seeds"


def test_expert_replay_is_deterministic(env):
    actions = []
    env.reset(seed=3)
    from pushcut.sim.expert import UnreachableError

    try:
        for action in env.task.expert(env):
            actions.append(action)
            env.step(action)
            if env.success:
                break
    except UnreachableError:
        pytest.skip("seed 3 unreachable for this task's expert")
    first = env.data.qpos.copy()
    env.reset(seed=3)
    for action in actions:
        env.step(action)
    np.testing.assert_array_equal(first, env.data.qpos)


def test_privileged_bodies_are_named_and_located(env):
    """The positions recorded with demonstrations (training targets, probes): the manipulated body first."""
    env.reset(seed=1)
    bodies = env.privileged_bodies()
    assert bodies[0] == env.task.manipulated_body() and len(set(bodies)) == len(bodies)
    positions = env.object_positions()
    assert positions.shape == (len(bodies), 3)
    for name, position in zip(bodies, positions):
        assert np.allclose(position, env.body_position(name))


def test_the_expert_moves_only_the_arms_the_task_says_act(env):
    """`Task.acting_arms` is what GRPO's idle-arm mask trains; the demonstrations must agree with it."""
    env.reset(seed=0)
    acting = env.task.acting_arms()
    assert acting and set(acting) <= set(spec.ARMS)
    targets = []
    for action in env.task.expert(env):
        targets.append(np.asarray(action))
        _, _, terminated, truncated, info = env.step(action)
        assert info["acting_arms"] == acting
        if terminated or truncated:
            break
    moved = np.ptp(np.stack(targets), axis=0)
    for arm in spec.ARMS:
        if arm not in acting:
            assert moved[spec.ARM_ACTION_SLICES[arm]].max() < 1e-6, f"{arm} arm is idle but its targets moved"
