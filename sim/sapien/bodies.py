"""Scene-description bodies (`pushcut.sim.scene_description.Body`) as SAPIEN actors: "free" -> dynamic, "static" ->
kinematic (placed by the env, never moved by physics), "fixed" -> static.

Geoms: box and sphere as they are; capsule and cylinder along the geom's z axis (SAPIEN's run along x); ellipsoid,
which SAPIEN lacks, as the convex hull of a unit sphere mesh scaled by its semi-axes, with its density raised so its
mass is the ellipsoid's. A geom without ``mass`` weighs ``piper_geometry.GEOM_DENSITY_KG_M3`` times its volume, as in
MuJoCo; a body's ``inertial`` overrides its geoms'. Contact classes map to PhysX materials once, here
(:data:`CONTACT_FRICTION`); every colliding shape gets the world's collision bits (``WORLD_COLLISION_BITS``).
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from tempfile import mkdtemp
from typing import Any

import numpy as np

from pushcut.sim import piper_geometry as geometry
from pushcut.sim.camera_calibration import quat_mul  # the one quaternion product (numpy only)
from pushcut.sim.geometry import mat_to_quat
from pushcut.sim.sapien.device import import_sapien
from pushcut.sim.scene_description import Body, Geom

# Friction per contact class (static = dynamic, no restitution): scene_description.CONTACT_CLASSES' MuJoCo values.
CONTACT_FRICTION: dict[str, float] = {"world": 1.0, "grippy": 1.5, "slippery": 0.5, "ceramic": 0.3}
ACTOR_TYPES = {"free": "dynamic", "static": "kinematic", "fixed": "static"}
_SPHERE_RINGS, _SPHERE_SEGMENTS = 12, 24


def euler_xyz(euler: tuple[float, float, float]) -> np.ndarray:
    """Rotation of intrinsic x-y-z Euler angles (MuJoCo's default ``eulerseq="xyz"``)."""
    matrix = np.eye(3)
    for axis, angle in zip(range(3), euler):
        c, s = math.cos(angle), math.sin(angle)
        turn = np.eye(3)
        i, j = [k for k in range(3) if k != axis]
        turn[i, i], turn[i, j], turn[j, i], turn[j, j] = c, -s, s, c
        matrix = matrix @ turn
    return matrix


def geom_quat(geom: Geom) -> np.ndarray:
    """The geom's orientation in its body (w, x, y, z)."""
    if geom.quat is not None:
        return np.asarray(geom.quat, dtype=float) / np.linalg.norm(geom.quat)
    if geom.euler is not None:
        return mat_to_quat(euler_xyz(geom.euler))
    return np.array([1.0, 0.0, 0.0, 0.0])


def geom_volume(geom: Geom) -> float:
    size = geom.size
    if geom.kind == "box":
        return 8.0 * size[0] * size[1] * size[2]
    if geom.kind == "sphere":
        return 4.0 / 3.0 * math.pi * size[0] ** 3
    if geom.kind == "ellipsoid":
        return 4.0 / 3.0 * math.pi * size[0] * size[1] * size[2]
    if geom.kind == "cylinder":
        return math.pi * size[0] ** 2 * 2.0 * size[1]
    if geom.kind == "capsule":
        return math.pi * size[0] ** 2 * 2.0 * size[1] + 4.0 / 3.0 * math.pi * size[0] ** 3
    raise ValueError(f"geom {geom.name!r}: a {geom.kind} has no volume; bodies are built of solids")


def sphere_mesh() -> tuple[np.ndarray, np.ndarray]:
    """Vertices and triangles of a UV unit sphere."""
    rings, segments = _SPHERE_RINGS, _SPHERE_SEGMENTS
    vertices = [(0.0, 0.0, 1.0)]
    for i in range(1, rings):
        theta = math.pi * i / rings
        vertices += [(math.sin(theta) * math.cos(2 * math.pi * j / segments),
                      math.sin(theta) * math.sin(2 * math.pi * j / segments), math.cos(theta))
                     for j in range(segments)]  # fmt: skip
    vertices.append((0.0, 0.0, -1.0))
    last, faces = len(vertices) - 1, []
    for j in range(segments):
        k = (j + 1) % segments
        faces += [(0, 1 + j, 1 + k), (last, 1 + (rings - 2) * segments + k, 1 + (rings - 2) * segments + j)]
        for i in range(rings - 2):
            a, b = 1 + i * segments, 1 + (i + 1) * segments
            faces += [(a + j, b + j, b + k), (a + j, b + k, a + k)]
    return np.array(vertices), np.array(faces)


def hull_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Volume of a closed, outward-oriented triangle mesh."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


@cache
def sphere_obj() -> Path:
    """The unit sphere mesh as an OBJ file (once per process)."""
    vertices, faces = sphere_mesh()
    path = Path(mkdtemp(prefix="pushcut-sapien-")) / "unit_sphere.obj"
    lines = [f"v {x:.9f} {y:.9f} {z:.9f}" for x, y, z in vertices] + [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    path.write_text("\n".join(lines) + "\n")
    return path


def _add_geom(sapien: Any, builder: Any, geom: Geom, render: bool, materials: dict[str, Any]) -> None:
    quat = geom_quat(geom)
    if geom.kind in ("capsule", "cylinder"):  # SAPIEN's run along x: turn x onto the geom's z
        quat = quat_mul(quat, np.array([math.cos(-math.pi / 4), 0.0, math.sin(-math.pi / 4), 0.0]))
    pose = sapien.Pose(list(geom.pos), list(quat))
    mass = geom.mass if geom.mass is not None else geometry.GEOM_DENSITY_KG_M3 * geom_volume(geom)
    density, collide = mass / geom_volume(geom), geom.contact != "visual"
    look = list(geom.rgba)
    material = materials[geom.contact] if collide else None
    if geom.kind == "box":
        if collide:
            builder.add_box_collision(pose, half_size=list(geom.size), material=material, density=density)
        if render:
            builder.add_box_visual(pose, half_size=list(geom.size), material=look)
    elif geom.kind == "sphere":
        if collide:
            builder.add_sphere_collision(pose, radius=geom.size[0], material=material, density=density)
        if render:
            builder.add_sphere_visual(pose, radius=geom.size[0], material=look)
    elif geom.kind in ("capsule", "cylinder"):
        radius, half = geom.size
        if collide:
            getattr(builder, f"add_{geom.kind}_collision")(pose, radius=radius, half_length=half, material=material,
                                                           density=density)  # fmt: skip
        if render:
            getattr(builder, f"add_{geom.kind}_visual")(pose, radius=radius, half_length=half, material=look)
    elif geom.kind == "ellipsoid":
        scale = list(geom.size)
        if collide:
            hull = hull_volume(*sphere_mesh()) * geom.size[0] * geom.size[1] * geom.size[2]
            builder.add_convex_collision_from_file(str(sphere_obj()), pose, scale=scale, material=material,
                                                   density=mass / hull)  # fmt: skip
        if render:
            builder.add_visual_from_file(str(sphere_obj()), pose, scale=scale, material=look)
    else:
        raise ValueError(f"geom {geom.name!r}: SAPIEN bodies are built of box, sphere, capsule, cylinder and "
                         f"ellipsoid geoms, not {geom.kind}")  # fmt: skip


def contact_materials(scene: Any) -> dict[str, Any]:
    """One PhysX material per contact class of the scene description."""
    return {name: scene.create_physical_material(mu, mu, 0.0) for name, mu in CONTACT_FRICTION.items()}


def build_body(scene: Any, body: Body, render: bool, materials: dict[str, Any]) -> Any:
    """The body as a SAPIEN actor (an Entity) at its description pose, named after it."""
    sapien = import_sapien()
    builder = scene.create_actor_builder()
    builder.set_physx_body_type(ACTOR_TYPES[body.motion])
    for geom in body.geoms:
        _add_geom(sapien, builder, geom, render, materials)
    if body.inertial is not None and body.motion == "free":
        inertial = body.inertial
        builder.set_mass_and_inertia(inertial.mass, sapien.Pose(list(inertial.pos)), list(inertial.diaginertia))
    builder.set_initial_pose(sapien.Pose(list(body.pos)))
    actor = builder.build(name=body.name)
    contact_type, affinity = geometry.WORLD_COLLISION_BITS
    for component in actor.components:
        for shape in getattr(component, "collision_shapes", ()):
            groups = shape.get_collision_groups()
            shape.set_collision_groups([contact_type, affinity, groups[2], groups[3]])
    return actor
