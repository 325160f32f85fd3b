"""MuJoCo's colour model in SAPIEN: the scene description's colours and lights as SAPIEN materials and lights, and
SAPIEN's picture read back as MuJoCo's display values.

MuJoCo (fixed-function OpenGL, no shadows) writes, per channel and clamped to [0, 1],

    display = rgba * (ambient + sum_i diffuse_i * max(0, n.l_i) * spot_i)        (+ a Phong highlight)

with rgba and the light colours used as display values as they are; spot_i = cos(theta)^exponent inside the cutoff
(MuJoCo's defaults 10 and 45 deg), no distance falloff (attenuation 1 0 0), 1 for directional lights and the
headlight (directional, along the viewing camera's axis).

SAPIEN's rasteriser (vulkan_shader/default: deferred.frag, common/lights.glsl, composite0.frag) computes

    linear = albedo * (ambient + sum_i emission_i * max(0, n.l_i) / pi * falloff_i)  (+ GGX, 0 for our materials)
    picture = clamp(linear ** (1 / 2.2))

so it adds light the way MuJoCo does, only in a space it encodes afterwards. Converting the base colours to linear
(rgba ** 2.2) instead cannot match: the encoding of a sum of lights is not the sum of the encoded lights, so the
lights would need a different gain for every brightness (shading and light tints came out flattened). Exact instead:

- base colours, textures and the ambient light go in as the description gives them (display values);
- a light's emission is pi x its MuJoCo diffuse colour (SAPIEN's Lambert term divides by pi);
- the picture is decoded, :func:`display_image` = picture ** 2.2 (float32, so no levels are lost): SAPIEN's linear
  sum, which is MuJoCo's display value wherever the light models agree. Both clamp at 1.

What differs: a MuJoCo spot has no distance falloff and fades as cos^exponent; SAPIEN's spot falls off as 1 / d^2
and fades linearly in cos(theta) between its inner and outer cone. The spot becomes a SAPIEN spot with the inner cone
0, the outer cone where that linear fade is half at MuJoCo's half-intensity angle (acos(0.5 ** (1 / exponent)),
21 deg for 10), and its emission x d^2 at the distance where its axis meets the table top, so the two agree there.
MuJoCo's headlight follows whichever camera draws: the world aims SAPIEN's before each picture
(`SapienRig.aim_headlight`); it starts along the head camera's axis. MuJoCo's highlight (material specular 0.5,
shininess 0.5, light specular 0.3; the headlight's 0) is left out: SAPIEN's materials stay matte (specular 0,
roughness 1). SAPIEN's GGX takes its strength from the light's one colour, while MuJoCo's specular-to-diffuse ratio
differs per light (key 0.3 / 0.6, fill 0.3 / 0.25), so no one material maps it. Measured: the highlight is 1.9-2.0 of
the ~5.2 levels that remain between the engines' head images (mean absolute difference; up to 23 levels a pixel).

A textured geom in MuJoCo (the randomised table top, rgba 1) shows texture x min(1, lighting): OpenGL clamps the lit
colour before it modulates the texture. SAPIEN multiplies before it adds the lights, so a textured table would come
out brighter wherever MuJoCo's lighting exceeds 1 (about 1.33 on the nominal table). :func:`texture_tint` gives the
factor on the texture's pixels that undoes it (SAPIEN ignores a textured material's base colour): min(1, E) / E,
E = MuJoCo's light (:func:`mujoco_table_light`) where the head camera's axis meets the table top, with the headlight
of the camera that draws (the world re-tints the texture when that changes it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pushcut.sim.scene_description import TABLE_TOP_GEOM, Light, SceneDescription

SAPIEN_GAMMA = 2.2  # SAPIEN's picture = linear ** (1 / 2.2) (composite0.frag)
LAMBERT_PI = math.pi  # SAPIEN's diffuse BRDF is albedo / pi; MuJoCo's diffuse term is rgba
MUJOCO_SPOT_CUTOFF_DEG = 45.0  # MuJoCo's <light cutoff> default (45 deg)
MUJOCO_SPOT_EXPONENT = 10.0  # MuJoCo's <light exponent> default
HEADLIGHT = "headlight"


@dataclass(frozen=True)
class SapienLight:
    """One SAPIEN light for a light of the description: ``colour`` is its emission at tint 1 and gain 1."""

    name: str
    kind: str  # "directional" or "spot"
    position: tuple[float, float, float]
    direction: tuple[float, float, float]  # unit, the way the light shines
    colour: tuple[float, float, float]
    inner_fov: float = 0.0  # radians, full cone angles (spot only)
    outer_fov: float = 0.0


def _floats(values: np.ndarray | tuple[float, ...]) -> tuple[float, float, float]:
    x, y, z = (float(v) for v in values)
    return x, y, z


def _unit(vector: tuple[float, ...] | np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=float)
    norm = np.linalg.norm(vector)
    if not norm > 0.0:
        raise ValueError(f"a light direction must be a non-zero 3-vector, got {vector.tolist()}")
    return vector / norm


def table_top_z(description: SceneDescription) -> float:
    """Height of the table top's upper face (the description's nominal table)."""
    table = description.table
    top = next((g for g in table.geoms if g.name == TABLE_TOP_GEOM), None)
    if top is None:
        raise ValueError(f"the table of scene {description.name!r} has no geom {TABLE_TOP_GEOM!r}")
    return float(table.pos[2] + top.pos[2] + top.size[2])


def spot_outer_fov(exponent: float = MUJOCO_SPOT_EXPONENT, cutoff_deg: float = MUJOCO_SPOT_CUTOFF_DEG) -> float:
    """SAPIEN's outer cone (full angle, radians, inner cone 0) whose linear fade in cos(theta) is half where MuJoCo's
    cos(theta)^exponent is, and never wider than MuJoCo's cutoff."""
    if exponent <= 0.0:
        raise ValueError(f"a spot exponent must be > 0, got {exponent}")
    half = 0.5 ** (1.0 / exponent)  # cos of MuJoCo's half-intensity angle
    outer_cos = max(2.0 * half - 1.0, math.cos(math.radians(cutoff_deg)))
    return 2.0 * math.acos(outer_cos)


