"""`pushcut robot check`: the pre-flight check of the arms, their CAN buses, the cameras and the policy server.

Each check is a :class:`CheckResult` (PASS / FAIL / SKIP, what was found, and on FAIL what to do), printed one per
line or as JSON; any FAIL exits 1. Nothing here enables a motor or sends a motion command: arms are opened read-only
(:meth:`~pushcut.robot.drivers.piper_arm.PiperArm.open`) and closed again.

The checks, in order:

1. each CAN interface exists, is up at 1 Mbit/s and not bus-off, read from the system (sysfs and ``ip -details
   -json link show``; :mod:`pushcut.robot.drivers.can_link`, whose ``sysfs_root`` tests point at a tree of their own);
2. left and right are not swapped. A Piper reports no serial number or other identity over CAN (only its firmware
   version, the same on both arms), so the identity of an arm is the USB port of the USB-CAN adapter wired to it:
   ``--save-rig FILE`` records both ports once the operator has verified the pair by hand (e.g. by moving one arm in
   teach mode and watching ``check`` report it), and ``--rig FILE`` compares every later start against them, naming
   the bus that answers where the other arm is expected. Without ``--rig`` the check is SKIP;
3. the arm on each bus answers (firmware, control mode, arm status, error codes, joints, gripper, feedback rate);
   no latched emergency stop; no error codes or fault status; joints inside the limits with the safety filter's
   margin;
4. each named camera is present and delivers the expected resolution and frame rate (RealSense by serial, a replay
   file, or the twin's cameras with ``--robot sim`` and ``--robot virtual-piper``);
5. with ``--server``, the policy server answers ``hello`` and its cameras, image size and action rate fit the robot.

``--robot virtual-piper`` first starts the virtual Piper pair in this process (robot/drivers/virtual_pair.py) and
then checks it as the real pair, through the real driver (no system interfaces: the CAN lines are SKIP).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
import typer

from pushcut.robot.control.safety_config import SafetyConfig
from pushcut.robot.drivers.can_link import SYSFS_NET, CanLink, link_problem, name_problem, read_can_link
from pushcut.robot.drivers.interface import Camera, RobotFault
from pushcut.sim.piper_spec import JOINT_LIMITS_RAD

if TYPE_CHECKING:
    from pushcut.deploy.client.policy_client import ServerInfo
    from pushcut.robot.drivers.piper_health import PiperStatus
    from pushcut.robot.drivers.virtual_pair import VirtualPiperPair

Status = Literal["PASS", "FAIL", "SKIP"]
SIDES = ("left", "right")
LIMIT_TOLERANCE_RAD = math.radians(1.0)  # beyond the joint table by more than this: FAIL (encoder noise below)
_CAMERA_FRAMES = 12  # frames read per camera to measure its rate


class CheckInputError(ValueError):
    """The command line itself is wrong (nothing was opened); the message is one line."""


@dataclass(frozen=True)
class CheckResult:
    name: str  # "can_left interface", "left arm answers", ...
    status: Status
    detail: str  # what was found
    fix: str = ""  # on FAIL: what to do

    def line(self) -> str:
        text = f"{self.status}  {self.name}: {self.detail}"
        return text + (f" -> {self.fix}" if self.status == "FAIL" and self.fix else "")


def passed(results: Sequence[CheckResult]) -> bool:
    return all(r.status != "FAIL" for r in results)


def as_json(results: Sequence[CheckResult]) -> str:
    return json.dumps({"ok": passed(results), "checks": [asdict(r) for r in results]}, indent=2)


# ---------------------------------------------------------------------- input
def validate_interface(name: str, bustype: str = "socketcan") -> str:
    """``name`` if it can be a CAN interface name, else CheckInputError naming what is expected."""
    problem = name_problem(name, socketcan=bustype == "socketcan")
    if problem:
        raise CheckInputError(problem)
    return name


def parse_cameras(values: Sequence[str]) -> dict[str, str]:
    """``NAME=SOURCE`` pairs (SOURCE: a RealSense serial, a replay .mp4/.npz file, or anything with --robot sim)."""
    cameras: dict[str, str] = {}
    for value in values:
        name, sep, source = value.partition("=")
        if not sep or not name or not source:
            raise CheckInputError(f"--camera takes NAME=SERIAL (e.g. head_camera=123456789012) or NAME=FILE.mp4, "
                                  f"got {value!r}")  # fmt: skip
        if name in cameras:
            raise CheckInputError(f"--camera {name} is given twice")
        cameras[name] = source
    return cameras


def parse_mode(value: str) -> tuple[int, int, float]:
    """'640x480@30' -> (640, 480, 30.0)."""
    match = re.fullmatch(r"(\d+)x(\d+)@(\d+(?:\.\d+)?)", value.strip())
    if not match:
        raise CheckInputError(f"--camera-mode takes WIDTHxHEIGHT@FPS, e.g. 640x480@30; got {value!r}")
    return int(match[1]), int(match[2]), float(match[3])


def read_rig(path: Path) -> dict[str, str]:
    """The USB port of each side's adapter from a file written by ``--save-rig``."""
    try:
        data = json.loads(path.read_text())
        ports = {side: str(data[side]["usb_port"]) for side in SIDES}
    except FileNotFoundError:
        raise CheckInputError(f"--rig {path}: no such file (write it once with --save-rig)") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CheckInputError(f"--rig {path} is not a rig file written by --save-rig ({error!r}); expected "
                              '{"left": {"usb_port": ...}, "right": {"usb_port": ...}}') from None  # fmt: skip
    return ports


