"""`pushcut robot cameras`: enumeration through a pyrealsense2 context (a context of our own making stands in for
the devices, with pyrealsense2's real enums), snapshots through the replay camera, and the real "none found" path."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pyrealsense2 as rs
from typer.testing import CliRunner

from pushcut.cli import app
from pushcut.robot.drivers.cameras import ReplayCamera, ReplayConfig
from pushcut.robot.drivers.interface import RobotFault
from pushcut.robot.tools.cameras import WARMUP_FRAMES, discover, format_report, list_realsense, snapshot_mode


class Profile:
    def __init__(self, stream, width, height, fps, fmt, video=True):
        self.values = stream, width, height, fps, fmt
        self.video = video

    def is_video_stream_profile(self):
        return self.video

    def as_video_stream_profile(self):
        return self

    def stream_type(self):
        return self.values[0]

    def width(self):
        return self.values[1]

    def height(self):
        return self.values[2]

    def fps(self):
        return self.values[3]

    def format(self):
        return self.values[4]


class Sensor:
    def __init__(self, profiles):
        self.profiles = profiles

    def get_stream_profiles(self):
        return self.profiles


class Device:
    def __init__(self, info, sensors):
        self.info, self.sensors = info, sensors

    def supports(self, key):
        return key in self.info

    def get_info(self, key):
        return self.info[key]

    def query_sensors(self):
        return self.sensors


class Context:
    def __init__(self, devices):
        self.devices = devices

    def query_devices(self):
        return self.devices


def d435(serial, usb="3.2", rgb=True):
    color = [Profile(rs.stream.color, w, h, f, rs.format.rgb8 if rgb else rs.format.yuyv)
             for w, h in ((1280, 720), (640, 480), (320, 240)) for f in (15, 30)]  # fmt: skip
    color.append(Profile(rs.stream.color, 640, 480, 30, rs.format.bgr8))
    depth = [
        Profile(rs.stream.depth, 848, 480, 30, rs.format.z16),
        Profile(rs.stream.accel, 0, 0, 200, rs.format.motion_xyz32f, video=False),
    ]
    info = {rs.camera_info.serial_number: serial, rs.camera_info.name: "Intel RealSense D435",
            rs.camera_info.usb_type_descriptor: usb}  # no firmware entry: reported as unknown  # fmt: skip
    return Device(info, [Sensor(depth), Sensor(color)])


def replay_opener(tmp_path, shade):
    def open_camera(info, mode):
        frames = np.full((WARMUP_FRAMES, mode.height // 8, mode.width // 8, 3), shade[info.serial], np.uint8)
        frames[-1, 0, 0] = (255, 0, 0)  # the last frame read is the snapshot
        path = tmp_path / f"{info.serial}.npz"
        np.savez(path, frames=frames)
        return ReplayCamera(ReplayConfig(path, name=info.serial))

    return open_camera


def test_enumeration_lists_serial_model_usb_and_modes_colour_first():
    (cam,) = list_realsense(Context([d435("123456789012")]))
    assert (cam.serial, cam.model, cam.usb_type, cam.firmware) == ("123456789012", "Intel RealSense D435", "3.2",
                                                                   "unknown")  # fmt: skip
    assert [str(m) for m in cam.color_modes[:3]] == ["1280x720@30 rgb8", "1280x720@15 rgb8", "640x480@30 bgr8"]
    assert cam.modes[-1].stream == "depth" and len(cam.modes) == 8  # the motion stream is not a video mode
    assert str(snapshot_mode(cam)) == "640x480@30 rgb8"


def test_snapshots_one_png_per_camera_through_the_camera_opener(tmp_path):
    context = Context([d435("111"), d435("222", usb="2.1")])
    result = discover(tmp_path / "snaps", context, replay_opener(tmp_path, {"111": 40, "222": 90}))
    assert result.ok and [c.info.serial for c in result.cameras] == ["111", "222"]
    for report, shade in zip(result.cameras, (40, 90)):
        image = cv2.imread(report.snapshot)[..., ::-1]
        assert image.shape == (60, 80, 3) and tuple(image[0, 0]) == (255, 0, 0) and image[5, 5, 1] == shade
    lines = format_report(result)
    assert "111  Intel RealSense D435  USB 3.2  firmware unknown" in lines[0]
    assert "    color 640x480 @ 15/30 fps  (bgr8, rgb8)" in lines
    assert any("222" in line and "USB 2" in line for line in lines)
    assert lines[-1] == "assign each to the policy's camera name, e.g. --camera head_camera=111"


def test_a_camera_without_rgb_or_failing_to_stream_is_reported_and_not_ok(tmp_path):
    def broken(info, mode):
        raise RobotFault(f"camera {info.serial} failed to start: busy")

    result = discover(tmp_path, Context([d435("333", rgb=False), d435("444")]), broken)
    assert not result.ok
    assert "offers no rgb8 colour stream" in result.cameras[0].error
    assert result.cameras[1].error == "camera 444 failed to start: busy"
    assert result.cameras[0].snapshot is None and not list(tmp_path.glob("*.png"))


def test_cli_with_no_camera_connected_says_so_and_fails(tmp_path):
    assert len(rs.context().query_devices()) == 0  # this machine has no RealSense: the real library answers
    out = tmp_path / "snaps"
    result = CliRunner().invoke(app, ["robot", "cameras", "--out", str(out), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == []
    assert "no RealSense camera found" in result.stderr and "USB 3" in result.stderr
    assert not out.exists()