def _spot(light: Light, table_z: float) -> SapienLight:
    direction = _unit(light.dir)
    if direction[2] >= 0.0 or light.pos[2] <= table_z:
        raise ValueError(f"spot light {light.name!r} must shine down on the table from above it (z {table_z:.3f})")
    distance = (light.pos[2] - table_z) / -direction[2]  # along its axis to the table top
    colour = LAMBERT_PI * distance**2 * np.asarray(light.diffuse, dtype=float)
    position, direction, colour = _floats(light.pos), _floats(direction), _floats(colour)
    return SapienLight(light.name, "spot", position, direction, colour, 0.0, spot_outer_fov())


def sapien_lights(description: SceneDescription) -> tuple[SapienLight, ...]:
    """The description's lights in order, then the headlight (along the head camera's axis): module docstring."""
    table_z = table_top_z(description)
    lights = []
    for light in description.lights:
        if light.directional:
            colour = LAMBERT_PI * np.asarray(light.diffuse, dtype=float)
            lights.append(SapienLight(light.name, "directional", _floats(light.pos), _floats(_unit(light.dir)),
                                      _floats(colour)))  # fmt: skip
        else:
            lights.append(_spot(light, table_z))
    head = description.cameras[0]
    view = -np.cross(head.xyaxes[:3], head.xyaxes[3:])  # a MuJoCo camera looks down its -z
    colour = LAMBERT_PI * np.asarray(description.headlight, dtype=float)
    lights.append(SapienLight(HEADLIGHT, "directional", _floats(head.pos), _floats(_unit(view)), _floats(colour)))
    return tuple(lights)


def _table_point(description: SceneDescription) -> tuple[np.ndarray, np.ndarray]:
    """Where the head camera's axis meets the table top, and the unit view direction."""
    head = description.cameras[0]
    view = _unit(-np.cross(head.xyaxes[:3], head.xyaxes[3:]))
    if view[2] >= 0.0:
        raise ValueError(f"the head camera of scene {description.name!r} must look down at the table")
    position = np.asarray(head.pos, dtype=float)
    return position + view * (table_top_z(description) - position[2]) / view[2], view


def mujoco_table_light(
    description: SceneDescription, gains: Sequence[np.ndarray | float], camera_axis: np.ndarray | None = None
) -> np.ndarray:
    """MuJoCo's ambient + diffuse lighting (RGB, display units) of the table top where the head camera's axis meets
    it, with each light's colour x ``gains[i]`` (sapien_lights' order: the description's lights, then the headlight),
    the headlight along ``camera_axis`` (the drawing camera's; default the head camera's)."""
    if len(gains) != len(description.lights) + 1:
        raise ValueError(f"{len(gains)} light gains; expected {len(description.lights) + 1} (lights and headlight)")
    point, view = _table_point(description)
    if camera_axis is not None:
        view = _unit(camera_axis)
    light = np.asarray(description.ambient, dtype=float).copy()
    cutoff = math.cos(math.radians(MUJOCO_SPOT_CUTOFF_DEG))
    for source, gain in zip(description.lights, gains[:-1]):
        if source.directional:
            towards, spot = -_unit(source.dir), 1.0
        else:
            towards = _unit(np.asarray(source.pos, dtype=float) - point)
            cos = float(-towards @ _unit(source.dir))
            spot = cos**MUJOCO_SPOT_EXPONENT if cos >= cutoff else 0.0
        light += np.asarray(source.diffuse, dtype=float) * gain * max(0.0, float(towards[2])) * spot
    light += np.asarray(description.headlight, dtype=float) * gains[-1] * max(0.0, float(-view[2]))
    return light


def texture_tint(light: np.ndarray) -> np.ndarray:
    """The RGB factor on a texture's pixels that gives MuJoCo's texture x min(1, light) (module docstring)."""
    light = np.asarray(light, dtype=float)
    if light.shape != (3,) or not (light > 0.0).all():
        raise ValueError(f"lighting must be 3 positive numbers (RGB), got {light.tolist()}")
    return np.minimum(1.0, light) / light


def display_image(picture: np.ndarray) -> np.ndarray:
    """MuJoCo's display values (H, W, 3) uint8 from a SAPIEN "Color" picture (H, W, 4) float in [0, 1]."""
    picture = np.asarray(picture)
    if picture.ndim != 3 or picture.shape[2] < 3 or picture.dtype.kind != "f":
        raise ValueError(f"a SAPIEN colour picture is (H, W, 4) floats, got {picture.dtype} {picture.shape}")
    linear = np.clip(picture[..., :3], 0.0, 1.0) ** SAPIEN_GAMMA
    return (linear * 255.0).round().astype(np.uint8)
