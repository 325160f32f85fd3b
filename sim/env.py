"""`DualPiperEnv`: one task in the dual-Piper world, with RoboTwin-compatible observations and actions.

The env holds the episode logic (execution, success latching, strategy trace, observations); the engine sits behind
a :class:`~pushcut.sim.world.World` (``env.world``; MuJoCo's: :class:`~pushcut.sim.mujoco_world.MujocoWorld`), built
from the task's engine-neutral scene description.

Action: absolute 14-D joint targets `[left joint1..6, left gripper, right joint1..6, right gripper]` (radians; grippers
in [0, 1] with 1 = open, RoboTwin's `qpos` convention). Each action is one period of 1 / action_hz seconds of physics.
A chunk becomes servo targets exactly as the robot's executor makes them (:mod:`pushcut.sim.execution`, one
definition): the path through the actions is interpolated and smoothed over one action period, then every servo tick
(SERVO_HZ = 100 Hz) is limited in joint speed (3 rad/s) and acceleration (20 rad/s^2), braking before the joint
envelope (the Piper's limits less a 3 degree margin). `step(action)` is a chunk of one action; the plan and the
profile's velocity carry over from chunk to chunk. Default action_hz = DEFAULT_ACTION_HZ (250 / 15 Hz, RoboTwin's
demo recording rate; :mod:`pushcut.common.conventions`).

Driving the physics from outside (the real-time twin, pushcut.robot.drivers.sim_robot): ``apply_servo_target`` sets
the servo targets and the commanded action the task predicates read, ``advance_physics`` steps the world (``timestep``
seconds a step; ``world.time()`` is the physics clock), ``update_success`` checks (and latches) the task predicate,
and ``render_camera`` draws a camera at any size.

Observation (RoboTwin `get_obs()` keys):
    observation/<camera>/{rgb (H, W, 3) uint8, intrinsic_cv (3, 3), extrinsic_cv (3, 4), cam2world_gl (4, 4)}
    joint_action/{left_arm (6,), left_gripper, right_arm (6,), right_gripper, vector (14,)}   measured, not targets
    endpose/{left_endpose (7,) xyz + wxyz, left_gripper, right_endpose (7,), right_gripper}   tool centre points
    instruction: str
"""

from __future__ import annotations

import atexit
import string
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from pushcut.common.conventions import DEFAULT_ACTION_HZ
from pushcut.sim import piper_spec as spec
from pushcut.sim import randomization as dr
from pushcut.sim import scene
from pushcut.sim.camera_calibration import CameraCalibration, as_calibration
from pushcut.sim.execution import PIPER_MOTION, SERVO_HZ, ChunkServo
from pushcut.sim.geometry import Pose
from pushcut.sim.mujoco_world import MujocoWorld, actuator_controls
from pushcut.sim.scene_description import SceneDescription
from pushcut.sim.strategy import ManipulationTrace
from pushcut.sim.tasks.base import Task
from pushcut.sim.urdf_layout import check_single_arm_urdf
from pushcut.sim.world import ENGINES, World

CAMERA_NAMES: dict[str, str] = {
    "head_camera": "head_camera",
    "left_camera": "left/camera",
    "right_camera": "right/camera",
}
# RoboTwin's gripper thresholds on the [0, 1] opening (envs/robot/robot.py).
GRIPPER_OPEN_THRESHOLD = 0.8
GRIPPER_CLOSED_THRESHOLD = 0.2
_OPEN_ENVS: weakref.WeakSet = weakref.WeakSet()
SETTLE_SECONDS = 0.2
# Bodies that make up the contact groups of :meth:`DualPiperEnv.contacts`.
BODY_GROUPS: dict[str, tuple[str, ...]] = {
    **{f"{arm}/gripper": (f"{arm}/link6", f"{arm}/finger_a", f"{arm}/finger_b") for arm in spec.ARMS},
    **{f"{arm}/fingers": (f"{arm}/finger_a", f"{arm}/finger_b") for arm in spec.ARMS},
}
# MuJoCo-only attributes of the world that `env.<name>` still reaches (raw-MuJoCo benchmark, push expert, tests);
# none is part of the engine-neutral API.
MUJOCO_ATTRIBUTES = (
    "model",
    "data",
    "arm_qpos_adr",
    "finger_qpos_adr",
    "finger_b_qpos_adr",
    "tcp_site",
    "finger_geoms",
    "gripper_geoms",
)


