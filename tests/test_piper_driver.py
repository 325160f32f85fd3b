"""The Piper driver through the real piper_sdk code, against the virtual Piper on python-can's virtual bus."""

import math
import re
import struct
import time
import uuid

import numpy as np
import pytest
from waiting import wait_until

from pushcut.robot.drivers.interface import Arm, RobotFault
from pushcut.robot.drivers.piper_arm import JOINT_LIMITS_MDEG, PiperArm, PiperArmConfig
from pushcut.robot.drivers.virtual_piper import COLLISION_BIT, VirtualPiper, VirtualPiperConfig
from pushcut.sim.piper_spec import JOINT_LIMITS_RAD, READY_POSE

pytestmark = pytest.mark.filterwarnings("ignore:The 'bustype' argument is deprecated:DeprecationWarning")


@pytest.fixture
def rig():
    """make(connect=True, emulator overrides..., arm=PiperArmConfig overrides) -> (arm, emulator)."""
    made = []

    def make(connect=True, arm=None, **emulator_overrides):
        channel = f"pd-{uuid.uuid4().hex[:8]}"
        emulator = VirtualPiper(VirtualPiperConfig(channel=channel, **emulator_overrides)).start()
        config = PiperArmConfig(can_name=channel, name="left", bustype="virtual", release_port_on_close=True)
        driver = PiperArm(PiperArmConfig(**{**config.__dict__, **(arm or {})}))
        made.append((driver, emulator))
        if connect:
            driver.connect()
        return driver, emulator

    yield make
    for driver, emulator in made:
        driver.close()
        emulator.close()


def joint_frames(emulator, sends=1):
    """The joint targets of the ``sends``-th command the emulator received, in 0.001 deg (frames arrive async)."""
    assert wait_until(lambda: len(emulator.received(0x159)) >= sends)
    values = []
    for can_id in (0x155, 0x156, 0x157):
        values += struct.unpack(">ii", emulator.received(can_id)[sends - 1].data)
    return np.array(values)


def test_connect_enable_command_feedback_round_trip(rig):
    arm, emulator = rig(arm={"speed_percent": 80})
    assert isinstance(arm, Arm)
    assert arm.firmware == "S-V1.6-3"
    enables = emulator.received(0x471)
    assert len(enables) >= 2 and all(bytes(m.data[:2]) == b"\x07\x02" for m in enables)
    assert bytes(emulator.received(0x151)[-1].data[:3]) == bytes([0x01, 0x01, 80])
    state = arm.read()
    assert state.enabled and state.fault is None
    assert abs(state.timestamp - time.monotonic()) < 0.1
    target = READY_POSE + 0.05
    sent, sent_gripper = arm.send(target, 0.5)
    assert wait_until(lambda: np.allclose(arm.read().joints, sent, atol=1e-4), timeout=2.0)
    assert wait_until(lambda: abs(arm.read().gripper - sent_gripper) < 1e-3, timeout=2.0)
    assert arm.read().feedback_hz > 50


def test_units_on_the_wire(rig):
    arm, emulator = rig(arm={"gripper_effort": 1.5})
    joints = np.array([0.1, 0.5, -0.4, 0.2, -0.3, 1.0])
    arm.send(joints, 0.5)
    np.testing.assert_array_equal(joint_frames(emulator), np.round(np.degrees(joints) * 1000))
    stroke, effort, code, zero = struct.unpack(">iHBB", emulator.received(0x159)[-1].data)
    assert (stroke, effort, code, zero) == (35_000, 1500, 0x01, 0x00)  # 0.5 of 70 mm in 0.001 mm, 1.5 N m


def test_send_returns_what_was_sent_clamped_inside_the_limits(rig):
    arm, emulator = rig()
    wild = np.array([5.0, -1.0, 0.5, -3.0, 2.0, 1.23456789])
    sent, gripper = arm.send(wild, 1.7)
    wire = joint_frames(emulator)
    np.testing.assert_allclose(sent, wire / (180_000 / math.pi), atol=1e-12)
    assert np.all(sent >= JOINT_LIMITS_RAD[:, 0]) and np.all(sent <= JOINT_LIMITS_RAD[:, 1])
    assert list(wire[:5]) == [149_994, 0, 0, -99_981, 69_900]  # the limits in 0.001 deg, rounded inward
    np.testing.assert_array_equal(
        wire[:5], [JOINT_LIMITS_MDEG[0, 1], 0, 0, JOINT_LIMITS_MDEG[3, 0], JOINT_LIMITS_MDEG[4, 1]]
    )
    assert wire[5] == round(math.degrees(1.23456789) * 1000)
    assert gripper == 1.0 and arm.send(wild, -0.3)[1] == 0.0
    for limits in (JOINT_LIMITS_RAD[:, 0], JOINT_LIMITS_RAD[:, 1]):  # exactly at the limits: the arm accepts them
        arm.send(limits, 0.0)
    time.sleep(0.05)
    assert emulator.state().arm_status == 0 and arm.read().fault is None


