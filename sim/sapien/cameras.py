"""The MuJoCo world's cameras in SAPIEN: the head camera (at a `pushcut robot align` calibration, else at the scene
description's nominal pose) and a wrist camera on each arm's URDF `camera` link, with MuJoCo's sizes, fields of view
and poses, rasterised (SAPIEN's "default" shader, as `preview.py`; lavapipe's threads as `device.py` sets them).

Camera frames: MuJoCo's (and a calibration file's) camera looks down its -z axis with x right and y up (OpenGL); a
SAPIEN camera entity looks along its +x axis with y left and z up. The matrices follow RoboTwin's observation keys,
as `DualPiperEnv.camera_matrices` gives them: ``intrinsic_cv`` (3, 3) from fovy, ``extrinsic_cv`` (3, 4) world to
OpenCV camera, ``cam2world_gl`` (4, 4).

The first picture of a scene compiles SAPIEN's shaders (about 8 s on lavapipe): keep one rig and its cameras for the
life of an env.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pushcut.sim import piper_geometry as geometry
from pushcut.sim.camera_calibration import CameraCalibration
from pushcut.sim.sapien.device import import_sapien
from pushcut.sim.sapien.looks import display_image
from pushcut.sim.sapien.preview import SHADER
from pushcut.sim.sapien.rig import SapienRig
from pushcut.sim.scene_description import Camera

HEAD_CAMERA = "head_camera"
WRIST_CAMERAS: dict[str, str] = {"left_camera": "left", "right_camera": "right"}  # camera -> arm
CAMERA_LINK = "camera"  # the URDF's wrist-camera link (piper_urdf)
# MuJoCo clips closer than vis.map.znear x stat.extent (0.01 x 7.39 m for this scene): the wrist cameras do not see
# the camera housing and the fingers' near ends. SAPIEN's cameras clip at the same distance (tested).
NEAR_M, FAR_M = 0.0739, 10.0
# A SAPIEN camera's axes (x forward, y left, z up) as MuJoCo camera axes (x right, y up, z backward).
GL_TO_SAPIEN = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]])
GL_TO_CV = np.diag([1.0, -1.0, -1.0])


def sapien_camera_pose(cam2world_gl: np.ndarray) -> np.ndarray:
    """The 4x4 pose of a SAPIEN camera entity for a camera whose OpenGL frame in the world is ``cam2world_gl``."""
    pose = np.array(cam2world_gl, dtype=float)
    pose[:3, :3] = pose[:3, :3] @ GL_TO_SAPIEN
    return pose


def xyaxes_rotation(xyaxes: tuple[float, ...]) -> np.ndarray:
    """A camera's rotation (columns x right, y up, z backward) from its x and y axes, orthonormalised as MuJoCo does."""
    x = np.asarray(xyaxes[:3], dtype=float)
    y = np.asarray(xyaxes[3:], dtype=float)
    x /= np.linalg.norm(x)
    y -= x * (x @ y)
    y /= np.linalg.norm(y)
    return np.column_stack([x, y, np.cross(x, y)])


def head_camera_gl(described: Camera, calibration: CameraCalibration | None = None) -> tuple[np.ndarray, float]:
    """The head camera's OpenGL frame in the world (4x4) and fovy (degrees): the calibration's, or the scene
    description's nominal one."""
    pose = np.eye(4)
    if calibration is not None:
        pose[:3, :3], pose[:3, 3] = calibration.rotation, calibration.position
        return pose, calibration.fovy_deg
    pose[:3, :3], pose[:3, 3] = xyaxes_rotation(described.xyaxes), described.pos
    return pose, described.fovy_deg


def camera_matrices(camera: Any) -> dict[str, np.ndarray]:
    """RoboTwin's matrices of a SAPIEN camera (after ``scene.update_render()``)."""
    model = np.asarray(camera.get_model_matrix(), dtype=float)
    rotation_cv = model[:3, :3] @ GL_TO_CV
    extrinsic = np.hstack([rotation_cv.T, (-rotation_cv.T @ model[:3, 3])[:, None]])
    return {"intrinsic_cv": np.asarray(camera.get_intrinsic_matrix(), dtype=float), "extrinsic_cv": extrinsic,
            "cam2world_gl": model}  # fmt: skip