def build_world(description: SceneDescription, engine: str = "mujoco", piper_urdf: str | None = None) -> World:
    """The world of ``engine`` built from ``description``: MuJoCo's MujocoWorld, or SAPIEN's
    ``pushcut.sim.sapien.world.SapienWorld`` (imported only when asked for), its arms from ``piper_urdf`` if given
    (a single-arm Piper URDF; default: pushcut's own)."""
    if engine == "mujoco":
        if piper_urdf is not None:
            raise ValueError(f"piper_urdf needs engine 'sapien'; MuJoCo builds pushcut's own Piper, got {piper_urdf}")
        return MujocoWorld(description)
    if engine == "sapien":
        from pushcut.sim.sapien.world import SapienWorld

        return SapienWorld(description, piper_urdf)
    raise ValueError(f"unknown engine {engine!r}; expected one of {ENGINES}")


@dataclass(frozen=True)
class EnvConfig:
    """Everything about an environment that is not the task. Override any field with `make(task, field=value)`."""

    # Cameras rendered into observations, by RoboTwin name: head_camera, left_camera, right_camera.
    cameras: tuple[str, ...] = ("head_camera",)
    # Rendered image size; RoboTwin's D435 default is 320 x 240.
    image_width: int = 320
    image_height: int = 240
    # Control rate: one action is held for 1 / action_hz seconds.
    action_hz: float = DEFAULT_ACTION_HZ
    # Episode length in actions; None = the task's default step limit.
    step_limit: int | None = None
    # Which instruction templates to draw from: "seen" (training) or "unseen" (evaluation).
    instruction_split: str = "seen"
    # Domain randomisation switches (all off = RoboTwin's demo_clean).
    randomization: dr.RandomizationConfig = field(default_factory=dr.RandomizationConfig)
    # The head camera's pose and field of view from `pushcut robot align` (a CameraCalibration or its file); None:
    # the scene's nominal pose. Domain randomisation jitters around it.
    camera_calibration: CameraCalibration | None = None
    # The physics engine and renderer behind the env (sim/world.py's ENGINES): "mujoco" or "sapien".
    engine: str = "mujoco"
    # With engine "sapien": a single-arm Piper URDF of pushcut's joint layout (`pushcut sim urdf --out` writes
    # pushcut's), loaded at both mounts instead of pushcut's own; checked here, before any scene is built.
    piper_urdf: str | None = None

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"unknown engine {self.engine!r}; expected one of {', '.join(ENGINES)}")
        if self.piper_urdf is not None:
            if self.engine != "sapien":
                raise ValueError(f"piper_urdf={str(self.piper_urdf)!r} is loaded by SAPIEN only; the {self.engine} "
                                 "world builds pushcut's own Piper: set engine='sapien' or drop it")  # fmt: skip
            object.__setattr__(self, "piper_urdf", str(self.piper_urdf))
            check_single_arm_urdf(self.piper_urdf)
        named = isinstance(self.camera_calibration, str | Path)
        source = f"camera calibration {self.camera_calibration}" if named else ""
        calibration = as_calibration(self.camera_calibration)
        object.__setattr__(self, "camera_calibration", calibration)
        if calibration is not None:
            calibration.check("head_camera", self.image_width, self.image_height, source)
        unknown = [c for c in self.cameras if c not in CAMERA_NAMES]
        if unknown:
            raise ValueError(f"unknown camera(s) {unknown}; expected a subset of {sorted(CAMERA_NAMES)}")
        if self.image_width < 16 or self.image_height < 16 or self.image_width > 640 or self.image_height > 480:
            raise ValueError(f"image size {self.image_width}x{self.image_height} must be within 16x16 .. 640x480")
        if not 1.0 <= self.action_hz <= 100.0:
            raise ValueError(f"action_hz={self.action_hz} must be within [1, 100]")
        if self.instruction_split not in ("seen", "unseen"):
            raise ValueError(f"instruction_split={self.instruction_split!r}; expected 'seen' or 'unseen'")
        if self.step_limit is not None and self.step_limit < 1:
            raise ValueError(f"step_limit={self.step_limit} must be positive")


