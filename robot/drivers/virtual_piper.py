"""A virtual AgileX Piper: our own emulator of the arm's CAN protocol on python-can's ``virtual`` bus.

It lets the real driver (:mod:`pushcut.robot.drivers.piper_arm`) run, unchanged, through the real ``piper_sdk`` code
with no hardware. A background thread owns a ``can.Bus(interface="virtual", channel=...)``; the SDK opens the same
channel.

Protocol (big-endian; layouts checked against piper_sdk 0.6.2 ``protocol_v2/piper_protocol_v2.py``):

- commands in: 0x471 enable/disable (motor 1-6, 7/0xFF = all; 0x02 enable, 0x01 disable), 0x151 mode (ctrl_mode,
  move_mode, speed %), 0x155-0x157 joint targets (int32 pairs, 0.001 deg), 0x159 gripper (int32 stroke 0.001 mm,
  uint16 effort 0.001 N m, code: bit 0 = enable), 0x150 e-stop (0x01 quick stop, 0x02 reset), 0x4AF firmware
  query (answered one tick later with "S-V1.6-3", as the SDK clears its buffer right after asking);
- feedback out, every tick: 0x2A1 status, 0x2A5-0x2A7 joints, 0x2A8 gripper, 0x261-0x266 low-speed info (bit 6 of
  the status byte = enabled), optionally 0x251-0x256 high-speed info.

Behaviour modelled on the real arm: joint targets are ignored unless all six motors are enabled, ctrl_mode is CAN
(0x01) and move_mode is MOVE J (0x01); joints move toward the target at ``max_speed * speed% / 100``; an out-of-range
target is refused with arm_status 4 and the joint's angle-limit flag; e-stop 0x01 freezes the arm (arm_status 1) and
motion is ignored until a 0x02 reset, which cuts motor power (counted in ``power_cuts``) and returns to standby.
An optional ``plant`` is what the motors move (the virtual Piper pair's MuJoCo twin, robot/drivers/virtual_pair.py):
each tick it follows the speed-limited servo position, and the joints and gripper it measures are the feedback.
Faults to inject: silence (feedback stops), a forced arm status (e.g. 7 collision, freezing the arm), motors that
refuse to enable, per-motor driver flags (collision, stall, ...), per-joint communication errors.
Not modelled: dynamics (but see the plant), gravity after a power cut, end-pose feedback (0x2A2-0x2A4), limit
queries (0x472), MIT and Cartesian modes.
"""

from __future__ import annotations

import logging
import math
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import can
import numpy as np

from pushcut.sim.piper_spec import GRIPPER_STROKE_M, JOINT_LIMITS_RAD, MAX_JOINT_SPEED_RAD_S, REST_POSE

ENABLE_BIT = 1 << 6  # status byte of 0x261-0x266 and 0x2A8
COLLISION_BIT = 1 << 4  # low-speed status byte
STALL_BIT = 1 << 7
DRIVER_ERROR_BIT = 1 << 5
FIRMWARE = b"S-V1.6-3"
_LIMITS_MDEG = np.degrees(JOINT_LIMITS_RAD) * 1000.0
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VirtualPiperConfig:
    channel: str
    rate_hz: float = 100.0  # feedback groups per second (the real arm: ~200 Hz, ~3,100 frames/s in all)
    high_speed_feedback: bool = False  # also stream 0x251-0x256 (costs CPU in the SDK's reader thread)
    max_joint_speed: float = MAX_JOINT_SPEED_RAD_S  # rad/s at 100 % speed
    gripper_speed: float = 0.1  # m/s of stroke
    initial_joints: tuple[float, ...] = tuple(REST_POSE)
    initial_gripper_m: float = 0.0


class ArmPlant(Protocol):
    """What the emulated motors move: it follows the servo position, and what it measures is reported."""

    def follow(self, joints: np.ndarray, gripper_m: float) -> None: ...

    def measured(self) -> tuple[np.ndarray, float]:
        """(6 joint angles in rad, gripper stroke in m)."""
        ...


@dataclass(frozen=True)
class VirtualPiperState:
    """A snapshot of the emulated arm (radians, metres)."""

    joints: np.ndarray  # the servo position (with a plant, what it follows; the feedback is what it measures)
    target: np.ndarray
    gripper_m: float
    enabled: tuple[bool, ...]  # six joint motors
    gripper_enabled: bool
    ctrl_mode: int
    move_mode: int
    speed_percent: int
    arm_status: int
    estopped: bool
    power_cuts: int  # times the motors were disabled or reset (the real arm drops)


