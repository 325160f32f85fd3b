"""`pushcut robot align`: the twin's head camera rendered at the arms' measured joints and blended over the real
camera's frame, the camera pose nudged by the operator until they agree, and the result written as a calibration
file (:mod:`pushcut.sim.camera_calibration`) that the simulation's head camera then uses.

Score: the mean distance, in pixels, from the outline of the twin's arms (a segmentation render) to the nearest edge
of the real frame (Canny). Textures, light and the objects on the table differ between the twin and the real scene;
the arms' outline is what a correct pose puts on real edges, so the score falls as the pose gets right. The mean
absolute pixel difference is reported beside it. Each step writes ``OUT/align_<step>.png``: the real frame and the
twin blended half and half, the twin's arm outline drawn in green.

Nudges: ``dx,dy,dz`` metres in the world frame (x right along the table, y away from the robot, z up),
``droll,dpitch,dyaw`` degrees about the camera's own axes (roll: the camera turns clockwise seen from behind;
pitch: the view tilts up; yaw: the view pans left). They accumulate in order; rerun with ``--calibration`` (the file
written) to go on. ``--estimate`` then searches the pose (within 5 cm / 5 deg) that minimises the score from the
arms' visible links: an aid, whose blend the operator checks before writing the file.
"""

from __future__ import annotations

import datetime
import getpass
import math
import threading
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from pushcut.robot.drivers.cameras import RealSenseCamera, RealSenseConfig, ReplayCamera, ReplayConfig
from pushcut.robot.drivers.interface import Camera, Robot, RobotFault
from pushcut.robot.tools.align_score import blend, edge_distance, edge_map
from pushcut.robot.tools.cameras import write_png
from pushcut.robot.tools.robots import RobotChoice, bring_up, open_robot
from pushcut.robot.tools.twin_view import TwinView
from pushcut.sim.camera_calibration import CalibrationError, CameraCalibration, Nudge, Provenance

ESTIMATE_RANGE = np.array([0.05, 0.05, 0.05, 5.0, 5.0, 5.0])  # how far --estimate may go from its start (m, deg)


@dataclass(frozen=True)
class AlignStep:
    step: int
    nudge: str | None  # None for the starting pose
    position: tuple[float, float, float]
    rpy_deg: tuple[float, float, float]
    edge_distance_px: float  # the score: lower is better (nan when the arms are not in view)
    pixel_difference: float  # mean |real - twin| over all pixels and channels, 0..255
    image: str


@dataclass
class AlignResult:
    camera: str
    serial: str
    resolution: tuple[int, int]
    joints: list[float]  # the measured 14-D state the twin was posed at
    steps: list[AlignStep] = field(default_factory=list)
    calibration: str | None = None  # the file written
    calibration_name: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate(
    view: TwinView, joints: np.ndarray, distance: np.ndarray, start: CameraCalibration, max_renders: int = 200
) -> tuple[CameraCalibration, Nudge, int]:
    """A pattern search from ``start`` over the six nudge axes for the lowest edge distance, within
    ``ESTIMATE_RANGE`` of it: steps of 1 cm / 1 deg, halved when no step helps, down to 1 mm / 0.1 deg. Returns the
    pose, the nudge from ``start`` that reaches it, and the renders used. An aid: check the blend before keeping it."""

    def score(values: np.ndarray) -> float:
        value = edge_distance(distance, view.mask(joints, start.nudged(Nudge(*values))))
        return math.inf if math.isnan(value) else value

    best, best_score, renders = np.zeros(6), score(np.zeros(6)), 1
    step = np.array([0.01, 0.01, 0.01, 1.0, 1.0, 1.0])
    while step[0] >= 0.001 and renders < max_renders:
        improved = False
        for axis in range(6):
            for sign in (1.0, -1.0):
                candidate = best.copy()
                candidate[axis] += sign * step[axis]
                if np.any(np.abs(candidate) > ESTIMATE_RANGE) or renders >= max_renders:
                    continue
                value, renders = score(candidate), renders + 1
                if value < best_score - 1e-9:
                    best, best_score, improved = candidate, value, True
        if not improved:
            step = step / 2
    nudge = Nudge(*best)
    return start.nudged(nudge), nudge, renders


