"""Domain randomisation, one switch per effect (RoboTwin 2.0's `demo_randomized` keys, adapted to MuJoCo).

Everything is applied to the compiled model/data at reset from the episode's seeded generator, so a fixed seed gives
the same scene and no recompilation is needed:
- object_colors: task objects get a random hue (tasks name their recolourable geoms);
- table_texture: the table top gets one of the built-in textures or a plain random colour;
- lighting: random colour and intensity of the two lights and the headlight;
- table_height: the table top is lowered by U(0, max_table_drop) m (RoboTwin: 0.03);
- distractors: up to NUM_DISTRACTOR_SLOTS clutter objects on the table, kept off the task's keep-out zones;
- head_camera_jitter: the head camera moves by up to `camera_jitter_m` and turns by up to `camera_jitter_rad`.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import mujoco
import numpy as np

from pushcut.sim import piper_spec as spec
from pushcut.sim import scene


@dataclass(frozen=True)
class RandomizationConfig:
    object_colors: bool = False
    table_texture: bool = False
    lighting: bool = False
    table_height: bool = False
    distractors: bool = False
    head_camera_jitter: bool = False
    max_table_drop: float = 0.03
    camera_jitter_m: float = 0.01
    camera_jitter_rad: float = 0.02

    @classmethod
    def preset(cls, name: str) -> RandomizationConfig:
        """'clean' (everything off, RoboTwin demo_clean) or 'randomized' (everything on, demo_randomized)."""
        if name == "clean":
            return cls()
        if name == "randomized":
            return cls(True, True, True, True, True, True)
        raise ValueError(f"unknown randomization preset {name!r}; expected 'clean' or 'randomized'")


@dataclass(frozen=True)
class KeepOutZone:
    """An axis-aligned rectangle on the table (world x/y, metres) that distractors must not overlap."""

    x_min: float
    x_max: float
    y_min: float
    y_max: float

    @classmethod
    def around(cls, x: float, y: float, radius: float) -> KeepOutZone:
        return cls(x - radius, x + radius, y - radius, y + radius)

    def contains(self, x: float, y: float, margin: float) -> bool:
        return self.x_min - margin <= x <= self.x_max + margin and self.y_min - margin <= y <= self.y_max + margin


# Where the arms live: clutter never goes in front of the bases.
ARM_KEEP_OUT = tuple(KeepOutZone.around(m.position[0], m.position[1] + 0.15, 0.15) for m in spec.DUAL_PIPER_MOUNTS)


def random_color(rng: np.random.Generator, saturation=(0.5, 1.0), value=(0.35, 0.95)) -> np.ndarray:
    rgb = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(*saturation), rng.uniform(*value))
    return np.array([*rgb, 1.0])


class DomainRandomizer:
    """Applies a RandomizationConfig to one model; remembers the nominal values it perturbs."""

    def __init__(self, model: mujoco.MjModel, config: RandomizationConfig) -> None:
        self.model = model
        self.config = config
        self.table_body = model.body("table").id
        self.table_geom = model.geom("table_top").id
        self.nominal_table_pos = model.body_pos[self.table_body].copy()
        self.nominal_table_rgba = model.geom_rgba[self.table_geom].copy()
        self.head_camera = model.camera("head_camera").id
        self.nominal_cam_pos = model.cam_pos[self.head_camera].copy()
        self.nominal_cam_quat = model.cam_quat[self.head_camera].copy()
        self.nominal_light_diffuse = model.light_diffuse.copy()
        self.nominal_headlight = model.vis.headlight.diffuse.copy()
        self.table_materials = [model.material(f"table_mat{i}").id for i in range(scene.NUM_TABLE_TEXTURES)]
        self.distractor_bodies = [model.body(f"distractor{i}").id for i in range(scene.NUM_DISTRACTOR_SLOTS)]
        self.distractor_geoms = [model.geom(f"distractor{i}").id for i in range(scene.NUM_DISTRACTOR_SLOTS)]
        self.recolorable_geoms: list[int] = []  # filled by the task in bind()
        self.recolor_groups: list[list[int]] = []
        self.nominal_object_rgba: np.ndarray | None = None

    def set_recolorable(self, groups: list[int | list[int]]) -> None:
        """Geoms to recolour; a list of geom ids in one entry shares one colour (the parts of one object)."""
        self.recolor_groups = [[g] if isinstance(g, int | np.integer) else list(g) for g in groups]
        self.recolorable_geoms = [g for group in self.recolor_groups for g in group]
        self.nominal_object_rgba = self.model.geom_rgba[self.recolorable_geoms].copy()

    def apply(self, data: mujoco.MjData, rng: np.random.Generator) -> float:
        """Randomise the model for a new episode; returns the table-top height."""
        cfg, m = self.config, self.model
        drop = rng.uniform(0.0, cfg.max_table_drop) if cfg.table_height else 0.0
        m.body_pos[self.table_body] = self.nominal_table_pos - np.array([0.0, 0.0, drop])

        m.geom_matid[self.table_geom] = -1
        m.geom_rgba[self.table_geom] = self.nominal_table_rgba
        if cfg.table_texture:
            choice = rng.integers(len(self.table_materials) + 1)
            if choice < len(self.table_materials):
                m.geom_matid[self.table_geom] = self.table_materials[choice]
                m.geom_rgba[self.table_geom] = (1.0, 1.0, 1.0, 1.0)
            else:
                m.geom_rgba[self.table_geom] = random_color(rng, (0.0, 0.5), (0.3, 0.75))

        if self.recolorable_geoms:
            if cfg.object_colors:
                for group in self.recolor_groups:
                    m.geom_rgba[group] = random_color(rng)
            else:
                m.geom_rgba[self.recolorable_geoms] = self.nominal_object_rgba

        m.light_diffuse[:] = self.nominal_light_diffuse
        m.vis.headlight.diffuse[:] = self.nominal_headlight
        if cfg.lighting:
            for light in range(m.nlight):
                tint = rng.uniform(0.7, 1.0, size=3)
                m.light_diffuse[light] = self.nominal_light_diffuse[light] * tint * rng.uniform(0.6, 1.4)
            m.vis.headlight.diffuse[:] = self.nominal_headlight * rng.uniform(0.7, 1.3)

        m.cam_pos[self.head_camera] = self.nominal_cam_pos
        m.cam_quat[self.head_camera] = self.nominal_cam_quat
        if cfg.head_camera_jitter:
            m.cam_pos[self.head_camera] = self.nominal_cam_pos + rng.uniform(-1, 1, 3) * cfg.camera_jitter_m
            axis = rng.normal(size=3)
            axis /= np.linalg.norm(axis)
            angle = rng.uniform(0, cfg.camera_jitter_rad)
            turn = np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis])
            quat = np.empty(4)
            mujoco.mju_mulQuat(quat, turn, self.nominal_cam_quat)
            m.cam_quat[self.head_camera] = quat

        for body in self.distractor_bodies:
            data.mocap_pos[m.body_mocapid[body]] = (0.0, 0.0, -5.0)
        return spec.TABLE_TOP_Z - drop

    def place_distractors(
        self, data: mujoco.MjData, rng: np.random.Generator, keep_out: list[KeepOutZone], table_z: float
    ) -> int:
        """Put clutter on the table away from the task objects and the arms; returns how many were placed."""
        if not self.config.distractors:
            return 0
        m = self.model
        zones = list(keep_out) + list(ARM_KEEP_OUT)
        placed: list[tuple[float, float]] = []
        wanted = int(rng.integers(1, len(self.distractor_bodies) + 1))
        for body, geom in zip(self.distractor_bodies[:wanted], self.distractor_geoms[:wanted]):
            for _ in range(50):  # RoboTwin: 50 tries
                x, y = rng.uniform(-0.55, 0.55), rng.uniform(-0.3, 0.3)
                if any(z.contains(x, y, 0.04) for z in zones):
                    continue
                if any((x - px) ** 2 + (y - py) ** 2 < 0.08**2 for px, py in placed):
                    continue
                data.mocap_pos[m.body_mocapid[body]] = (x, y, table_z + _half_height(m, geom))
                yaw = rng.uniform(-np.pi, np.pi)
                data.mocap_quat[m.body_mocapid[body]] = (np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2))
                m.geom_rgba[geom] = random_color(rng)
                placed.append((x, y))
                break
        return len(placed)


def _half_height(model: mujoco.MjModel, geom: int) -> float:
    """Half height of an upright primitive geom (box, cylinder or sphere)."""
    size, kind = model.geom_size[geom], model.geom_type[geom]
    if kind == mujoco.mjtGeom.mjGEOM_BOX:
        return float(size[2])
    if kind == mujoco.mjtGeom.mjGEOM_CYLINDER:
        return float(size[1])
    return float(size[0])