def test_non_finite_targets_are_rejected_and_nothing_is_sent(rig):
    arm, emulator = rig()
    before = len(emulator.received())
    with pytest.raises(ValueError, match="finite"):
        arm.send(np.array([0.0, np.nan, 0, 0, 0, 0]), 0.5)
    with pytest.raises(ValueError, match="finite"):
        arm.send(np.zeros(6), math.inf)
    assert len(emulator.received()) == before


def test_enable_refused_names_the_motors(rig):
    arm, emulator = rig(connect=False, arm={"enable_timeout_s": 0.3})
    emulator.refuse_enable((2, 5))
    with pytest.raises(RobotFault, match=r"enable refused.*motor\(s\) \[2, 5\] stay disabled") as info:
        arm.connect()
    assert arm.config.can_name in str(info.value) and "emergency-stop button" in str(info.value)


def test_arm_not_answering(rig):
    arm = PiperArm(
        PiperArmConfig(can_name=f"pd-{uuid.uuid4().hex[:8]}", bustype="virtual", release_port_on_close=True,
                       answer_timeout_s=0.3)
    )  # fmt: skip
    start = time.monotonic()
    with pytest.raises(RobotFault, match="not answering.*powered on.*follower"):
        arm.connect()
    assert time.monotonic() - start < 1.0
    arm.close()


def test_feedback_loss_is_a_fault_within_the_timeout(rig):
    arm, emulator = rig(arm={"feedback_timeout_s": 0.15})
    assert arm.read().fault is None
    emulator.stop_feedback()
    start = time.monotonic()
    assert wait_until(lambda: arm.read().fault is not None, timeout=1.0)
    assert time.monotonic() - start < 0.15 + 0.2  # timeout + scheduling slack on a loaded machine
    assert "feedback lost" in arm.read().fault
    emulator.resume_feedback()
    assert wait_until(lambda: "unacknowledged fault: feedback lost" in (arm.read().fault or ""), timeout=1.0)
    arm.acknowledge_fault()
    assert arm.read().fault is None


@pytest.mark.parametrize(
    ("inject", "expected"),
    [
        (lambda e: e.force_arm_status(0x07), "collision (0x07)"),
        (lambda e: e.force_arm_status(0x04), "target angle exceeds limit (0x04)"),
        (lambda e: e.set_driver_flags(3, COLLISION_BIT), "motor 3 collision_status"),
        (lambda e: e.set_comm_errors((4,)), "joint 4 communication error"),
    ],
)
def test_arm_status_and_driver_flags_are_faults(rig, inject, expected):
    arm, emulator = rig()
    inject(emulator)
    assert wait_until(lambda: expected in (arm.read().fault or ""))


def test_emergency_stop_freezes_and_later_commands_are_ignored(rig):
    arm, emulator = rig(arm={"speed_percent": 10})
    arm.send(np.array([1.0, 0.5, -0.5, 0, 0, 0]), 0.0)
    time.sleep(0.1)
    arm.emergency_stop()
    assert wait_until(lambda: "arm status emergency stop (0x01)" in (arm.read().fault or ""))
    frozen = arm.read().joints
    assert 0 < frozen[0] < 1.0
    with pytest.raises(RobotFault, match="emergency stop"):
        arm.send(np.zeros(6), 0.0)
    with pytest.raises(RobotFault, match=r"in emergency stop.*release_power\(confirm=True\)"):
        arm.connect()  # reconnecting does not clear an e-stop
    arm._sdk.JointCtrl(0, 0, 0, 0, 0, 0)  # even behind the driver's back, the arm ignores motion
    time.sleep(0.1)
    np.testing.assert_allclose(arm.read().joints, frozen, atol=1e-5)
    assert [m.data[0] for m in emulator.received(0x150)] == [0x01, 0x01]
    assert emulator.state().power_cuts == 0 and all(emulator.state().enabled)


def test_close_never_disables_or_resets(rig):
    arm, emulator = rig()
    arm.send(READY_POSE, 0.3)
    arm.close()
    time.sleep(0.05)
    assert not [m for m in emulator.received(0x471) if m.data[1] == 0x01]
    assert not [m for m in emulator.received(0x150) if m.data[0] == 0x02]
    assert all(emulator.state().enabled) and emulator.state().power_cuts == 0