def write_rig(path: Path, links: Mapping[str, CanLink]) -> None:
    data = {side: {"interface": links[side].name, "usb_port": links[side].usb_port} for side in SIDES}
    path.write_text(json.dumps(data, indent=2) + "\n")


# ---------------------------------------------------------------------- CAN interfaces
def check_interface(link: CanLink) -> CheckResult:
    """Exists, up, 1 Mbit/s when ``ip`` can tell, not bus-off."""
    problem = link_problem(link)
    if problem:
        return CheckResult(f"{link.name} interface", "FAIL", *problem)
    rate = f"{link.bitrate} bit/s" if link.bitrate is not None else f"bit rate unknown ({link.ip_error or 'no ip'})"
    where = f", USB {link.usb_port}" if link.usb_port else ""
    return CheckResult(f"{link.name} interface", "PASS", f"up, {rate}, {link.controller_state or 'state unknown'}"
                                                         f"{where}")  # fmt: skip


def check_sides(links: Mapping[str, CanLink], rig: Mapping[str, str] | None) -> CheckResult:
    """Left and right not swapped: each interface sits on the USB port recorded for its side (module docstring)."""
    name = "left/right buses"
    if rig is None:
        return CheckResult(name, "SKIP", "not verified: the arms report no identity over CAN; verify the pair by "
                                         "hand once, then record the adapters with --save-rig FILE and pass --rig "
                                         "FILE")  # fmt: skip
    ports = {side: links[side].usb_port for side in SIDES}
    if None in ports.values():
        unknown = [links[side].name for side in SIDES if ports[side] is None]
        return CheckResult(name, "FAIL", f"the USB port of {', '.join(unknown)} is unknown (no device link in sysfs)",
                           "check the adapters are USB-CAN adapters and present")  # fmt: skip
    other = {"left": "right", "right": "left"}
    wrong = [side for side in SIDES if ports[side] != rig[side]]
    if not wrong:
        return CheckResult(
            name,
            "PASS",
            f"{links['left'].name} on USB {ports['left']} (left), "
            f"{links['right'].name} on USB {ports['right']} (right), as recorded",
        )
    fix = (f"swap the names: --can-left {links['right'].name} --can-right {links['left'].name}, or rename the "
           "interfaces by USB port (piper_sdk's can_muti_activate.sh)")  # fmt: skip
    found = []
    for side in wrong:
        owner = other[side] if ports[side] == rig[other[side]] else None
        found.append(
            f"{links[side].name} (expected: the {side} arm) answers from USB {ports[side]}, "
            + (f"the adapter recorded for the {owner} arm" if owner else f"not the recorded {rig[side]}")
        )
    swapped = all(ports[s] == rig[other[s]] for s in SIDES)
    return CheckResult(name, "FAIL", ("swapped: " if swapped else "") + "; ".join(found),
                       fix if swapped else "plug each adapter into its recorded USB port or record the rig again "
                       "with --save-rig after verifying the arms by hand")  # fmt: skip


