"""`pushcut robot align --live`: the blend of the real head camera and the twin, re-rendered continuously at the arms'
measured joints into a folder the dashboard's "Camera alignment" tab shows (and refreshes), while the operator
nudges the pose from that tab (or by appending lines to ``nudges.txt``). The folder's files are described in
:mod:`pushcut.common.live_view`. The arms are only read; the loop ends on Ctrl-C or after ``seconds``, and the pose
it ended on is what ``--write-calibration`` writes."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from pushcut.common.live_view import LIVE_IMAGE, LiveStatus, read_nudges, replace_file, write_status
from pushcut.robot.drivers.interface import Camera, Robot, RobotFault
from pushcut.robot.tools.align_score import blend, edge_distance, edge_map
from pushcut.robot.tools.twin_view import TwinView
from pushcut.sim.camera_calibration import CalibrationError, CameraCalibration, Nudge


def live(
    camera: Camera,
    robot: Robot,
    view: TwinView,
    pose: CameraCalibration,
    out: Path,
    stop: threading.Event,
    seconds: float | None = None,
    period_s: float = 0.2,
) -> tuple[CameraCalibration, LiveStatus]:
    """Render, write and take nudges until ``stop`` is set or ``seconds`` have passed; returns the final pose and
    the last status. The camera and the robot must be connected."""
    out.mkdir(parents=True, exist_ok=True)
    end = math.inf if seconds is None else time.monotonic() + seconds
    lines_seen = len(read_nudges(out, 0))  # nudges from an earlier live view were already applied (or not) there
    status = LiveStatus(0, time.time(), pose.position, pose.rpy_deg, math.nan, math.nan)
    while True:
        started = time.monotonic()
        for line in read_nudges(out, lines_seen):
            lines_seen += 1
            if not line:
                continue
            try:
                pose = pose.nudged(Nudge.parse(line))
                status.nudges_applied.append(line)
            except CalibrationError as error:
                status.nudges_rejected.append(f"{line}: {error}")
        real = camera.read().rgb
        joints = robot.get_state().vector
        twin, mask = view.render(joints, pose)
        ok, png = cv2.imencode(".png", cv2.cvtColor(blend(real, twin, mask), cv2.COLOR_RGB2BGR))
        if not ok:
            raise RobotFault(f"could not encode the live view for {out / LIVE_IMAGE}")
        replace_file(out / LIVE_IMAGE, png.tobytes())
        status.frame += 1
        status.time = time.time()
        status.position, status.rpy_deg = pose.position, tuple(round(v, 4) for v in pose.rpy_deg)
        status.edge_distance_px = edge_distance(edge_map(real), mask)
        status.pixel_difference = float(np.abs(real.astype(float) - twin.astype(float)).mean())
        finished = stop.is_set() or time.monotonic() >= end
        status.running = not finished
        write_status(out, status)
        if finished:
            return pose, status
        stop.wait(max(0.0, period_s - (time.monotonic() - started)))
