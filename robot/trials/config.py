"""What a trial session is asked to do (``pushcut trial run``'s options), checked before anything connects."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from pushcut.common.conventions import DEFAULT_ACTION_HZ, EVAL_SEED_START
from pushcut.robot.drivers.can_link import name_problem
from pushcut.sim.world import ENGINES

ROBOTS = ("sim", "piper", "virtual-piper")  # virtual-piper: the real driver on the virtual Piper pair (a rehearsal)


class RunnerError(RuntimeError):
    """The session cannot start or go on; the message says what to check."""


@dataclass(frozen=True)
class RunnerConfig:
    task: str
    server: str  # the policy server, e.g. tcp://gpu-box:5555
    checkpoint_label: str  # how reviewers name the checkpoint (sft, grpo-800, ...)
    operator: str
    robot: str = "sim"  # 'sim' (the twin), 'piper' (two real arms) or 'virtual-piper' (their rehearsal)
    trials: int = 50  # judged trials (success or failure) wanted; aborted ones are redone
    db: Path = Path("trials.db")
    out: Path | None = None  # videos and npz; default <db folder>/trials/session_<id>
    seed_start: int = EVAL_SEED_START  # sim: judged trial i runs on seed seed_start + i; virtual-piper: the scene
    max_actions: int | None = None  # per trial; default the task's step limit at the policy's rate
    judge: str | None = None  # 'predicate' or 'operator'; default predicate (sim), operator (piper)
    instruction: str | None = None  # piper, virtual-piper: the sentence the policy gets (sim: the episode's own)
    video_cameras: tuple[str, ...] | None = None  # default: the policy's head camera (or its first)
    camera_hz: float | None = None  # camera capture / video rate; default the policy's action rate
    server_timeout_s: float = 5.0
    new_session: bool = False  # start a new session even when one with the same identity exists
    max_consecutive_aborts: int = 3  # then the session stops: something is wrong beyond one trial
    safety: str = "default"  # safety filter preset: 'default' or 'first_run' (slow, wide margins)
    servo_hz: float = 100.0  # executor loop rate
    chunking: str = "sync"  # 'sync' (as the simulator executes chunks) or 'async' (ExecutorConfig.chunking)
    home: bool = True  # real robots: move to the ready pose (slowly, through the filter) before each trial
    can_left: str = "can_left"
    can_right: str = "can_right"
    camera_serials: tuple[tuple[str, str], ...] = ()  # piper: (policy camera name, RealSense serial)
    camera_calibration: Path | None = None  # the head camera's calibration (`pushcut robot align`); sim: the twin's
    sim: str = "mujoco"  # the twin's engine (pushcut.sim.world.ENGINES); only --robot sim has one to choose

    def __post_init__(self) -> None:
        if self.robot not in ROBOTS:
            raise RunnerError(f"--robot must be 'sim', 'piper' or 'virtual-piper', got {self.robot!r}")
        if self.sim not in ENGINES:
            raise RunnerError(f"--sim must be one of {', '.join(ENGINES)} (the twin's engine), got {self.sim!r}")
        if self.sim != "mujoco" and self.robot != "sim":
            raise RunnerError(f"--sim {self.sim} chooses the twin's engine: it goes with --robot sim, not --robot "
                              f"{self.robot}")  # fmt: skip
        if self.judge not in (None, "predicate", "operator"):
            raise RunnerError(f"--judge must be 'predicate' or 'operator', got {self.judge!r}")
        if self.robot != "sim" and self.judge == "predicate":
            raise RunnerError(f"--robot {self.robot}: a real robot has no task predicate, its trials are judged by "
                              "the operator")  # fmt: skip
        if self.trials < 1 or (self.max_actions is not None and self.max_actions < 1):
            raise RunnerError(f"--trials and --max-actions must be positive, got {self.trials}, {self.max_actions}")
        if self.chunking not in ("sync", "async"):
            raise RunnerError(f"--chunking must be 'sync' or 'async', got {self.chunking!r}")
        if self.safety not in ("default", "first_run"):
            raise RunnerError(f"--safety must be 'default' or 'first_run', got {self.safety!r}")
        if self.robot == "piper":
            for option, name in (("--can-left", self.can_left), ("--can-right", self.can_right)):
                problem = name_problem(name)
                if problem:
                    raise RunnerError(f"{option}: {problem}")
            if self.can_left == self.can_right:
                raise RunnerError(f"--can-left and --can-right are both {self.can_left!r}: each arm has its own bus")
        if not self.operator.strip() or not self.checkpoint_label.strip():
            raise RunnerError("--operator and --checkpoint-label must not be empty")
        for option, value in (("--servo-hz", self.servo_hz), ("--timeout", self.server_timeout_s),
                              ("camera_hz", self.camera_hz)):  # fmt: skip
            if value is not None and not 0.0 < value < math.inf:
                raise RunnerError(f"{option} must be a positive number, got {value}")

    @property
    def judged_by(self) -> str:
        return self.judge or ("predicate" if self.robot == "sim" else "operator")

    @property
    def engine(self) -> str | None:
        """The twin's physics engine and renderer (``--robot sim``); None for a real robot or its rehearsal."""
        return self.sim if self.robot == "sim" else None


def check_settings(config: RunnerConfig) -> None:
    """Check what the operator asked for against what is known here, before the policy server is asked or a robot
    is built, so that a typo is named as such: the task against the simulator's registry (without a simulator, as
    on a robot computer, a real robot's task cannot be checked, and then ``--max-actions`` is needed), the instruction
    a real robot needs, the camera calibration file. RunnerError naming the setting otherwise."""
    try:
        from pushcut.sim.registry import get_task
    except ImportError as error:
        get_task, missing = None, error
    if get_task is None:
        if config.robot != "piper":
            raise RunnerError(f"--robot {config.robot} needs the simulator (pip install 'pushcut[sim]'): {missing}")
        if config.max_actions is None:
            raise RunnerError(f"--task {config.task}: its step limit is unknown here (no simulator installed): give "
                              "--max-actions")  # fmt: skip
    else:
        try:
            get_task(config.task)
        except ValueError as error:
            raise RunnerError(f"--task: {error}") from None
    require_instruction(config)
    calibration_summary(config)


def require_instruction(config: RunnerConfig) -> None:
    """A real robot (or its rehearsal) has no episode to take the policy's instruction from."""
    if config.robot != "sim" and not (config.instruction or "").strip():
        raise RunnerError(f"--instruction is required with --robot {config.robot}: the sentence the policy gets, "
                          "e.g. 'press the bell'")  # fmt: skip


def calibration_summary(config: RunnerConfig) -> dict[str, str] | None:
    """The head camera calibration's name and sha256, as the session's settings keep it (None when none given)."""
    if config.camera_calibration is None:
        return None
    from pushcut.sim.camera_calibration import CalibrationError, CameraCalibration

    try:
        return {**CameraCalibration.load(config.camera_calibration).summary(), "file": str(config.camera_calibration)}
    except CalibrationError as error:
        raise RunnerError(str(error)) from None


def default_max_actions(step_limit: int, action_hz: float) -> int:
    """A task's step limit (counted at DEFAULT_ACTION_HZ) as a number of actions at the policy's rate."""
    return max(1, math.ceil(step_limit * action_hz / DEFAULT_ACTION_HZ))
