"""The Piper as URDF, written from the DH table of `piper_spec` and the shapes and masses of `piper_geometry` (the
numbers the MJCF of `piper_model` uses), and the check that a URDF has the Piper's joint layout.

One arm (`piper_urdf()`; root link `base`, the arm's mount frame):

    base -joint1- link1 -joint2- ... -joint6- link6 (the flange) -+- finger_a (prismatic along +y)
                                                                 +- finger_b (prismatic along -y, mimics finger_a)
                                                                 +- tcp      (fixed: the tool centre point)
                                                                 +- camera   (fixed: the wrist camera)

Link i is DH frame i, so joint angle 0 is the SDK's 0 and link6 is piper_sdk's flange. Both arms
(`piper_urdf(dual=True)`): a root link `world` and the two arms at their `DUAL_PIPER_MOUNTS`, every name prefixed
`left_` / `right_`. The `camera` link follows the ROS / SAPIEN camera convention (x forward along the view, y left,
z up). URDF has no armature and SAPIEN's loader ignores velocity and effort limits: the engine applies those itself.
numpy and the standard library only.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from pushcut.sim import piper_geometry as geometry
from pushcut.sim import piper_spec as spec
from pushcut.sim.piper_geometry import Shape

# URDF requires a velocity limit on the fingers; pushcut limits no gripper speed (sim/execution/limits.py), so this
# nominal value is for readers of the file and nothing enforces it.
FINGER_VELOCITY_M_S = 0.1
FINGER_NAMES: tuple[str, ...] = tuple(name for name, _ in geometry.FINGERS)
DUAL_PREFIXES: tuple[str, ...] = tuple(f"{arm}_" for arm in spec.ARMS)
LAYOUT = (
    "the Piper's layout: revolute joint1..joint6 in a chain, then prismatic finger_a and finger_b on joint6's child "
    "link (two arms: names prefixed left_ and right_)"
)


def _fmt(values) -> str:
    """Numbers as text, rounding-noise zeros (and -0) written as 0."""
    return " ".join(f"{float(v) if abs(v) > 1e-12 else 0.0:.10g}" for v in values)


def _rpy(rotation: np.ndarray) -> np.ndarray:
    """URDF's fixed-axis roll, pitch, yaw of a rotation matrix (R = Rz(yaw) Ry(pitch) Rx(roll))."""
    r = np.asarray(rotation, float)
    cos_pitch = math.hypot(r[0, 0], r[1, 0])
    pitch = math.atan2(-r[2, 0], cos_pitch)
    if cos_pitch < 1e-9:  # gimbal lock: put everything in roll
        return np.array([math.atan2(-r[1, 2], r[1, 1]), pitch, 0.0])
    return np.array([math.atan2(r[2, 1], r[2, 2]), pitch, math.atan2(r[1, 0], r[0, 0])])


def _z_to(axis) -> np.ndarray:
    """A rotation taking +z to the unit vector ``axis``."""
    z, a = np.array([0.0, 0.0, 1.0]), np.asarray(axis, float)
    v, c = np.cross(z, a), float(z @ a)
    if np.linalg.norm(v) < 1e-12:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    k = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    return np.eye(3) + k + k @ k / (1 + c)


def _origin(position, rotation=None) -> str:
    rpy = np.zeros(3) if rotation is None else _rpy(rotation)
    return f'<origin xyz="{_fmt(position)}" rpy="{_fmt(rpy)}"/>'


def _geometry_xml(shape: Shape) -> str:
    if shape.kind == "box":
        return f'<box size="{_fmt(2 * np.asarray(shape.size))}"/>'
    radius, half = shape.size
    return f'<{shape.kind} radius="{radius:.10g}" length="{2 * half:.10g}"/>'


def _shapes_xml(link: str, shapes: tuple[Shape, ...]) -> list[str]:
    xml = []
    for k, shape in enumerate(shapes):
        origin = _origin(shape.pos, None if shape.kind == "box" else _z_to(shape.axis))
        geom = _geometry_xml(shape)
        xml.append(
            f'  <visual name="{link}_{k}">{origin}<geometry>{geom}</geometry>'
            f'<material name="{link}_{k}"><color rgba="{_fmt(shape.rgba)}"/></material></visual>'
        )
        if shape.collides:
            xml.append(f"  <collision>{origin}<geometry>{geom}</geometry></collision>")
    return xml


def _inertial_xml(mass: float, moments, position=(0.0, 0.0, 0.0)) -> str:
    ixx, iyy, izz = moments
    return (
        f'  <inertial>{_origin(position)}<mass value="{mass:.10g}"/>'
        f'<inertia ixx="{ixx:.10g}" ixy="0" ixz="0" iyy="{iyy:.10g}" iyz="0" izz="{izz:.10g}"/></inertial>'
    )


