"""The twin's head camera seen from a given pose, with the arms where the real arms measure: an RGB render and the
mask of the arms' pixels (a segmentation render). mujoco and the task registry load when a view is built."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pushcut.sim.camera_calibration import CameraCalibration

if TYPE_CHECKING:
    import mujoco

    from pushcut.sim.env import DualPiperEnv

_GEOM = 5  # mujoco.mjtObj.mjOBJ_GEOM: segmentation renders give (object id, object type) per pixel


class TwinView:
    """A render-only twin of ``task``'s scene (seed ``seed``) at ``width`` x ``height``."""

    def __init__(self, task: str, width: int, height: int, seed: int = 0) -> None:
        import mujoco

        from pushcut.sim.registry import make

        self.width, self.height = width, height
        self.env: DualPiperEnv = make(task, cameras=(), image_width=width, image_height=height)
        self.env.reset(seed=seed)
        model = self.env.model
        self._camera = self.env.camera_ids["head_camera"]
        self.nominal = (model.cam_pos[self._camera].copy(), model.cam_quat[self._camera].copy(),
                        float(model.cam_fovy[self._camera]))  # fmt: skip
        arm_bodies = [b for b in range(model.nbody) if model.body(b).name.startswith(("left/", "right/"))]
        self.arm_geoms = np.flatnonzero(np.isin(model.geom_bodyid, arm_bodies))
        self._renderer: mujoco.Renderer = mujoco.Renderer(model, height, width)

    def nominal_calibration(self, serial: str) -> CameraCalibration:
        """The scene's own head camera as a calibration (the starting point of a first alignment)."""
        position, quaternion, fovy = self.nominal
        return CameraCalibration("head_camera", serial, self.width, self.height, tuple(position), tuple(quaternion),
                                 fovy)  # fmt: skip

    def render(self, joints: np.ndarray, calibration: CameraCalibration) -> tuple[np.ndarray, np.ndarray]:
        """RGB (H, W, 3) and the arms' mask (H, W) bool, with the arms at ``joints`` (14-D) and the camera at
        ``calibration``'s pose and field of view."""
        self.env.pose_arms(joints)
        self.env.apply_camera_calibration(calibration)
        self._renderer.update_scene(self.env.data, self._camera)
        rgb = self._renderer.render().copy()
        return rgb, self._arm_mask()

    def mask(self, joints: np.ndarray, calibration: CameraCalibration) -> np.ndarray:
        """Only the arms' mask (half the work of :meth:`render`)."""
        self.env.pose_arms(joints)
        self.env.apply_camera_calibration(calibration)
        return self._arm_mask()

    def _arm_mask(self) -> np.ndarray:
        renderer = self._renderer
        renderer.enable_segmentation_rendering()
        try:
            renderer.update_scene(self.env.data, self._camera)
            segmentation = renderer.render()
        finally:
            renderer.disable_segmentation_rendering()
        return (segmentation[..., 1] == _GEOM) & np.isin(segmentation[..., 0], self.arm_geoms)

    def close(self) -> None:
        self._renderer.close()
        self.env.close()
