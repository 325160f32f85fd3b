"""The robot a trial session drives, built from ``--robot``: the twin (``sim``, in the engine of ``--sim``), the two
real Pipers with RealSense cameras (``piper``), or their rehearsal (``virtual-piper``: the real driver on the virtual
Piper pair in this process, robot/drivers/virtual_pair.py, the policy's cameras rendered on its twin; run like the
real pair: operator prompts, homing, operator judging), checked against what the policy server said it needs before
anything moves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pushcut.robot.drivers.interface import Camera, Robot
from pushcut.robot.trials.config import RunnerConfig, RunnerError, default_max_actions, require_instruction

if TYPE_CHECKING:  # the twin's module and pyzmq are imported only for the robot that needs them
    from pushcut.deploy.client.policy_client import ServerInfo
    from pushcut.robot.drivers.sim_robot import SimRobot
    from pushcut.robot.drivers.virtual_pair import VirtualPiperPair


@dataclass
class Rig:
    """A robot with its cameras; ``sim`` is the same object as ``robot`` for the twin (reset, success), else None."""

    robot: Robot
    cameras: list[Camera]
    sim: SimRobot | None = None
    step_limit: int | None = None  # the task's, when the simulator's task registry is importable
    stand_in: VirtualPiperPair | None = None  # virtual-piper: the pair the robot drives, stopped last
    feedback_timeout_s: float | None = None  # the executor's feedback-lost limit; None: ExecutorConfig's default
    _robot_connected: bool = False
    _cameras_connected: list[Camera] = field(default_factory=list)

    def connect(self) -> None:
        """Connect the robot, then each camera; RobotFault says which part failed and what to check."""
        self.robot.connect()
        self._robot_connected = True
        for camera in self.cameras:
            camera.connect()
            self._cameras_connected.append(camera)

    def close(self) -> None:
        """Release everything connected, cameras first; the arms are left holding (never disabled here)."""
        for camera in reversed(self._cameras_connected):
            camera.close()
        self._cameras_connected.clear()
        if self._robot_connected:
            self.robot.disconnect()
            self._robot_connected = False
        if self.sim is not None:
            self.sim.close()
        if self.stand_in is not None:
            self.stand_in.close()

    def default_max_actions(self, action_hz: float) -> int:
        if self.step_limit is None:
            raise RunnerError("the task's step limit is unknown here (no simulator installed): give --max-actions")
        return default_max_actions(self.step_limit, action_hz)


def build_robot(config: RunnerConfig, info: ServerInfo) -> Rig:
    """The rig for ``config.robot``, not yet connected; RunnerError when it cannot feed the served policy."""
    builders = {"sim": _build_sim, "piper": _build_piper, "virtual-piper": _build_virtual_piper}
    rig = builders[config.robot](config, info)
    from pushcut.deploy.client.policy_client import ProtocolMismatch

    try:
        info.check(cameras={c.name: (c.height, c.width) for c in rig.cameras}, state_dim=rig.robot.action_dim)
    except ProtocolMismatch as error:
        rig.close()
        raise RunnerError(f"the served policy does not fit this robot: {error.message}") from None
    return rig


def _build_sim(config: RunnerConfig, info: ServerInfo) -> Rig:
    from pushcut.robot.drivers.sim_robot import SimCamera, SimRobot, SimRobotConfig
    from pushcut.sim.env import CAMERA_NAMES
    from pushcut.sim.sapien.device import SapienUnavailable, VulkanUnavailable

    missing = [name for name in info.cameras if name not in CAMERA_NAMES]
    if missing:
        raise RunnerError(f"the policy needs camera(s) {missing}; the twin has {sorted(CAMERA_NAMES)}")
    calibration = None if config.camera_calibration is None else str(config.camera_calibration)
    try:
        sim = SimRobot(SimRobotConfig(config.task, action_hz=info.action_hz, camera_calibration=calibration,
                                      engine=config.sim))  # fmt: skip
    except ValueError as error:  # unknown task, a calibration file that cannot be used
        raise RunnerError(str(error)) from None
    except (SapienUnavailable, VulkanUnavailable) as error:  # --sim sapien on a machine without SAPIEN or Vulkan
        raise RunnerError(f"--sim {config.engine}: {error}") from None
    try:
        cameras: list[Camera] = [
            SimCamera(sim, name, width=shape[1], height=shape[0], fps=info.action_hz)
            for name, shape in info.cameras.items()
        ]
    except ValueError as error:  # the calibration is for another resolution than the policy's
        sim.close()
        raise RunnerError(str(error)) from None
    return Rig(sim, cameras, sim=sim, step_limit=sim.env.step_limit)


def _build_virtual_piper(config: RunnerConfig, info: ServerInfo) -> Rig:
    """The real driver on the virtual Piper pair; the policy's cameras are the twin's."""
    require_instruction(config)
    from pushcut.robot.drivers.bimanual import BimanualConfig, PiperBimanual
    from pushcut.robot.drivers.interface import RobotFault
    from pushcut.robot.drivers.piper_arm import PiperArmConfig
    from pushcut.robot.drivers.virtual_pair import REHEARSAL_FEEDBACK_TIMEOUT_S, VirtualPairConfig, VirtualPiperPair

    calibration = None if config.camera_calibration is None else str(config.camera_calibration)
    try:
        pair = VirtualPiperPair(VirtualPairConfig(config.task, config.seed_start, twin=True,
                                                  camera_calibration=calibration)).start()  # fmt: skip
    except (RobotFault, ValueError) as error:  # no simulator installed, an unknown task, an unusable calibration
        raise RunnerError(f"--robot virtual-piper: {error}") from None
    try:
        cameras = [pair.camera(name, shape[1], shape[0], fps=info.action_hz) for name, shape in info.cameras.items()]
    except RobotFault as error:
        pair.close()
        raise RunnerError(str(error)) from None
    timeout = REHEARSAL_FEEDBACK_TIMEOUT_S  # the pair shares this process: see its definition
    robot = PiperBimanual.from_config(BimanualConfig(
        left=PiperArmConfig(can_name=pair.channels["left"], name="left", feedback_timeout_s=timeout),
        right=PiperArmConfig(can_name=pair.channels["right"], name="right", feedback_timeout_s=timeout),
    ), bustype="virtual", release_port_on_close=True)  # fmt: skip
    return Rig(robot, cameras, step_limit=pair.twin.env.step_limit, stand_in=pair, feedback_timeout_s=timeout)


def _build_piper(config: RunnerConfig, info: ServerInfo) -> Rig:
    require_instruction(config)
    try:
        from pushcut.robot.drivers.bimanual import BimanualConfig, PiperBimanual
        from pushcut.robot.drivers.cameras import RealSenseCamera, RealSenseConfig
        from pushcut.robot.drivers.piper_arm import PiperArmConfig
    except ImportError as error:
        raise RunnerError("--robot piper needs robot/drivers/bimanual.py, piper_arm.py and cameras.py "
                          f"and their packages (pip install 'pushcut[robot]'): {error}") from None  # fmt: skip
    serials = dict(config.camera_serials)
    missing = [name for name in info.cameras if name not in serials]
    if missing:
        raise RunnerError(f"the policy needs camera(s) {missing}: give each its RealSense serial with "
                          "--camera NAME=SERIAL (`rs-enumerate-devices -s` lists them)")  # fmt: skip
    cameras: list[Camera] = [
        RealSenseCamera(RealSenseConfig(serial=serials[name], name=name, width=shape[1], height=shape[0]))
        for name, shape in info.cameras.items()
    ]
    _check_calibration(config, {c.name: (c.width, c.height, c.config.serial) for c in cameras})
    robot = PiperBimanual.from_config(BimanualConfig(
        left=PiperArmConfig(can_name=config.can_left, name="left"),
        right=PiperArmConfig(can_name=config.can_right, name="right"),
    ))  # fmt: skip
    return Rig(robot, cameras, step_limit=_task_step_limit(config.task))


def _check_calibration(config: RunnerConfig, cameras: dict[str, tuple[int, int, str]]) -> None:
    """The calibration given must be of one of the robot's cameras: the same serial and resolution."""
    if config.camera_calibration is None:
        return
    from pushcut.sim.camera_calibration import CalibrationError, CameraCalibration

    try:
        calibration = CameraCalibration.load(config.camera_calibration)
        if calibration.camera not in cameras:
            raise CalibrationError(f"{config.camera_calibration} calibrates {calibration.camera!r}, which this "
                                   f"policy does not use (cameras: {sorted(cameras)})")  # fmt: skip
        width, height, serial = cameras[calibration.camera]
        calibration.check(calibration.camera, width, height, str(config.camera_calibration))
    except CalibrationError as error:
        raise RunnerError(str(error)) from None
    if calibration.serial != serial:
        raise RunnerError(f"{config.camera_calibration} was made with camera {calibration.serial}, but "
                          f"{calibration.camera} is {serial} here: align this camera again")  # fmt: skip


def _task_step_limit(task: str) -> int | None:
    try:
        from pushcut.sim.registry import get_task
    except ImportError:  # the robot computer may have no simulator; then --max-actions is needed
        return None
    try:
        return get_task(task).step_limit
    except ValueError as error:
        raise RunnerError(str(error)) from None