def _link(name: str, shapes: tuple[Shape, ...] = (), inertial: str = "") -> list[str]:
    return [f'<link name="{name}">', *([inertial] if inertial else []), *_shapes_xml(name, shapes), "</link>"]


def _joint(name: str, kind: str, parent: str, child: str, origin: str, extra: str = "") -> str:
    return f'<joint name="{name}" type="{kind}">{origin}<parent link="{parent}"/><child link="{child}"/>{extra}</joint>'


def arm_xml(prefix: str = "") -> list[str]:
    """Links and joints of one arm, every name prefixed."""
    p = prefix
    (column,) = geometry.base_shapes()  # no explicit inertia: that of its shape, as MuJoCo derives it
    column_inertia = geometry.cylinder_inertia(*column.size, geometry.GEOM_DENSITY_KG_M3)
    xml = _link(f"{p}base", (column,), _inertial_xml(*column_inertia, column.pos))
    link_moments = [geometry.LINK_INERTIA_KG_M2] * 3
    dynamics = f'<dynamics damping="{geometry.ARM_JOINT_DAMPING:g}" friction="0"/>'
    for i, joint in enumerate(spec.ARM_JOINT_NAMES):
        low, high = spec.JOINT_LIMITS_RAD[i]
        parent = f"{p}base" if i == 0 else f"{p}link{i}"
        limit = (
            f'<limit lower="{low:.10g}" upper="{high:.10g}" effort="{geometry.JOINT_FORCE_LIMIT_NM:g}" '
            f'velocity="{spec.MAX_JOINT_SPEED_RAD_S:g}"/>'
        )
        origin = _origin(geometry.frame_origin(i), geometry.frame_rotation(i))
        xml.append(_joint(f"{p}{joint}", "revolute", parent, f"{p}link{i + 1}", origin,
                          f'<axis xyz="0 0 1"/>{limit}{dynamics}'))  # fmt: skip
        shapes = geometry.link_shapes(i) if i < 5 else geometry.gripper_shapes()
        xml += _link(f"{p}link{i + 1}", shapes, _inertial_xml(geometry.LINK_MASS_KG, link_moments))
    finger_origin = _origin((0.0, 0.0, spec.FINGER_BASE_OFFSET_M))
    finger_limit = (
        f'<limit lower="0" upper="{spec.FINGER_STROKE_M:g}" effort="{geometry.GRIPPER_FORCE_N:g}" '
        f'velocity="{FINGER_VELOCITY_M_S:g}"/><dynamics damping="{geometry.FINGER_DAMPING:g}" friction="0"/>'
    )
    for name, side in geometry.FINGERS:
        mimic = "" if name == FINGER_NAMES[0] else f'<mimic joint="{p}{FINGER_NAMES[0]}" multiplier="1" offset="0"/>'
        xml.append(_joint(f"{p}{name}", "prismatic", f"{p}link6", f"{p}{name}", finger_origin,
                          f'<axis xyz="0 {side:g} 0"/>{finger_limit}{mimic}'))  # fmt: skip
        pad = geometry.finger_shape(name, side)
        pad_inertia = geometry.box_inertia(pad.size, geometry.GEOM_DENSITY_KG_M3)
        xml += _link(f"{p}{name}", (pad,), _inertial_xml(*pad_inertia, pad.pos))
    xml.append(_joint(f"{p}tcp", "fixed", f"{p}link6", f"{p}tcp", _origin((0.0, 0.0, spec.TCP_OFFSET_M))))
    xml += _link(f"{p}tcp")
    gl = geometry.wrist_camera_rotation()  # x right, y up, looking down -z
    camera = np.column_stack([-gl[:, 2], -gl[:, 0], gl[:, 1]])  # x forward, y left, z up
    xml.append(_joint(f"{p}camera", "fixed", f"{p}link6", f"{p}camera", _origin(geometry.WRIST_CAMERA_POS, camera)))
    xml += _link(f"{p}camera")
    return xml


def piper_urdf(dual: bool = False) -> str:
    """URDF text of one Piper arm with its gripper, or of both arms at their mounts (``dual``)."""
    name = "dual_piper" if dual else "piper"
    body = []
    if dual:
        body += _link("world")
        for mount, prefix in zip(spec.DUAL_PIPER_MOUNTS, DUAL_PREFIXES):
            pose = spec.mount_transform(mount)
            body.append(_joint(f"{prefix}mount", "fixed", "world", f"{prefix}base", _origin(pose[:3, 3], pose[:3, :3])))
            body += arm_xml(prefix)
    else:
        body += arm_xml()
    header = "<!-- Generated by `pushcut sim urdf` from pushcut.sim.piper_spec and piper_geometry. -->"
    return "\n".join(['<?xml version="1.0"?>', header, f'<robot name="{name}">', *body, "</robot>", ""])


def write_urdf(path: str | Path, dual: bool = False) -> Path:
    path = Path(path)
    path.write_text(piper_urdf(dual))
    return path
