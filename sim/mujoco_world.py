"""MuJoCo's :class:`~pushcut.sim.world.World`: the compiled scene (mujoco_scene.py), its MjData and renderer.

MuJoCo-only tools (the raw-MuJoCo benchmark, the twin's renderer, the push expert's paddle) may read ``model``,
``data`` and the id tables below; tasks and the env's episode logic go through the World methods only.
"""

from __future__ import annotations

import mujoco
import numpy as np

from pushcut.sim import mujoco_scene
from pushcut.sim import piper_spec as spec
from pushcut.sim.appearance import Appearance
from pushcut.sim.geometry import Pose
from pushcut.sim.scene_description import TABLE_TOP_GEOM, SceneDescription
from pushcut.sim.world import Contact

GRIPPERS = (spec.LEFT_GRIPPER_INDEX, spec.RIGHT_GRIPPER_INDEX)


def actuator_controls(target: np.ndarray) -> np.ndarray:
    """The actuators' controls for a 14-D target: joint radians as they are, each gripper's [0, 1] opening as finger
    travel in metres (actuator order = action order)."""
    ctrl = np.array(target, dtype=float)
    ctrl[..., GRIPPERS] *= spec.FINGER_STROKE_M
    return ctrl


class MujocoWorld:
    """The dual-Piper world in MuJoCo (see :class:`pushcut.sim.world.World` for the contract)."""

    engine = "mujoco"

    def __init__(self, description: SceneDescription) -> None:
        self.description = description
        self.model = mujoco_scene.build_model(description)
        self.data = mujoco.MjData(self.model)
        self.timestep = float(self.model.opt.timestep)
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        m = self.model
        self.arm_qpos_adr = {
            arm: np.array([m.joint(f"{arm}/{j}").qposadr[0] for j in spec.ARM_JOINT_NAMES]) for arm in spec.ARMS
        }
        self.finger_qpos_adr = {arm: m.joint(f"{arm}/finger_a").qposadr[0] for arm in spec.ARMS}
        self.finger_b_qpos_adr = {arm: m.joint(f"{arm}/finger_b").qposadr[0] for arm in spec.ARMS}
        self.tcp_site = {arm: m.site(f"{arm}/tcp").id for arm in spec.ARMS}
        self.finger_geoms = {arm: {m.geom(f"{arm}/finger_a").id, m.geom(f"{arm}/finger_b").id} for arm in spec.ARMS}
        self.gripper_geoms = {
            arm: {g for g in range(m.ngeom) if m.body(m.geom_bodyid[g]).name.startswith(f"{arm}/link6")}
            | self.finger_geoms[arm]
            for arm in spec.ARMS
        }
        self.geom_body = [m.body(m.geom_bodyid[g]).name for g in range(m.ngeom)]
        self.camera_id = {m.camera(c).name: c for c in range(m.ncam)}
        self._appearance_ids()

    def _appearance_ids(self) -> None:
        """Ids and nominal values of everything an Appearance changes."""
        m, d = self.model, self.description
        self.table_body = m.body(d.table.name).id
        self.table_geom = m.geom(TABLE_TOP_GEOM).id
        self.nominal_table_pos = m.body_pos[self.table_body].copy()
        self.nominal_table_rgba = m.geom_rgba[self.table_geom].copy()
        self.table_materials = [m.material(mujoco_scene.table_material(i)).id for i in range(len(d.table_textures))]
        self.head_camera = m.camera("head_camera").id
        self.nominal_cam_pos = m.cam_pos[self.head_camera].copy()
        self.nominal_cam_quat = m.cam_quat[self.head_camera].copy()
        self.nominal_light_diffuse = m.light_diffuse.copy()
        self.nominal_headlight = m.vis.headlight.diffuse.copy()
        self.group_geoms = {
            g: [m.geom(name).id for name in d.objects.group_geoms(g)] for g in d.objects.recolour_groups
        }
        self.recolorable_geoms = [g for ids in self.group_geoms.values() for g in ids]
        self.nominal_object_rgba = m.geom_rgba[self.recolorable_geoms].copy()
        self.distractor_mocap = {b.name: m.body(b.name).mocapid[0] for b in d.distractors}
        self.distractor_geom = {b.name: m.geom(b.geoms[0].name).id for b in d.distractors}
        self.park = np.array([b.pos for b in d.distractors], dtype=float)

    # ---------------------------------------------------------------- state
    def reset(self) -> None:
        mujoco.mj_resetData(self.model, self.data)

    def time(self) -> float:
        return float(self.data.time)

    def set_joint_positions(self, joints: np.ndarray) -> None:
        for arm, sl, gi in (("left", spec.LEFT_ARM_SLICE, 6), ("right", spec.RIGHT_ARM_SLICE, 13)):
            self.data.qpos[self.arm_qpos_adr[arm]] = joints[sl]
            self.data.qpos[self.finger_qpos_adr[arm]] = joints[gi] * spec.FINGER_STROKE_M
            self.data.qpos[self.finger_b_qpos_adr[arm]] = joints[gi] * spec.FINGER_STROKE_M

    def gripper_opening(self, arm: str) -> float:
        return float(np.clip(self.data.qpos[self.finger_qpos_adr[arm]] / spec.FINGER_STROKE_M, 0.0, 1.0))

    def measured_joints(self) -> np.ndarray:
        q = self.data.qpos
        return np.concatenate(
            [
                q[self.arm_qpos_adr["left"]],
                [self.gripper_opening("left")],
                q[self.arm_qpos_adr["right"]],
                [self.gripper_opening("right")],
            ]
        )

    def apply_servo_target(self, target: np.ndarray) -> None:
        self.data.ctrl[:] = actuator_controls(target)

    def advance_physics(self, nstep: int) -> None:
        mujoco.mj_step(self.model, self.data, nstep=nstep)

    def forward(self) -> None:
        mujoco.mj_forward(self.model, self.data)

    def update_frames(self) -> None:
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)
        mujoco.mj_camlight(self.model, self.data)

    # ---------------------------------------------------------------- bodies
    def body_position(self, name: str) -> np.ndarray:
        return self.data.body(name).xpos.copy()

    def body_quat(self, name: str) -> np.ndarray:
        return self.data.body(name).xquat.copy()

    def body_rotation(self, name: str) -> np.ndarray:
        return self.data.body(name).xmat.reshape(3, 3).copy()

    def set_free_body(self, name: str, position: np.ndarray, quat: np.ndarray) -> None:
        joint = self.model.body(name).jntadr[0]
        if joint < 0:
            raise ValueError(f"body {name!r} is not a free body")
        adr = self.model.jnt_qposadr[joint]
        self.data.qpos[adr : adr + 3] = position
        self.data.qpos[adr + 3 : adr + 7] = np.asarray(quat) / np.linalg.norm(quat)
        dof = self.model.jnt_dofadr[joint]
        self.data.qvel[dof : dof + 6] = 0.0

    def set_static_body(self, name: str, position: np.ndarray, quat: np.ndarray) -> None:
        mocap = self.model.body(name).mocapid[0]
        if mocap < 0:
            raise ValueError(f"body {name!r} is not a static body")
        self.data.mocap_pos[mocap] = position
        self.data.mocap_quat[mocap] = quat

    def tcp_pose(self, arm: str) -> Pose:
        site = self.tcp_site[arm]
        return Pose(self.data.site_xpos[site].copy(), self.data.site_xmat[site].reshape(3, 3).copy())

    def contacts(self) -> list[Contact]:
        names = self.geom_body
        return [
            Contact(names[c.geom1], names[c.geom2], c.pos.copy())
            for c in (self.data.contact[i] for i in range(self.data.ncon))
        ]

    # ---------------------------------------------------------------- cameras and appearance
    def render(self, camera: str, width: int, height: int) -> np.ndarray:
        renderer = self._renderers.get((width, height))
        if renderer is None:
            try:
                renderer = mujoco.Renderer(self.model, height, width)
            except mujoco.FatalError as error:
                raise RuntimeError(
                    f"MuJoCo cannot render ({error}). Set MUJOCO_GL=osmesa (Debian libosmesa6) or egl before mujoco "
                    "is first imported; pushcut.sim sets osmesa by default only if it is imported first."
                ) from error
            self._renderers[(width, height)] = renderer
        renderer.update_scene(self.data, self.camera_id[camera])
        return renderer.render()

    def camera_pose(self, camera: str) -> tuple[np.ndarray, np.ndarray]:
        cam = self.camera_id[camera]
        return self.data.cam_xpos[cam].copy(), self.data.cam_xmat[cam].reshape(3, 3).copy()

    def camera_fovy(self, camera: str) -> float:
        return float(self.model.cam_fovy[self.camera_id[camera]])

    def set_camera(self, camera: str, position: np.ndarray, quat: np.ndarray, fovy_deg: float) -> None:
        cam = self.camera_id[camera]
        self.model.cam_pos[cam] = position
        self.model.cam_quat[cam] = quat
        self.model.cam_fovy[cam] = fovy_deg
        if cam == self.head_camera:
            self.nominal_cam_pos = self.model.cam_pos[cam].copy()
            self.nominal_cam_quat = self.model.cam_quat[cam].copy()

    def apply_appearance(self, appearance: Appearance) -> None:
        m, a = self.model, appearance
        m.body_pos[self.table_body] = self.nominal_table_pos - np.array([0.0, 0.0, a.table_drop])
        m.geom_matid[self.table_geom] = -1
        m.geom_rgba[self.table_geom] = self.nominal_table_rgba
        if a.table_texture is not None:
            m.geom_matid[self.table_geom] = self.table_materials[a.table_texture]
            m.geom_rgba[self.table_geom] = (1.0, 1.0, 1.0, 1.0)
        elif a.table_rgba is not None:
            m.geom_rgba[self.table_geom] = a.table_rgba
        if a.group_colours is None:
            m.geom_rgba[self.recolorable_geoms] = self.nominal_object_rgba
        else:
            for group, colour in a.group_colours.items():
                m.geom_rgba[self.group_geoms[group]] = colour
        m.light_diffuse[:] = self.nominal_light_diffuse
        m.vis.headlight.diffuse[:] = self.nominal_headlight
        if a.light_tints is not None and a.light_gains is not None and a.headlight_gain is not None:
            for light, (tint, gain) in enumerate(zip(a.light_tints, a.light_gains, strict=True)):
                m.light_diffuse[light] = self.nominal_light_diffuse[light] * tint * gain
            m.vis.headlight.diffuse[:] = self.nominal_headlight * a.headlight_gain
        m.cam_pos[self.head_camera] = self.nominal_cam_pos
        m.cam_quat[self.head_camera] = self.nominal_cam_quat
        if a.camera_offset is not None and a.camera_turn is not None:
            m.cam_pos[self.head_camera] = self.nominal_cam_pos + a.camera_offset
            quat = np.empty(4)
            mujoco.mju_mulQuat(quat, a.camera_turn, self.nominal_cam_quat)
            m.cam_quat[self.head_camera] = quat
        for name, park in zip(self.distractor_mocap, self.park, strict=True):
            self.data.mocap_pos[self.distractor_mocap[name]] = park
        for placed in a.distractors:
            mocap = self.distractor_mocap[placed.body]
            self.data.mocap_pos[mocap] = placed.position
            self.data.mocap_quat[mocap] = placed.quat
            m.geom_rgba[self.distractor_geom[placed.body]] = placed.rgba

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
