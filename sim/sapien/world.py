"""SAPIEN's :class:`~pushcut.sim.world.World`: the rig (arms, drives, static scene), the cameras and the task's
bodies of one scene description, in one SAPIEN scene for the world's lifetime (PhysX steps all dynamics).

Names are the description's: bodies by their own names (``bell``, ``distractor0``, ``table``) or ``left/link6`` for
arm links; cameras as MuJoCo's world names (``head_camera``, ``left/camera``, ``right/camera``).

Appearance: every randomisation switch is applied per episode, on the scene built once: object recolour groups, the
table drop (the table actor moves, so its collision does too), the table top's texture or plain colour (MuJoCo's own
texture pixels, uploaded into the one texture the table top was built with: `textures.py`), the lights' tints and
gains and the headlight's gain (on the lights the rig made from the description), head camera jitter and distractor
placement. Colours and lights follow MuJoCo's colour model (`looks.py`): before each picture the headlight turns
along the drawing camera and a shown texture is rescaled for MuJoCo's clamp of that camera's lighting.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pushcut.sim import mujoco_scene
from pushcut.sim import piper_geometry as geometry
from pushcut.sim import piper_spec as spec
from pushcut.sim.appearance import Appearance
from pushcut.sim.geometry import Pose, quat_to_mat
from pushcut.sim.sapien.bodies import build_body, contact_materials
from pushcut.sim.sapien.cameras import GL_TO_SAPIEN, HEAD_CAMERA, RigCameras, xyaxes_rotation
from pushcut.sim.sapien.device import import_sapien
from pushcut.sim.sapien.looks import mujoco_table_light, texture_tint
from pushcut.sim.sapien.rig import SapienRig
from pushcut.sim.sapien.textures import box_atlas, tinted_atlas, uniform_atlas
from pushcut.sim.scene_description import TABLE_TOP_GEOM, SceneDescription
from pushcut.sim.world import Contact

# World camera names -> RigCameras names.
RIG_CAMERAS: dict[str, str] = {"head_camera": HEAD_CAMERA, "left/camera": "left_camera", "right/camera": "right_camera"}
WRIST_ARMS: dict[str, str] = {"left/camera": "left", "right/camera": "right"}


def _set_colour(shape: Any, rgba: np.ndarray) -> None:
    """Base colour of a render shape (a primitive's material, or every part of a mesh)."""
    materials = [part.material for part in shape.parts] if hasattr(shape, "parts") else [shape.material]
    for material in materials:
        material.set_base_color([float(c) for c in rgba])


class SapienWorld:
    """The dual-Piper world in SAPIEN (see :class:`pushcut.sim.world.World` for the contract); ``piper_urdf``: a
    single-arm Piper URDF loaded at both mounts instead of pushcut's own (``EnvConfig.piper_urdf``)."""

    engine = "sapien"

    def __init__(self, description: SceneDescription, piper_urdf: str | None = None) -> None:
        self.sapien = import_sapien()
        self.description = description
        self.rig = SapienRig(description, urdf=piper_urdf)
        self.timestep = self.rig.timestep
        materials = contact_materials(self.rig.scene)
        bodies = (*description.distractors, *description.objects.bodies)
        self.actors: dict[str, Any] = {b.name: build_body(self.rig.scene, b, True, materials) for b in bodies}
        self.bodies = {b.name: b for b in bodies}
        for name, body in self.bodies.items():  # a sleeping actor reports no contacts; MuJoCo's bodies never sleep
            rigid = self.actors[name].find_component_by_type(self.sapien.physx.PhysxRigidDynamicComponent)
            if body.motion == "free" and rigid is not None:
                rigid.set_sleep_threshold(0.0)
        render = self.sapien.render.RenderBodyComponent
        self.render_shapes = {name: actor.find_component_by_type(render).render_shapes
                              for name, actor in self.actors.items()}  # fmt: skip
        self.group_shapes = {group: [self._shape(g) for g in description.objects.group_geoms(group)]
                             for group in description.objects.recolour_groups}  # fmt: skip
        self.nominal_rgba = {name: np.array(self._geom(name).rgba, dtype=float)
                             for names in map(description.objects.group_geoms, description.objects.recolour_groups)
                             for name in names}  # fmt: skip
        self.nominal_table = np.array(description.table.pos, dtype=float)
        self._build_table_texture()
        self.light_gains: list[np.ndarray | float] = [1.0] * len(self.rig.lights)  # per light, as the rig has them
        self.table_texture_shown: int | None = None  # the description's texture on the table, None: a plain colour
        self.table_tint: np.ndarray | None = None  # the scale that texture was uploaded with
        head = description.camera(HEAD_CAMERA)
        self.head_nominal = (np.array(head.pos, dtype=float), xyaxes_rotation(head.xyaxes), float(head.fovy_deg))
        self.head_now = self.head_nominal
        self._camera_sets: dict[tuple[int, int], RigCameras] = {}
        self._steps = 0

    def _build_table_texture(self) -> None:
        """The table top's one texture (SAPIEN takes a material's texture when it first draws it; later episodes
        upload new pixels into it): the nominal colour, or each of the description's textures as MuJoCo makes it."""
        table = self.description.table
        top = next(i for i, geom in enumerate(table.geoms) if geom.name == TABLE_TOP_GEOM)
        shape = self.rig.table.find_component_by_type(self.sapien.render.RenderBodyComponent).render_shapes[top]
        pixels = mujoco_scene.TEXTURE_PIXELS
        self.table_atlases = [box_atlas(mujoco_scene.table_texture_faces(t)) for t in self.description.table_textures]
        self.nominal_table_rgba = np.array(table.geoms[top].rgba, dtype=float)
        self.table_pixels = pixels
        self.table_texture = self.sapien.render.RenderTexture2D(
            uniform_atlas(self.nominal_table_rgba, pixels), "R8G8B8A8Unorm", srgb=False
        )
        shape.material.set_base_color([1.0, 1.0, 1.0, 1.0])  # the texture replaces the base colour
        shape.material.set_base_color_texture(self.table_texture)

    def _geom(self, geom: str) -> Any:
        for body in self.description.objects.bodies:
            for candidate in body.geoms:
                if candidate.name == geom:
                    return candidate
        raise KeyError(f"no geom {geom!r} among the task's objects")

    def _shape(self, geom: str) -> Any:
        """The render shape of a task geom (build_body adds one visual per geom, in order)."""
        for body in self.description.objects.bodies:
            for index, candidate in enumerate(body.geoms):
                if candidate.name == geom:
                    return self.render_shapes[body.name][index]
        raise KeyError(f"no geom {geom!r} among the task's objects")

    # ---------------------------------------------------------------- state
    def reset(self) -> None:
        for name, body in self.bodies.items():
            self._place(name, np.array(body.pos, dtype=float), np.array([1.0, 0.0, 0.0, 0.0]))
        self.rig.set_joint_state(spec.READY_ACTION)
        self.rig.apply_servo_target(spec.READY_ACTION)
        self._steps = 0

    def time(self) -> float:
        return self._steps * self.timestep

    def set_joint_positions(self, joints: np.ndarray) -> None:
        self.rig.set_joint_state(joints, keep_velocity=True)

    def measured_joints(self) -> np.ndarray:
        return self.rig.measured_joints()

    def apply_servo_target(self, target: np.ndarray) -> None:
        self.rig.apply_servo_target(target)

    def advance_physics(self, nstep: int) -> None:
        self.rig.advance_physics(nstep)
        self._steps += nstep

    def forward(self) -> None:
        """SAPIEN's poses are current after every set (actors and articulation links); the render frames follow."""
        self.rig.scene.update_render()

    def update_frames(self) -> None:
        self.rig.scene.update_render()

    # ---------------------------------------------------------------- bodies
    def _pose(self, name: str) -> Any:
        if name in self.actors:
            return self.actors[name].pose
        if name == self.description.table.name:
            return self.rig.table.pose
        arm, _, link = name.partition("/")
        if arm in spec.ARMS and link:
            return self.rig.link_entity(arm, link).pose
        raise ValueError(f"no body {name!r} in the SAPIEN world; bodies: {sorted(self.actors)} and <arm>/<link>")

    def body_position(self, name: str) -> np.ndarray:
        return np.asarray(self._pose(name).p, dtype=float).copy()

    def body_quat(self, name: str) -> np.ndarray:
        return np.asarray(self._pose(name).q, dtype=float).copy()

    def body_rotation(self, name: str) -> np.ndarray:
        return quat_to_mat(self.body_quat(name))

    def _place(self, name: str, position: np.ndarray, quat: np.ndarray) -> None:
        quat = np.asarray(quat, dtype=float) / np.linalg.norm(quat)
        actor = self.actors[name]
        actor.set_pose(self.sapien.Pose(np.asarray(position, dtype=float).tolist(), quat.tolist()))
        rigid = actor.find_component_by_type(self.sapien.physx.PhysxRigidDynamicComponent)
        if rigid is not None and not rigid.kinematic:
            rigid.set_linear_velocity([0.0, 0.0, 0.0])
            rigid.set_angular_velocity([0.0, 0.0, 0.0])

    def _check_motion(self, name: str, motion: str) -> None:
        body = self.bodies.get(name)
        if body is None or body.motion != motion:
            raise ValueError(f"body {name!r} is not a {motion} body")

    def set_free_body(self, name: str, position: np.ndarray, quat: np.ndarray) -> None:
        self._check_motion(name, "free")
        self._place(name, position, quat)

    def set_static_body(self, name: str, position: np.ndarray, quat: np.ndarray) -> None:
        self._check_motion(name, "static")
        self._place(name, position, quat)

    def tcp_pose(self, arm: str) -> Pose:
        return self.rig.tcp_pose(arm)

    def contacts(self) -> list[Contact]:
        return [Contact(a, b, position) for a, b, position in self.rig.contacts()]

    # ---------------------------------------------------------------- cameras and appearance
    def _cameras(self, width: int, height: int) -> RigCameras:
        cameras = self._camera_sets.get((width, height))
        if cameras is None:
            cameras = RigCameras(self.rig, width=width, height=height)
            cameras.set_head_camera(*self.head_now)
            self._camera_sets[(width, height)] = cameras
        return cameras

    def _rig_camera(self, camera: str) -> str:
        if camera not in RIG_CAMERAS:
            raise ValueError(f"unknown camera {camera!r}; expected one of {sorted(RIG_CAMERAS)}")
        return RIG_CAMERAS[camera]

    def render(self, camera: str, width: int, height: int) -> np.ndarray:
        name = self._rig_camera(camera)
        cameras = self._cameras(width, height)
        axis = -self.camera_pose(camera)[1][:, 2]  # a camera looks down its -z
        self.rig.aim_headlight(axis)
        self._tint_table_texture(axis)
        return cameras.render((name,))[name]

    def _tint_table_texture(self, camera_axis: np.ndarray) -> None:
        """Upload the shown table texture scaled by MuJoCo's clamp of the lighting (`looks.texture_tint`) with the
        headlight along ``camera_axis``, when that changes the scale by more than 1e-3 (a plain table: nothing)."""
        if self.table_texture_shown is None:
            return
        tint = texture_tint(mujoco_table_light(self.description, self.light_gains, camera_axis))
        if self.table_tint is None or np.abs(tint - self.table_tint).max() > 1e-3:
            self.table_texture.upload(tinted_atlas(self.table_atlases[self.table_texture_shown], tint))
            self.table_tint = tint

    def camera_pose(self, camera: str) -> tuple[np.ndarray, np.ndarray]:
        self._rig_camera(camera)
        if camera in WRIST_ARMS:  # the URDF camera link's frame is a SAPIEN camera's (x forward, y left, z up)
            link = self.rig.link_pose(WRIST_ARMS[camera], "camera")
            return link[:3, 3].copy(), link[:3, :3] @ GL_TO_SAPIEN.T
        position, rotation, _ = self.head_now
        return position.copy(), rotation.copy()

    def camera_fovy(self, camera: str) -> float:
        self._rig_camera(camera)
        return float(geometry.WRIST_CAMERA_FOVY) if camera in WRIST_ARMS else self.head_now[2]

    def _show_head(self, position: np.ndarray, rotation: np.ndarray, fovy: float) -> None:
        self.head_now = (np.asarray(position, dtype=float), np.asarray(rotation, dtype=float), float(fovy))
        for cameras in self._camera_sets.values():
            cameras.set_head_camera(*self.head_now)

    def set_camera(self, camera: str, position: np.ndarray, quat: np.ndarray, fovy_deg: float) -> None:
        if self._rig_camera(camera) != HEAD_CAMERA:
            raise ValueError(f"camera {camera!r} rides on its arm; only {HEAD_CAMERA!r} can be placed")
        self.head_nominal = (np.asarray(position, dtype=float), quat_to_mat(np.asarray(quat, dtype=float)),
                             float(fovy_deg))  # fmt: skip
        self._show_head(*self.head_nominal)

    def apply_appearance(self, appearance: Appearance) -> None:
        a = appearance
        gains: list[np.ndarray | float] = [1.0] * len(self.rig.lights)
        if a.light_tints is not None and a.light_gains is not None and a.headlight_gain is not None:
            gains = [*(tint * gain for tint, gain in zip(a.light_tints, a.light_gains, strict=True)), a.headlight_gain]
        self.rig.set_light_gains(gains)
        self.light_gains, self.table_texture_shown, self.table_tint = gains, a.table_texture, None
        if a.table_texture is not None:
            self._tint_table_texture(-self.head_nominal[1][:, 2])
        else:
            rgba = self.nominal_table_rgba if a.table_rgba is None else a.table_rgba
            self.table_texture.upload(uniform_atlas(rgba, self.table_pixels))
        self.rig.table.set_pose(self.sapien.Pose((self.nominal_table - [0.0, 0.0, a.table_drop]).tolist()))
        for group, shapes in self.group_shapes.items():
            names = self.description.objects.group_geoms(group)
            for name, shape in zip(names, shapes, strict=True):
                _set_colour(shape, self.nominal_rgba[name] if a.group_colours is None else a.group_colours[group])
        position, rotation, fovy = self.head_nominal
        if a.camera_offset is not None and a.camera_turn is not None:
            position, rotation = position + a.camera_offset, quat_to_mat(a.camera_turn) @ rotation
        self._show_head(position, rotation, fovy)
        placed = {p.body: p for p in a.distractors}
        for body in self.description.distractors:
            slot = placed.get(body.name)
            if slot is None:
                self._place(body.name, np.array(body.pos, dtype=float), np.array([1.0, 0.0, 0.0, 0.0]))
            else:
                self._place(body.name, slot.position, slot.quat)
                _set_colour(self.render_shapes[body.name][0], slot.rgba)

    def close(self) -> None:
        self._camera_sets.clear()
