"""Two virtual Pipers on two channels behind the 14-D bimanual Robot."""

import time

import numpy as np
import pytest
from waiting import wait_until

from pushcut.robot.drivers.bimanual import BimanualConfig, PiperBimanual, VirtualBimanual
from pushcut.robot.drivers.interface import Robot, RobotFault
from pushcut.sim.piper_spec import ACTION_DIM, READY_POSE

pytestmark = pytest.mark.filterwarnings("ignore:The 'bustype' argument is deprecated:DeprecationWarning")

ACTION = np.concatenate([READY_POSE + 0.1, [0.8], READY_POSE - [0.1, 0, 0, 0.1, 0, 0.2], [0.2]])


@pytest.fixture
def rig():
    with VirtualBimanual() as rig:
        yield rig


def test_send_action_splits_in_sim_order_and_returns_what_was_sent(rig):
    robot = rig.robot
    assert isinstance(robot, Robot) and robot.action_dim == ACTION_DIM
    robot.connect()
    sent = robot.send_action(ACTION)
    assert sent.shape == (14,)
    np.testing.assert_allclose(sent, ACTION, atol=1e-5)  # 0.001 deg / 0.001 mm rounding only
    assert wait_until(lambda: np.allclose(robot.get_state().vector, sent, atol=1e-4))
    left, right = rig.emulators["left"].state(), rig.emulators["right"].state()
    np.testing.assert_allclose(left.target, sent[0:6], atol=1e-9)
    np.testing.assert_allclose(right.target, sent[7:13], atol=1e-9)
    assert abs(left.gripper_m - 0.8 * 0.07) < 1e-4 and abs(right.gripper_m - 0.2 * 0.07) < 1e-4
    state = robot.get_state()
    assert state.faults == () and all(a.enabled for a in state.arms)


def test_fault_of_either_arm_appears_in_the_state(rig):
    rig.robot.connect()
    rig.emulators["right"].force_arm_status(0x07)
    assert wait_until(lambda: rig.robot.get_state().faults != ())
    faults = rig.robot.get_state().faults  # (a loaded machine may add the left arm's stale feedback)
    assert any(fault.startswith("right: ") and "collision" in fault for fault in faults), faults


def test_invalid_action_sends_nothing_to_either_arm(rig):
    rig.robot.connect()
    before = {side: len(e.received()) for side, e in rig.emulators.items()}
    bad = ACTION.copy()
    bad[10] = np.nan
    with pytest.raises(ValueError, match="finite"):
        rig.robot.send_action(bad)
    with pytest.raises(ValueError, match="finite"):
        rig.robot.send_action(ACTION[:7])
    time.sleep(0.05)
    assert {side: len(e.received()) for side, e in rig.emulators.items()} == before


def test_emergency_stop_stops_both_arms(rig):
    rig.robot.connect()
    rig.robot.emergency_stop()
    assert wait_until(lambda: all(e.state().estopped for e in rig.emulators.values()))
    assert len(rig.robot.get_state().faults) == 2
    with pytest.raises(RobotFault, match="emergency stop"):
        rig.robot.send_action(ACTION)


def test_connect_failure_names_the_arm_and_leaves_the_other_holding():
    with VirtualBimanual(enable_timeout_s=0.3) as rig:
        rig.emulators["right"].refuse_enable((6,))
        with pytest.raises(RobotFault, match=r"^right arm: .*motor\(s\) \[6\] stay disabled"):
            rig.robot.connect()
        left = rig.emulators["left"].state()
        assert all(left.enabled) and left.power_cuts == 0


def test_from_config_defaults_to_can_left_and_can_right():
    robot = PiperBimanual.from_config(speed_percent=30)
    assert (robot.left.config.can_name, robot.right.config.can_name) == ("can_left", "can_right")
    assert (robot.left.name, robot.right.name) == ("left", "right")
    assert robot.left.config.speed_percent == robot.right.config.speed_percent == 30
    assert BimanualConfig().left.bustype == "socketcan"
