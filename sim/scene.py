"""The dual-Piper world: table, two arms, cameras, lights, distractor slots, and a task's objects, as one MJCF.

Layout follows RoboTwin 2.0's dual-Piper embodiment (z up, robot at -y facing +y, left arm at -x):
- table 1.2 x 0.7 m centred at the origin, top at z = 0.74 (a randomised table height lowers it by up to 3 cm);
- arm bases at (+-0.3, -0.45) on risers flush with the table top;
- head camera modelled on the D435 (fovy 37 deg), above and behind the arms, looking at the table.

Rendering is configured for speed on a CPU (no shadows, reflections, skybox or haze): see docs/benchmarks.md.
"""

from __future__ import annotations

import mujoco

from pushcut.sim import piper_model
from pushcut.sim import piper_spec as spec

TABLE_HALF_SIZE = (0.6, 0.35, 0.02)
HEAD_CAMERA_POS = (0.0, -0.95, 1.55)
HEAD_CAMERA_TARGET = (0.0, -0.08, 0.74)
HEAD_CAMERA_FOVY = 37.0
NUM_DISTRACTOR_SLOTS = 4
NUM_TABLE_TEXTURES = 4
PHYSICS_TIMESTEP = 0.002
OBJECT_COLLISION = 'contype="1" conaffinity="3"'


def _head_camera_xyaxes() -> str:
    """Camera x (right) and y (up) axes so that the camera looks from HEAD_CAMERA_POS at HEAD_CAMERA_TARGET."""
    import numpy as np

    forward = np.subtract(HEAD_CAMERA_TARGET, HEAD_CAMERA_POS)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return " ".join(f"{v:.5f}" for v in (*right, *up))


def _assets_xml() -> str:
    textures = []
    palette = (
        ("0.55 0.42 0.3", "0.45 0.33 0.22"),
        ("0.8 0.8 0.78", "0.6 0.6 0.62"),
        ("0.35 0.45 0.55", "0.25 0.3 0.4"),
        ("0.6 0.55 0.45", "0.7 0.65 0.5"),
    )
    builtins = ("gradient", "checker", "checker", "gradient")
    for i in range(NUM_TABLE_TEXTURES):
        rgb1, rgb2 = palette[i]
        textures.append(
            f'<texture name="table_tex{i}" type="cube" builtin="{builtins[i]}" rgb1="{rgb1}" rgb2="{rgb2}" '
            f'width="64" height="64"/>\n'
            f'<material name="table_mat{i}" texture="table_tex{i}" texrepeat="{4 + 2 * i} {2 + i}"/>'
        )
    return "\n".join(textures)


def _distractors_xml() -> str:
    """Mocap slots for clutter: parked far below the floor until the randomiser places them on the table."""
    shapes = (
        'type="box" size="0.025 0.03 0.02"',
        'type="cylinder" size="0.022 0.035"',
        'type="sphere" size="0.025"',
        'type="box" size="0.04 0.015 0.012"',
    )
    bodies = []
    for i in range(NUM_DISTRACTOR_SLOTS):
        bodies.append(
            f'<body name="distractor{i}" mocap="true" pos="0 0 -5">'
            f'<geom name="distractor{i}" {shapes[i % len(shapes)]} rgba="0.5 0.5 0.5 1" {OBJECT_COLLISION}/></body>'
        )
    return "\n".join(bodies)


def scene_xml(task_objects_xml: str, task_name: str = "empty") -> str:
    """Complete MJCF text of the dual-Piper world with the given task objects."""
    arms = "\n".join(piper_model.arm_body_xml(m) for m in spec.DUAL_PIPER_MOUNTS)
    actuators = "\n".join(piper_model.arm_actuator_xml(m) for m in spec.DUAL_PIPER_MOUNTS)
    equalities = "\n".join(piper_model.arm_equality_xml(m) for m in spec.DUAL_PIPER_MOUNTS)
    hx, hy, hz = TABLE_HALF_SIZE
    top = spec.TABLE_TOP_Z
    risers = "\n".join(
        f'<geom name="{m.name}_riser" type="box" size="0.08 0.08 {top / 2}" pos="{m.position[0]} {m.position[1]} '
        f'{top / 2}" rgba="0.25 0.25 0.28 1" {OBJECT_COLLISION}/>'
        for m in spec.DUAL_PIPER_MOUNTS
    )
    return f"""
<mujoco model="pushcut_{task_name}">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{PHYSICS_TIMESTEP}" integrator="implicitfast" cone="elliptic" impratio="10"/>
  <visual>
    <quality shadowsize="0" offsamples="0"/>
    <global offwidth="640" offheight="480"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.4 0.4 0.4" specular="0 0 0"/>
  </visual>
  <default>
    <geom friction="1 0.01 0.001" solref="0.004 1"/>
  </default>
  <asset>
{_assets_xml()}
  </asset>
  <worldbody>
    <light name="key_light" pos="0.3 -0.3 2.2" dir="-0.2 0.2 -1" directional="true" diffuse="0.6 0.6 0.6"
           castshadow="false"/>
    <light name="fill_light" pos="-0.6 0.4 1.8" dir="0.3 -0.2 -1" diffuse="0.25 0.25 0.25" castshadow="false"/>
    <geom name="floor" type="plane" size="3 3 0.05" rgba="0.32 0.32 0.34 1" {OBJECT_COLLISION}/>
    <geom name="wall" type="box" size="1.2 0.02 0.6" pos="0 0.9 1.0" rgba="0.78 0.78 0.76 1" {OBJECT_COLLISION}/>
    <body name="table" pos="0 0 {top - hz}">
      <geom name="table_top" type="box" size="{hx} {hy} {hz}" rgba="0.55 0.42 0.3 1" {OBJECT_COLLISION}/>
      <geom type="box" size="0.03 0.03 {(top - 2 * hz) / 2}" pos="{hx - 0.05} {hy - 0.05} {-(top) / 2}"
            rgba="0.3 0.25 0.2 1" contype="0" conaffinity="0"/>
      <geom type="box" size="0.03 0.03 {(top - 2 * hz) / 2}" pos="{-hx + 0.05} {hy - 0.05} {-(top) / 2}"
            rgba="0.3 0.25 0.2 1" contype="0" conaffinity="0"/>
    </body>
    {risers}
    <camera name="head_camera" pos="{" ".join(map(str, HEAD_CAMERA_POS))}" xyaxes="{_head_camera_xyaxes()}"
            fovy="{HEAD_CAMERA_FOVY}"/>
    {arms}
    {_distractors_xml()}
    {task_objects_xml}
  </worldbody>
  <equality>
    {equalities}
  </equality>
  <actuator>
    {actuators}
  </actuator>
</mujoco>
"""


def build_model(task_objects_xml: str, task_name: str = "empty") -> mujoco.MjModel:
    """Compile the scene; raises ValueError with MuJoCo's message if the task's MJCF is malformed."""
    try:
        return mujoco.MjModel.from_xml_string(scene_xml(task_objects_xml, task_name))
    except ValueError as error:
        raise ValueError(f"could not compile the scene for task {task_name!r}: {error}") from error
