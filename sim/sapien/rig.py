"""The dual Piper in SAPIEN with SAPIEN's own physics: both arms at `DUAL_PIPER_MOUNTS`, MuJoCo's servos as PhysX
drives (`drives.py`), gravity compensation every physics step, and the scene description's floor, wall, risers,
table and lights (`pushcut.sim.scene.describe`; static actors) at its timestep (MuJoCo's 2 ms).

Every collision shape has MuJoCo's friction, by contact class (`bodies.contact_materials`, no restitution): the
finger pads are "grippy" (`piper_model.FINGER_CONTACT`), the other links and the statics the scene default "world"
(or their geom's class). With SAPIEN's default material (friction 0.3, restitution 0.1) a lifted bowl slid out of
the pads, and a pad grazing the table slid where MuJoCo's sticks (docs/results.md, stack_bowls_two).

The same calls as `DualPiperEnv` makes on its MuJoCo model move it, so pushcut's one execution
(`pushcut.sim.execution.ChunkServo`) drives both engines tick for tick::

    rig = SapienRig()                   # one SAPIEN scene for the rig's lifetime (a render system unless render=False)
    rig.set_joint_state(spec.READY_ACTION)
    rig.apply_servo_target(command)     # 14-D: joint radians, grippers as [0, 1] opening
    rig.advance_physics(5)              # PhysX steps all dynamics
    rig.measured_joints(), rig.tcp_pose("left")

The task's objects and distractor slots are built on this rig by `world.py` (`SapienWorld`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pushcut.sim import piper_geometry as geometry
from pushcut.sim import piper_spec as spec
from pushcut.sim import scene as mj_scene
from pushcut.sim.geometry import Pose
from pushcut.sim.piper_urdf import write_urdf
from pushcut.sim.sapien.arm import SapienPiper, load_piper
from pushcut.sim.sapien.bodies import contact_materials
from pushcut.sim.sapien.device import import_sapien, require_vulkan
from pushcut.sim.sapien.drives import apply_drives, finger_travel, piper_drives
from pushcut.sim.sapien.looks import HEADLIGHT, SapienLight, sapien_lights
from pushcut.sim.scene_description import Geom, SceneDescription

# Touching: PhysX reports resting contacts at separations of +-1e-7 m (float32); MuJoCo's at its own small depth.
TOUCH_TOLERANCE_M = 1e-5
WORLD_BODY = "world"  # MuJoCo's name for the floor, wall and risers (the description's world_geoms)
FINGER_CONTACT_CLASS = "grippy"  # piper_model.FINGER_CONTACT's friction; the other arm geoms have the scene default
LINK_CONTACT_CLASS = "world"
ARM_SLICES = {"left": (spec.LEFT_ARM_SLICE, spec.LEFT_GRIPPER_INDEX),
              "right": (spec.RIGHT_ARM_SLICE, spec.RIGHT_GRIPPER_INDEX)}  # fmt: skip


def _check_state(values: Any, what: str) -> np.ndarray:
    state = np.asarray(values, dtype=float)
    if state.shape != (spec.ACTION_DIM,) or not np.isfinite(state).all():
        raise ValueError(f"{what} must be 14 finite numbers (joint radians, grippers in [0, 1]), got {values!r}")
    return state


class SapienRig:
    """Both Pipers and the scene around them in one SAPIEN scene (module docstring). ``description``: the scene
    (default: ``scene.describe()``, no objects); ``urdf``: a single-arm Piper URDF (default: pushcut's, written to a
    temporary file), loaded once per mount of the description; ``render``: with SAPIEN's render system (needs a
    Vulkan device), the links' visuals and the lights, else physics alone."""

    def __init__(self, description: SceneDescription | None = None, urdf: str | Path | None = None,
                 render: bool = True) -> None:  # fmt: skip
        sapien = import_sapien()
        self.description = description or mj_scene.describe()
        self.rendering = render
        if render:
            require_vulkan()
            self.scene = sapien.Scene()
        else:
            self.scene = sapien.Scene([sapien.physx.PhysxCpuSystem()])
        self.timestep = self.description.timestep
        self.scene.set_timestep(self.timestep)
        self.materials = contact_materials(self.scene)
        self.world_entities: list[Any] = []  # floor, wall, risers: contacts name them WORLD_BODY
        self.light_specs: tuple[SapienLight, ...] = ()  # with render: the lights as looks.py maps them
        self.lights: list[Any] = []  # their SAPIEN light components, in that order
        self._build_statics(sapien)
        with tempfile.TemporaryDirectory(prefix="pushcut-rig-") as folder:
            source = Path(urdf) if urdf is not None else write_urdf(Path(folder) / "piper.urdf")
            self.arms: dict[str, SapienPiper] = {
                mount.name: load_piper(self.scene, source, spec.mount_transform(mount), visuals=render)
                for mount in self.description.arms
            }
        self.drives = {}
        for arm, piper in self.arms.items():
            self.drives[arm] = piper_drives(piper.articulation, piper.qpos_index[""])
            apply_drives(piper.articulation, self.drives[arm])
            self._arm_materials(piper.articulation)
            piper.articulation.set_sleep_threshold(0.0)  # never asleep: drive targets change every servo tick
        self._joints = {arm: [piper.articulation.get_active_joints()[i] for i in piper.qpos_index[""]]
                        for arm, piper in self.arms.items()}  # fmt: skip
        self._target = spec.READY_ACTION.copy()
        self.set_joint_state(spec.READY_ACTION)
        self.apply_servo_target(spec.READY_ACTION)

    # ------------------------------------------------------------------ scene
    def _static(self, sapien: Any, name: str, geoms: tuple[Geom, ...], position: tuple[float, ...]) -> Any:
        """A static actor of the description's boxes (the plane is the ground) at ``position``."""
        builder = self.scene.create_actor_builder()
        for geom in geoms:
            if geom.kind != "box":
                raise ValueError(f"{name}: the SAPIEN rig builds box scene geoms, not a {geom.kind} ({geom.name!r})")
            pose = sapien.Pose(list(geom.pos))
            if geom.contact != "visual":
                builder.add_box_collision(pose, half_size=list(geom.size), material=self.materials[geom.contact])
            if self.rendering:
                builder.add_box_visual(pose, half_size=list(geom.size), material=list(geom.rgba))
        builder.set_initial_pose(sapien.Pose(list(position)))
        actor = builder.build_static(name=name)
        self._world_collision(actor)
        return actor

    def _arm_materials(self, articulation: Any) -> None:
        """MuJoCo's friction on the arm's links: the finger pads grippy, every other link the scene default."""
        fingers = {name for name, _ in geometry.FINGERS}
        for link in articulation.get_links():
            contact = FINGER_CONTACT_CLASS if link.name in fingers else LINK_CONTACT_CLASS
            for shape in link.collision_shapes:
                shape.set_physical_material(self.materials[contact])

    @staticmethod
    def _world_collision(entity: Any) -> None:
        """The MuJoCo world's contype / conaffinity on every collision shape of ``entity``."""
        contact_type, affinity = geometry.WORLD_COLLISION_BITS
        for component in entity.components:
            for shape in getattr(component, "collision_shapes", ()):
                groups = shape.get_collision_groups()
                shape.set_collision_groups([contact_type, affinity, groups[2], groups[3]])

    def _build_statics(self, sapien: Any) -> None:
        for geom in self.description.world_geoms:
            if geom.kind == "plane":
                look = sapien.render.RenderMaterial(base_color=list(geom.rgba)) if self.rendering else None
                floor = self.scene.add_ground(geom.pos[2], render=self.rendering, material=self.materials[geom.contact],
                                              render_material=look, render_half_size=list(geom.size[:2]))  # fmt: skip
                self._world_collision(floor)
                self.world_entities.append(floor)
            else:
                self.world_entities.append(self._static(sapien, geom.name, (geom,), (0.0, 0.0, 0.0)))
        table = self.description.table
        self.table = self._static(sapien, table.name, table.geoms, table.pos)
        if self.rendering:
            self._add_lights()

    def _add_lights(self) -> None:
        """The description's lights and MuJoCo's headlight as `looks.sapien_lights` maps them; MuJoCo's headlight
        ambient as SAPIEN's ambient light. The rig keeps each light's component (:attr:`lights`, in that order)."""
        self.scene.set_ambient_light(list(self.description.ambient))
        self.light_specs = sapien_lights(self.description)
        for light in self.light_specs:
            if light.kind == "directional":
                entity = self.scene.add_directional_light(list(light.direction), list(light.colour))
            else:
                entity = self.scene.add_spot_light(list(light.position), list(light.direction), light.inner_fov,
                                                   light.outer_fov, list(light.colour))  # fmt: skip
            self.lights.append(entity)

    def set_light_gains(self, gains: Sequence[np.ndarray | float]) -> None:
        """Each light's colour = its nominal colour x ``gains[i]`` (a scalar or an RGB factor per light: a tint
        times a gain), in :attr:`light_specs` order (the description's lights, then the headlight)."""
        if not self.rendering:
            raise ValueError("lights need a rig built with render=True (SAPIEN's render system)")
        if len(gains) != len(self.lights):
            raise ValueError(f"{len(gains)} light gains for {len(self.lights)} lights "
                             f"({[light.name for light in self.light_specs]})")  # fmt: skip
        for entity, light, gain in zip(self.lights, self.light_specs, gains):
            entity.set_color((np.asarray(light.colour, dtype=float) * gain).tolist())

    def aim_headlight(self, direction: np.ndarray) -> None:
        """Shine the headlight along ``direction`` (world frame): MuJoCo's headlight follows whichever camera draws."""
        unit = np.asarray(direction, dtype=float)
        if unit.shape != (3,) or not np.linalg.norm(unit) > 0.0:
            raise ValueError(f"a headlight direction is a non-zero 3-vector, got {direction!r}")
        sapien = import_sapien()
        headlight = self.lights[[light.name for light in self.light_specs].index(HEADLIGHT)]
        turn = sapien.math.shortest_rotation([1.0, 0.0, 0.0], (unit / np.linalg.norm(unit)).tolist())
        headlight.pose = sapien.Pose([0.0, 0.0, 0.0], turn)  # a SAPIEN light shines along its x axis

    # ------------------------------------------------------------------ state
    def set_joint_state(self, state: Any, keep_velocity: bool = False) -> None:
        """Put both arms at a 14-D state, at rest unless ``keep_velocity`` (no physics; the drives keep their
        targets)."""
        state = _check_state(state, "joint state")
        for arm, (arm_slice, gripper) in ARM_SLICES.items():
            piper = self.arms[arm]
            piper.set_joints(state[arm_slice], float(np.clip(state[gripper], 0.0, 1.0)))
            if not keep_velocity:
                piper.articulation.set_qvel(np.zeros(piper.articulation.dof, dtype=np.float32))

    def apply_servo_target(self, target: Any) -> None:
        """Hold the drives at the 14-D ``target`` from the next physics step on (MuJoCo: the position servos'
        controls); it becomes :attr:`commanded_action`. No time passes."""
        target = _check_state(target, "servo target")
        for arm, (arm_slice, gripper) in ARM_SLICES.items():
            values = [*target[arm_slice], finger_travel(target[gripper])]
            for joint, value in zip(self._joints[arm], values):  # finger_b: no drive, the tendon moves it
                joint.set_drive_target(float(value))
        self._target = target.copy()

    def advance_physics(self, nstep: int) -> None:
        """Step PhysX ``nstep`` timesteps, with gravity compensation (MuJoCo's gravcomp) before each."""
        if nstep < 0:
            raise ValueError(f"nstep must be >= 0, got {nstep}")
        articulations = [piper.articulation for piper in self.arms.values()]
        for _ in range(nstep):
            for articulation in articulations:
                articulation.set_qf(articulation.compute_passive_force(gravity=True, coriolis_and_centrifugal=False))
            self.scene.step()

    @property
    def commanded_action(self) -> np.ndarray:
        return self._target.copy()

    def measured_joints(self) -> np.ndarray:
        """The measured 14-D joint state (grippers as opening fraction in [0, 1], from finger_a)."""
        parts = []
        for arm in spec.ARMS:
            piper = self.arms[arm]
            qpos = np.asarray(piper.articulation.get_qpos(), dtype=float)[piper.qpos_index[""]]
            parts += [qpos[:6], [float(np.clip(qpos[6] / spec.FINGER_STROKE_M, 0.0, 1.0))]]
        return np.concatenate(parts)

    def gripper_opening(self, arm: str) -> float:
        return float(self.measured_joints()[ARM_SLICES[self._arm(arm)][1]])

    def finger_positions(self, arm: str) -> np.ndarray:
        """Travel (m) of finger_a and finger_b."""
        piper = self.arms[self._arm(arm)]
        return np.asarray(piper.articulation.get_qpos(), dtype=float)[piper.qpos_index[""][6:]]

    def tcp_pose(self, arm: str) -> Pose:
        """World pose of the arm's tool centre point."""
        matrix = self.arms[self._arm(arm)].tcp_pose()
        return Pose(matrix[:3, 3].copy(), matrix[:3, :3].copy())

    def link_pose(self, arm: str, link: str) -> np.ndarray:
        """4x4 world pose of one of the arm's links (URDF name without prefix, e.g. ``link6``, ``camera``)."""
        found = self.arms[self._arm(arm)].articulation.find_link_by_name(link)
        if found is None:
            raise ValueError(f"the {arm} arm has no link {link!r}")
        return np.asarray(found.entity_pose.to_transformation_matrix(), dtype=float)

    def link_entity(self, arm: str, link: str) -> Any:
        found = self.arms[self._arm(arm)].articulation.find_link_by_name(link)
        if found is None:
            raise ValueError(f"the {arm} arm has no link {link!r}")
        return found.entity

    def body_name(self, entity: Any) -> str:
        """The scene description's name of a SAPIEN entity: ``left/link6`` for an arm link, WORLD_BODY for the floor,
        wall and risers, else its own name."""
        if any(entity is world for world in self.world_entities):
            return WORLD_BODY
        for arm, piper in self.arms.items():
            if any(link.entity is entity for link in piper.articulation.get_links()):
                return f"{arm}/{entity.name}"
        return entity.name

    def contacts(self) -> list[tuple[str, str, np.ndarray]]:
        """Touching contact points of the last physics step: the two bodies' names and the world position."""
        found = []
        for contact in self.scene.get_contacts():
            names = [self.body_name(body.entity) for body in contact.bodies]
            for point in contact.points:
                if point.separation <= TOUCH_TOLERANCE_M:
                    found.append((names[0], names[1], np.asarray(point.position, dtype=float)))
        return found

    def arm_entity_ids(self, arm: str) -> set[int]:
        """SAPIEN's per-scene ids of the arm's link entities (a segmentation picture's actor ids)."""
        return {link.entity.per_scene_id for link in self.arms[self._arm(arm)].articulation.get_links()}

    @staticmethod
    def _arm(arm: str) -> str:
        if arm not in spec.ARMS:
            raise ValueError(f"unknown arm {arm!r}; expected one of {spec.ARMS}")
        return arm