def test_release_power_needs_confirmation_then_connect_recovers(rig):
    arm, emulator = rig()
    arm.emergency_stop()
    with pytest.raises(ValueError, match="confirm=True"):
        arm.release_power()
    assert emulator.state().power_cuts == 0
    arm.release_power(confirm=True)
    assert wait_until(lambda: not arm.read().enabled)
    assert emulator.state().power_cuts >= 1 and not emulator.state().estopped
    arm.connect()
    sent, _ = arm.send(READY_POSE, 0.0)
    assert wait_until(lambda: np.allclose(arm.read().joints, sent, atol=1e-4), timeout=2.0)


def test_mode_is_resent_when_the_arm_leaves_can_move_j(rig):
    arm, emulator = rig()
    arm._sdk.MotionCtrl_2(0x00, 0x00, 50, 0x00)  # e.g. a controller that fell back to standby
    assert wait_until(lambda: emulator.state().ctrl_mode == 0x00)
    time.sleep(0.03)
    sent, _ = arm.send(READY_POSE, 0.0)
    assert wait_until(lambda: np.allclose(arm.read().joints, sent, atol=1e-4), timeout=2.0)


def test_wrong_can_name_with_socketcan_is_a_clear_fault():
    arm = PiperArm(PiperArmConfig(can_name="can_nowhere", name="left"))
    start = time.monotonic()
    with pytest.raises(RobotFault, match=r"'can_nowhere' does not exist.*can_activate\.sh.*ip -details link show"):
        arm.connect()
    assert time.monotonic() - start < 1.0
    with pytest.raises(RobotFault, match="not connected"):
        arm.send(np.zeros(6), 0.0)


def _clear_limit(arm, emulator):
    arm._sdk.JointCtrl(0, 0, 0, 0, 0, 0)  # an in-range target clears the emulated arm's limit flags


FAULTS = {  # kind: (inject, clear, words the refusal names)
    "feedback lost": (lambda a, e: e.stop_feedback(), lambda a, e: e.resume_feedback(), "feedback lost"),
    "collision": (lambda a, e: e.force_arm_status(0x07), lambda a, e: e.force_arm_status(None), "collision (0x07)"),
    "joint limit": (lambda a, e: a._sdk.JointCtrl(0, 0, 0, 200_000, 0, 0), _clear_limit, "joint 4 angle limit"),
    "communication error": (lambda a, e: e.set_comm_errors((2,)), lambda a, e: e.set_comm_errors(()),
                            "joint 2 communication error"),
}  # fmt: skip


@pytest.mark.parametrize("kind", FAULTS)
def test_after_a_fault_no_joint_frame_reaches_the_bus_until_healthy_and_acknowledged(rig, kind):
    inject, clear, words = FAULTS[kind]
    arm, emulator = rig()
    arm.send(READY_POSE, 0.5)
    inject(arm, emulator)
    assert wait_until(lambda: words in (arm.read().fault or ""), timeout=2.0), arm.read().fault
    frames = len(emulator.received(0x155))
    with pytest.raises(RobotFault, match=rf"left: refusing motion: .*{re.escape(words)}"):
        arm.send(READY_POSE, 0.5)
    time.sleep(0.05)  # frames still in flight would have arrived
    assert len(emulator.received(0x155)) == frames, "a joint frame reached the bus while the fault stood"
    clear(arm, emulator)
    assert wait_until(lambda: "unacknowledged fault" in (arm.read().fault or ""), timeout=2.0), arm.read().fault
    frames = len(emulator.received(0x155))
    with pytest.raises(RobotFault, match=rf"until the fault is acknowledged: .*{re.escape(words)}.*acknowledge_fault"):
        arm.send(READY_POSE, 0.5)
    time.sleep(0.05)
    assert len(emulator.received(0x155)) == frames, "a joint frame reached the bus before the acknowledgement"
    arm.acknowledge_fault()
    arm.send(READY_POSE, 0.5)
    assert wait_until(lambda: len(emulator.received(0x155)) > frames)


def test_a_standing_fault_cannot_be_acknowledged(rig):
    arm, emulator = rig()
    emulator.force_arm_status(0x07)
    assert wait_until(lambda: "collision" in (arm.read().fault or ""))
    with pytest.raises(RobotFault, match=r"cannot acknowledge, the fault stands: arm status collision \(0x07\)"):
        arm.acknowledge_fault()
    with pytest.raises(RobotFault, match="reports arm status collision"):
        arm.connect()  # reconnecting does not clear it either


def test_connect_right_after_release_power_waits_for_the_status_after_the_reset(rig):
    arm, emulator = rig()
    arm.emergency_stop()
    assert wait_until(lambda: emulator.state().estopped)
    arm.release_power(confirm=True)
    arm.connect()  # back to back: the decoded status still says e-stop until fresh frames arrive
    assert not emulator.state().estopped and all(emulator.state().enabled)
    sent, _ = arm.send(READY_POSE, 0.0)
    assert wait_until(lambda: np.allclose(arm.read().joints, sent, atol=1e-4), timeout=2.0)