def provenance(operator: str | None, robot: str) -> Provenance:
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    return Provenance(operator=operator or getpass.getuser(), created_at=now, robot=robot)


def align(
    camera: Camera,
    robot: Robot,
    view: TwinView,
    start: CameraCalibration,
    nudges: list[Nudge],
    out: Path,
    estimate_pose: bool = False,
) -> tuple[AlignResult, CameraCalibration]:
    """Score ``start`` and each accumulated nudge against one real frame, then (``estimate_pose``) the pose
    :func:`estimate` finds from there; returns the steps and the final pose. The camera and the robot must be
    connected (the robot only read)."""
    if (camera.width, camera.height) != (view.width, view.height):
        raise RobotFault(f"camera {camera.name} delivers {camera.width}x{camera.height}, the twin renders "
                         f"{view.width}x{view.height}")  # fmt: skip
    real = camera.read().rgb
    joints = robot.get_state().vector
    out.mkdir(parents=True, exist_ok=True)
    result = AlignResult(start.camera, start.serial, (start.width, start.height), [float(v) for v in joints])
    distance = edge_map(real)
    pose = start

    def record(label: str | None) -> None:
        twin, mask = view.render(joints, pose)
        step = len(result.steps)
        path = out / f"align_{step}.png"
        write_png(path, blend(real, twin, mask))
        difference = float(np.abs(real.astype(float) - twin.astype(float)).mean())
        result.steps.append(AlignStep(step, label, pose.position, tuple(round(v, 4) for v in pose.rpy_deg),
                                      edge_distance(distance, mask), difference, str(path)))  # fmt: skip

    record(None)
    for nudge in nudges:
        pose = pose.nudged(nudge)
        record(str(nudge))
    if estimate_pose:
        pose, found, renders = estimate(view, joints, distance, pose)
        record(f"estimated ({renders} renders): {found}")
    return result, pose


def finish(pose: CameraCalibration, who: Provenance, path: Path | None, result: AlignResult) -> CameraCalibration:
    """The final pose with its provenance, written to ``path`` when given."""
    final = replace(pose, provenance=who)
    if path is not None:
        final.write(path)
        result.calibration, result.calibration_name = str(path), final.name
    return final


def format_result(result: AlignResult) -> list[str]:
    lines = [f"{result.camera} ({result.serial}) at {result.resolution[0]}x{result.resolution[1]}; "
             "score = mean distance of the twin's arm outline to the real edges (px, lower is better)"]  # fmt: skip
    for s in result.steps:
        x, y, z = s.position
        roll, pitch, yaw = s.rpy_deg
        what = (
            "start" if s.nudge is None else s.nudge if s.nudge.startswith(("estimated", "live")) else f"nudge {s.nudge}"
        )
        lines.append(f"[{s.step}] {what}\n    pose xyz {x:.4f} {y:.4f} {z:.4f} m, rpy {roll:.2f} {pitch:.2f} "
                     f"{yaw:.2f} deg; score {s.edge_distance_px:.2f} px, pixel difference {s.pixel_difference:.1f}"
                     f" -> {s.image}")  # fmt: skip
    if result.calibration:
        lines.append(f"wrote {result.calibration} ({result.calibration_name}); use it with "
                     f"`pushcut sim demo ... --camera-calibration {result.calibration}`")  # fmt: skip
    return lines


@dataclass(frozen=True)
class AlignRequest:
    """What ``pushcut robot align`` was asked to do."""

    camera: str  # head_camera
    serial: str  # a RealSense serial, replay:PATH (recorded frames), or twin (the virtual Piper pair's twin)
    width: int
    height: int
    robot: RobotChoice
    out: Path
    nudges: tuple[str, ...] = ()  # "dx,dy,dz,droll,dpitch,dyaw", applied in order
    calibration: Path | None = None  # start from this pose (else the scene's nominal head camera)
    write_calibration: Path | None = None
    operator: str | None = None
    estimate: bool = False  # after the nudges, search the pose that puts the arms' outline on the real edges
    live: bool = False  # then the live view (robot/tools/align_live.py) until Ctrl-C or live_seconds
    live_seconds: float | None = None


