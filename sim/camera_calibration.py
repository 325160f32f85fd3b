"""A camera's calibrated pose, as ``pushcut robot align`` writes it and the simulation's head camera uses it
(``pushcut sim demo --camera-calibration FILE``, ``make(task, camera_calibration=FILE)``; domain randomisation then
jitters around it). numpy and the standard library only: the robot side writes these files without MuJoCo.

File (JSON)::

    {"format": "pushcut-camera-calibration", "version": 1,
     "camera": "head_camera", "serial": "123456789012", "resolution": [320, 240],
     "pose": {"position": [x, y, z],            world frame, metres
              "quaternion_wxyz": [w, x, y, z],  the camera frame in the world (MuJoCo: x right, y up, looks down -z)
              "rpy_deg": [roll, pitch, yaw]},   the same rotation (x-y-z extrinsic), for people; not read back
     "fovy_deg": 37.0,
     "provenance": {"operator": ..., "created_at": ISO-8601 UTC, "robot": ..., "tool": ...},
     "sha256": hex digest of the canonical JSON of everything above}

The digest is checked on loading (a file edited by hand is refused: rerun align). :attr:`CameraCalibration.name`
(camera, serial and the digest's first 12 characters) is what checkpoints and trial records keep.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "pushcut-camera-calibration"
VERSION = 1


class CalibrationError(ValueError):
    """A calibration file that cannot be used here; the message names the file, what is wrong and what is expected."""


@dataclass(frozen=True)
class Provenance:
    operator: str = ""
    created_at: str = ""  # ISO-8601, UTC
    robot: str = ""  # sim, or the real pair's CAN interfaces
    tool: str = "pushcut robot align"


@dataclass(frozen=True)
class CameraCalibration:
    camera: str
    serial: str
    width: int
    height: int
    position: tuple[float, float, float]
    quaternion: tuple[float, float, float, float]  # w, x, y, z (normalised on construction)
    fovy_deg: float
    provenance: Provenance = field(default_factory=Provenance)

    def __post_init__(self) -> None:
        q = np.asarray(self.quaternion, dtype=float)
        norm = float(np.linalg.norm(q))
        if q.shape != (4,) or not np.isfinite(q).all() or norm < 1e-9:
            raise CalibrationError(f"camera calibration: quaternion {self.quaternion} is not a rotation")
        position = np.asarray(self.position, dtype=float)
        if position.shape != (3,) or not np.isfinite(position).all():
            raise CalibrationError(f"camera calibration: position {self.position} must be 3 finite numbers")
        if not 1.0 < self.fovy_deg < 179.0 or self.width < 1 or self.height < 1:
            raise CalibrationError(f"camera calibration: fovy {self.fovy_deg} deg or resolution "
                                   f"{self.width}x{self.height} out of range")  # fmt: skip
        if abs(norm - 1.0) > 1e-12:  # a unit quaternion read back from a file keeps its exact bits (and its hash)
            q = q / norm
        q = q if q[0] >= 0 else -q
        object.__setattr__(self, "quaternion", tuple(float(v) for v in q))
        object.__setattr__(self, "position", tuple(float(v) for v in position))

    # ------------------------------------------------------------------ geometry
    @property
    def rotation(self) -> np.ndarray:
        """The camera's axes in the world (columns: x right, y up, z backward)."""
        return quat_to_matrix(np.asarray(self.quaternion))

    @property
    def rpy_deg(self) -> tuple[float, float, float]:
        r = self.rotation
        roll, pitch, yaw = (
            math.atan2(r[2, 1], r[2, 2]),
            math.asin(-max(-1.0, min(1.0, r[2, 0]))),
            math.atan2(r[1, 0], r[0, 0]),
        )
        return math.degrees(roll), math.degrees(pitch), math.degrees(yaw)

    def nudged(self, nudge: Nudge) -> CameraCalibration:
        """The pose moved by ``nudge``: translation in the world frame, rotations about the camera's own axes."""
        turn = quat_from_axis_angle((0.0, 0.0, -1.0), math.radians(nudge.roll_deg))  # about the viewing direction
        turn = quat_mul(turn, quat_from_axis_angle((1.0, 0.0, 0.0), math.radians(nudge.pitch_deg)))  # tilt up
        turn = quat_mul(turn, quat_from_axis_angle((0.0, 1.0, 0.0), math.radians(nudge.yaw_deg)))  # pan left
        quaternion = quat_mul(np.asarray(self.quaternion), turn)
        position = np.asarray(self.position) + [nudge.dx, nudge.dy, nudge.dz]
        return replace(self, position=tuple(position), quaternion=tuple(quaternion))

    # ------------------------------------------------------------------ identity
    def content(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "version": VERSION, "camera": self.camera, "serial": self.serial,
            "resolution": [self.width, self.height],
            "pose": {"position": list(self.position), "quaternion_wxyz": list(self.quaternion),
                     "rpy_deg": [round(v, 6) for v in self.rpy_deg]},
            "fovy_deg": self.fovy_deg,
            "provenance": {"operator": self.provenance.operator, "created_at": self.provenance.created_at,
                           "robot": self.provenance.robot, "tool": self.provenance.tool},
        }  # fmt: skip

    @property
    def sha256(self) -> str:
        canonical = json.dumps(self.content(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def name(self) -> str:
        return f"{self.camera}:{self.serial}:{self.sha256[:12]}"

    def summary(self) -> dict[str, str]:
        """What checkpoints, datasets and trial records keep."""
        return {"name": self.name, "sha256": self.sha256}

    # ------------------------------------------------------------------ files
    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({**self.content(), "sha256": self.sha256}, indent=1) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "camera calibration") -> CameraCalibration:
        """From a file's JSON (or a dataset index's copy of it); the digest must match."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CalibrationError(f'{source} is not a pushcut camera calibration (no "format": "{FORMAT}")')
        if data.get("version") != VERSION:
            raise CalibrationError(f"{source}: calibration version {data.get('version')} is not {VERSION}")
        try:
            pose, provenance = data["pose"], data.get("provenance", {})
            width, height = (int(v) for v in data["resolution"])
            calibration = cls(
                camera=str(data["camera"]), serial=str(data["serial"]), width=width, height=height,
                position=tuple(pose["position"]), quaternion=tuple(pose["quaternion_wxyz"]),
                fovy_deg=float(data["fovy_deg"]), provenance=Provenance(**provenance),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, CalibrationError):
                raise
            raise CalibrationError(f"{source}: missing or malformed field ({error!r})") from None
        if data.get("sha256") != calibration.sha256:
            raise CalibrationError(f"{source}: its sha256 does not match its content (edited after it was written?); "
                                   "write it again with `pushcut robot align --write-calibration`")  # fmt: skip
        return calibration

    @classmethod
    def load(cls, path: str | Path) -> CameraCalibration:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise CalibrationError(f"camera calibration {path} does not exist") from None
        except (OSError, json.JSONDecodeError) as error:
            raise CalibrationError(f"camera calibration {path} is not readable JSON: {error}") from None
        return cls.from_dict(data, str(path))

    def check(self, camera: str, width: int, height: int, source: str = "") -> None:
        """CalibrationError unless this calibration is for ``camera`` at ``width`` x ``height``."""
        where = source or self.name
        if self.camera != camera:
            raise CalibrationError(f"{where} calibrates {self.camera!r}, not {camera!r}")
        if (self.width, self.height) != (width, height):
            raise CalibrationError(f"{where} was made at {self.width}x{self.height}, but {camera} is used at "
                                   f"{width}x{height}: align again at that resolution")  # fmt: skip


@dataclass(frozen=True)
class Nudge:
    dx: float = 0.0  # metres, world frame
    dy: float = 0.0
    dz: float = 0.0
    roll_deg: float = 0.0  # about the viewing direction (the camera turns clockwise seen from behind it)
    pitch_deg: float = 0.0  # about the camera's x axis (the view tilts up)
    yaw_deg: float = 0.0  # about the camera's y axis (the view pans left)

    @classmethod
    def parse(cls, text: str) -> Nudge:
        """``dx,dy,dz,droll,dpitch,dyaw`` (metres and degrees)."""
        parts = text.split(",")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            values = []
        if len(values) != 6 or not all(math.isfinite(v) for v in values):
            raise CalibrationError(f"--nudge takes six numbers dx,dy,dz,droll,dpitch,dyaw (metres, degrees), "
                                   f"e.g. 0.01,0,0,0,-0.5,0; got {text!r}")  # fmt: skip
        return cls(*values)

    def __str__(self) -> str:
        return (f"dx {self.dx:+.4f} dy {self.dy:+.4f} dz {self.dz:+.4f} m, roll {self.roll_deg:+.2f} pitch "
                f"{self.pitch_deg:+.2f} yaw {self.yaw_deg:+.2f} deg")  # fmt: skip


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])  # fmt: skip


def quat_from_axis_angle(axis: tuple[float, float, float], angle: float) -> np.ndarray:
    a = np.asarray(axis, dtype=float)
    return np.concatenate([[math.cos(angle / 2)], math.sin(angle / 2) * a / np.linalg.norm(a)])


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    w, x, y, z = np.asarray(q, dtype=float) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])  # fmt: skip


def as_calibration(value: Any) -> CameraCalibration | None:
    """What an env option may hold: None, a calibration, a file path, or a file's JSON (a dataset index's copy)."""
    if value is None or isinstance(value, CameraCalibration):
        return value
    if isinstance(value, str | Path):
        return CameraCalibration.load(value)
    if isinstance(value, dict):
        return CameraCalibration.from_dict(value if "format" in value else _from_asdict(value))
    raise CalibrationError(f"camera_calibration must be a file path or a calibration, got {type(value).__name__}")


def summary_of(value: Any) -> dict[str, str] | None:
    """:meth:`CameraCalibration.summary` of whatever :func:`as_calibration` takes (None stays None)."""
    calibration = as_calibration(value)
    return None if calibration is None else calibration.summary()


def _from_asdict(data: dict[str, Any]) -> dict[str, Any]:
    """A ``dataclasses.asdict`` copy (as env configs are stored in dataset indexes) in the file's layout."""
    calibration = CameraCalibration(**{**data, "provenance": Provenance(**data.get("provenance", {}))})
    return {**calibration.content(), "sha256": calibration.sha256}
