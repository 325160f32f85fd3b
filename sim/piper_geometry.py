"""The simulated Piper's body as engine-neutral data: primitive shapes, masses, joint dynamics, camera and tool mounts.

Both descriptions of the arm are written from these numbers and the DH table of :mod:`pushcut.sim.piper_spec`: the
MJCF (`piper_model.py`, MuJoCo) and the URDF (`piper_urdf.py`, SAPIEN and any other URDF reader), so the engines
simulate one arm. Contact and friction parameters are not here: each engine sets its own, once.

Frames: link i's frame is DH frame i; the base frame is the arm's mount. The gripper hangs off link6 (the flange):
two fingers whose frames sit FINGER_BASE_OFFSET_M along the flange's z axis and slide along +y (finger_a) and -y
(finger_b) from 0 (closed) to FINGER_STROKE_M. numpy only (no engine).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pushcut.sim import piper_spec as spec

Vec3 = tuple[float, float, float]
RGBA = tuple[float, float, float, float]

SILVER: RGBA = (0.85, 0.85, 0.87, 1.0)
DARK: RGBA = (0.3, 0.3, 0.32, 1.0)


@dataclass(frozen=True)
class Shape:
    """A primitive in its link's frame. box: ``size`` = half extents; cylinder and capsule: ``size`` = (radius,
    half length) along the unit vector ``axis`` (a capsule's hemispherical caps reach past the half length).
    ``name`` is appended to the arm's prefix (e.g. ``left/palm``); ``collides`` False = visual only."""

    kind: str
    size: tuple[float, ...]
    pos: Vec3
    rgba: RGBA
    axis: Vec3 = (0.0, 0.0, 1.0)
    name: str = ""
    collides: bool = True

    @classmethod
    def segment(cls, start: np.ndarray, end: np.ndarray, radius: float, rgba: RGBA) -> Shape:
        """A capsule whose axis runs from ``start`` to ``end``."""
        start, end = np.asarray(start, float), np.asarray(end, float)
        length = float(np.linalg.norm(end - start))
        centre, axis = (start + end) / 2, (end - start) / length
        return cls("capsule", (radius, length / 2), tuple(centre), rgba, tuple(axis))

    def endpoints(self) -> tuple[np.ndarray, np.ndarray]:
        """The two ends of a cylinder's or capsule's axis."""
        half = np.asarray(self.axis) * self.size[1]
        return np.asarray(self.pos) - half, np.asarray(self.pos) + half


# Links 1..6: a rigid mass each at the link origin (the gripper's included in link6's).
LINK_MASS_KG = 0.3
LINK_INERTIA_KG_M2 = 0.001  # each principal moment
LINK_CAPSULE_RADII = (0.04, 0.035, 0.03, 0.03, 0.03)  # links 1..5
LINK_COLOURS: tuple[RGBA, ...] = (SILVER, SILVER, SILVER, DARK, DARK)
BASE_RADIUS = 0.05
# The base and the fingers carry no explicit inertia: that of their shape at this density (MuJoCo's default).
GEOM_DENSITY_KG_M3 = 1000.0

# Collision filtering with the same bits in both engines (MuJoCo's contype / conaffinity, SAPIEN's collision groups
# g0 / g1; two shapes collide iff type_a & affinity_b or type_b & affinity_a): the arm's shapes touch the world and the
# objects, never each other (nor the other arm).
ARM_COLLISION_BITS = (2, 1)
WORLD_COLLISION_BITS = (1, 3)

# Joint dynamics: viscous damping (N m s / rad, N s / m) and reflected rotor inertia (armature; MuJoCo only, URDF
# has no field for it).
ARM_JOINT_DAMPING = 1.0
ARM_JOINT_ARMATURE = 0.1
FINGER_DAMPING = 2.0
FINGER_ARMATURE = 0.05
JOINT_FORCE_LIMIT_NM = 100.0
GRIPPER_FORCE_N = 30.0

# D435-like wrist camera on the gripper housing, in link6's frame: position, and the camera's x (right) and y (up)
# axes (OpenGL convention: it looks down its -z axis).
WRIST_CAMERA_POS: Vec3 = (-0.045, 0.0, 0.035)
WRIST_CAMERA_XYAXES: tuple[Vec3, Vec3] = ((0.0, 1.0, 0.0), (0.9659, 0.0, -0.2588))
WRIST_CAMERA_FOVY = 42.5  # D435 colour camera's vertical field of view (degrees)


def frame_origin(i: int) -> np.ndarray:
    """Origin of DH frame i + 1 in frame i (metres); i is 0-based (0 = link1 in the base)."""
    a, alpha, d = spec.DH_A_MM[i] / 1000, spec.DH_ALPHA[i], spec.DH_D_MM[i] / 1000
    return np.array([a, -math.sin(alpha) * d, math.cos(alpha) * d])


def frame_rotation(i: int) -> np.ndarray:
    """Rotation of DH frame i + 1 in frame i at joint angle 0: RotX(alpha) RotZ(theta offset)."""
    ca, sa = math.cos(spec.DH_ALPHA[i]), math.sin(spec.DH_ALPHA[i])
    ct, st = math.cos(spec.DH_THETA_OFFSET[i]), math.sin(spec.DH_THETA_OFFSET[i])
    return np.array([[ct, -st, 0.0], [ca * st, ca * ct, -sa], [sa * st, sa * ct, ca]])


def base_shapes() -> tuple[Shape, ...]:
    """The base column up to link1's frame."""
    half = spec.DH_D_MM[0] / 2000
    return (Shape("cylinder", (BASE_RADIUS, half), (0.0, 0.0, half), SILVER),)


def link_shapes(i: int) -> tuple[Shape, ...]:
    """Link i + 1 (i = 0..4): capsules from its origin to the next frame's origin, along x first, then along the
    rotated z (an L); a leg shorter than 0.1 mm is left out."""
    target = frame_origin(i + 1)
    corner = np.array([target[0], 0.0, 0.0])
    radius, rgba = LINK_CAPSULE_RADII[i], LINK_COLOURS[i]
    legs = ((np.zeros(3), corner), (corner, target))
    return tuple(Shape.segment(a, b, radius, rgba) for a, b in legs if np.linalg.norm(b - a) > 1e-4)


def gripper_shapes() -> tuple[Shape, ...]:
    """The gripper housing on link6: flange disc, palm, wrist-camera body (visual only)."""
    return (
        Shape("cylinder", (0.032, 0.01), (0.0, 0.0, 0.01), (0.7, 0.7, 0.72, 1.0)),
        Shape("box", (0.022, 0.045, 0.036), (0.0, 0.0, 0.056), (0.2, 0.2, 0.22, 1.0), name="palm"),
        Shape("box", (0.01, 0.012, 0.008), (-0.032, 0.0, 0.03), (0.1, 0.1, 0.1, 1.0), collides=False),
    )


FINGERS: tuple[tuple[str, float], ...] = (("finger_a", 1.0), ("finger_b", -1.0))  # name, sliding direction along y


def finger_shape(name: str, side: float) -> Shape:
    """A finger pad in its own frame (the finger's origin is on the flange axis; the pad lies towards ``side``)."""
    return Shape("box", (0.011, 0.005, 0.030), (0.0, side * 0.005, 0.030), (0.15, 0.15, 0.15, 1.0), name=name)


def box_inertia(half: tuple[float, ...], density: float) -> tuple[float, np.ndarray]:
    """Mass and principal moments (about the centre) of a solid box with the given half extents."""
    x, y, z = (2 * h for h in half)
    mass = density * x * y * z
    return mass, mass / 12 * np.array([y * y + z * z, x * x + z * z, x * x + y * y])


def cylinder_inertia(radius: float, half_length: float, density: float) -> tuple[float, np.ndarray]:
    """Mass and principal moments (about the centre) of a solid cylinder along z."""
    mass = density * math.pi * radius**2 * 2 * half_length
    side = mass * (3 * radius**2 + (2 * half_length) ** 2) / 12
    return mass, np.array([side, side, mass * radius**2 / 2])


def wrist_camera_rotation() -> np.ndarray:
    """The wrist camera's frame in link6 (columns: its x right, y up, z backwards), orthonormalised."""
    x = np.asarray(WRIST_CAMERA_XYAXES[0], float)
    y = np.asarray(WRIST_CAMERA_XYAXES[1], float)
    x /= np.linalg.norm(x)
    y -= x * (x @ y)
    y /= np.linalg.norm(y)
    return np.column_stack([x, y, np.cross(x, y)])
