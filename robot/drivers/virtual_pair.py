"""The virtual Piper pair: a stand-in for the two real arms, in this process, to rehearse every robot command on the
real driver's code path without hardware (``--robot virtual-piper``).

Two Piper emulators (:mod:`~pushcut.robot.drivers.virtual_piper`: our emulator of the arm's CAN protocol, at the
hardware boundary) listen on fresh python-can ``virtual`` channels; the real driver (``PiperArm`` through the real
piper_sdk) opens those channels as it opens can_left / can_right. When mujoco is installed, the arms the emulators
move are the MuJoCo twin's (:class:`~pushcut.robot.drivers.sim_robot.SimRobot`, the task's scene on ``seed``): each
emulator's speed-limited servo position is the twin's servo target, and the joints and gripper it reports are the
twin's measured ones, so they lag and settle like the simulated arms and :meth:`VirtualPiperPair.camera` renders
the scene they move in. Without mujoco (``pushcut[robot]`` alone) the emulators move kinematically and there are
no cameras; ``twin_missing`` says why. Both arms start folded at the rest pose, grippers closed, as parked arms do.

``close()`` releases the piper_sdk ports opened on the channels, stops the emulators and the twin: no thread of
theirs outlives it (the SDK's reader threads are daemons and stop reading once the port is released).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pushcut.robot.drivers.interface import Camera, RobotFault
from pushcut.robot.drivers.piper_port import release_port
from pushcut.robot.drivers.virtual_piper import VirtualPiper, VirtualPiperConfig
from pushcut.sim import piper_spec as spec

if TYPE_CHECKING:
    from pushcut.robot.drivers.sim_robot import SimRobot

SIDES = ("left", "right")
_SLICES = {"left": (spec.LEFT_ARM_SLICE, spec.LEFT_GRIPPER_INDEX), "right": (spec.RIGHT_ARM_SLICE,
                                                                             spec.RIGHT_GRIPPER_INDEX)}  # fmt: skip
START_POSE = np.concatenate([spec.REST_POSE, [0.0], spec.REST_POSE, [0.0]])  # folded, grippers closed
# The emulators, the twin's physics, the cameras and the SDK's readers share one process (and its GIL): on a busy
# machine their frames come in bursts (CI measured gaps of 0.22 s on 2 cores and 0.54 s on one), so a rehearsal
# counts feedback as lost later than the 0.2 s that stays the rule for real arms (PiperArmConfig, ExecutorConfig).
# Every driver and executor on the pair uses this; a stopped emulator is still found within 2 s.
REHEARSAL_FEEDBACK_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class VirtualPairConfig:
    task: str = "click_bell"  # the twin's scene
    seed: int = 0  # its layout
    twin: bool | None = None  # None: the twin when mujoco is installed; True: required; False: no twin
    rate_hz: float = 100.0  # feedback groups per second of each emulator
    camera_calibration: str | None = None  # the twin's head camera (`pushcut robot align`)
    prefix: str | None = None  # channel names PREFIX-left / PREFIX-right; default unique per pair


class TwinArm:
    """One arm of the twin as an emulator's plant (``ArmPlant``): grippers in metres of stroke on the CAN side, as
    an opening in [0, 1] on the twin's. Both arms share the twin's 14-D target."""

    def __init__(self, twin: SimRobot, side: str, target: np.ndarray, lock: threading.Lock) -> None:
        self.twin, self.side, self._target, self._lock = twin, side, target, lock
        self._joints, self._gripper = _SLICES[side]
        self._index = SIDES.index(side)

    def follow(self, joints: np.ndarray, gripper_m: float) -> None:
        with self._lock:
            self._target[self._joints] = joints
            self._target[self._gripper] = gripper_m / spec.GRIPPER_STROKE_M
            target = self._target.copy()
        self.twin.send_action(target)

    def measured(self) -> tuple[np.ndarray, float]:
        arm = self.twin.get_state().arms[self._index]
        return arm.joints, arm.gripper * spec.GRIPPER_STROKE_M


class VirtualPiperPair:
    """Two emulated Pipers on ``channels`` (side -> virtual CAN channel), their twin (or None); a context manager."""

    def __init__(self, config: VirtualPairConfig | None = None) -> None:
        self.config = config or VirtualPairConfig()
        prefix = self.config.prefix or f"vpiper-{uuid.uuid4().hex[:8]}"
        self.channels = {side: f"{prefix}-{side}" for side in SIDES}
        self.twin: SimRobot | None = None
        self.twin_missing: str | None = None  # why there is no twin
        self.emulators: dict[str, VirtualPiper] = {}
        self._closed = False

    def start(self) -> VirtualPiperPair:
        try:
            self._start_twin()
            plants = self._plants()
            for side in SIDES:
                config = VirtualPiperConfig(channel=self.channels[side], rate_hz=self.config.rate_hz,
                                            initial_joints=tuple(spec.REST_POSE))  # fmt: skip
                self.emulators[side] = VirtualPiper(config, plants.get(side)).start()
        except BaseException:
            self.close()
            raise
        return self

    def _start_twin(self) -> None:
        if self.config.twin is False:
            self.twin_missing = "not asked for"
            return
        try:
            from pushcut.robot.drivers.sim_robot import SimRobot, SimRobotConfig

            twin = SimRobot(SimRobotConfig(self.config.task, camera_calibration=self.config.camera_calibration))
        except ModuleNotFoundError as error:  # pushcut[robot] alone: no simulator
            if (error.name or "").startswith("pushcut"):
                raise
            missing = f"{error.name} is not installed, pip install 'pushcut[sim]'"
            if self.config.twin:
                raise RobotFault(f"the virtual Piper pair's twin cannot start: {missing}") from None
            self.twin_missing = missing
            return
        self.twin = twin
        twin.reset(self.config.seed)
        twin.place(START_POSE)
        twin.connect()

    def _plants(self) -> dict[str, TwinArm]:
        if self.twin is None:
            return {}
        target, lock = START_POSE.copy(), threading.Lock()
        return {side: TwinArm(self.twin, side, target, lock) for side in SIDES}

    @property
    def label(self) -> str:
        scene = f"twin of {self.config.task}, seed {self.config.seed}" if self.twin is not None else "no twin"
        return f"virtual-piper ({scene})"

    def describe(self) -> str:
        """One line: where the emulators listen and what moves their arms."""
        where = f"Piper emulators on virtual CAN channels {self.channels['left']} / {self.channels['right']}"
        if self.twin is None:
            return f"{where}, moving kinematically (no MuJoCo twin: {self.twin_missing}; no cameras)"
        return f"{where}, their arms the MuJoCo twin of {self.config.task} (seed {self.config.seed})"

    def camera(self, name: str, width: int, height: int, fps: float = 30.0) -> Camera:
        """The twin's camera ``name`` (rendered on demand, at the twin's current state); not yet connected."""
        if self.twin is None:
            raise RobotFault(f"camera {name}: the virtual Piper pair has no twin to render it: {self.twin_missing}")
        from pushcut.robot.drivers.sim_robot import SimCamera

        try:
            return SimCamera(self.twin, name, width=width, height=height, fps=fps)
        except ValueError as error:  # an unknown camera, a calibration for another resolution
            raise RobotFault(str(error)) from None

    def close(self) -> None:
        """Release the SDK's ports on the channels, stop the emulators, then the twin (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for side in SIDES:
            release_port(self.channels[side])
        for emulator in self.emulators.values():
            emulator.close()
        if self.twin is not None:
            self.twin.close()

    def __enter__(self) -> VirtualPiperPair:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
