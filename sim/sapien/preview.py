"""One frame of a Piper URDF in SAPIEN, rasterised (`pushcut sim urdf --render`; the render smoke test).

SAPIEN's rasterising camera shader ("default"), not RoboTwin's ray tracer (about 5.5 s per 320x240 frame on a CPU).
The first render of a process compiles the shaders (about 10 s on lavapipe).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pushcut.sim import piper_spec as spec
from pushcut.sim.sapien.arm import load_piper
from pushcut.sim.sapien.device import import_sapien, require_vulkan

SHADER = "default"  # SAPIEN's rasteriser


@dataclass(frozen=True)
class PreviewCamera:
    """Where the preview camera stands and looks (world frame, metres), its field of view and image size."""

    position: tuple[float, float, float] = (0.9, -0.9, 0.8)
    target: tuple[float, float, float] = (0.0, 0.0, 0.25)
    fovy_deg: float = 45.0
    width: int = 320
    height: int = 240


def look_at(position, target) -> np.ndarray:
    """4x4 pose of a SAPIEN camera (x forward, y left, z up) at ``position`` looking at ``target``."""
    forward = np.subtract(target, position).astype(float)
    forward /= np.linalg.norm(forward)
    left = np.cross([0.0, 0.0, 1.0], forward)
    left /= np.linalg.norm(left)
    pose = np.eye(4)
    pose[:3, :3] = np.column_stack([forward, left, np.cross(forward, left)])
    pose[:3, 3] = position
    return pose


def render_piper(
    urdf: str | Path, joints: np.ndarray = spec.READY_POSE, camera: PreviewCamera | None = None
) -> np.ndarray:
    """RGB image (H, W, 3) uint8 of the URDF's arm(s) at ``joints`` on a grey floor; a dual file's arms both take
    them. Raises VulkanUnavailable / SapienUnavailable (one line) without a device, PiperURDFError for a wrong file."""
    camera = camera or PreviewCamera()
    require_vulkan()
    sapien = import_sapien()
    sapien.render.set_camera_shader_dir(SHADER)
    scene = sapien.Scene()
    scene.add_ground(altitude=0.0)
    scene.set_ambient_light([0.4, 0.4, 0.4])
    scene.add_directional_light([0.3, 0.5, -1.0], [0.7, 0.7, 0.7])
    piper = load_piper(scene, urdf)
    for prefix in piper.layout.prefixes:
        piper.set_joints(joints, prefix=prefix)
    view = scene.add_camera("preview", camera.width, camera.height, np.radians(camera.fovy_deg), 0.01, 10.0)
    view.entity.set_pose(sapien.Pose(look_at(camera.position, camera.target).astype(np.float32)))
    scene.update_render()
    view.take_picture()
    rgba = np.asarray(view.get_picture("Color"))  # float in [0, 1]
    return (np.clip(rgba[..., :3], 0.0, 1.0) * 255).round().astype(np.uint8)