class VirtualPiper:
    """The emulator; use as a context manager or call ``start()`` / ``close()``."""

    def __init__(self, config: VirtualPiperConfig, plant: ArmPlant | None = None) -> None:
        self.config = config
        self._plant = plant
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bus: can.BusABC | None = None
        self._received: deque[can.Message] = deque(maxlen=20_000)  # about 20 s of commands at 200 Hz x 5 frames
        self._joints = np.array(config.initial_joints, dtype=float)
        self._target = self._joints.copy()
        self._gripper = float(config.initial_gripper_m)
        self._gripper_target = self._gripper
        self._gripper_effort = 0
        self._enabled = [False] * 6
        self._gripper_enabled = False
        self._ctrl_mode, self._move_mode, self._speed = 0x00, 0x00, 0
        self._estopped = False
        self._limit_flags = 0  # err_code bits 8..13
        self._power_cuts = 0
        # injected faults
        self._silent = False
        self._forced_status: int | None = None
        self._refused: set[int] = set()
        self._comm_errors = 0  # err_code bits 0..5
        self._foc_flags = [0] * 6
        self._pending_firmware = False

    # lifecycle ------------------------------------------------------------------------------------------------
    def start(self) -> VirtualPiper:
        if self._thread is not None:
            return self
        self._bus = can.Bus(interface="virtual", channel=self.config.channel)
        self._thread = threading.Thread(target=self._run, name=f"virtual-piper-{self.config.channel}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self._bus is not None:
            self._bus.shutdown()
            self._bus = None

    def __enter__(self) -> VirtualPiper:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # fault injection --------------------------------------------------------------------------------------------
    def stop_feedback(self) -> None:
        """Go silent, as with a pulled cable or a dead controller (commands are still received)."""
        with self._lock:
            self._silent = True

    def resume_feedback(self) -> None:
        with self._lock:
            self._silent = False

    def force_arm_status(self, code: int | None) -> None:
        """Report ``code`` in 0x2A1 (e.g. 7 collision, 5 joint communication error); None: back to normal.
        Any forced fault code freezes the arm like the real controller's protective stop."""
        with self._lock:
            self._forced_status = code
            if code not in (None, 0):
                self._target = self._joints.copy()

    def refuse_enable(self, motors: tuple[int, ...] = (1, 2, 3, 4, 5, 6)) -> None:
        """These motors (1..6) ignore enable commands (e-stop button pressed, driver fault)."""
        with self._lock:
            self._refused = set(motors)
            for m in self._refused:
                self._enabled[m - 1] = False

    def set_driver_flags(self, motor: int, flags: int) -> None:
        """Low-speed status bits of one motor (COLLISION_BIT, STALL_BIT, DRIVER_ERROR_BIT, ...; the enable bit is
        managed by the emulator)."""
        with self._lock:
            self._foc_flags[motor - 1] = flags & ~ENABLE_BIT

    def set_comm_errors(self, joints: tuple[int, ...]) -> None:
        """Per-joint communication-error flags (err_code low byte)."""
        with self._lock:
            self._comm_errors = sum(1 << (j - 1) for j in joints)

    # inspection ------------------------------------------------------------------------------------------------
    def state(self) -> VirtualPiperState:
        with self._lock:
            return VirtualPiperState(
                self._joints.copy(), self._target.copy(), self._gripper, tuple(self._enabled), self._gripper_enabled,
                self._ctrl_mode, self._move_mode, self._speed, self._status_code(), self._estopped, self._power_cuts,
            )  # fmt: skip

    def received(self, can_id: int | None = None) -> list[can.Message]:
        """Frames received from the driver so far (optionally only one CAN id)."""
        with self._lock:
            return [m for m in self._received if can_id is None or m.arbitration_id == can_id]

    # the arm ---------------------------------------------------------------------------------------------------
    def _run(self) -> None:
        period = 1.0 / self.config.rate_hz
        last = next_tick = time.monotonic()
        while not self._stop.is_set():
            wait = next_tick - time.monotonic()
            msg = self._bus.recv(timeout=wait) if wait > 0 else None
            if msg is not None:  # commands are handled on arrival, ticks are never starved by a command stream
                with self._lock:
                    self._received.append(msg)
                    self._handle(msg.arbitration_id, bytes(msg.data))
                continue
            now = time.monotonic()
            with self._lock:
                self._move(now - last)
                servo = (self._joints.copy(), self._gripper)
            measured = self._drive_plant(servo) if self._plant is not None else servo
            with self._lock:
                frames = [] if self._silent or measured is None else self._feedback(*measured)
            last = now
            for arbitration_id, data in frames:
                self._bus.send(can.Message(arbitration_id=arbitration_id, data=data, is_extended_id=False))
            next_tick = max(next_tick + period, now)

    def _drive_plant(self, servo: tuple[np.ndarray, float]) -> tuple[np.ndarray, float] | None:
        """The plant follows the servo position; what it measures (None once it failed: the arm goes silent, as a
        dead controller would, and the driver reports lost feedback)."""
        try:
            self._plant.follow(*servo)
            return self._plant.measured()
        except Exception:  # noqa: BLE001 - logged once, then silence
            log.exception("virtual Piper on %s: its plant failed; feedback stops", self.config.channel)
            self._plant = None
            with self._lock:
                self._silent = True
            return None

    def _motion_allowed(self) -> bool:
        return (
            all(self._enabled) and self._ctrl_mode == 0x01 and not self._estopped
            and self._forced_status in (None, 0)
        )  # fmt: skip

    def _handle(self, can_id: int, data: bytes) -> None:
        if can_id == 0x471:
            motor, flag = data[0], data[1]
            motors = range(1, 7) if motor in (7, 0xFF) else [motor] if 1 <= motor <= 6 else []
            for m in motors:
                if flag == 0x02 and m not in self._refused:
                    self._enabled[m - 1] = True
                elif flag == 0x01:
                    self._power_cut([m])
            if motor in (7, 0xFF):
                self._gripper_enabled = flag == 0x02
        elif can_id == 0x150:
            if data[0] == 0x01:
                self._estopped, self._target = True, self._joints.copy()
                self._gripper_target = self._gripper
            elif data[0] == 0x02:  # reset: the real arm loses power and falls, errors are cleared
                self._estopped, self._limit_flags, self._ctrl_mode = False, 0, 0x00
                self._power_cut(range(1, 7))
        elif can_id == 0x151 and not self._estopped:
            self._ctrl_mode, self._move_mode, self._speed = data[0], data[1], min(data[2], 100)
        elif 0x155 <= can_id <= 0x157:
            first = 2 * (can_id - 0x155)
            self._joint_command(first, struct.unpack(">ii", data))
        elif can_id == 0x159:
            stroke_um, effort, code, _ = struct.unpack(">iHBB", data)
            self._gripper_enabled = bool(code & 0x01)
            if self._gripper_enabled and self._motion_allowed():
                self._gripper_target = min(max(stroke_um / 1e6, 0.0), GRIPPER_STROKE_M)
                self._gripper_effort = effort
        elif can_id == 0x4AF:
            self._pending_firmware = True

    def _power_cut(self, motors: range | list[int]) -> None:
        for m in motors:
            self._enabled[m - 1] = False
        self._power_cuts += 1
        self._target = self._joints.copy()

    def _joint_command(self, first: int, values: tuple[int, int]) -> None:
        if not (self._motion_allowed() and self._move_mode == 0x01):
            return
        for j, mdeg in zip((first, first + 1), values):
            low, high = _LIMITS_MDEG[j]
            if low <= mdeg <= high:
                self._limit_flags &= ~(1 << (8 + j))
                self._target[j] = math.radians(mdeg / 1000.0)
            else:  # refused, the arm reports "target angle exceeds limit"
                self._limit_flags |= 1 << (8 + j)

    def _move(self, dt: float) -> None:
        if not self._motion_allowed():
            return
        step = self.config.max_joint_speed * max(self._speed, 1) / 100.0 * dt
        self._joints += np.clip(self._target - self._joints, -step, step)
        g_step = self.config.gripper_speed * dt
        self._gripper += float(np.clip(self._gripper_target - self._gripper, -g_step, g_step))

    def _status_code(self) -> int:
        if self._forced_status is not None:
            return self._forced_status
        if self._estopped:
            return 0x01
        return 0x04 if self._limit_flags else 0x00

    def _feedback(self, joints: np.ndarray, gripper_m: float) -> list[tuple[int, bytes]]:
        mdeg = [round(math.degrees(q) * 1000.0) for q in joints]
        moving = int(np.any(np.abs(self._target - self._joints) > 1e-4))
        err_code = self._limit_flags | self._comm_errors
        frames = [
            (0x2A1, struct.pack(">6BH", self._ctrl_mode, self._status_code(), self._move_mode, 0, moving, 0, err_code)),
            (0x2A5, struct.pack(">ii", mdeg[0], mdeg[1])),
            (0x2A6, struct.pack(">ii", mdeg[2], mdeg[3])),
            (0x2A7, struct.pack(">ii", mdeg[4], mdeg[5])),
            (0x2A8, struct.pack(">ihBx", round(gripper_m * 1e6), min(self._gripper_effort, 32767),
                                ENABLE_BIT if self._gripper_enabled else 0)),
        ]  # fmt: skip
        for i in range(6):
            status = self._foc_flags[i] | (ENABLE_BIT if self._enabled[i] else 0)
            frames.append((0x261 + i, struct.pack(">HhbBH", 240, 35, 30, status, 100)))  # 24.0 V, 35/30 degC, 0.1 A
        if self.config.high_speed_feedback:
            for i in range(6):
                frames.append((0x251 + i, struct.pack(">hhi", 0, 0, round(joints[i] * 1000.0))))
        if self._pending_firmware:  # answered a tick later: the SDK clears its buffer just after asking
            self._pending_firmware = False
            frames.append((0x4AF, FIRMWARE))
        return frames