# ---------------------------------------------------------------------- arms
def read_piper(side: str, can_name: str, bustype: str = "socketcan",
               answer_timeout_s: float = 1.0) -> tuple[PiperStatus | None, str | None]:  # fmt: skip
    """Open the arm on ``can_name`` read-only and read its status; (None, why) when it does not answer."""
    from pushcut.robot.drivers.piper_arm import PiperArm, PiperArmConfig

    arm = PiperArm(PiperArmConfig(can_name=can_name, name=side, bustype=bustype, answer_timeout_s=answer_timeout_s))
    try:
        arm.open()
        return arm.status(), None
    except RobotFault as error:
        return None, str(error)
    finally:
        arm.close()


def check_piper_arm(side: str, can_name: str, status: PiperStatus | None, error: str | None,
                    margin_rad: float) -> list[CheckResult]:  # fmt: skip
    """The arm answers, no e-stop, no errors, joints inside the limits with ``margin_rad``."""
    from pushcut.robot.drivers.piper_health import ARM_STATUS_NAMES, CTRL_MODE_NAMES, TEACH_MODES, code_name

    if status is None:
        return [CheckResult(f"{side} arm answers", "FAIL", f"no arm answers on {can_name}: {error}",
                            "power the arm on, check the CAN cable runs from this adapter to the arm, and that it "
                            "is a follower arm (a leader sends no feedback)")]  # fmt: skip
    results = [CheckResult(f"{side} arm answers", "PASS", f"on {can_name}: {status.summary()}")]
    if status.arm_status == 0x01:
        results.append(CheckResult(f"{side} arm e-stop", "FAIL", "emergency stop latched (arm status 0x01)",
                                   "support the arm, release the e-stop button, then reset it (piper_sdk "
                                   "ResetPiper, PiperArm.release_power(confirm=True): THE ARM DROPS)"))  # fmt: skip
    else:
        results.append(CheckResult(f"{side} arm e-stop", "PASS", "not latched"))
    problems = list(status.errors)
    if status.arm_status not in (0x00, 0x01):
        problems.insert(0, f"arm status {code_name(ARM_STATUS_NAMES, status.arm_status)}")
    if status.ctrl_mode in TEACH_MODES:
        problems.append(f"control mode {code_name(CTRL_MODE_NAMES, status.ctrl_mode)}")
    if problems:
        results.append(CheckResult(f"{side} arm errors", "FAIL", "; ".join(problems),
                                   "leave teach mode, clear the cause (joint cables for communication errors); a "
                                   "reset clears latched errors (the arm drops: support it)"))  # fmt: skip
    else:
        results.append(CheckResult(f"{side} arm errors", "PASS", "none"))
    results.append(check_joint_limits(side, status.joints, margin_rad))
    return results


def joints_outside(joints: np.ndarray, margin_rad: float) -> list[tuple[int, float, float, float]]:
    """(joint index, value, low, high) of every joint outside ``JOINT_LIMITS_RAD`` shrunk by ``margin_rad`` (a
    negative margin widens it)."""
    low, high = JOINT_LIMITS_RAD[:, 0] + margin_rad, JOINT_LIMITS_RAD[:, 1] - margin_rad
    q = np.asarray(joints, dtype=float)
    return [(i, float(q[i]), float(low[i]), float(high[i])) for i in range(6)
            if not (low[i] <= q[i] <= high[i])]  # fmt: skip