@dataclass
class ChunkResult:
    """What `step_chunk` returns: the observation after the last executed action and what happened on the way."""

    observation: dict[str, Any]
    reward: float
    terminated: bool  # the task succeeded
    truncated: bool  # the step limit was reached
    steps_executed: int
    info: dict[str, Any]


class DualPiperEnv(gym.Env):
    """A task in the dual-Piper world. Create it with `pushcut.sim.make(task, **overrides)`."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, task: Task, config: EnvConfig | None = None) -> None:
        self.task = task
        self.config = config or EnvConfig()
        self.description = scene.describe(task.objects(), task.name)
        self.world = build_world(self.description, self.config.engine, self.config.piper_urdf)
        self.timestep = self.world.timestep
        self.step_limit = self.config.step_limit or task.step_limit
        self.substeps = max(1, round(1.0 / (self.config.action_hz * self.timestep)))
        self.control_dt = self.substeps * self.timestep
        # Servo ticks within an action (SERVO_HZ, as the executor's loop): physics steps held per tick.
        ticks = max(1, min(self.substeps, round(self.control_dt * SERVO_HZ)))
        self._tick_steps = [len(b) for b in np.array_split(np.arange(self.substeps), ticks)]
        self.servo = ChunkServo(spec.READY_ACTION, 1.0 / self.control_dt, PIPER_MOTION)  # one action per period
        self._clock = 0.0  # the servo's time: seconds of physics since reset
        if self.config.camera_calibration is not None:  # the nominal pose that randomisation jitters around
            self.apply_camera_calibration(self.config.camera_calibration)
        self.randomizer = dr.DomainRandomizer(self.description, self.config.randomization)
        task.bind(self)
        low, high = spec.action_limits()
        self.action_low, self.action_high = low, high
        self.action_space = gym.spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)
        self.observation_space = self._observation_space()
        self._target = np.zeros(spec.ACTION_DIM)
        self.trace = ManipulationTrace(start=np.zeros(3))
        self._rng = np.random.default_rng(0)
        self.elapsed_steps = 0
        self.success = False
        self.instruction = ""
        self.instruction_slots: dict[str, str] = {}
        self.seed_value: int | None = None
        self.table_z = spec.TABLE_TOP_Z
        _OPEN_ENVS.add(self)

    # ------------------------------------------------------------------ set-up
    def __getattr__(self, name: str):
        """The MuJoCo world's ``model``, ``data`` and id tables (MUJOCO_ATTRIBUTES) for MuJoCo-only tools."""
        world = self.__dict__.get("world")
        if name in (*MUJOCO_ATTRIBUTES, "camera_ids") and world is not None:
            self._require_mujoco(name)  # camera_ids: a property whose AttributeError lands here
            if name in MUJOCO_ATTRIBUTES:
                return getattr(world, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _require_mujoco(self, name: str) -> None:
        """AttributeError in one line for a MuJoCo-only attribute of an env on another engine."""
        if self.world.engine != "mujoco":
            raise AttributeError(f"env.{name} exists only in the MuJoCo world; this env runs {self.world.engine}")

    @property
    def camera_ids(self) -> dict[str, int]:
        """MuJoCo camera ids by RoboTwin camera name (MuJoCo-only tools: the benchmark, the twin view)."""
        return {name: self.world.camera_id[world_name] for name, world_name in CAMERA_NAMES.items()}

    def _observation_space(self) -> gym.spaces.Dict:
        h, w = self.config.image_height, self.config.image_width

        def box(shape: tuple[int, ...]) -> gym.spaces.Box:
            return gym.spaces.Box(-np.inf, np.inf, shape, dtype=np.float64)

        cams = {
            c: gym.spaces.Dict(
                {
                    "rgb": gym.spaces.Box(0, 255, (h, w, 3), np.uint8),
                    "intrinsic_cv": box((3, 3)),
                    "extrinsic_cv": box((3, 4)),
                    "cam2world_gl": box((4, 4)),
                }
            )
            for c in self.config.cameras
        }
        return gym.spaces.Dict(
            {
                "observation": gym.spaces.Dict(cams),
                "joint_action": gym.spaces.Dict(
                    {
                        "left_arm": box((6,)),
                        "left_gripper": box(()),
                        "right_arm": box((6,)),
                        "right_gripper": box(()),
                        "vector": box((14,)),
                    }
                ),
                "endpose": gym.spaces.Dict(
                    {
                        "left_endpose": box((7,)),
                        "left_gripper": box(()),
                        "right_endpose": box((7,)),
                        "right_gripper": box(()),
                    }
                ),
                "instruction": gym.spaces.Text(max_length=512, charset=string.printable),
            }
        )

    # ------------------------------------------------------------------ episode
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.seed_value = seed
        self._rng = np.random.default_rng(seed)
        self.world.reset()
        appearance = self.randomizer.draw(self._rng)
        self.world.apply_appearance(appearance)
        self.table_z = self.randomizer.table_z(appearance)
        home = spec.READY_ACTION.copy()
        self.world.set_joint_positions(home)
        slots = self.task.initialize_episode(self, self._rng)
        self.world.forward()  # body positions of the new layout, for the keep-out zones
        self.appearance = self.randomizer.draw_distractors(appearance, self._rng, self.task.keep_out_zones(self))
        self.world.apply_appearance(self.appearance)
        self.instruction_slots = dict(slots)
        self.instruction = self.task.instruction(self._rng, self.config.instruction_split, slots)
        self.world.forward()
        self.apply_servo_target(home)
        for _ in range(round(SETTLE_SECONDS / self.timestep)):
            self.advance_physics(1)
        self.servo.reset(home)
        self._clock = 0.0
        self.elapsed_steps = 0
        self.success = False
        self.trace = ManipulationTrace(start=self.body_position(self.task.manipulated_body()))
        return self.get_obs(), {"seed": seed, "instruction": self.instruction, "success": False}

    def apply_camera_calibration(self, calibration: CameraCalibration) -> None:
        """Put the head camera at the calibrated pose and field of view (the model's values: randomisation and
        rendering use them from now on)."""
        world_camera = CAMERA_NAMES["head_camera"]
        self.world.set_camera(world_camera, calibration.position, calibration.quaternion, calibration.fovy_deg)
        self.world.update_frames()

    def pose_arms(self, joints: np.ndarray) -> None:
        """Set both arms to a measured 14-D state at once (no physics, no servo change) and update the kinematics:
        for rendering the twin where the real arms are."""
        state = np.asarray(joints, dtype=float)
        if state.shape != (spec.ACTION_DIM,) or not np.isfinite(state).all():
            raise ValueError(f"joints must be 14 finite numbers (rad, grippers 0..1), got {state!r}")
        self.world.set_joint_positions(state)
        self.world.update_frames()

    actuator_controls = staticmethod(actuator_controls)  # MuJoCo's controls for a 14-D action (the benchmark)

    def apply_servo_target(self, target: np.ndarray) -> None:
        """Hold the servos at the 14-D ``target`` (joint radians, grippers as [0, 1] opening) from the next physics
        step on; it becomes the commanded action that task predicates read (RoboTwin's gripper checks look at the
        command). No time passes: :meth:`advance_physics` moves the world."""
        self.world.apply_servo_target(target)
        self._target = np.array(target, dtype=float)

    def advance_physics(self, nstep: int) -> None:
        """Step the physics ``nstep`` timesteps (``timestep`` each) under the current servo target."""
        self.world.advance_physics(nstep)

    def validate_action(self, action) -> np.ndarray:
        """Return the action as float64 (14,), clipped to the joint limits; raise ValueError on bad shape or values."""
        array = np.asarray(action, dtype=float)
        if array.shape != (spec.ACTION_DIM,):
            raise ValueError(
                f"action must have shape (14,) = [left joint1..6 (rad), left gripper [0, 1], right joint1..6 (rad), "
                f"right gripper [0, 1]], got shape {array.shape}"
            )
        if not np.all(np.isfinite(array)):
            bad = [spec.ACTION_NAMES[i] for i in np.flatnonzero(~np.isfinite(array))]
            raise ValueError(
                f"action contains NaN or inf in {bad}; expected finite joint radians and grippers in [0, 1]"
            )
        return np.clip(array, self.action_low, self.action_high)

    def step(self, action):
        """One action (a chunk of one); renders the observation. Returns (obs, reward, terminated, truncated, info)."""
        target = self.validate_action(action)
        self.servo.play(target[None, :], self._clock)
        self._advance()
        obs = self.get_obs()
        reward = 1.0 if self.success else 0.0
        truncated = self.elapsed_steps >= self.step_limit and not self.success
        return obs, reward, self.success, truncated, self._info()

    def step_chunk(self, actions, images_if_ended: bool = True) -> ChunkResult:
        """Execute actions (k, 14), stopping early on success or at the step limit; render once at the end (with
        ``images_if_ended=False`` only if the episode goes on: no camera images in the observation of an episode that
        has ended). (:func:`pushcut.sim.chunk_step.step_chunks` with this env alone: the phases below.)"""
        from pushcut.sim.chunk_step import step_chunks

        (result,) = step_chunks([self], [actions], images_if_ended)
        if isinstance(result, Exception):
            raise result
        return result

    # ------------------------------------------------------------------ the phases of step_chunk
    def begin_chunk(self, actions) -> tuple[int, np.ndarray] | None:
        """Validate a chunk (a ValueError before anything moves) and, unless the episode is over, play it on the
        servo; returns the actions it may execute (up to the step limit) and the servo clock at each of their ticks,
        or None when the episode is over."""
        chunk = np.asarray(actions, dtype=float)
        if chunk.ndim != 2 or chunk.shape[1] != spec.ACTION_DIM or len(chunk) == 0:
            raise ValueError(f"action chunk must have shape (k, 14) with k >= 1, got shape {chunk.shape}")
        targets = np.stack([self.validate_action(a) for a in chunk])  # validate all before moving anything
        if self.success or self.elapsed_steps >= self.step_limit:
            return None
        self.servo.play(targets, self._clock)
        count = min(len(targets), self.step_limit - self.elapsed_steps)
        clock, times, timestep = self._clock, [], self.timestep
        for _ in range(count):
            for nstep in self._tick_steps:  # accumulated exactly as _advance / play_commands advance the clock
                times.append(clock)
                clock += nstep * timestep
        return count, np.array(times)

    def play_commands(self, commands: np.ndarray, count: int) -> int:
        """Execute up to ``count`` actions under servo commands given per tick (``commands`` (ticks, 14), as the
        servo computed them for :meth:`begin_chunk`'s ticks), stopping on success or at the step limit: what
        :meth:`_advance` does per action. Returns the actions executed (the servo is the caller's to settle)."""
        timestep, per, executed = self.timestep, len(self._tick_steps), 0
        for action in range(count):
            if self.success or self.elapsed_steps >= self.step_limit:
                break
            for k, nstep in enumerate(self._tick_steps, start=action * per):
                self.world.apply_servo_target(commands[k])
                self.advance_physics(nstep)
                self._clock += nstep * timestep
            self._target = np.array(commands[(action + 1) * per - 1], dtype=float)
            self.elapsed_steps += 1
            self.update_success()
            executed += 1
        return executed

    def end_chunk(self, executed: int, images_if_ended: bool = True) -> ChunkResult:
        """The observation and outcome after a chunk (camera images unless the episode ended and
        ``images_if_ended`` is False)."""
        truncated = self.elapsed_steps >= self.step_limit and not self.success
        images = images_if_ended or not (self.success or truncated)
        return ChunkResult(
            self.get_obs(images), 1.0 if self.success else 0.0, self.success, truncated, executed, self._info()
        )

    @property
    def ticks_per_action(self) -> int:
        return len(self._tick_steps)

    def _advance(self) -> None:
        """One action period under the servo's plan: a command per servo tick, physics, then the success check."""
        timestep = self.timestep
        for nstep in self._tick_steps:
            self.apply_servo_target(self.servo.command(self._clock))
            self.advance_physics(nstep)
            self._clock += nstep * timestep
        self.elapsed_steps += 1
        self.update_success()

    def update_success(self) -> bool:
        """Check the task predicate now (once per action) and latch success, as RoboTwin's stage_success_tag; until
        then, follow the manipulated body for :attr:`strategy`. The simulated twin calls it at its action rate."""
        if not self.success:
            self._update_trace()
            self.success = bool(self.task.check_success(self))
        return self.success

    def _update_trace(self) -> None:
        body = self.task.manipulated_body()
        fingers: dict[str, set[str]] = {arm: set() for arm in spec.ARMS}
        gripper_touch = False
        for contact in self.world.contacts():
            other = contact.body_b if contact.body_a == body else contact.body_a if contact.body_b == body else None
            if other is None:
                continue
            for arm in spec.ARMS:
                if other in BODY_GROUPS[f"{arm}/fingers"]:
                    fingers[arm].add(other)
                gripper_touch |= other in BODY_GROUPS[f"{arm}/gripper"]
        self.trace.update(self.body_position(body), fingers, gripper_touch)

    @property
    def strategy(self) -> str | None:
        """How this episode succeeded (`Task.classify_strategy`: grasp / push / drag / press); None before success."""
        return self.task.classify_strategy(self.trace) if self.success else None

    def _info(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "elapsed_steps": self.elapsed_steps,
            "seed": self.seed_value,
            "strategy": self.strategy,
            "acting_arms": self.task.acting_arms(),
        }

    # ------------------------------------------------------------------ observation
    def get_obs(self, images: bool = True) -> dict[str, Any]:
        """The observation (module docstring); ``images=False``: no camera entries (nothing rendered)."""
        joints = self.measured_joints()
        obs: dict[str, Any] = {"observation": {}}
        for cam in self.config.cameras if images else ():
            obs["observation"][cam] = {"rgb": self.render_camera(cam), **self.camera_matrices(cam)}
        obs["joint_action"] = {
            "left_arm": joints[spec.LEFT_ARM_SLICE],
            "left_gripper": float(joints[6]),
            "right_arm": joints[spec.RIGHT_ARM_SLICE],
            "right_gripper": float(joints[13]),
            "vector": joints,
        }
        obs["endpose"] = {
            "left_endpose": self.tcp_pose("left").as_pos_quat(),
            "left_gripper": float(joints[6]),
            "right_endpose": self.tcp_pose("right").as_pos_quat(),
            "right_gripper": float(joints[13]),
        }
        obs["instruction"] = self.instruction
        return obs

    def measured_joints(self) -> np.ndarray:
        """Measured 14-D joint state (grippers as opening fraction in [0, 1])."""
        return self.world.measured_joints()

    @property
    def commanded_action(self) -> np.ndarray:
        """The last servo command (14-D; smoothed and rate-limited, what the task predicates read)."""
        return self._target.copy()

    def gripper_opening(self, arm: str) -> float:
        """Measured opening in [0, 1] (1 = fully open); a gripper closed on a wide object still reads partly open."""
        return float(
            self.world.measured_joints()[spec.LEFT_GRIPPER_INDEX if arm == "left" else spec.RIGHT_GRIPPER_INDEX]
        )

    def gripper_command(self, arm: str) -> float:
        """Last commanded opening in [0, 1] (RoboTwin's gripper value)."""
        return float(self._target[spec.LEFT_GRIPPER_INDEX if arm == "left" else spec.RIGHT_GRIPPER_INDEX])

    def gripper_is_open(self, arm: str) -> bool:
        """RoboTwin's `is_gripper_open` (> 0.8) on the command and on the measured opening (fingers really apart)."""
        return self.gripper_command(arm) > GRIPPER_OPEN_THRESHOLD and self.gripper_opening(arm) > GRIPPER_OPEN_THRESHOLD

    def gripper_is_closed(self, arm: str) -> bool:
        """RoboTwin's `is_gripper_close` (< 0.2) on the command and on the measured opening."""
        return (
            self.gripper_command(arm) < GRIPPER_CLOSED_THRESHOLD
            and self.gripper_opening(arm) < GRIPPER_CLOSED_THRESHOLD
        )

    def tcp_pose(self, arm: str) -> Pose:
        """The tool centre point of ``arm`` in the world."""
        return self.world.tcp_pose(arm)

    def render_camera(self, camera: str, width: int | None = None, height: int | None = None) -> np.ndarray:
        """The picture of a camera (RoboTwin name) at the configured size, or at ``width`` x ``height`` (the
        twin's cameras, sized as the served policy asks)."""
        size = (width or self.config.image_width, height or self.config.image_height)
        return self.world.render(CAMERA_NAMES[camera], *size)

    def render(self):
        """Gymnasium render: the first configured camera (head camera by default)."""
        return self.render_camera(self.config.cameras[0] if self.config.cameras else "head_camera")

    def camera_matrices(self, camera: str) -> dict[str, np.ndarray]:
        world_camera = CAMERA_NAMES[camera]
        h, w = self.config.image_height, self.config.image_width
        fy = 0.5 * h / np.tan(np.radians(self.world.camera_fovy(world_camera)) / 2)
        intrinsic = np.array([[fy, 0.0, w / 2], [0.0, fy, h / 2], [0.0, 0.0, 1.0]])
        position, rotation = self.world.camera_pose(world_camera)
        cam2world_gl = np.eye(4)
        cam2world_gl[:3, :3] = rotation
        cam2world_gl[:3, 3] = position
        gl_to_cv = np.diag([1.0, -1.0, -1.0])  # OpenGL camera looks down -z with y up; OpenCV looks down +z, y down
        rot_cv = cam2world_gl[:3, :3] @ gl_to_cv
        extrinsic = np.hstack([rot_cv.T, (-rot_cv.T @ cam2world_gl[:3, 3])[:, None]])
        return {"intrinsic_cv": intrinsic, "extrinsic_cv": extrinsic, "cam2world_gl": cam2world_gl}

    # ------------------------------------------------------------------ helpers for tasks and experts
    def body_position(self, name: str) -> np.ndarray:
        """World position of a body (after the last physics step or forward)."""
        return self.world.body_position(name)

    def privileged_bodies(self) -> tuple[str, ...]:
        """The task's privileged bodies in this episode (`Task.privileged_bodies`)."""
        return self.task.privileged_bodies()

    def object_positions(self) -> np.ndarray:
        """World positions (K, 3) of the task's privileged bodies (`Task.privileged_bodies`), in their order."""
        return np.stack([self.world.body_position(name) for name in self.privileged_bodies()])

    def body_quat(self, name: str) -> np.ndarray:
        """World orientation (w, x, y, z) of a body."""
        return self.world.body_quat(name)

    def body_rotation(self, name: str) -> np.ndarray:
        """World rotation matrix (3, 3) of a body."""
        return self.world.body_rotation(name)

    @staticmethod
    def mount_position(arm: str) -> np.ndarray:
        """Where ``arm``'s base sits in the world (piper_spec.DUAL_PIPER_MOUNTS)."""
        for mount in spec.DUAL_PIPER_MOUNTS:
            if mount.name == arm:
                return np.array(mount.position, dtype=float)
        raise ValueError(f"unknown arm {arm!r}; expected one of {spec.ARMS}")

    def set_free_body(self, name: str, position, quat=(1.0, 0.0, 0.0, 0.0)) -> None:
        """Place a movable object (velocity zeroed); body poses follow at the next physics step or forward."""
        self.world.set_free_body(name, position, quat)

    def set_static_body(self, name: str, position, quat=(1.0, 0.0, 0.0, 0.0)) -> None:
        """Place a static object (such as the bell or a pad)."""
        self.world.set_static_body(name, position, quat)

    def contacts(self, a: str, b: str) -> list[np.ndarray]:
        """World positions of active contacts between ``a`` and ``b``: body names (``"bell"``) or the groups of
        BODY_GROUPS (``"<arm>/gripper"``: housing and fingers, ``"<arm>/fingers"``)."""
        bodies_a, bodies_b = BODY_GROUPS.get(a, (a,)), BODY_GROUPS.get(b, (b,))
        return [
            c.position
            for c in self.world.contacts()
            if (c.body_a in bodies_a and c.body_b in bodies_b) or (c.body_a in bodies_b and c.body_b in bodies_a)
        ]

    def body_geoms(self, body: str) -> set[int]:
        """MuJoCo geom ids of a body (MuJoCo-only tools)."""
        self._require_mujoco("body_geoms")
        model = self.world.model
        return {g for g in range(model.ngeom) if model.body(model.geom_bodyid[g]).name == body}

    def close(self) -> None:
        self.world.close()


@atexit.register
def _close_renderers() -> None:
    """GL contexts must be freed before the interpreter tears the GL bindings down (osmesa errors otherwise)."""
    for env in list(_OPEN_ENVS):
        env.close()
