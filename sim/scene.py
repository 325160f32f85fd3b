"""The dual-Piper world as data: table, wall, risers, lights, head camera, distractor slots and a task's objects.

Layout follows RoboTwin 2.0's dual-Piper embodiment (z up, robot at -y facing +y, left arm at -x):
- table 1.2 x 0.7 m centred at the origin, top at z = 0.74 (a randomised table height lowers it by up to 3 cm);
- arm bases at (+-0.3, -0.45) on risers flush with the table top;
- head camera modelled on the D435 (fovy 37 deg), above and behind the arms, looking at the table.

:func:`describe` gives the engine-neutral :class:`~pushcut.sim.scene_description.SceneDescription`; each engine builds
it (MuJoCo: :mod:`pushcut.sim.mujoco_scene`, whose rendering is configured for speed on a CPU: docs/benchmarks.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pushcut.sim import piper_spec as spec
from pushcut.sim.scene_description import (
    TABLE_TOP_GEOM,
    Body,
    Camera,
    Geom,
    Light,
    SceneDescription,
    TableTexture,
    TaskObjects,
)

if TYPE_CHECKING:
    import mujoco

TABLE_HALF_SIZE = (0.6, 0.35, 0.02)
HEAD_CAMERA_POS = (0.0, -0.95, 1.55)
HEAD_CAMERA_TARGET = (0.0, -0.08, 0.74)
HEAD_CAMERA_FOVY = 37.0
NUM_DISTRACTOR_SLOTS = 4
NUM_TABLE_TEXTURES = 4
PHYSICS_TIMESTEP = 0.002
DISTRACTOR_PARK = (0.0, 0.0, -5.0)  # below the floor, out of sight, until the randomiser places a slot
NO_OBJECTS = TaskObjects(())


def _head_camera_xyaxes() -> tuple[float, float, float, float, float, float]:
    """Camera x (right) and y (up) axes so that the camera looks from HEAD_CAMERA_POS at HEAD_CAMERA_TARGET (five
    decimals, as the scene has always been written)."""
    forward = np.subtract(HEAD_CAMERA_TARGET, HEAD_CAMERA_POS)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return tuple(float(f"{v:.5f}") for v in (*right, *up))  # type: ignore[return-value]


def _table_textures() -> tuple[TableTexture, ...]:
    palette = (
        ((0.55, 0.42, 0.3), (0.45, 0.33, 0.22)),
        ((0.8, 0.8, 0.78), (0.6, 0.6, 0.62)),
        ((0.35, 0.45, 0.55), (0.25, 0.3, 0.4)),
        ((0.6, 0.55, 0.45), (0.7, 0.65, 0.5)),
    )
    patterns = ("gradient", "checker", "checker", "gradient")
    return tuple(
        TableTexture(patterns[i], palette[i][0], palette[i][1], (4.0 + 2 * i, 2.0 + i))
        for i in range(NUM_TABLE_TEXTURES)
    )


def _distractors() -> tuple[Body, ...]:
    """Static clutter slots, parked below the floor until the randomiser places them on the table."""
    shapes = (
        ("box", (0.025, 0.03, 0.02)),
        ("cylinder", (0.022, 0.035)),
        ("sphere", (0.025,)),
        ("box", (0.04, 0.015, 0.012)),
    )
    grey = (0.5, 0.5, 0.5, 1.0)
    return tuple(
        Body(
            f"distractor{i}", "static", DISTRACTOR_PARK, (Geom(f"distractor{i}", *shapes[i % len(shapes)], rgba=grey),)
        )
        for i in range(NUM_DISTRACTOR_SLOTS)
    )


def _table() -> Body:
    hx, hy, hz = TABLE_HALF_SIZE
    top = spec.TABLE_TOP_Z
    leg_size = (0.03, 0.03, (top - 2 * hz) / 2)
    legs = tuple(
        Geom("", "box", leg_size, (x, hy - 0.05, -top / 2), (0.3, 0.25, 0.2, 1.0), contact="visual")
        for x in (hx - 0.05, -hx + 0.05)
    )
    return Body(
        "table",
        "fixed",
        (0.0, 0.0, top - hz),
        (Geom(TABLE_TOP_GEOM, "box", (hx, hy, hz), rgba=(0.55, 0.42, 0.3, 1.0)), *legs),
    )


def _world_geoms() -> tuple[Geom, ...]:
    top = spec.TABLE_TOP_Z
    risers = tuple(
        Geom(
            f"{m.name}_riser",
            "box",
            (0.08, 0.08, top / 2),
            (m.position[0], m.position[1], top / 2),
            (0.25, 0.25, 0.28, 1.0),
        )
        for m in spec.DUAL_PIPER_MOUNTS
    )
    floor = Geom("floor", "plane", (3.0, 3.0, 0.05), rgba=(0.32, 0.32, 0.34, 1.0))
    wall = Geom("wall", "box", (1.2, 0.02, 0.6), (0.0, 0.9, 1.0), (0.78, 0.78, 0.76, 1.0))
    return (floor, wall, *risers)


def describe(objects: TaskObjects = NO_OBJECTS, task_name: str = "empty") -> SceneDescription:
    """The whole scene around a task's objects."""
    lights = (
        Light("key_light", (0.3, -0.3, 2.2), (-0.2, 0.2, -1.0), (0.6, 0.6, 0.6), directional=True),
        Light("fill_light", (-0.6, 0.4, 1.8), (0.3, -0.2, -1.0), (0.25, 0.25, 0.25)),
    )
    return SceneDescription(
        name=task_name,
        timestep=PHYSICS_TIMESTEP,
        world_geoms=_world_geoms(),
        table=_table(),
        lights=lights,
        ambient=(0.35, 0.35, 0.35),
        headlight=(0.4, 0.4, 0.4),
        cameras=(Camera("head_camera", HEAD_CAMERA_POS, _head_camera_xyaxes(), HEAD_CAMERA_FOVY),),
        table_textures=_table_textures(),
        distractors=_distractors(),
        objects=objects,
    )


def build_model(objects: TaskObjects | None = None, task_name: str = "empty") -> mujoco.MjModel:
    """The scene compiled by MuJoCo (:func:`pushcut.sim.mujoco_scene.build_model`); no objects: the bare scene (an
    empty string, the objects' MJCF of old, means the same)."""
    from pushcut.sim import mujoco_scene

    return mujoco_scene.build_model(describe(objects or NO_OBJECTS, task_name))
