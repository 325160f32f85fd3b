"""Cameras behind the ``Camera`` protocol: Intel RealSense (pyrealsense2) and replay of recorded files.

Frames are RGB uint8 (H, W, 3) with a ``time.monotonic()`` timestamp; the simulator's cameras live with the sim
robot. Pitfalls handled:

- ``pipeline.start()`` blocks about 15 s before "No device connected", so ``RealSenseCamera.connect`` first lists
  the connected devices and fails at once, naming the serials that *are* connected; an unsupported
  resolution / fps is reported before starting too.
- RealSense timestamps are milliseconds in the device's domain: system / global time (host wall clock) is mapped to
  the monotonic clock; a hardware-clock timestamp cannot be, so the host arrival time is used instead.
- ``read`` never returns the same frame twice: it waits for a newer frame number, or raises ``RobotFault``.
- Replay: ``.npz`` with ``frames`` (N, H, W, 3) uint8 RGB and optional ``timestamps`` (N,) seconds, or a video
  (``.mp4`` via OpenCV, BGR converted to RGB). Timestamps follow the recording's spacing from ``connect``; with
  ``realtime`` reads are paced to it; ``loop`` restarts at the end, otherwise the end raises ``RobotFault``.
Imports of pyrealsense2 and OpenCV are lazy (neither is needed to import this module).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pushcut.robot.drivers.interface import Frame, RobotFault


def realsense_module() -> Any:
    """The pyrealsense2 module; RobotFault with what to install when it cannot be imported."""
    try:
        import pyrealsense2 as rs
    except ImportError as e:
        raise RobotFault(
            f"pyrealsense2 cannot be imported ({e}): `pip install pyrealsense2` and `apt install libusb-1.0-0`"
        ) from e
    return rs


def realsense_serials() -> list[str]:
    """Serial numbers of the RealSense devices connected now (fast; starts nothing)."""
    rs = realsense_module()
    return [dev.get_info(rs.camera_info.serial_number) for dev in rs.context().query_devices()]


@dataclass(frozen=True)
class RealSenseConfig:
    serial: str
    name: str = "head_camera"  # the policy's camera name
    width: int = 640
    height: int = 480
    fps: int = 30
    timeout_s: float = 1.0  # read() gives up after this long without a new frame


class RealSenseCamera:
    """The colour stream of one RealSense camera, selected by serial number."""

    def __init__(self, config: RealSenseConfig) -> None:
        self.config = config
        self.name, self.width, self.height, self.fps = config.name, config.width, config.height, float(config.fps)
        self._pipeline: Any = None
        self._last_index = -1

    def connect(self) -> None:
        c = self.config
        rs = realsense_module()
        serials = realsense_serials()
        if c.serial not in serials:
            raise RobotFault(
                f"camera '{c.name}': no RealSense with serial {c.serial} is connected (connected serials: "
                f"{', '.join(serials) or 'none'}). Check the USB 3 cable and port (`rs-enumerate-devices -s`, "
                "`lsusb`) and the serial in the camera config."
            )
        pipeline, rs_config = rs.pipeline(), rs.config()
        rs_config.enable_device(c.serial)
        rs_config.enable_stream(rs.stream.color, c.width, c.height, rs.format.rgb8, c.fps)
        if not rs_config.can_resolve(rs.pipeline_wrapper(pipeline)):
            raise RobotFault(
                f"camera '{c.name}' ({c.serial}) does not support colour {c.width}x{c.height} at {c.fps} fps "
                "(`rs-enumerate-devices -s` lists its modes)"
            )
        try:
            pipeline.start(rs_config)
        except RuntimeError as e:
            raise RobotFault(f"camera '{c.name}' ({c.serial}) failed to start: {e}") from e
        self._pipeline, self._last_index = pipeline, -1

    def read(self) -> Frame:
        if self._pipeline is None:
            raise RobotFault(f"camera '{self.name}' is not connected")
        rs = realsense_module()
        deadline = time.monotonic() + self.config.timeout_s
        while True:
            remaining_ms = int(max(0.0, deadline - time.monotonic()) * 1000)
            try:
                color = self._pipeline.wait_for_frames(max(remaining_ms, 1)).get_color_frame()
            except RuntimeError as e:
                raise RobotFault(f"camera '{self.name}': no frame within {self.config.timeout_s} s ({e})") from e
            index = color.get_frame_number()
            if index > self._last_index:
                break
        self._last_index = index
        now = time.monotonic()
        if color.get_frame_timestamp_domain() in (rs.timestamp_domain.system_time, rs.timestamp_domain.global_time):
            timestamp = now - max(0.0, time.time() - color.get_timestamp() / 1000.0)
        else:
            timestamp = now
        return Frame(rgb=np.asanyarray(color.get_data()).copy(), timestamp=timestamp, index=index)

    def close(self) -> None:
        if self._pipeline is not None:
            self._pipeline.stop()
            self._pipeline = None


@dataclass(frozen=True)
class ReplayConfig:
    path: str | Path
    name: str = "head_camera"
    loop: bool = False
    realtime: bool = False  # pace read() to the recording's frame times
    fps: float | None = None  # overrides the file's rate (npz without timestamps: default 30)


class ReplayCamera:
    """Frames from a recording, as if from a live camera (videos are decoded as they are read, not preloaded)."""

    def __init__(self, config: ReplayConfig) -> None:
        self.config = config
        self.name = config.name
        self._path = Path(config.path)
        if not self._path.exists():
            raise RobotFault(f"replay camera '{self.name}': {self._path} does not exist")
        self._frames: np.ndarray | None = None  # npz: all frames; video: decoded on the fly from _capture
        self._capture: Any = None
        if self._path.suffix == ".npz":
            self._frames, self._times = _load_npz(self._path, config.fps)
            self.height, self.width = self._frames.shape[1:3]
            period = float(np.median(np.diff(self._times))) if len(self._times) > 1 else 1.0 / (config.fps or 30.0)
            self.fps = config.fps or 1.0 / period
            self._cycle = float(self._times[-1]) + period  # duration of one pass, for looping
        else:
            capture = self._open_video()
            self.width, self.height = _video_size(capture)
            self.fps = float(config.fps or capture.get(_cv2().CAP_PROP_FPS) or 30.0)
            capture.release()
        self._t0: float | None = None

    def connect(self) -> None:
        self._t0, self._count, self._i, self._pass_offset = time.monotonic(), 0, 0, 0.0
        if self._frames is None:
            self._capture = self._open_video()

    def read(self) -> Frame:
        if self._t0 is None:
            raise RobotFault(f"replay camera '{self.name}' is not connected")
        rgb, offset = self._next()
        timestamp = self._t0 + self._pass_offset + offset
        if self.config.realtime:
            time.sleep(max(0.0, timestamp - time.monotonic()))
        self._count += 1
        return Frame(rgb=rgb, timestamp=timestamp, index=self._count - 1)

    def close(self) -> None:
        self._t0 = None
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def _next(self) -> tuple[np.ndarray, float]:
        """The next frame of the recording and its time within the current pass."""
        if self._frames is not None:
            if self._i == len(self._frames):
                self._restart(self._cycle)
            rgb, offset = self._frames[self._i], float(self._times[self._i])
        else:
            ok, bgr = self._capture.read()
            if not ok:
                self._restart(self._i / self.fps)
                self._capture.release()
                self._capture = self._open_video()
                ok, bgr = self._capture.read()
            if not ok:
                raise RobotFault(f"replay camera '{self.name}': cannot decode {self._path}")
            rgb, offset = _cv2().cvtColor(bgr, _cv2().COLOR_BGR2RGB), self._i / self.fps
        self._i += 1
        return rgb, offset

    def _restart(self, pass_duration: float) -> None:
        if not self.config.loop or self._i == 0:
            raise RobotFault(f"replay camera '{self.name}': {self._path} ended after {self._count} frames")
        self._pass_offset += pass_duration
        self._i = 0

    def _open_video(self) -> Any:
        capture = _cv2().VideoCapture(str(self._path))
        if not capture.isOpened():
            raise RobotFault(f"replay camera '{self.name}': OpenCV cannot open {self._path}")
        return capture


def _cv2() -> Any:
    import cv2

    return cv2


def _video_size(capture: Any) -> tuple[int, int]:
    cv2 = _cv2()
    return int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))


def _load_npz(path: Path, fps: float | None) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as data:
        if "frames" not in data:
            raise RobotFault(f"replay file {path} has no 'frames' array (it has: {', '.join(data.files)})")
        frames = data["frames"]
        times = data["timestamps"].astype(float) if "timestamps" in data and fps is None else None
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise RobotFault(f"replay file {path}: 'frames' must be uint8 (N>0, H, W, 3): {frames.dtype} {frames.shape}")
    if times is None or len(times) != len(frames):
        times = np.arange(len(frames)) / (fps or 30.0)
    return frames, times - times[0]