def check_joint_limits(side: str, joints: np.ndarray, margin_rad: float) -> CheckResult:
    """FAIL beyond the joint table (by more than :data:`LIMIT_TOLERANCE_RAD`: a drifted zero, a joint pushed past
    its stop); inside the table but within the safety filter's ``margin_rad`` of a limit is PASS with a note: the
    parked rest pose sits there (joints 2 and 3 at 0), and the walk to the ready pose leaves it."""
    name = f"{side} arm joints"
    outside = joints_outside(joints, -LIMIT_TOLERANCE_RAD)
    if outside:
        found = ", ".join(f"joint {i + 1} at {math.degrees(q):.1f} deg (limits {math.degrees(lo):.1f}.."
                          f"{math.degrees(hi):.1f})" for i, q, lo, hi in outside)  # fmt: skip
        return CheckResult(name, "FAIL", f"beyond the joint limits: {found}",
                           "move the joint(s) back inside their range by hand (teach mode) before enabling; a "
                           "reading far off while the arm looks right is a drifted zero (reset, or recalibrate the "
                           "joint zeros)")  # fmt: skip
    near = joints_outside(joints, margin_rad)
    detail = f"inside the limits ({math.degrees(margin_rad):.0f} deg margin"
    if near:
        joints_near = ", ".join(f"joint {i + 1} {math.degrees(q):.1f} deg" for i, q, _, _ in near)
        return CheckResult(name, "PASS", f"{detail}: within it {joints_near}, as at the rest pose)")
    return CheckResult(name, "PASS", detail + ")")


def check_sim_arms(robot: Any, margin_rad: float) -> list[CheckResult]:
    """The twin's arms: feedback, no e-stop or fault, joints inside the limits."""
    state = robot.get_state()
    results = []
    for side, arm in zip(SIDES, state.arms):
        joints = ", ".join(f"{math.degrees(q):.1f}" for q in arm.joints)
        results.append(CheckResult(f"{side} arm answers", "PASS" if arm.feedback_hz > 0 else "FAIL",
                                   f"twin: joints [{joints}] deg, gripper {arm.gripper:.2f}, feedback "
                                   f"{arm.feedback_hz:.0f} Hz", "restart the check"))  # fmt: skip
        results.append(CheckResult(f"{side} arm e-stop", "PASS" if arm.enabled else "FAIL",
                                   "not latched" if arm.enabled else "emergency stop engaged",
                                   "reset the twin"))  # fmt: skip
        results.append(CheckResult(f"{side} arm errors", "FAIL" if arm.fault else "PASS", arm.fault or "none",
                                   "reset the twin"))  # fmt: skip
        results.append(check_joint_limits(side, arm.joints, margin_rad))
    return results


# ---------------------------------------------------------------------- cameras
def check_camera(camera: Camera, width: int, height: int, fps: float, measure_fps: bool = True) -> CheckResult:
    """Connect, read a few frames: their size must be ``width`` x ``height``, their rate at least 80 % of ``fps``."""
    name = f"camera {camera.name}"
    try:
        camera.connect()
        frames = [camera.read() for _ in range(_CAMERA_FRAMES if measure_fps else 1)]
    except RobotFault as error:
        return CheckResult(name, "FAIL", f"missing or not streaming: {error}",
                           "connect it (USB 3 port and cable) and give its serial with --camera NAME=SERIAL; "
                           "`pushcut robot cameras` lists the connected ones")  # fmt: skip
    finally:
        camera.close()
    h, w = frames[-1].rgb.shape[:2]
    if (w, h) != (width, height):
        return CheckResult(name, "FAIL", f"delivers {w}x{h}, expected {width}x{height}",
                           f"configure it for {width}x{height} (or serve a policy trained at {w}x{h})")  # fmt: skip
    if not measure_fps:
        return CheckResult(name, "PASS", f"{w}x{h}, rendered on demand (nominal {fps:g} fps)")
    span = frames[-1].timestamp - frames[0].timestamp
    measured = (len(frames) - 1) / span if span > 0 else math.inf
    if measured < 0.8 * fps:
        return CheckResult(name, "FAIL", f"{w}x{h} at {measured:.1f} fps, expected {fps:g}",
                           "use a USB 3 port and cable (`lsusb -t` shows 5000M), one camera per controller if "
                           "frames drop")  # fmt: skip
    return CheckResult(name, "PASS", f"{w}x{h} at {min(measured, 999):.1f} fps (expected {fps:g})")


