"""The Piper model matches the SDK's kinematics and the shared limits."""

import mujoco
import numpy as np
import pytest
from piper_sdk.kinematics.piper_fk import C_PiperForwardKinematics

from pushcut.sim import piper_spec as spec
from pushcut.sim import scene


@pytest.fixture(scope="module")
def model_and_data():
    model = scene.build_model("")
    return model, mujoco.MjData(model)


def random_joints(rng):
    return rng.uniform(spec.JOINT_LIMITS_RAD[:, 0], spec.JOINT_LIMITS_RAD[:, 1])


def test_forward_kinematics_matches_piper_sdk():
    sdk = C_PiperForwardKinematics(dh_is_offset=1)
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = random_joints(rng)
        ours = spec.flange_pose(q)[:3, 3] * 1000
        theirs = np.array(sdk.CalFK(list(q))[-1][:3])
        np.testing.assert_allclose(ours, theirs, atol=1e-6)


@pytest.mark.parametrize("mount", spec.DUAL_PIPER_MOUNTS, ids=lambda m: m.name)
def test_mujoco_flange_and_tcp_match_dh_forward_kinematics(model_and_data, mount):
    model, data = model_and_data
    rng = np.random.default_rng(1)
    base = spec.mount_transform(mount)
    for _ in range(10):
        q = random_joints(rng)
        for i, name in enumerate(spec.ARM_JOINT_NAMES):
            data.qpos[model.joint(f"{mount.name}/{name}").qposadr[0]] = q[i]
        mujoco.mj_kinematics(model, data)
        flange = base @ spec.flange_pose(q)
        np.testing.assert_allclose(data.body(f"{mount.name}/link6").xpos, flange[:3, 3], atol=1e-9)
        np.testing.assert_allclose(data.body(f"{mount.name}/link6").xmat.reshape(3, 3), flange[:3, :3], atol=1e-9)
        tcp = base @ spec.tcp_pose(q)
        np.testing.assert_allclose(data.site(f"{mount.name}/tcp").xpos, tcp[:3, 3], atol=1e-9)


def test_model_joint_ranges_are_the_shared_limits(model_and_data):
    model, _ = model_and_data
    for arm in spec.ARMS:
        for i, name in enumerate(spec.ARM_JOINT_NAMES):
            np.testing.assert_allclose(model.joint(f"{arm}/{name}").range, spec.JOINT_LIMITS_RAD[i])
        assert model.joint(f"{arm}/finger_a").range[1] == pytest.approx(spec.FINGER_STROKE_M)


def test_action_layout_and_limits():
    low, high = spec.action_limits()
    assert len(spec.ACTION_NAMES) == spec.ACTION_DIM == low.shape[0] == high.shape[0] == 14
    assert spec.ACTION_NAMES[spec.LEFT_GRIPPER_INDEX] == "left_gripper"
    assert spec.ACTION_NAMES[spec.RIGHT_GRIPPER_INDEX] == "right_gripper"
    assert (low[[6, 13]] == 0).all() and (high[[6, 13]] == 1).all()
    assert np.all(low < high)
    assert np.all((spec.JOINT_LIMITS_RAD[:, 0] <= spec.READY_POSE) & (spec.JOINT_LIMITS_RAD[:, 1] >= spec.READY_POSE))


def test_forward_kinematics_rejects_wrong_shape():
    with pytest.raises(ValueError, match="6 joint angles"):
        spec.forward_kinematics(np.zeros(7))
