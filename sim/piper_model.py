"""MJCF of one AgileX Piper arm, generated from the modified-DH table in `piper_spec`.

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

from pushcut.sim import piper_spec as spec

ARM_GEOM_COLLISION = 'contype="2" conaffinity="1"'
# Position servo gains per joint (N m / rad); with gravity compensation on every link the tracking lag at 3 rad/s
# is a few milliradians.
JOINT_KP = (400.0, 400.0, 300.0, 120.0, 80.0, 60.0)
GRIPPER_KP = 800.0
GRIPPER_FORCE_N = 30.0
WRIST_CAMERA_FOVY = 42.5  # D435 colour camera's vertical field of view


def _fmt(values) -> str:
    return " ".join(f"{v:.10g}" for v in values)


def _quat_rotx_rotz(alpha: float, theta: float) -> np.ndarray:
    """Quaternion (w, x, y, z) of RotX(alpha) * RotZ(theta)."""
    qx = np.array([math.cos(alpha / 2), math.sin(alpha / 2), 0.0, 0.0])
    qz = np.array([math.cos(theta / 2), 0.0, 0.0, math.sin(theta / 2)])
    w1, x1, y1, z1 = qx
    w2, x2, y2, z2 = qz
    return np.array(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ]
    )


def _frame_origin(i: int) -> np.ndarray:
    """Origin of DH frame i expressed in the previous frame (metres); i is 0-based (0 = link1 in the base)."""
    a, alpha, d = spec.DH_A_MM[i] / 1000, spec.DH_ALPHA[i], spec.DH_D_MM[i] / 1000
    return np.array([a, -math.sin(alpha) * d, math.cos(alpha) * d])


def _link_capsules(i: int, radius: float, rgba: str) -> str:
    """Capsules from frame i's origin to frame i+1's origin, along x first then along the rotated z (an L)."""
    target = _frame_origin(i + 1)
    corner = np.array([target[0], 0.0, 0.0])
    parts = []
    for start, end in ((np.zeros(3), corner), (corner, target)):
        if np.linalg.norm(end - start) > 1e-4:
            parts.append(
                f'<geom type="capsule" fromto="{_fmt(start)} {_fmt(end)}" size="{radius}" rgba="{rgba}" '
                f"{ARM_GEOM_COLLISION}/>"
            )
    return "\n".join(parts)


def _gripper_xml(prefix: str) -> str:
    """Gripper housing, two fingers sliding along link6's y axis, TCP site and wrist camera."""
    base = spec.FINGER_BASE_OFFSET_M
    stroke = spec.FINGER_STROKE_M
    finger = (
        '<geom type="box" size="0.011 0.005 0.030" pos="0 {side}0.005 0.030" rgba="0.15 0.15 0.15 1" '
        'friction="1.5 0.02 0.001" condim="4" solref="0.004 1" ' + ARM_GEOM_COLLISION + ' name="{name}"/>'
    )
    return f"""
<geom type="cylinder" size="0.032 0.01" pos="0 0 0.01" rgba="0.7 0.7 0.72 1" {ARM_GEOM_COLLISION}/>
<geom type="box" size="0.022 0.045 0.036" pos="0 0 0.056" rgba="0.2 0.2 0.22 1" {ARM_GEOM_COLLISION}
      name="{prefix}palm"/>
<geom type="box" size="0.01 0.012 0.008" pos="-0.032 0 0.03" rgba="0.1 0.1 0.1 1" contype="0" conaffinity="0"/>
<camera name="{prefix}camera" pos="-0.045 0 0.035" xyaxes="0 1 0 0.9659 0 -0.2588" fovy="{WRIST_CAMERA_FOVY}"/>
<site name="{prefix}tcp" pos="0 0 {spec.TCP_OFFSET_M}" size="0.006" rgba="1 0 0 0" group="4"/>
<body name="{prefix}finger_a" pos="0 0 {base}">
  <joint name="{prefix}finger_a" type="slide" axis="0 1 0" range="0 {stroke}" damping="2" armature="0.05"/>
  {finger.format(side="", name=prefix + "finger_a")}
</body>
<body name="{prefix}finger_b" pos="0 0 {base}">
  <joint name="{prefix}finger_b" type="slide" axis="0 -1 0" range="0 {stroke}" damping="2" armature="0.05"/>
  {finger.format(side="-", name=prefix + "finger_b")}
</body>"""


def arm_body_xml(mount: spec.ArmMount) -> str:
    """The `<body>` tree of one arm, with joint names prefixed by the mount name (e.g. `left/joint1`)."""
    prefix = f"{mount.name}/"
    limits = spec.JOINT_LIMITS_RAD
    radii = (0.045, 0.04, 0.035, 0.03, 0.03, 0.03)
    colours = ("0.85 0.85 0.87 1", "0.85 0.85 0.87 1", "0.85 0.85 0.87 1", "0.3 0.3 0.32 1", "0.3 0.3 0.32 1", "")
    yaw_quat = (math.cos(mount.yaw / 2), 0.0, 0.0, math.sin(mount.yaw / 2))
    xml = [
        f'<body name="{prefix}base" pos="{_fmt(mount.position)}" quat="{_fmt(yaw_quat)}">',
        f'<geom type="cylinder" size="0.05 {spec.DH_D_MM[0] / 2000}" pos="0 0 {spec.DH_D_MM[0] / 2000}" '
        f'rgba="0.85 0.85 0.87 1" {ARM_GEOM_COLLISION}/>',
    ]
    for i in range(6):
        pos = _frame_origin(i)
        quat = _quat_rotx_rotz(spec.DH_ALPHA[i], spec.DH_THETA_OFFSET[i])
        xml.append(f'<body name="{prefix}link{i + 1}" pos="{_fmt(pos)}" quat="{_fmt(quat)}" gravcomp="1">')
        xml.append(
            f'<joint name="{prefix}{spec.ARM_JOINT_NAMES[i]}" type="hinge" axis="0 0 1" '
            f'range="{limits[i, 0]} {limits[i, 1]}" damping="1" armature="0.1"/>'
        )
        xml.append('<inertial pos="0 0 0" mass="0.3" diaginertia="0.001 0.001 0.001"/>')
        if i < 5:
            xml.append(_link_capsules(i, radii[i + 1], colours[i]))
        else:
            xml.append(_gripper_xml(prefix))
    return "\n".join(xml + ["</body>"] * 7)  # six links and the base


def arm_actuator_xml(mount: spec.ArmMount) -> str:
    """Position servos for the six joints and the gripper (ctrl of the gripper = finger opening in metres)."""
    prefix = f"{mount.name}/"
    lines = []
    for i, name in enumerate(spec.ARM_JOINT_NAMES):
        low, high = spec.JOINT_LIMITS_RAD[i]
        lines.append(
            f'<position name="{prefix}{name}" joint="{prefix}{name}" kp="{JOINT_KP[i]}" dampratio="1" '
            f'ctrlrange="{low} {high}" forcerange="-100 100"/>'
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