def make_camera(name: str, source: str, width: int, height: int, fps: float, robot: Any = None) -> Camera:
    """The camera behind ``source``: the twin's (``robot`` given), a replay file (.mp4 / .npz), or a RealSense
    serial. RobotFault when it cannot exist (unknown twin camera, missing file)."""
    if robot is not None:
        from pushcut.robot.drivers.sim_robot import SimCamera

        try:
            return SimCamera(robot, name, width=width, height=height, fps=fps)
        except ValueError as error:
            raise RobotFault(str(error)) from None
    from pushcut.robot.drivers.cameras import RealSenseCamera, RealSenseConfig, ReplayCamera, ReplayConfig

    if source.endswith((".mp4", ".npz")):
        return ReplayCamera(ReplayConfig(source, name=name, loop=True, realtime=True))
    return RealSenseCamera(RealSenseConfig(serial=source, name=name, width=width, height=height, fps=round(fps)))


# ---------------------------------------------------------------------- policy server
def check_server(address: str, timeout_s: float, cameras: Sequence[str],
                 servo_hz: float = 100.0) -> tuple[CheckResult, ServerInfo | None]:  # fmt: skip
    """``hello`` answered; the policy's cameras are among ``cameras``, its state and actions 14-D, its action rate
    one the executor can play (at most ``servo_hz``)."""
    from pushcut.deploy.client.policy_client import PolicyClient, PolicyError, PolicyTimeout, ProtocolMismatch

    name = "policy server"
    try:
        with PolicyClient(address, timeout_s=timeout_s, retries=0) as client:
            info = client.hello(state_dim=14)
    except PolicyTimeout:
        return CheckResult(name, "FAIL", f"no answer from {address} within {timeout_s:g} s",
                           "start `pushcut serve --checkpoint ... --bind ...` there; check host, port and "
                           "firewall"), None  # fmt: skip
    except PolicyError as error:
        return CheckResult(name, "FAIL", f"{address} refuses this robot: {error}",
                           "serve a checkpoint for the Piper pair (14-D)"), None  # fmt: skip
    try:
        info.check(cameras=list(cameras), state_dim=14)
    except ProtocolMismatch as error:
        return CheckResult(name, "FAIL", f"the policy does not fit this robot: {error.message}",
                           "name every camera the policy needs with --camera NAME=SERIAL"), info  # fmt: skip
    if not 0 < info.action_hz <= servo_hz:
        return CheckResult(name, "FAIL", f"the policy's action rate {info.action_hz:g} Hz is above the executor's "
                                         f"{servo_hz:g} Hz servo rate", "serve a checkpoint trained at a lower "
                                         "action rate"), info  # fmt: skip
    shapes = ", ".join(f"{c} {s[1]}x{s[0]}" for c, s in sorted(info.cameras.items()))
    return CheckResult(
        name,
        "PASS",
        f"{address}: checkpoint {info.checkpoint_id} ({info.checkpoint_hash[:12]}), "
        f"cameras {shapes}, action_hz {info.action_hz:.2f}, chunk {info.chunk}",
    ), info


# ---------------------------------------------------------------------- the whole check
@dataclass
class CheckOptions:
    robot: str = "piper"  # 'piper', 'sim' or 'virtual-piper'
    can: dict[str, str] = field(default_factory=lambda: {"left": "can_left", "right": "can_right"})
    cameras: dict[str, str] = field(default_factory=dict)  # name -> serial / replay file
    camera_mode: tuple[int, int, float] = (640, 480, 30.0)  # without a server: the expected mode
    server: str | None = None
    server_timeout_s: float = 5.0
    rig: dict[str, str] | None = None  # side -> USB port (read_rig)
    task: str = "click_bell"  # the twin's scene (--robot sim)
    bustype: str = "socketcan"  # 'virtual': python-can's virtual bus (tests, demos)
    sysfs_root: Path = SYSFS_NET
    answer_timeout_s: float = 1.0


