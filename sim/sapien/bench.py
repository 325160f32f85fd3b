"""`pushcut sim bench --sim sapien`: the SAPIEN env against raw SAPIEN on the scene the env itself builds.

The baseline is SAPIEN used directly on the env's own scene (``env.world.rig.scene``): per control step the
drive targets of the action are set on the arms' joints, then ``substeps`` times the gravity compensation
(``compute_passive_force`` -> ``set_qf``, what MuJoCo's gravcomp does inside ``mj_step``) and ``scene.step()``; with
rendering ``scene.update_render()``, the head camera's ``take_picture()`` and ``get_picture("Color")`` at the env's
image size. ``DualPiperEnv.step`` on the same scene adds pushcut's work: the servo's ticks, the success check and
its contact trace, the observation (uint8 image, camera matrices, joints, end poses). Their ratio is the env's
overhead, as for MuJoCo (sim/bench.py).

lavapipe renders on LP_NUM_THREADS threads; the benchmark uses 1 unless the shell sets it, as each env worker does
(sim/env_worker.py), so that the single-process rates and the 2-worker pool share the cores the same way.
"""

from __future__ import annotations

import os

import numpy as np

from pushcut.sim import piper_spec as spec
from pushcut.sim.env import DualPiperEnv

RENDER_THREADS = "1"
# Each arm's 14-D action slice: six joints, then the gripper opening.
ARM_ACTIONS = {"left": (spec.LEFT_ARM_SLICE, spec.LEFT_GRIPPER_INDEX),
               "right": (spec.RIGHT_ARM_SLICE, spec.RIGHT_GRIPPER_INDEX)}  # fmt: skip


def use_one_render_thread() -> None:
    """One lavapipe thread per process unless the shell chose otherwise (before SAPIEN is first imported)."""
    os.environ.setdefault("LP_NUM_THREADS", RENDER_THREADS)


class RawSapien:
    """SAPIEN's own calls on the scene of a SAPIEN ``env`` (module docstring): ``step(action, render)``."""

    def __init__(self, env: DualPiperEnv) -> None:
        from pushcut.sim.sapien.cameras import HEAD_CAMERA, RigCameras
        from pushcut.sim.sapien.drives import finger_travel

        if env.world.engine != "sapien":
            raise ValueError(f"raw SAPIEN needs an env with engine 'sapien', got {env.world.engine!r}")
        rig = env.world.rig
        self.scene = rig.scene
        self.substeps = env.substeps
        self.finger_travel = finger_travel
        self.articulations = [piper.articulation for piper in rig.arms.values()]
        # the driven joints of each arm in action order: joint1..6, finger_a (finger_b follows by its tendon)
        self.joints = {arm: [piper.articulation.get_active_joints()[i] for i in piper.qpos_index[""][:7]]
                       for arm, piper in rig.arms.items()}  # fmt: skip
        cameras = RigCameras(rig, (HEAD_CAMERA,), env.config.image_width, env.config.image_height)
        self.camera = cameras.cameras[HEAD_CAMERA]

    def step(self, action: np.ndarray, render: bool) -> None:
        for arm, (arm_slice, gripper) in ARM_ACTIONS.items():
            targets = [*action[arm_slice], self.finger_travel(float(action[gripper]))]
            for joint, target in zip(self.joints[arm], targets, strict=True):
                joint.set_drive_target(float(target))
        for _ in range(self.substeps):
            for articulation in self.articulations:
                articulation.set_qf(articulation.compute_passive_force(gravity=True, coriolis_and_centrifugal=False))
            self.scene.step()
        if render:
            self.scene.update_render()
            self.camera.take_picture()
            self.camera.get_picture("Color")
