"""The Piper's feedback decoded into what an operator reads: the arm status, its error flags, the driver flags.

Everything here reads piper_sdk's decoded messages (``GetArmStatus``, ``GetArmLowSpdInfoMsgs``,
``GetArmGripperMsgs``, ``GetArmJointMsgs``) and sends nothing; :class:`~pushcut.robot.drivers.piper_arm.PiperArm`
turns the result into faults, ``pushcut robot check`` prints it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

MDEG_PER_RAD = 180_000.0 / math.pi
ARM_STATUS_NAMES = {
    0x00: "normal", 0x01: "emergency stop", 0x02: "no IK solution", 0x03: "singularity",
    0x04: "target angle exceeds limit", 0x05: "joint communication error", 0x06: "joint brake not released",
    0x07: "collision", 0x08: "overspeed in teach mode", 0x09: "joint status abnormal", 0x0A: "other error",
    0x0B: "teach recording", 0x0C: "teach playback", 0x0D: "teach paused", 0x0E: "controller over-temperature",
    0x0F: "brake resistor over-temperature", 0xFF: "unknown status code",
}  # fmt: skip
CTRL_MODE_NAMES = {0x00: "standby", 0x01: "CAN command", 0x02: "teach", 0x03: "Ethernet", 0x04: "WiFi",
                   0x05: "remote", 0x06: "linkage teach", 0x07: "offline trajectory"}  # fmt: skip
MOVE_MODE_NAMES = {0x00: "MOVE P", 0x01: "MOVE J", 0x02: "MOVE L", 0x03: "MOVE C", 0x04: "MOVE M", 0x05: "CPV"}
DRIVER_FAULT_FLAGS = (
    "voltage_too_low", "motor_overheating", "driver_overcurrent", "driver_overheating", "collision_status",
    "driver_error_status", "stall_status",
)  # fmt: skip
GRIPPER_FAULT_FLAGS = ("voltage_too_low", "motor_overheating", "driver_overcurrent", "driver_overheating",
                       "driver_error_status")  # fmt: skip
TEACH_MODES = (0x02, 0x06)


def code_name(names: dict[int, str], code: int) -> str:
    return f"{names.get(code, 'unknown')} (0x{code:02X})"


@dataclass(frozen=True)
class PiperStatus:
    """One reading of everything an arm reports about itself (joints in radians, gripper stroke in metres)."""

    firmware: str | None
    ctrl_mode: int
    move_mode: int
    arm_status: int
    errors: tuple[str, ...]  # per-joint angle-limit and communication flags, driver and gripper flags
    joints: np.ndarray
    gripper_m: float
    enabled: tuple[bool, ...]  # six joint motors
    feedback_hz: float
    feedback_age_s: float  # since the older of the newest joint and status frames (inf: never)

    def summary(self) -> str:
        """A line for the operator: firmware, modes, status, errors, joints (deg), gripper (mm)."""
        joints = ", ".join(f"{math.degrees(q):.1f}" for q in self.joints)
        disabled = [i + 1 for i, on in enumerate(self.enabled) if not on]
        return (f"firmware {self.firmware or 'unknown'}, ctrl_mode {code_name(CTRL_MODE_NAMES, self.ctrl_mode)}, "
                f"move_mode {code_name(MOVE_MODE_NAMES, self.move_mode)}, arm status "
                f"{code_name(ARM_STATUS_NAMES, self.arm_status)}, errors {', '.join(self.errors) or 'none'}, "
                f"joints [{joints}] deg, gripper {self.gripper_m * 1000:.1f} mm, "
                f"{'all motors enabled' if not disabled else f'motor(s) {disabled} disabled'}, "
                f"feedback {self.feedback_hz:.0f} Hz")  # fmt: skip


def feedback_age(sdk: Any) -> float:
    """Seconds since the older of the newest joint and status frames (SDK stamps are wall-clock); inf if never."""
    stamps = [sdk.GetArmJointMsgs().time_stamp, sdk.GetArmStatus().time_stamp]
    return time.time() - min(stamps) if min(stamps) > 0 else math.inf


def error_flags(sdk: Any) -> list[str]:
    """The per-joint error bits of 0x2A1 and the driver / gripper flags of 0x261-0x266 and 0x2A8 that are set."""
    err = sdk.GetArmStatus().arm_status.err_status
    flags = []
    for j in range(1, 7):
        if getattr(err, f"joint_{j}_angle_limit"):
            flags.append(f"joint {j} angle limit")
        if getattr(err, f"communication_status_joint_{j}"):
            flags.append(f"joint {j} communication error")
    low = sdk.GetArmLowSpdInfoMsgs()
    for i in range(1, 7):
        status = getattr(low, f"motor_{i}").foc_status
        flags += [f"motor {i} {flag}" for flag in DRIVER_FAULT_FLAGS if getattr(status, flag)]
    gripper = sdk.GetArmGripperMsgs().gripper_state.foc_status
    flags += [f"gripper {flag}" for flag in GRIPPER_FAULT_FLAGS if getattr(gripper, flag)]
    return flags


def read_status(sdk: Any, firmware: str | None) -> PiperStatus:
    status = sdk.GetArmStatus().arm_status
    joint_msgs = sdk.GetArmJointMsgs()
    js = joint_msgs.joint_state
    joints = np.array([js.joint_1, js.joint_2, js.joint_3, js.joint_4, js.joint_5, js.joint_6]) / MDEG_PER_RAD
    gripper_um = sdk.GetArmGripperMsgs().gripper_state.grippers_angle
    return PiperStatus(
        firmware=firmware, ctrl_mode=int(status.ctrl_mode), move_mode=int(status.mode_feed),
        arm_status=int(status.arm_status), errors=tuple(error_flags(sdk)), joints=joints, gripper_m=gripper_um / 1e6,
        enabled=tuple(bool(on) for on in sdk.GetArmEnableStatus()), feedback_hz=float(joint_msgs.Hz),
        feedback_age_s=feedback_age(sdk),
    )  # fmt: skip


def status_faults(sdk: Any) -> list[str]:
    """Why the arm reports it must not be commanded: a non-normal arm status, teach / leader mode, error flags."""
    status = sdk.GetArmStatus().arm_status
    reasons = []
    code = int(status.arm_status)
    if code != 0x00:
        reasons.append(f"arm status {code_name(ARM_STATUS_NAMES, code)}")
    if int(status.ctrl_mode) in TEACH_MODES:
        reasons.append(f"arm in teach/leader mode (ctrl_mode 0x{int(status.ctrl_mode):02X})")
    reasons += error_flags(sdk)
    return reasons
