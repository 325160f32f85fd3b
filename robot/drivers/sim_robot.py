"""The twin behind the robot contracts: :class:`SimRobot` (a :class:`~pushcut.robot.drivers.interface.Robot`) and
:class:`SimCamera` (a :class:`~pushcut.robot.drivers.interface.Camera`) on one :class:`~pushcut.sim.env.DualPiperEnv`
in either engine of ``pushcut.sim.world.ENGINES`` (``SimRobotConfig.engine``: MuJoCo by default, or SAPIEN).

Real time. A physics thread keeps the simulation clock on the wall clock: every ``physics_period_s`` it steps the
world by as many timesteps as wall time has advanced (``mj_step`` releases the GIL; a SAPIEN step takes ~0.06 ms on
a CPU). ``send_action`` only stores the target, as a CAN command would; the physics thread moves the servo targets
towards it at most ``max_joint_speed`` rad/s (the firmware's speed limit; grippers move at once) and publishes
feedback with the time it was computed. So an executor ticking at 100-200 Hz drives the twin exactly as it drives a
real arm: a command acts within one physics period, and nothing advances faster or slower because of who calls what.
When the machine falls behind by more than ``max_lag_s`` the simulation clock slips (the missed time is dropped and
counted in ``slipped_s``) instead of fast-forwarding in a burst. The task's success predicate is checked once per
control period (1 / ``action_hz``, as ``DualPiperEnv`` does after every action) and latched. The env is driven only
through its public API (``apply_servo_target``, ``advance_physics``, ``update_success``, ``render_camera``,
``timestep``) and the World protocol (``world.time()``): no engine's own objects are reached here.

Thread safety. One lock guards the world: stepping, target writes, state reads and camera renders (a render reads
the state it draws: MuJoCo's MjData, SAPIEN's scene). A render holds the physics back while it draws (MuJoCo on
osmesa: ~3 ms at 320 x 240; SAPIEN on lavapipe: ~13 ms), well within ``max_lag_s``; the physics then catches up on
the wall clock. The engines are imported lazily (the robot side stays light).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from pushcut.common.conventions import DEFAULT_ACTION_HZ
from pushcut.robot.drivers.interface import ArmState, Frame, RobotFault, RobotState
from pushcut.sim import piper_spec as spec
from pushcut.sim.world import ENGINES

_ARM_DIMS = np.r_[spec.LEFT_ARM_SLICE, spec.RIGHT_ARM_SLICE]


@dataclass(frozen=True)
class SimRobotConfig:
    task: str
    action_hz: float = DEFAULT_ACTION_HZ  # the policy's rate; the success predicate is checked at this rate
    physics_period_s: float = 0.005  # physics thread period = feedback period (the Piper streams at ~200 Hz)
    max_lag_s: float = 0.05  # fall further behind than this and the simulation clock slips
    max_joint_speed: float = spec.MAX_JOINT_SPEED_RAD_S  # servo-target speed limit (rad/s), as the firmware's
    randomization: str = "clean"  # a preset of sim/randomization.py: clean, randomized or one factor
    instruction_split: str = "seen"  # instruction templates, as `pushcut eval` uses
    camera_calibration: str | None = None  # the head camera's calibration file (`pushcut robot align`)
    engine: str = "mujoco"  # the physics engine and renderer (pushcut.sim.world.ENGINES)

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"unknown twin engine {self.engine!r}; expected one of {', '.join(ENGINES)}")
        if not 0.0005 <= self.physics_period_s <= 0.05:
            raise ValueError(f"physics_period_s={self.physics_period_s} must be within [0.0005, 0.05]")
        if self.max_lag_s < self.physics_period_s:
            raise ValueError(f"max_lag_s={self.max_lag_s} must be at least physics_period_s={self.physics_period_s}")
        if self.max_joint_speed <= 0:
            raise ValueError(f"max_joint_speed={self.max_joint_speed} must be positive")


class SimRobot:
    """The dual-Piper twin of a task, driven in real time. ``connect()`` starts the physics thread, ``reset(seed)``
    lays out a new episode, ``success()`` is the latched task predicate, ``instruction`` the episode's instruction."""

    action_dim = spec.ACTION_DIM
    kind = "sim"

    def __init__(self, config: SimRobotConfig) -> None:
        from pushcut.sim.camera_calibration import CameraCalibration
        from pushcut.sim.registry import make  # the engine loads here, not at import

        self.config = config
        calibration = None if config.camera_calibration is None else CameraCalibration.load(config.camera_calibration)
        self.camera_calibration = calibration  # its cameras check their resolution against it
        width, height = (320, 240) if calibration is None else (calibration.width, calibration.height)
        self.env = make(config.task, cameras=(), action_hz=config.action_hz, randomization=config.randomization,
                        instruction_split=config.instruction_split, camera_calibration=calibration,
                        image_width=width, image_height=height, engine=config.engine)  # fmt: skip
        self.engine = config.engine
        self.lock = threading.Lock()  # guards the env's world: physics, state, servo targets and camera renders
        self._dt = float(self.env.timestep)
        self._low, self._high = self.env.action_low, self.env.action_high
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._faults: dict[str, str] = {}
        self._silent: set[str] = set()  # arms whose feedback stopped (fault injection)
        self._estopped = False
        self._episode = False  # the task predicate is defined only after the first reset
        self.slipped_s = 0.0
        self._anchor(self.env.measured_joints())

    # ------------------------------------------------------------------ episode
    def _anchor(self, pose: np.ndarray) -> None:
        """Start the wall clock <-> simulation clock mapping now, holding ``pose`` (call with the lock held)."""
        self._target = pose.copy()  # what send_action asked for
        self._servo = pose.copy()  # the speed-limited servo target the physics applies
        self._wall0 = time.monotonic()
        self._steps = 0
        self._next_check = self.env.world.time()
        self._feedback = {arm: (pose.copy(), self._wall0) for arm in spec.ARMS}  # (14-D measured, time) per arm
        self._apply_servo()

    def reset(self, seed: int) -> str:
        """A new episode on ``seed`` (the arms back at the ready pose, faults and e-stop cleared); its instruction."""
        with self.lock:
            self.env.reset(seed=seed)
            self._faults.clear()
            self._silent.clear()
            self._estopped = False
            self._episode = True
            self._anchor(self.env.commanded_action)
        return self.env.instruction

    def place(self, pose: np.ndarray) -> None:
        """Put both arms at the 14-D ``pose`` at once (clipped to the limits; no physics) and hold them there: where
        a stand-in for the real arms starts (the virtual Piper pair: folded at rest)."""
        pose = np.clip(np.asarray(pose, dtype=np.float64), self._low, self._high)
        with self.lock:
            self.env.pose_arms(pose)
            self._anchor(pose)

    @property
    def instruction(self) -> str:
        return self.env.instruction

    @property
    def seed(self) -> int | None:
        return self.env.seed_value

    def success(self) -> bool:
        """The task predicate, latched since the last reset."""
        return bool(self.env.success)

    def strategy(self) -> str | None:
        """How the episode succeeded (grasp / push / drag / press, sim/strategy.py); None before success."""
        return self.env.strategy

    # ------------------------------------------------------------------ Robot contract
    def connect(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self.lock:
            self._anchor(self._servo)
        self._stop.clear()
        self._thread = threading.Thread(target=self._physics_loop, name="pushcut-sim-physics", daemon=True)
        self._thread.start()

    def disconnect(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def close(self) -> None:
        self.disconnect()
        self.env.close()

    def get_state(self) -> RobotState:
        with self.lock:
            feedback, faults, silent = dict(self._feedback), dict(self._faults), set(self._silent)
            enabled = not self._estopped
        rate = 1.0 / self.config.physics_period_s
        arms = []
        for arm, (sl, gi) in zip(spec.ARMS, ((spec.LEFT_ARM_SLICE, 6), (spec.RIGHT_ARM_SLICE, 13))):
            q, stamp = feedback[arm]
            arms.append(ArmState(q[sl].copy(), float(q[gi]), stamp, enabled=enabled,
                                 feedback_hz=0.0 if arm in silent else rate, fault=faults.get(arm)))  # fmt: skip
        return RobotState(tuple(arms), tuple(f"{arm}: {why}" for arm, why in faults.items()))

    def send_action(self, action: np.ndarray) -> np.ndarray:
        """Store a 14-D target, clipped to the joint and gripper limits; returns the clipped target."""
        array = np.asarray(action, dtype=np.float64)
        if array.shape != (spec.ACTION_DIM,) or not np.all(np.isfinite(array)):
            raise ValueError(f"action must be 14 finite numbers (rad, grippers 0..1), got {array!r}")
        sent = np.clip(array, self._low, self._high)
        with self.lock:
            if self._thread is None:
                raise RobotFault("the sim robot is not connected: call connect() first")
            if self._estopped:
                raise RobotFault("emergency stop engaged: the twin holds its pose until reset()")
            if self._faults:
                raise RobotFault(f"arm fault: {'; '.join(f'{a}: {w}' for a, w in self._faults.items())}")
            self._target = sent.copy()
        return sent

    def emergency_stop(self) -> None:
        """Hold the measured pose; commands are refused until ``reset()``."""
        with self.lock:
            self._estopped = True
            self._servo = self.env.measured_joints()
            self._target = self._servo.copy()
            self._apply_servo()

    # ------------------------------------------------------------------ fault injection (tests)
    def inject_fault(self, message: str, arm: str = "left") -> None:
        """The arm reports a fault (as a collision or limit status would); commands raise RobotFault."""
        self._check_arm(arm)
        with self.lock:
            self._faults[arm] = message

    def stop_feedback(self, arm: str = "left") -> None:
        """The arm's feedback stops: its state keeps the last timestamp (as a silent CAN bus)."""
        self._check_arm(arm)
        with self.lock:
            self._silent.add(arm)

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()
            self._silent.clear()

    @staticmethod
    def _check_arm(arm: str) -> None:
        if arm not in spec.ARMS:
            raise ValueError(f"arm must be one of {spec.ARMS}, got {arm!r}")

    # ------------------------------------------------------------------ physics thread
    def _physics_loop(self) -> None:
        period = self.config.physics_period_s
        wake = time.monotonic()
        while not self._stop.is_set():
            wake += period
            delay = wake - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                wake = time.monotonic()  # behind: no burst of catch-up wake-ups
            with self.lock:
                try:
                    self._advance_to(time.monotonic())
                except Exception as error:  # noqa: BLE001 — reported as a fault of both arms, never silent
                    self._faults.update(dict.fromkeys(spec.ARMS, f"simulation stopped: {error!r}"))
                    return

    def _advance_to(self, now: float) -> None:
        """Step the physics up to wall time ``now`` (lock held)."""
        due = int((now - self._wall0) / self._dt) - self._steps
        if due <= 0:
            return
        limit = max(1, int(self.config.max_lag_s / self._dt))
        if due > limit:
            self.slipped_s += (due - limit) * self._dt
            self._steps += due - limit
            due = limit
        step = self.config.max_joint_speed * due * self._dt
        delta = self._target - self._servo
        delta[_ARM_DIMS] = np.clip(delta[_ARM_DIMS], -step, step)
        self._servo = self._servo + delta
        self._apply_servo()
        self.env.advance_physics(due)
        self._steps += due
        state = (self.env.measured_joints(), now)
        self._feedback = {arm: self._feedback[arm] if arm in self._silent else state for arm in spec.ARMS}
        clock = self.env.world.time()
        if self._episode and clock >= self._next_check:
            self._next_check = clock + 1.0 / self.config.action_hz
            self.env.update_success()

    def _apply_servo(self) -> None:
        self.env.apply_servo_target(self._servo)  # also what the task predicates read as commanded


class SimCamera:
    """A named camera of a :class:`SimRobot`'s scene, rendered on demand by the twin's engine: ``read()`` renders
    the current state (a new frame every call; ``fps`` is nominal)."""

    def __init__(self, robot: SimRobot, name: str, width: int = 320, height: int = 240, fps: float = 30.0) -> None:
        from pushcut.sim.env import CAMERA_NAMES

        if name not in CAMERA_NAMES:
            raise ValueError(f"unknown sim camera {name!r}; expected one of {sorted(CAMERA_NAMES)}")
        self.robot, self.name, self.width, self.height, self.fps = robot, name, width, height, fps
        calibration = robot.camera_calibration
        if calibration is not None and name == calibration.camera:
            calibration.check(name, width, height)
        self._lock = threading.Lock()
        self._connected = False
        self._index = 0

    def connect(self) -> None:
        """Render once, so that a machine that cannot render fails here (RobotFault naming the fix) and the engine's
        first picture (SAPIEN compiles its shaders) is not taken during a trial."""
        with self._lock:
            if not self._connected:
                try:
                    self._render()
                except RuntimeError as error:  # no GL (MuJoCo), no Vulkan device (SAPIEN): the message names the fix
                    raise RobotFault(f"sim camera {self.name} cannot render in {self.robot.engine}: {error}") from None
                self._connected = True

    def read(self) -> Frame:
        if not self._connected:
            self.connect()
        with self._lock:
            rgb, stamp = self._render()
            self._index += 1
            return Frame(rgb, stamp, self._index)

    def _render(self) -> tuple[np.ndarray, float]:
        """The picture of the current state and when that state was current."""
        with self.robot.lock:
            stamp = time.monotonic()
            return self.robot.env.render_camera(self.name, self.width, self.height), stamp

    def close(self) -> None:
        """The renderer belongs to the twin's world (freed with the robot); a closed camera reconnects on read."""
        with self._lock:
            self._connected = False
