"""Domain randomisation, one switch per effect (RoboTwin 2.0's `demo_randomized` keys).

Randomness is drawn once per episode, from the episode's seeded generator, into an engine-neutral record
(:class:`~pushcut.sim.appearance.Appearance`) that each world applies (``World.apply_appearance``), so a fixed seed
gives the same scene in every engine and no recompilation is needed:
- object_colors: task objects get a random hue (one per recolour group of the task's description);
- table_texture: the table top gets one of the scene's textures or a plain random colour;
- lighting: random colour and intensity of the scene's lights and the headlight;
- table_height: the table top is lowered by U(0, max_table_drop) m (RoboTwin: 0.03);
- distractors: up to NUM_DISTRACTOR_SLOTS clutter objects on the table, kept off the task's keep-out zones (drawn
  after the task placed its objects: :meth:`DomainRandomizer.draw_distractors`);
- head_camera_jitter: the head camera moves by up to `camera_jitter_m` and turns by up to `camera_jitter_rad`.

Presets (:data:`PRESET_NAMES`): 'clean' (all off), 'randomized' (all on), and each switch's own name (that switch
alone on, ranges unchanged), for success broken down by randomisation factor.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, fields, replace

import numpy as np

from pushcut.sim import piper_spec as spec
from pushcut.sim.appearance import Appearance, DistractorPlacement
from pushcut.sim.scene_description import SceneDescription


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
        """'clean' (everything off, RoboTwin demo_clean), 'randomized' (everything on, demo_randomized) or a switch's
        name (that switch alone on)."""
        if name == "clean":
            return cls()
        if name == "randomized":
            return cls(**dict.fromkeys(SWITCHES, True))
        if name in SWITCHES:
            return cls(**{name: True})
        raise ValueError(f"unknown randomization preset {name!r}; expected one of: {', '.join(PRESET_NAMES)}")

    def switches_on(self) -> tuple[str, ...]:
        """The names of the switches that are on, in declaration order."""
        return tuple(name for name in SWITCHES if getattr(self, name))


SWITCHES: tuple[str, ...] = tuple(f.name for f in fields(RandomizationConfig) if isinstance(f.default, bool))
"""The randomisation factors: every bool field of RandomizationConfig, in declaration order."""
PRESET_NAMES: tuple[str, ...] = ("clean", "randomized", *SWITCHES)
"""Every name ``RandomizationConfig.preset`` accepts: the two RoboTwin presets, then one per factor alone."""


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
    """Draws the appearance of each episode of one scene under a RandomizationConfig."""

    def __init__(self, description: SceneDescription, config: RandomizationConfig) -> None:
        self.description = description
        self.config = config

    def draw(self, rng: np.random.Generator) -> Appearance:
        """Everything but the distractors, in this order from ``rng``: table drop, table texture or colour, group
        colours, light tints and gains, headlight gain, head camera offset and turn."""
        cfg, d = self.config, self.description
        drop = rng.uniform(0.0, cfg.max_table_drop) if cfg.table_height else 0.0
        texture, table_rgba = None, None
        if cfg.table_texture:
            choice = int(rng.integers(len(d.table_textures) + 1))
            if choice < len(d.table_textures):
                texture = choice
            else:
                table_rgba = random_color(rng, (0.0, 0.5), (0.3, 0.75))
        colours = None
        if cfg.object_colors and d.objects.recolour_groups:
            colours = {group: random_color(rng) for group in d.objects.recolour_groups}
        tints, gains, headlight = None, None, None
        if cfg.lighting:
            drawn = [(rng.uniform(0.7, 1.0, size=3), rng.uniform(0.6, 1.4)) for _ in d.lights]
            tints, gains = tuple(t for t, _ in drawn), tuple(g for _, g in drawn)
            headlight = rng.uniform(0.7, 1.3)
        offset, turn = None, None
        if cfg.head_camera_jitter:
            offset = rng.uniform(-1, 1, 3) * cfg.camera_jitter_m
            axis = rng.normal(size=3)
            axis /= np.linalg.norm(axis)
            angle = rng.uniform(0, cfg.camera_jitter_rad)
            turn = np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis])
        return Appearance(drop, texture, table_rgba, colours, tints, gains, headlight, offset, turn)

    @staticmethod
    def table_z(appearance: Appearance) -> float:
        """The table top's height in an episode of this appearance."""
        return spec.TABLE_TOP_Z - appearance.table_drop

    def draw_distractors(
        self, appearance: Appearance, rng: np.random.Generator, keep_out: list[KeepOutZone]
    ) -> Appearance:
        """The appearance with clutter on the table away from the task objects and the arms (none when the switch
        is off, nothing drawn then)."""
        if not self.config.distractors:
            return appearance
        table_z = self.table_z(appearance)
        zones = list(keep_out) + list(ARM_KEEP_OUT)
        slots = self.description.distractors
        placed: list[DistractorPlacement] = []
        wanted = int(rng.integers(1, len(slots) + 1))
        for body in slots[:wanted]:
            for _ in range(50):  # RoboTwin: 50 tries
                x, y = rng.uniform(-0.55, 0.55), rng.uniform(-0.3, 0.3)
                if any(z.contains(x, y, 0.04) for z in zones):
                    continue
                if any((x - p.position[0]) ** 2 + (y - p.position[1]) ** 2 < 0.08**2 for p in placed):
                    continue
                position = np.array((x, y, table_z + body.geoms[0].half_height()))
                yaw = rng.uniform(-np.pi, np.pi)
                quat = np.array((np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)))
                placed.append(DistractorPlacement(body.name, position, quat, random_color(rng)))
                break
        return replace(appearance, distractors=tuple(placed))
