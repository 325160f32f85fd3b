"""MJCF of one AgileX Piper arm, generated from the modified-DH table in `piper_spec` and the shapes, masses and
mounts of `piper_geometry` (which `piper_urdf.py` writes as URDF too).

Every link body sits at its DH frame, so joint angle 0 in the model is joint angle 0 on the SDK and the flange pose
equals piper_sdk's forward kinematics (tested). Geometry is primitive: capsules along the links, a box gripper with
two sliding fingers (coupled by an equality constraint), a D435-like wrist camera on the gripper.

Collision groups (contype / conaffinity bits):
- arm geoms: contype 2, conaffinity 1 -> touch objects and the table, never each other (the real robot's arm-arm
  distance is enforced by the safety filter, not by the simulator);
- world and objects: contype 1, conaffinity 3.
"""

from __future__ import annotations

import math

import numpy as np

from pushcut.sim import piper_geometry as geometry
from pushcut.sim import piper_spec as spec
from pushcut.sim.geometry import mat_to_quat
from pushcut.sim.piper_geometry import Shape

ARM_GEOM_COLLISION = 'contype="{}" conaffinity="{}"'.format(*geometry.ARM_COLLISION_BITS)
# Position servo gains per joint (N m / rad); with gravity compensation on every link the tracking lag at 3 rad/s
# is a few milliradians.
JOINT_KP = (400.0, 400.0, 300.0, 120.0, 80.0, 60.0)
GRIPPER_KP = 800.0
GRIPPER_FORCE_N = geometry.GRIPPER_FORCE_N
WRIST_CAMERA_FOVY = geometry.WRIST_CAMERA_FOVY
# MuJoCo's contact parameters of the finger pads (the rest use the scene's defaults).
FINGER_CONTACT = 'friction="1.5 0.02 0.001" condim="4" solref="0.004 1"'


def _fmt(values) -> str:
    return " ".join(f"{v:.10g}" for v in values)


def _geom_xml(shape: Shape, prefix: str, extra: str = "") -> str:
    """One primitive; cylinders and capsules off the z axis as `fromto`."""
    name = f' name="{prefix}{shape.name}"' if shape.name else ""
    if shape.kind == "box" or tuple(shape.axis) == (0.0, 0.0, 1.0):
        where = f'size="{_fmt(shape.size)}" pos="{_fmt(shape.pos)}"'
    else:
        where = f'fromto="{_fmt(np.concatenate(shape.endpoints()))}" size="{shape.size[0]:.10g}"'
    collision = ARM_GEOM_COLLISION if shape.collides else 'contype="0" conaffinity="0"'
    attributes = " ".join(a for a in (where, f'rgba="{_fmt(shape.rgba)}"', extra, collision) if a)
    return f'<geom type="{shape.kind}" {attributes}{name}/>'


def _gripper_xml(prefix: str) -> str:
    """Gripper housing, two fingers sliding along link6's y axis, TCP site and wrist camera."""
    xml = [_geom_xml(s, prefix) for s in geometry.gripper_shapes()]
    xyaxes = _fmt(np.concatenate(geometry.WRIST_CAMERA_XYAXES))
    xml.append(
        f'<camera name="{prefix}camera" pos="{_fmt(geometry.WRIST_CAMERA_POS)}" xyaxes="{xyaxes}" '
        f'fovy="{WRIST_CAMERA_FOVY}"/>'
    )
    xml.append(f'<site name="{prefix}tcp" pos="0 0 {spec.TCP_OFFSET_M}" size="0.006" rgba="1 0 0 0" group="4"/>')
    for name, side in geometry.FINGERS:
        xml += [
            f'<body name="{prefix}{name}" pos="0 0 {spec.FINGER_BASE_OFFSET_M}">',
            f'  <joint name="{prefix}{name}" type="slide" axis="0 {side:g} 0" range="0 {spec.FINGER_STROKE_M}" '
            f'damping="{geometry.FINGER_DAMPING:g}" armature="{geometry.FINGER_ARMATURE:g}"/>',
            "  " + _geom_xml(geometry.finger_shape(name, side), prefix, FINGER_CONTACT),
            "</body>",
        ]
    return "\n".join(xml)


def arm_body_xml(mount: spec.ArmMount) -> str:
    """The `<body>` tree of one arm, with joint names prefixed by the mount name (e.g. `left/joint1`)."""
    prefix = f"{mount.name}/"
    limits = spec.JOINT_LIMITS_RAD
    yaw_quat = (math.cos(mount.yaw / 2), 0.0, 0.0, math.sin(mount.yaw / 2))
    xml = [f'<body name="{prefix}base" pos="{_fmt(mount.position)}" quat="{_fmt(yaw_quat)}">']
    xml += [_geom_xml(s, prefix) for s in geometry.base_shapes()]
    inertia = _fmt([geometry.LINK_INERTIA_KG_M2] * 3)
    for i in range(6):
        pos, quat = geometry.frame_origin(i), mat_to_quat(geometry.frame_rotation(i))
        xml.append(f'<body name="{prefix}link{i + 1}" pos="{_fmt(pos)}" quat="{_fmt(quat)}" gravcomp="1">')
        xml.append(
            f'<joint name="{prefix}{spec.ARM_JOINT_NAMES[i]}" type="hinge" axis="0 0 1" '
            f'range="{limits[i, 0]} {limits[i, 1]}" damping="{geometry.ARM_JOINT_DAMPING:g}" '
            f'armature="{geometry.ARM_JOINT_ARMATURE:g}"/>'
        )
        xml.append(f'<inertial pos="0 0 0" mass="{geometry.LINK_MASS_KG:g}" diaginertia="{inertia}"/>')
        if i < 5:
            xml += [_geom_xml(s, prefix) for s in geometry.link_shapes(i)]
        else:
            xml.append(_gripper_xml(prefix))
    return "\n".join(xml + ["</body>"] * 7)  # six links and the base


def arm_actuator_xml(mount: spec.ArmMount) -> str:
    """Position servos for the six joints and the gripper (ctrl of the gripper = finger opening in metres)."""
    prefix = f"{mount.name}/"
    force = geometry.JOINT_FORCE_LIMIT_NM
    lines = []
    for i, name in enumerate(spec.ARM_JOINT_NAMES):
        low, high = spec.JOINT_LIMITS_RAD[i]
        lines.append(
            f'<position name="{prefix}{name}" joint="{prefix}{name}" kp="{JOINT_KP[i]}" dampratio="1" '
            f'ctrlrange="{low} {high}" forcerange="-{force:g} {force:g}"/>'
        )
    lines.append(
        f'<position name="{prefix}gripper" joint="{prefix}finger_a" kp="{GRIPPER_KP}" dampratio="1" '
        f'ctrlrange="0 {spec.FINGER_STROKE_M}" forcerange="-{GRIPPER_FORCE_N} {GRIPPER_FORCE_N}"/>'
    )
    return "\n".join(lines)


def arm_equality_xml(mount: spec.ArmMount) -> str:
    """Couples the two fingers so that they open and close symmetrically."""
    prefix = f"{mount.name}/"
    return f'<joint joint1="{prefix}finger_b" joint2="{prefix}finger_a" polycoef="0 1 0 0 0" solref="0.005 1"/>'