class RigCameras:
    """The head and wrist cameras of a rendering :class:`SapienRig` (``names``: a subset of head_camera,
    left_camera, right_camera) at ``width`` x ``height``; ``calibration`` places the head camera."""

    def __init__(self, rig: SapienRig, names: tuple[str, ...] = (HEAD_CAMERA, *WRIST_CAMERAS), width: int = 320,
                 height: int = 240, calibration: CameraCalibration | None = None) -> None:  # fmt: skip
        known = (HEAD_CAMERA, *WRIST_CAMERAS)
        unknown = [name for name in names if name not in known]
        if unknown:
            raise ValueError(f"unknown camera(s) {unknown}; expected a subset of {list(known)}")
        if not rig.rendering:
            raise ValueError("cameras need a rig built with render=True (SAPIEN's render system)")
        if width < 1 or height < 1:
            raise ValueError(f"image size {width}x{height} must be positive")
        sapien = import_sapien()
        sapien.render.set_camera_shader_dir(SHADER)
        self.rig, self.width, self.height = rig, width, height
        scene = rig.scene
        self.cameras: dict[str, Any] = {}
        for name in names:
            if name == HEAD_CAMERA:
                self.cameras[name] = scene.add_camera(name, width, height, 1.0, NEAR_M, FAR_M)
            else:
                mount = rig.link_entity(WRIST_CAMERAS[name], CAMERA_LINK)
                fovy = np.radians(geometry.WRIST_CAMERA_FOVY)
                self.cameras[name] = scene.add_mounted_camera(name, mount, sapien.Pose(), width, height, fovy,
                                                              NEAR_M, FAR_M)  # fmt: skip
        if HEAD_CAMERA in self.cameras:
            self.place_head_camera(calibration)

    def place_head_camera(self, calibration: CameraCalibration | None = None) -> None:
        """Put the head camera at the calibration's pose and fovy, or at the scene's nominal ones."""
        pose_gl, fovy_deg = head_camera_gl(self.rig.description.camera(HEAD_CAMERA), calibration)
        self.set_head_camera(pose_gl[:3, 3], pose_gl[:3, :3], fovy_deg)

    def set_head_camera(self, position: np.ndarray, rotation_gl: np.ndarray, fovy_deg: float) -> None:
        """Put the head camera at a world ``position`` with the OpenGL ``rotation_gl`` (columns x right, y up,
        z backward) and a vertical field of view (degrees)."""
        if not 1.0 < fovy_deg < 179.0:
            raise ValueError(f"fovy {fovy_deg} deg must be within (1, 179)")
        sapien = import_sapien()
        pose = np.eye(4)
        pose[:3, :3], pose[:3, 3] = rotation_gl, position
        camera = self._camera(HEAD_CAMERA)
        camera.set_fovy(float(np.radians(fovy_deg)), compute_x=True)
        camera.entity.set_pose(sapien.Pose(sapien_camera_pose(pose).astype(np.float32)))

    def _camera(self, name: str) -> Any:
        if name not in self.cameras:
            raise ValueError(f"camera {name!r} is not one of this rig's cameras {list(self.cameras)}")
        return self.cameras[name]

    def matrices(self, name: str) -> dict[str, np.ndarray]:
        """``intrinsic_cv``, ``extrinsic_cv``, ``cam2world_gl`` of a camera where the arms are now."""
        self.rig.scene.update_render()
        return camera_matrices(self._camera(name))

    def render(self, names: tuple[str, ...] | None = None, segmentation: bool = False) -> dict[str, np.ndarray]:
        """RGB images (H, W, 3) uint8 of the cameras (default: all), in MuJoCo's display values
        (`looks.display_image`); with ``segmentation`` the per-pixel SAPIEN entity
        id (H, W) uint32 instead (SapienRig.link_entity(...).per_scene_id names an arm link)."""
        names = tuple(self.cameras) if names is None else names
        cameras = [self._camera(name) for name in names]
        self.rig.scene.update_render()
        images = {}
        for name, camera in zip(names, cameras):
            camera.take_picture()
            if segmentation:
                images[name] = np.asarray(camera.get_picture("Segmentation"))[..., 1].astype(np.uint32)
            else:
                images[name] = display_image(camera.get_picture("Color"))
        return images
