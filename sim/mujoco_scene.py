"""MuJoCo's builder of a :class:`~pushcut.sim.scene_description.SceneDescription`: one MJCF text, compiled once.

The contact classes become MuJoCo contact attributes here, once (CONTACT_ATTRIBUTES; the scene default is friction
1 / 0.01 / 0.001 with a stiff solref). Rendering is configured for speed on a CPU (no shadows, reflections, skybox or
haze): see docs/benchmarks.md.
"""

from __future__ import annotations

from collections.abc import Iterable

import mujoco
import numpy as np

from pushcut.sim import piper_model
from pushcut.sim.piper_geometry import WORLD_COLLISION_BITS
from pushcut.sim.scene_description import Body, Geom, Light, SceneDescription, TableTexture

_WORLD = 'contype="{}" conaffinity="{}"'.format(*WORLD_COLLISION_BITS)
CONTACT_ATTRIBUTES: dict[str, str] = {
    "world": _WORLD,
    "grippy": f'{_WORLD} friction="1.5 0.02 0.001" condim="4"',
    # priority 1: this geom's coefficients govern its contacts (MuJoCo otherwise takes the larger of the two).
    "slippery": f'{_WORLD} friction="0.5 0.02 0.001" condim="4" priority="1"',
    "ceramic": f'{_WORLD} friction="0.3 0.02 0.001" condim="4"',
    "visual": 'contype="0" conaffinity="0"',
}
TEXTURE_PIXELS = 64
# MuJoCo's order of a cube texture's faces (rows of TEXTURE_PIXELS in tex_data); "up" is what a box's top shows.
CUBE_FACES = ("right", "left", "up", "down", "front", "back")


def table_material(index: int) -> str:
    """The MuJoCo material name of the description's table texture ``index``."""
    return f"table_mat{index}"


def _fmt(values: Iterable[float]) -> str:
    return " ".join(str(float(v)) for v in values)


def geom_xml(geom: Geom) -> str:
    attributes = [f'name="{geom.name}"'] if geom.name else []
    attributes += [f'type="{geom.kind}"', f'size="{_fmt(geom.size)}"', f'pos="{_fmt(geom.pos)}"']
    if geom.euler is not None:
        attributes.append(f'euler="{_fmt(geom.euler)}"')
    if geom.quat is not None:
        attributes.append(f'quat="{_fmt(geom.quat)}"')
    if geom.mass is not None:
        attributes.append(f'mass="{float(geom.mass)}"')
    attributes += [f'rgba="{_fmt(geom.rgba)}"', CONTACT_ATTRIBUTES[geom.contact]]
    return f"<geom {' '.join(attributes)}/>"


def body_xml(body: Body) -> str:
    mocap = ' mocap="true"' if body.motion == "static" else ""
    lines = [f'<body name="{body.name}" pos="{_fmt(body.pos)}"{mocap}>']
    if body.motion == "free":
        lines.append("  <freejoint/>")
    if body.inertial is not None:
        i = body.inertial
        lines.append(f'  <inertial pos="{_fmt(i.pos)}" mass="{float(i.mass)}" diaginertia="{_fmt(i.diaginertia)}"/>')
    lines += ["  " + geom_xml(g) for g in body.geoms]
    return "\n".join([*lines, "</body>"])


def _light_xml(light: Light) -> str:
    directional = ' directional="true"' if light.directional else ""
    return (
        f'<light name="{light.name}" pos="{_fmt(light.pos)}" dir="{_fmt(light.dir)}"{directional} '
        f'diffuse="{_fmt(light.diffuse)}" castshadow="false"/>'
    )


def _texture_xml(name: str, texture: TableTexture) -> str:
    return (
        f'<texture name="{name}" type="cube" builtin="{texture.pattern}" rgb1="{_fmt(texture.rgb1)}" '
        f'rgb2="{_fmt(texture.rgb2)}" width="{TEXTURE_PIXELS}" height="{TEXTURE_PIXELS}"/>'
    )


def table_texture_faces(texture: TableTexture) -> np.ndarray:
    """MuJoCo's own pixels of a table texture: (6, TEXTURE_PIXELS, TEXTURE_PIXELS, 3) uint8 in CUBE_FACES order,
    for engines that show the same image (a model of this one texture, compiled in milliseconds)."""
    model = mujoco.MjModel.from_xml_string(f"<mujoco><asset>{_texture_xml('table_tex', texture)}</asset></mujoco>")
    size = TEXTURE_PIXELS * TEXTURE_PIXELS * 3 * len(CUBE_FACES)
    return model.tex_data[:size].reshape(len(CUBE_FACES), TEXTURE_PIXELS, TEXTURE_PIXELS, 3).copy()


def _assets_xml(scene: SceneDescription) -> str:
    lines = []
    for i, texture in enumerate(scene.table_textures):
        lines.append(
            f"{_texture_xml(f'table_tex{i}', texture)}\n"
            f'<material name="{table_material(i)}" texture="table_tex{i}" texrepeat="{_fmt(texture.repeat)}"/>'
        )
    return "\n".join(lines)


def scene_xml(scene: SceneDescription) -> str:
    """Complete MJCF text of the dual-Piper world."""
    arms = "\n".join(piper_model.arm_body_xml(m) for m in scene.arms)
    actuators = "\n".join(piper_model.arm_actuator_xml(m) for m in scene.arms)
    equalities = "\n".join(piper_model.arm_equality_xml(m) for m in scene.arms)
    cameras = "\n".join(
        f'<camera name="{c.name}" pos="{_fmt(c.pos)}" xyaxes="{_fmt(c.xyaxes)}" fovy="{float(c.fovy_deg)}"/>'
        for c in scene.cameras
    )
    return f"""
<mujoco model="pushcut_{scene.name}">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{scene.timestep}" integrator="implicitfast" cone="elliptic" impratio="10"/>
  <visual>
    <quality shadowsize="0" offsamples="0"/>
    <global offwidth="640" offheight="480"/>
    <headlight ambient="{_fmt(scene.ambient)}" diffuse="{_fmt(scene.headlight)}" specular="0 0 0"/>
  </visual>
  <default>
    <geom friction="1 0.01 0.001" solref="0.004 1"/>
  </default>
  <asset>
{_assets_xml(scene)}
  </asset>
  <worldbody>
    {chr(10).join(_light_xml(light) for light in scene.lights)}
    {chr(10).join(geom_xml(g) for g in scene.world_geoms)}
    {body_xml(scene.table)}
    {cameras}
    {arms}
    {chr(10).join(body_xml(b) for b in scene.distractors)}
    {chr(10).join(body_xml(b) for b in scene.objects.bodies)}
  </worldbody>
  <equality>
    {equalities}
  </equality>
  <actuator>
    {actuators}
  </actuator>
</mujoco>
"""


def build_model(scene: SceneDescription) -> mujoco.MjModel:
    """Compile the scene; raises ValueError with MuJoCo's message if it does not compile."""
    try:
        return mujoco.MjModel.from_xml_string(scene_xml(scene))
    except ValueError as error:
        raise ValueError(f"could not compile the scene for task {scene.name!r}: {error}") from error
