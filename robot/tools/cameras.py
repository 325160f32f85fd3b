"""`pushcut robot cameras`: every connected RealSense (serial, model, USB type, colour modes) and one snapshot each,
so that operators can assign ``NAME=SERIAL`` (``--camera head_camera=SERIAL``).

Enumeration talks to a pyrealsense2 *context* only (``query_devices``, ``query_sensors``, ``get_stream_profiles``,
``get_info``), which callers may pass in: tests hand it a context of their own making. Snapshots go through a camera
opener (default: :class:`~pushcut.robot.drivers.cameras.RealSenseCamera`), which tests replace by a replay camera.
Nothing here starts a stream before enumeration has found the device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pushcut.robot.drivers.cameras import RealSenseCamera, RealSenseConfig, realsense_module
from pushcut.robot.drivers.interface import Camera, RobotFault

PREFERRED_MODE = (640, 480, 30)  # the snapshot's stream when the camera has it (width, height, fps)
WARMUP_FRAMES = 10  # auto-exposure settles over the first frames; the snapshot is the last one read


@dataclass(frozen=True)
class StreamMode:
    stream: str  # color, depth, infrared
    width: int
    height: int
    fps: int
    format: str  # rgb8, bgr8, yuyv, z16, ...

    def __str__(self) -> str:
        return f"{self.width}x{self.height}@{self.fps} {self.format}"


@dataclass(frozen=True)
class CameraInfo:
    serial: str
    model: str  # e.g. "Intel RealSense D435"
    usb_type: str  # "3.2" (USB 3) or "2.1" (a USB 2 port or cable: fewer and slower modes)
    firmware: str
    modes: tuple[StreamMode, ...] = ()

    @property
    def color_modes(self) -> tuple[StreamMode, ...]:
        return tuple(m for m in self.modes if m.stream == "color")


@dataclass
class CameraReport:
    info: CameraInfo
    snapshot: str | None = None  # PNG path
    snapshot_mode: str | None = None
    error: str | None = None  # why no snapshot

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self.info), "snapshot": self.snapshot, "snapshot_mode": self.snapshot_mode,
                "error": self.error}  # fmt: skip


@dataclass
class CamerasResult:
    cameras: list[CameraReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.cameras) and all(c.error is None for c in self.cameras)


def _name(value: Any) -> str:
    """A pyrealsense2 enum value as its short name (``stream.color`` -> ``color``)."""
    return str(value).rpartition(".")[2]


def _info(device: Any, rs: Any, key: str) -> str:
    item = getattr(rs.camera_info, key)
    return str(device.get_info(item)) if device.supports(item) else "unknown"


def list_realsense(context: Any | None = None) -> list[CameraInfo]:
    """The RealSense devices ``context`` (default: a new ``pyrealsense2.context()``) sees, with their video modes
    sorted colour first, then by resolution and rate (largest first). RobotFault when pyrealsense2 is missing."""
    rs = realsense_module()
    context = rs.context() if context is None else context
    found = []
    for device in context.query_devices():
        modes = set()
        for sensor in device.query_sensors():
            for profile in sensor.get_stream_profiles():
                if not profile.is_video_stream_profile():
                    continue
                video = profile.as_video_stream_profile()
                modes.add(StreamMode(_name(profile.stream_type()), int(video.width()), int(video.height()),
                                     int(profile.fps()), _name(profile.format())))  # fmt: skip
        order = sorted(modes, key=lambda m: (m.stream != "color", m.stream, -m.width * m.height, -m.fps, m.format))
        found.append(CameraInfo(
            serial=_info(device, rs, "serial_number"), model=_info(device, rs, "name"),
            usb_type=_info(device, rs, "usb_type_descriptor"), firmware=_info(device, rs, "firmware_version"),
            modes=tuple(order),
        ))  # fmt: skip
    return found


def snapshot_mode(info: CameraInfo) -> StreamMode:
    """The colour mode a snapshot uses: 640x480 at 30 fps in rgb8 when available, else the largest rgb8 mode."""
    rgb = [m for m in info.color_modes if m.format == "rgb8"]
    if not rgb:
        raise RobotFault(f"camera {info.serial} ({info.model}) offers no rgb8 colour stream "
                         f"(modes: {', '.join(map(str, info.modes)) or 'none'})")  # fmt: skip
    preferred = [m for m in rgb if (m.width, m.height, m.fps) == PREFERRED_MODE]
    return (preferred or rgb)[0]


def open_realsense(info: CameraInfo, mode: StreamMode) -> Camera:
    return RealSenseCamera(RealSenseConfig(serial=info.serial, name=info.serial, width=mode.width,
                                           height=mode.height, fps=mode.fps, timeout_s=3.0))  # fmt: skip


def write_png(path: Path, rgb: Any) -> None:
    import cv2

    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise RobotFault(f"could not write {path}")


def take_snapshot(camera: Camera, path: Path, warmup: int = WARMUP_FRAMES) -> None:
    """Connect, read ``warmup`` frames, write the last one to ``path`` (PNG), close."""
    camera.connect()
    try:
        frame = None
        for _ in range(max(1, warmup)):
            frame = camera.read()
        write_png(path, frame.rgb)
    finally:
        camera.close()


def discover(
    out: Path | None,
    context: Any | None = None,
    open_camera: Callable[[CameraInfo, StreamMode], Camera] = open_realsense,
) -> CamerasResult:
    """Every connected camera, with a snapshot ``OUT/<serial>.png`` each when ``out`` is given."""
    result = CamerasResult()
    for info in list_realsense(context):
        report = CameraReport(info)
        result.cameras.append(report)
        if out is None:
            continue
        out.mkdir(parents=True, exist_ok=True)
        try:
            mode = snapshot_mode(info)
            report.snapshot_mode = str(mode)
            path = out / f"{info.serial}.png"
            take_snapshot(open_camera(info, mode), path)
            report.snapshot = str(path)
        except RobotFault as error:
            report.error = str(error)
    return result


def format_report(result: CamerasResult) -> list[str]:
    """Human-readable lines: one block per camera, colour modes grouped by resolution."""
    lines = []
    for report in result.cameras:
        info = report.info
        usb = f"USB {info.usb_type}" + (" (USB 2: use a USB 3 port and cable)" if info.usb_type.startswith("2") else "")
        lines.append(f"{info.serial}  {info.model}  {usb}  firmware {info.firmware}")
        by_size: dict[tuple[int, int], tuple[set[int], set[str]]] = {}
        for mode in info.color_modes:
            rates, formats = by_size.setdefault((mode.width, mode.height), (set(), set()))
            rates.add(mode.fps)
            formats.add(mode.format)
        for (width, height), (rates, formats) in by_size.items():
            lines.append(f"    color {width}x{height} @ {'/'.join(map(str, sorted(rates)))} fps  "
                         f"({', '.join(sorted(formats))})")  # fmt: skip
        if report.snapshot:
            lines.append(f"    snapshot ({report.snapshot_mode}): {report.snapshot}")
        if report.error:
            lines.append(f"    no snapshot: {report.error}")
    if result.cameras:
        serial = result.cameras[0].info.serial
        lines.append(f"assign each to the policy's camera name, e.g. --camera head_camera={serial}")
    return lines


NONE_FOUND = ("no RealSense camera found: check that it is plugged into a USB 3 port with a data cable "
              "(`lsusb | grep 8086`), that the udev rules are installed (librealsense's 99-realsense-libusb.rules) "
              "and that no other program holds it")  # fmt: skip