def parse_camera(value: str) -> tuple[str, str]:
    """``head_camera=SERIAL`` -> (name, serial); ValueError for anything else."""
    name, sep, serial = value.partition("=")
    if not sep or not name or not serial:
        raise ValueError(f"--camera takes NAME=SERIAL, e.g. head_camera=123456789012; got {value!r}")
    if name != "head_camera":
        raise ValueError(f"only the head camera is calibrated against the twin (--camera head_camera=SERIAL), "
                         f"got {name!r}")  # fmt: skip
    return name, serial


def open_camera(name: str, serial: str, width: int, height: int, robot: RobotChoice | None = None) -> Camera:
    """A RealSense by serial, ``replay:PATH`` (recorded frames: tests, offline alignment), or ``twin`` (the head
    camera of the virtual Piper pair's twin, ``robot`` brought up); not yet connected."""
    if serial == "twin":
        if robot is None or robot.pair is None:
            raise RobotFault("--camera head_camera=twin is the virtual Piper pair's twin camera: use it with --robot "
                             "virtual-piper")  # fmt: skip
        return robot.pair.camera(name, width, height)
    if serial.startswith("replay:"):
        camera = ReplayCamera(ReplayConfig(serial.removeprefix("replay:"), name=name, loop=True))  # a live feed
        if (camera.width, camera.height) != (width, height):
            raise RobotFault(f"{serial} holds {camera.width}x{camera.height} frames, not {width}x{height}")
        return camera
    return RealSenseCamera(RealSenseConfig(serial=serial, name=name, width=width, height=height, fps=30))


def start_pose(request: AlignRequest) -> CameraCalibration | None:
    """The calibration to start from, checked against the camera (name, resolution, serial); None: nominal."""
    if request.calibration is None:
        return None
    start = CameraCalibration.load(request.calibration)
    start.check(request.camera, request.width, request.height, str(request.calibration))
    if start.serial != request.serial:
        raise CalibrationError(f"{request.calibration} was made with camera {start.serial}, not {request.serial}")
    return start


def run(request: AlignRequest, stop: threading.Event | None = None) -> AlignResult:
    """Check the input, open the camera, the twin's view and the robot (read-only), align (and with ``live``, keep
    the live view going until ``stop`` is set or ``live_seconds`` pass), write the file."""
    nudges = [Nudge.parse(text) for text in request.nudges]
    start = start_pose(request)
    with bring_up(request.robot) as robot:  # virtual-piper: the pair runs until the alignment ends
        camera = open_camera(request.camera, request.serial, request.width, request.height, robot)
        view = TwinView(request.robot.task, request.width, request.height, request.robot.seed or 0)
        try:
            camera.connect()
            try:
                with open_robot(robot, read_only=True) as opened:
                    result, pose = align(camera, opened.robot, view, start or view.nominal_calibration(request.serial),
                                         nudges, request.out, request.estimate)  # fmt: skip
                    if request.live:
                        pose = _live(camera, opened.robot, view, pose, request, result, stop or threading.Event())
            finally:
                camera.close()
        finally:
            view.close()
        label = robot.label
    finish(pose, provenance(request.operator, label), request.write_calibration, result)
    return result


def _live(camera: Camera, robot: Robot, view: TwinView, pose: CameraCalibration, request: AlignRequest,
          result: AlignResult, stop: threading.Event) -> CameraCalibration:  # fmt: skip
    """The live view from ``pose``; its final pose becomes the result's last step."""
    from pushcut.common.live_view import LIVE_IMAGE
    from pushcut.robot.tools.align_live import live

    pose, status = live(camera, robot, view, pose, request.out, stop, request.live_seconds)
    what = f"live view ({status.frame} frames; nudges applied: {len(status.nudges_applied)}"
    what += f", rejected: {len(status.nudges_rejected)})" if status.nudges_rejected else ")"
    result.steps.append(AlignStep(len(result.steps), what, pose.position, tuple(round(v, 4) for v in pose.rpy_deg),
                                  status.edge_distance_px, status.pixel_difference,
                                  str(request.out / LIVE_IMAGE)))  # fmt: skip
    return pose
