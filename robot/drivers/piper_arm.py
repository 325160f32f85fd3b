"""One AgileX Piper arm over piper_sdk's ``C_PiperInterface_V2`` (joint-position control), implementing ``Arm``.

Units: our side speaks radians and a gripper opening in [0, 1] (1 = open); the SDK speaks 0.001 deg (joints) and
0.001 mm of stroke (gripper, 0..``gripper_stroke_m``), effort in 0.001 N m (0..5000). ``send`` clamps to the joint
table of :mod:`pushcut.sim.piper_spec` (a last line of defence: the safety filter lives elsewhere), rounds to SDK
units toward the inside of the limits, and returns what was sent, converted back.

Pitfalls of piper_sdk (0.6) handled here:

- ``C_PiperInterface_V2`` is a singleton per CAN name and ``DisconnectPort`` neither stops its monitor threads nor
  joins its reader (a port reopened too soon gets no reader), so a port is opened once per process and reused by
  later ``connect`` calls; only ``release_port_on_close`` (tests on the virtual bus) disconnects it, for good.
- Wrong CAN name / interface down / wrong bitrate: checked before opening, with what to run (``ip link show``,
  ``can_activate.sh``); an arm that sends no feedback (unpowered, cable, leader mode) is reported as such.
- ``EnablePiper`` returns the status read *before* sending: enable is a loop with a timeout, sent at least twice, and
  a refusal names the motors that stay disabled.
- Nothing moves without ``MotionCtrl_2(CAN, MOVE J, speed %)``; it can silently not take effect, so it is checked
  against the status feedback and resent periodically and whenever the feedback shows another mode.
- The SDK shares one transmit message between calls: all sends go through one lock.
- Feedback timestamps are host wall-clock CAN times; they are mapped to ``time.monotonic()``. Feedback older than
  ``feedback_timeout_s`` or ``isOk()`` False (about 0.35 s without frames) is a "feedback lost" fault.
- ``emergency_stop`` sends the damped quick stop (0x150 byte 0 = 0x01) only; the power-cutting reset (0x02) and
  ``DisableArm`` (the arm drops) are sent only by ``release_power(confirm=True)``. ``close`` never disables.
- A fault latches: once feedback was lost or the arm reported a fault (arm status such as collision or joint limit,
  joint communication errors, driver flags), ``send`` refuses with a ``RobotFault`` naming it, and no frame reaches
  the bus, until the arm is healthy again *and* the fault is acknowledged (``acknowledge_fault()`` or ``connect()``,
  both of which re-check the arm first). The arm itself would accept the frames: the driver must not send them.
- Right after ``release_power`` the decoded status is still the one from before the reset (an e-stop): ``open`` /
  ``connect`` wait (bounded) for status frames received after the reset before judging the arm.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from pushcut.robot.drivers.interface import ArmState, RobotFault
from pushcut.robot.drivers.piper_health import MDEG_PER_RAD, PiperStatus, feedback_age, read_status, status_faults
from pushcut.robot.drivers.piper_port import open_port, release_port
from pushcut.sim.piper_spec import GRIPPER_STROKE_M, JOINT_LIMITS_RAD

log = logging.getLogger(__name__)

# Integer 0.001 deg bounds strictly inside the spec's joint table (rounding never leaves the limits).
JOINT_LIMITS_MDEG = np.stack(
    [np.ceil(JOINT_LIMITS_RAD[:, 0] * MDEG_PER_RAD), np.floor(JOINT_LIMITS_RAD[:, 1] * MDEG_PER_RAD)], axis=1
).astype(np.int64)


@dataclass(frozen=True)
class PiperArmConfig:
    can_name: str = "can0"
    name: str = ""  # the arm's name in logs and faults ("left"); defaults to the CAN name
    speed_percent: int = 50  # MotionCtrl_2 speed, 0..100 (of the 3 rad/s joint maximum)
    gripper_effort: float = 1.0  # N m, 0..5
    gripper_stroke_m: float = GRIPPER_STROKE_M  # full opening (0.07 m V1 gripper, 0.10 m V2)
    enable_timeout_s: float = 3.0
    answer_timeout_s: float = 1.0  # wait for the first feedback after opening the port (and after a reset)
    feedback_timeout_s: float = 0.2  # feedback older than this is a fault
    mode_refresh_s: float = 0.1  # resend MotionCtrl_2 at least this often while commanding
    bustype: Literal["socketcan", "virtual"] = "socketcan"
    release_port_on_close: bool = False  # True only for tests on the virtual bus (leaks the SDK's threads)

    def __post_init__(self) -> None:
        if not 0 < self.speed_percent <= 100:
            raise ValueError(f"speed_percent must be in 1..100, got {self.speed_percent}")
        if not 0 <= self.gripper_effort <= 5:
            raise ValueError(f"gripper_effort must be in 0..5 N m, got {self.gripper_effort}")


def _monotonic_of(wall_time: float) -> float:
    """Map a host wall-clock CAN timestamp to the monotonic clock (0 for a frame never received)."""
    if wall_time <= 0:
        return 0.0
    return time.monotonic() - max(0.0, time.time() - wall_time)


class PiperArm:
    """A Piper arm on one CAN interface. Thread-safe: the executor may ``send`` while another thread e-stops."""

    def __init__(self, config: PiperArmConfig) -> None:
        self.config = config
        self.name = config.name or config.can_name
        self.firmware: str | None = None
        self._sdk: Any = None
        self._lock = threading.RLock()
        self._connected = False
        self._stopped = False  # latched by emergency_stop until release_power + connect
        self._latched: str | None = None  # a fault seen since the last acknowledgement (send refuses)
        self._reset_at: float | None = None  # wall-clock time of the last release_power
        self._last_mode_sent = 0.0

    # connection ------------------------------------------------------------------------------------------------
    def open(self) -> None:
        """Open the port and wait for feedback (and the firmware version) without enabling or commanding anything:
        enough to read :meth:`status`. RobotFault when the interface is missing or the arm does not answer."""
        self._sdk = open_port(self.config)
        self._wait_for_feedback()
        if self._reset_at is not None:
            self._wait_for_fresh_status(self._reset_at)
            self._reset_at = None

    def connect(self) -> None:
        """:meth:`open`, refuse an arm in emergency stop or reporting a fault, enable, select CAN + MOVE J; a fault
        latched earlier is acknowledged once the arm is healthy."""
        c = self.config
        self.open()
        if int(self._sdk.GetArmStatus().arm_status.arm_status) == 0x01:
            raise RobotFault(
                f"{self.name}: the arm on '{c.can_name}' is in emergency stop and ignores motion. Support the arm, "
                "then release_power(confirm=True) (it drops) and connect again."
            )
        standing = self._health_fault()
        if standing:
            raise RobotFault(f"{self.name}: the arm on '{c.can_name}' reports {standing}; clear the cause (a reset "
                             "with release_power(confirm=True) clears the arm's errors, the arm drops) and connect "
                             "again")  # fmt: skip
        self._enable()
        self._select_joint_mode()
        with self._lock:
            self._connected, self._stopped, self._latched = True, False, None
        log.info("%s: connected on %s (firmware %s)", self.name, c.can_name, self.firmware or "unknown")

    def _wait_for_feedback(self) -> None:
        deadline = time.monotonic() + self.config.answer_timeout_s
        while self._feedback_age() > self.config.feedback_timeout_s:
            if time.monotonic() > deadline:
                raise RobotFault(
                    f"{self.name}: the arm on '{self.config.can_name}' is not answering (no feedback within "
                    f"{self.config.answer_timeout_s:.1f} s). Check it is powered on, the CAN cable runs to this "
                    "adapter, and the arm is a follower (a leader arm, MasterSlaveConfig 0xFA, sends no 0x2A* "
                    "feedback)."
                )
            time.sleep(0.01)
        if self.firmware is None:  # ConnectPort already asked; ask again only if that answer was lost
            version = self._sdk.GetPiperFirmwareVersion()
            if not isinstance(version, str):
                with self._lock:
                    self._sdk.SearchPiperFirmwareVersion()
                for _ in range(20):
                    time.sleep(0.01)
                    version = self._sdk.GetPiperFirmwareVersion()
                    if isinstance(version, str):
                        break
            self.firmware = version if isinstance(version, str) else None

    def _wait_for_fresh_status(self, since: float) -> None:
        """Wait until two status frames received after wall time ``since`` decoded (the first may have been in
        flight when the command that changed the arm was sent)."""
        deadline = time.monotonic() + self.config.answer_timeout_s
        seen: list[float] = []
        while len(seen) < 2:
            stamp = self._sdk.GetArmStatus().time_stamp
            if stamp > since and (not seen or stamp > seen[-1]):
                seen.append(stamp)
            elif time.monotonic() > deadline:
                raise RobotFault(f"{self.name}: no status from the arm on '{self.config.can_name}' within "
                                 f"{self.config.answer_timeout_s:.1f} s after its reset; check its power and "
                                 "cable")  # fmt: skip
            else:
                time.sleep(0.005)

    def _enable(self) -> None:
        deadline, sends = time.monotonic() + self.config.enable_timeout_s, 0
        while True:
            with self._lock:
                was_enabled = self._sdk.EnablePiper()  # the status *before* this enable frame
            sends += 1
            if was_enabled and sends >= 2:
                return
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        flags = self._sdk.GetArmEnableStatus()
        disabled = [i + 1 for i, on in enumerate(flags) if not on]
        drivers = ", ".join(f for f in status_faults(self._sdk) if f.startswith(("motor", "gripper")))
        raise RobotFault(
            f"{self.name}: enable refused on '{self.config.can_name}': motor(s) {disabled} stay disabled after "
            f"{self.config.enable_timeout_s:.1f} s{'; ' + drivers if drivers else ''}. Check the emergency-stop "
            "button is released, the 24 V supply, and the joint cables; after a fault the arm may need a power cycle."
        )

    def _select_joint_mode(self) -> None:
        deadline = time.monotonic() + self.config.enable_timeout_s
        while True:
            self._send_mode()
            time.sleep(0.03)
            status = self._sdk.GetArmStatus().arm_status
            if int(status.ctrl_mode) == 0x01 and int(status.mode_feed) == 0x01:
                return
            if time.monotonic() > deadline:
                raise RobotFault(
                    f"{self.name}: the arm on '{self.config.can_name}' stays in ctrl_mode {status.ctrl_mode}, "
                    f"mode {status.mode_feed} instead of CAN command + MOVE J. Leave teach mode (teach button) and "
                    "check it is not a leader arm; a power cycle clears a stuck mode."
                )

    def _send_mode(self) -> None:
        with self._lock:
            self._sdk.MotionCtrl_2(0x01, 0x01, self.config.speed_percent, 0x00)
            self._last_mode_sent = time.monotonic()

    # commands --------------------------------------------------------------------------------------------------
    def send(self, joints: np.ndarray, gripper: float) -> tuple[np.ndarray, float]:
        joints = np.asarray(joints, dtype=float)
        if joints.shape != (6,) or not np.all(np.isfinite(joints)) or not math.isfinite(gripper):
            raise ValueError(f"{self.name}: need 6 finite joint targets and a finite gripper, got {joints}, {gripper}")
        mdeg = np.clip(np.round(joints * MDEG_PER_RAD), JOINT_LIMITS_MDEG[:, 0], JOINT_LIMITS_MDEG[:, 1]).astype(int)
        full_um = round(self.config.gripper_stroke_m * 1e6)
        stroke_um = int(np.clip(round(float(gripper) * full_um), 0, full_um))
        with self._lock:
            if not self._connected:
                raise RobotFault(f"{self.name}: not connected")
            if self._stopped:
                raise RobotFault(f"{self.name}: emergency stop is latched; the arm ignores motion until reset")
            self._refuse_if_faulted()
            status = self._sdk.GetArmStatus().arm_status
            mode_ok = int(status.ctrl_mode) == 0x01 and int(status.mode_feed) == 0x01
            if not mode_ok or time.monotonic() - self._last_mode_sent > self.config.mode_refresh_s:
                self._send_mode()
            self._sdk.JointCtrl(*(int(v) for v in mdeg))
            self._sdk.GripperCtrl(stroke_um, round(self.config.gripper_effort * 1000), 0x01, 0x00)
        return mdeg / MDEG_PER_RAD, stroke_um / full_um

    def _refuse_if_faulted(self) -> None:
        """RobotFault, before anything is sent, while a fault stands or a past one is not acknowledged."""
        fault = self._health_fault()
        if fault:
            self._latched = fault
            raise RobotFault(f"{self.name}: refusing motion: {fault}")
        if self._latched:
            raise RobotFault(f"{self.name}: refusing motion until the fault is acknowledged: {self._latched} "
                             "(the arm reports healthy again: acknowledge_fault() or connect())")  # fmt: skip

    def acknowledge_fault(self) -> None:
        """The operator's acknowledgement of a latched fault: clears it if the arm is healthy now, else RobotFault
        naming what still stands."""
        with self._lock:
            if self._sdk is None:
                raise RobotFault(f"{self.name}: not connected")
            fault = self._health_fault()
            if fault:
                raise RobotFault(f"{self.name}: cannot acknowledge, the fault stands: {fault}")
            if self._latched:
                log.warning("%s: fault acknowledged: %s", self.name, self._latched)
            self._latched = None

    def emergency_stop(self) -> None:
        """Damped quick stop (0x150, 0x01), latched: ``send`` refuses until ``release_power`` + ``connect``."""
        with self._lock:
            self._stopped = True
            if self._sdk is None:
                return
            for _ in range(2):  # a single lost frame must not cancel a stop
                self._sdk.EmergencyStop(0x01)
        log.warning("%s: emergency stop sent", self.name)

    def release_power(self, confirm: bool = False) -> None:
        """Operator only: reset (0x150, 0x02) and disable all motors. THE ARM DROPS: support it or park it first.
        Clears the e-stop latch; ``connect`` (which waits for the status after the reset) enables it again."""
        if not confirm:
            raise ValueError("release_power cuts motor power and the arm falls: call it with confirm=True")
        with self._lock:
            if self._sdk is None:
                raise RobotFault(f"{self.name}: not connected")
            self._reset_at = time.time()
            self._sdk.ResetPiper()
            self._sdk.DisableArm(7)
            self._connected, self._stopped = False, False
        log.warning("%s: motor power released by the operator", self.name)

    def close(self) -> None:
        """Stop commanding; the arm keeps holding its last target (no disable, no reset)."""
        with self._lock:
            self._connected = False
        if self.config.release_port_on_close and self._sdk is not None:
            release_port(self.config.can_name)
            self._sdk = None

    # feedback --------------------------------------------------------------------------------------------------
    def _feedback_age(self) -> float:
        return feedback_age(self._sdk)

    def status(self) -> PiperStatus:
        """Everything the arm reports about itself (after :meth:`open` or :meth:`connect`)."""
        if self._sdk is None:
            raise RobotFault(f"{self.name}: not open")
        return read_status(self._sdk, self.firmware)

    def read(self) -> ArmState:
        if self._sdk is None:
            raise RobotFault(f"{self.name}: not connected")
        joint_msgs = self._sdk.GetArmJointMsgs()
        js = joint_msgs.joint_state
        joints = np.array([js.joint_1, js.joint_2, js.joint_3, js.joint_4, js.joint_5, js.joint_6]) / MDEG_PER_RAD
        gripper_um = self._sdk.GetArmGripperMsgs().gripper_state.grippers_angle
        gripper = float(np.clip(gripper_um / (self.config.gripper_stroke_m * 1e6), 0.0, 1.0))
        enabled = all(self._sdk.GetArmEnableStatus())
        return ArmState(
            joints=joints, gripper=gripper, timestamp=_monotonic_of(joint_msgs.time_stamp), enabled=enabled,
            feedback_hz=float(joint_msgs.Hz), fault=self._fault(enabled),
        )  # fmt: skip

    def _health_fault(self) -> str | None:
        """What the arm's feedback says is wrong now (lost feedback, status, error and driver flags), or None."""
        age = self._feedback_age()
        if age > self.config.feedback_timeout_s or not self._sdk.isOk():
            silent = "never" if math.isinf(age) else f"for {age:.2f} s"
            return (
                f"feedback lost on '{self.config.can_name}' (no arm feedback {silent}): check the arm's power and the "
                "CAN cable"
            )
        return "; ".join(status_faults(self._sdk)) or None

    def _fault(self, enabled: bool) -> str | None:
        reasons = [] if self._connected else ["not connected"]
        if self._stopped:
            reasons.append("emergency stop latched")
        health = self._health_fault()
        with self._lock:
            if health:
                self._latched = health
            elif self._latched:
                reasons.append(f"unacknowledged fault: {self._latched}")
        if health:
            reasons.append(health)
        if self._connected and not enabled:
            disabled = [i + 1 for i, on in enumerate(self._sdk.GetArmEnableStatus()) if not on]
            reasons.append(f"motor(s) {disabled} disabled")
        return "; ".join(reasons) if reasons else None