def run_checks(options: CheckOptions) -> tuple[list[CheckResult], dict[str, CanLink]]:
    """Every check in order (module docstring); the CAN links read (for ``--save-rig``)."""
    margin = SafetyConfig.piper_default().joint_margin_rad
    results: list[CheckResult] = []
    links: dict[str, CanLink] = {}
    sim, pair = None, None
    try:
        if options.robot == "sim":
            sim = _start_twin(options.task)
            results += check_sim_arms(sim, margin)
        else:
            if options.robot == "virtual-piper":
                pair = _start_pair(options.task)
                results.append(CheckResult("virtual Piper pair", "PASS", pair.describe()))
                options = replace(options, can=dict(pair.channels), bustype="virtual")
            results += _piper_checks(options, margin, links)
        info = None
        if options.server:
            names = list(options.cameras) or (_twin_cameras() if sim is not None or pair is not None else [])
            result, info = check_server(options.server, options.server_timeout_s, names)
            results.append(result)
        results += _camera_checks(options, info, sim, pair)
    finally:
        if sim is not None:
            sim.close()
        if pair is not None:
            pair.close()
    return results, links


def _piper_checks(options: CheckOptions, margin: float, links: dict[str, CanLink]) -> list[CheckResult]:
    results: list[CheckResult] = []
    usable = dict.fromkeys(SIDES, True)
    if options.bustype == "socketcan" or options.sysfs_root != SYSFS_NET:
        for side in SIDES:
            links[side] = read_can_link(options.can[side], options.sysfs_root)
            results.append(check_interface(links[side]))
            usable[side] = results[-1].status == "PASS"
        results.append(check_sides(links, options.rig))
    else:
        results.append(CheckResult("CAN interfaces", "SKIP", "python-can virtual bus: no system interface"))
    for side in SIDES:
        can_name = options.can[side]
        if not usable[side]:
            results.append(CheckResult(f"{side} arm answers", "SKIP", f"not tried: {can_name} is not usable"))
            continue
        status, error = read_piper(side, can_name, options.bustype, options.answer_timeout_s)
        results += check_piper_arm(side, can_name, status, error, margin)
    return results


def _camera_checks(options: CheckOptions, info: ServerInfo | None, sim: Any,
                   pair: VirtualPiperPair | None = None) -> list[CheckResult]:  # fmt: skip
    width, height, fps = options.camera_mode
    names = dict(options.cameras)
    if (sim is not None or pair is not None) and info is not None:
        names = {**dict.fromkeys(info.cameras, "twin"), **names}
    results = []
    for name, source in names.items():
        w, h = width, height
        if info is not None and name in info.cameras:  # the policy's image size is what the camera must deliver
            h, w = info.cameras[name][:2]
        on_twin = sim is not None or (pair is not None and source == "twin")  # rendered on demand
        rate = max(fps, info.action_hz) if info is not None and not on_twin else fps
        try:
            camera = (
                pair.camera(name, w, h, rate)
                if pair is not None and on_twin
                else make_camera(name, source, w, h, rate, robot=sim)
            )
        except RobotFault as error:
            no_twin = pair is not None and on_twin and pair.twin is None
            fix = ("install the simulator: pip install 'pushcut[sim]'" if no_twin else "check the name / serial / "
                   "file; `pushcut robot cameras` lists the connected RealSense cameras")  # fmt: skip
            results.append(CheckResult(f"camera {name}", "FAIL", f"missing: {error}", fix))
            continue
        results.append(check_camera(camera, w, h, rate, measure_fps=not on_twin))
    return results


def _start_twin(task: str) -> Any:
    from pushcut.robot.drivers.sim_robot import SimRobot, SimRobotConfig

    try:
        sim = SimRobot(SimRobotConfig(task))
    except ValueError as error:  # an unknown task
        raise CheckInputError(str(error)) from None
    except ModuleNotFoundError as error:  # pushcut[robot] alone
        raise CheckInputError(f"--robot sim needs the simulator: {error.name} is not installed, pip install "
                              "'pushcut[sim]'") from None  # fmt: skip
    sim.connect()
    time.sleep(0.05)  # a few physics steps: fresh feedback
    return sim


