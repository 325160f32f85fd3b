"""The robot an operator tool drives, from ``--robot``: the MuJoCo twin (``sim``, on a task's scene and seed), the
two real Pipers (``piper``, on two CAN interfaces), or the virtual Piper pair (``virtual-piper``: two Piper emulators
in this process whose arms are the twin's, robot/drivers/virtual_pair.py), driven through the real driver exactly as
the real pair: a rehearsal without hardware. :func:`bring_up` starts that pair for as long as a command runs and
hands on the ``piper`` choice aimed at its channels. :func:`open_robot` is a context manager: connected on entry,
released on exit (the real arms are left holding, never disabled). ``read_only`` opens the arms without enabling or
commanding them (the twin's physics does not run): enough to read their joints."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from pushcut.robot.drivers.interface import Robot, RobotFault

if TYPE_CHECKING:
    from pushcut.robot.drivers.sim_robot import SimRobot
    from pushcut.robot.drivers.virtual_pair import VirtualPiperPair

ROBOTS = ("sim", "piper", "virtual-piper")


@dataclass(frozen=True)
class RobotChoice:
    kind: str  # sim | piper | virtual-piper
    task: str  # sim: the scene
    action_hz: float
    can_left: str = "can_left"
    can_right: str = "can_right"
    seed: int | None = None  # sim: the scene's layout
    can_bus: str = "socketcan"  # piper: "virtual" is python-can's in-process bus (the virtual Piper)
    pair: VirtualPiperPair | None = field(default=None, compare=False, repr=False)  # set by bring_up

    def __post_init__(self) -> None:
        if self.kind not in ROBOTS:
            raise ValueError(f"--robot must be one of {ROBOTS}, got {self.kind!r}")
        if self.can_bus not in ("socketcan", "virtual"):
            raise ValueError(f"--can-bus must be 'socketcan' or 'virtual', got {self.can_bus!r}")

    @property
    def label(self) -> str:
        if self.pair is not None:
            return self.pair.label
        return self.kind if self.kind != "piper" else f"piper ({self.can_left}, {self.can_right})"


@contextmanager
def bring_up(choice: RobotChoice, twin: bool | None = None) -> Iterator[RobotChoice]:
    """For ``virtual-piper``: start the virtual Piper pair in this process (the twin on the choice's task and seed;
    ``twin`` as :class:`~pushcut.robot.drivers.virtual_pair.VirtualPairConfig` takes it) until the block ends, and
    yield the ``piper`` choice on its virtual channels, so that what follows runs the real driver's code path.
    Other choices are yielded as they are."""
    if choice.kind != "virtual-piper":
        yield choice
        return
    from pushcut.robot.drivers.virtual_pair import VirtualPairConfig, VirtualPiperPair

    try:
        pair = VirtualPiperPair(VirtualPairConfig(choice.task, choice.seed or 0, twin=twin)).start()
    except ValueError as error:  # an unknown task
        raise RobotFault(f"--robot virtual-piper: {error}") from None
    try:
        yield replace(choice, kind="piper", can_left=pair.channels["left"], can_right=pair.channels["right"],
                      can_bus="virtual", pair=pair)  # fmt: skip
    finally:
        pair.close()


@dataclass
class OpenedRobot:
    robot: Robot
    sim: SimRobot | None = None  # the twin whose task predicate judges (sim, and the virtual pair's twin)
    feedback_timeout_s: float | None = None  # an in-process emulator's feedback-lost limit; None: the real arms' rule

    @property
    def success(self) -> Callable[[], bool] | None:
        return None if self.sim is None else self.sim.success


@contextmanager
def open_robot(choice: RobotChoice, read_only: bool = False) -> Iterator[OpenedRobot]:
    if choice.kind == "sim":
        from pushcut.robot.drivers.sim_robot import SimRobot, SimRobotConfig

        try:
            sim = SimRobot(SimRobotConfig(choice.task, action_hz=choice.action_hz))
        except ModuleNotFoundError as error:  # pushcut[robot] alone
            raise RobotFault(f"--robot sim needs the simulator: {error.name} is not installed, pip install "
                             "'pushcut[sim]'") from None  # fmt: skip
        try:
            sim.reset(choice.seed or 0)
            if not read_only:
                sim.connect()
            yield OpenedRobot(sim, sim)
        finally:
            sim.close()
        return
    from pushcut.robot.drivers.bimanual import BimanualConfig, PiperBimanual
    from pushcut.robot.drivers.piper_arm import PiperArmConfig

    virtual = choice.can_bus == "virtual"  # the port is released on close: a test process opens it again
    timeout = None
    if virtual:  # the emulators answer from this process
        from pushcut.robot.drivers.virtual_pair import REHEARSAL_FEEDBACK_TIMEOUT_S as timeout
    limits = {} if timeout is None else {"feedback_timeout_s": timeout}
    arms = BimanualConfig(
        left=PiperArmConfig(can_name=choice.can_left, name="left", **limits),
        right=PiperArmConfig(can_name=choice.can_right, name="right", **limits),
    )
    robot = PiperBimanual.from_config(arms, bustype=choice.can_bus, release_port_on_close=virtual)
    try:
        if read_only:
            for arm in robot.arms:
                try:
                    arm.open()
                except RobotFault as error:
                    raise RobotFault(f"{arm.name} arm: {error}") from None
        else:
            robot.connect()
        yield OpenedRobot(robot, None if choice.pair is None else choice.pair.twin, feedback_timeout_s=timeout)
    finally:
        robot.disconnect()
