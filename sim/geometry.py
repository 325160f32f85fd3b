"""Small rigid-body helpers (numpy only): quaternions in MuJoCo's (w, x, y, z) order, rotation matrices, poses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def quat_to_mat(quat: np.ndarray) -> np.ndarray:
    w, x, y, z = np.asarray(quat, dtype=float) / np.linalg.norm(quat)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def mat_to_quat(mat: np.ndarray) -> np.ndarray:
    """Rotation matrix -> unit quaternion (w, x, y, z) with w >= 0."""
    m = np.asarray(mat, dtype=float)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        quat = np.array([0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s])
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        quat = np.array([(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s])
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        quat = np.array([(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s])
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        quat = np.array([(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s])
    quat /= np.linalg.norm(quat)
    return quat if quat[0] >= 0 else -quat


def yaw_quat(yaw: float) -> np.ndarray:
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


def slerp(q0: np.ndarray, q1: np.ndarray, t: float) -> np.ndarray:
    q0, q1 = np.asarray(q0, dtype=float), np.asarray(q1, dtype=float)
    dot = float(np.dot(q0, q1))
    if dot < 0:
        q1, dot = -q1, -dot
    if dot > 0.9995:
        out = q0 + t * (q1 - q0)
        return out / np.linalg.norm(out)
    theta = np.arccos(dot)
    return (np.sin((1 - t) * theta) * q0 + np.sin(t * theta) * q1) / np.sin(theta)


def rotation_error(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle, world frame) that turns matrix `current` into matrix `target`."""
    delta = target @ current.T
    quat = mat_to_quat(delta)
    angle = 2.0 * np.arctan2(np.linalg.norm(quat[1:]), quat[0])
    norm = np.linalg.norm(quat[1:])
    return np.zeros(3) if norm < 1e-12 else quat[1:] / norm * angle


def tool_rotation(approach: np.ndarray, closing: np.ndarray) -> np.ndarray:
    """Gripper frame whose z axis points along `approach` and whose y axis (finger motion) is closest to `closing`."""
    z = np.asarray(approach, dtype=float)
    z = z / np.linalg.norm(z)
    y = np.asarray(closing, dtype=float) - np.dot(closing, z) * z
    if np.linalg.norm(y) < 1e-6:
        raise ValueError("closing axis is parallel to the approach direction")
    y /= np.linalg.norm(y)
    x = np.cross(y, z)
    return np.column_stack([x, y, z])


@dataclass(frozen=True)
class Pose:
    """A world-frame pose: position (m) and rotation matrix."""

    position: np.ndarray
    rotation: np.ndarray

    def moved(self, offset) -> Pose:
        return Pose(np.asarray(self.position, dtype=float) + np.asarray(offset, dtype=float), self.rotation)

    def as_pos_quat(self) -> np.ndarray:
        """7-D [x, y, z, qw, qx, qy, qz] as in RoboTwin's endpose."""
        return np.concatenate([self.position, mat_to_quat(self.rotation)])