def _start_pair(task: str) -> VirtualPiperPair:
    from pushcut.robot.drivers.virtual_pair import VirtualPairConfig, VirtualPiperPair

    try:
        return VirtualPiperPair(VirtualPairConfig(task)).start()
    except ValueError as error:  # an unknown task
        raise CheckInputError(str(error)) from None


def _twin_cameras() -> list[str]:
    from pushcut.sim.env import CAMERA_NAMES

    return sorted(CAMERA_NAMES)


# ---------------------------------------------------------------------- the command
def register(app: typer.Typer) -> None:
    """Add ``check`` to ``app`` (the ``pushcut robot`` group)."""

    @app.command("check")
    def check(
        robot: Annotated[
            str,
            typer.Option(
                "--robot",
                help="'piper' (the real pair), 'sim' (the twin) or 'virtual-piper' (the virtual "
                "Piper pair in this process: the real driver, no hardware; README).",
            ),
        ] = "piper",
        can_left: Annotated[str, typer.Option("--can-left", help="CAN interface of the left arm.")] = "can_left",
        can_right: Annotated[str, typer.Option("--can-right", help="CAN interface of the right arm.")] = "can_right",
        camera: Annotated[
            list[str] | None,
            typer.Option("--camera", help="NAME=REALSENSE_SERIAL (or NAME=FILE.mp4|.npz: a replay), per camera."),
        ] = None,
        camera_mode: Annotated[
            str,
            typer.Option(
                "--camera-mode", help="Expected WxH@FPS without --server (the server's image size wins)."
            ),  # fmt: skip
        ] = "640x480@30",
        server: Annotated[str | None, typer.Option("--server", help="Policy server address to check.")] = None,
        timeout_s: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the server.")] = 5.0,
        rig: Annotated[Path | None, typer.Option("--rig", help="Rig file: the USB port of each arm's adapter.")] = None,
        save_rig: Annotated[
            Path | None, typer.Option("--save-rig", help="Write the rig file when every check passes.")
        ] = None,
        task: Annotated[str, typer.Option("--task", help="--robot sim: the twin's task scene.")] = "click_bell",
        as_json_output: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
        bustype: Annotated[str, typer.Option("--bustype", hidden=True)] = "socketcan",
        sysfs_root: Annotated[Path, typer.Option("--sysfs-root", hidden=True)] = SYSFS_NET,
    ) -> None:
        """Pre-flight check of the arms, CAN buses, cameras and policy server: one PASS / FAIL line each (on FAIL,
        what to do); exit status 1 on any FAIL. Nothing moves."""
        try:
            if robot not in ("piper", "sim", "virtual-piper"):
                raise CheckInputError(f"--robot must be 'piper', 'sim' or 'virtual-piper', got {robot!r}")
            if bustype not in ("socketcan", "virtual"):
                raise CheckInputError(f"--bustype must be 'socketcan' or 'virtual', got {bustype!r}")
            options = CheckOptions(
                robot=robot, can={"left": validate_interface(can_left, bustype),
                                  "right": validate_interface(can_right, bustype)},
                cameras=parse_cameras(camera or []), camera_mode=parse_mode(camera_mode), server=server,
                server_timeout_s=timeout_s, rig=read_rig(rig) if rig is not None else None, task=task,
                bustype=bustype, sysfs_root=sysfs_root,
            )  # fmt: skip
            if options.can["left"] == options.can["right"]:
                raise CheckInputError(f"--can-left and --can-right are both {can_left!r}: each arm has its own bus")
            results, links = run_checks(options)
        except CheckInputError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2) from None
        typer.echo(as_json(results) if as_json_output else "\n".join(r.line() for r in results))
        if not passed(results):
            raise typer.Exit(1)
        if save_rig is not None:
            if len(links) != 2 or any(link.usb_port is None for link in links.values()):
                typer.echo("error: --save-rig needs both adapters' USB ports (real CAN interfaces)", err=True)
                raise typer.Exit(2)
            write_rig(save_rig, links)
            if not as_json_output:
                typer.echo(f"rig written to {save_rig}")
