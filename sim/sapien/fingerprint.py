"""SAPIEN's scene parameters, read back from a built world, and their fingerprint: what "frozen" means (issue 26 §3).

Transfer numbers measured in SAPIEN (docs/results.md) are only comparable while SAPIEN's world stays as it was when
they were measured. :func:`scene_parameters` reads every parameter that can change an episode's physics or pictures
from the live SAPIEN scene — not from pushcut's constants, so a change anywhere (a constant, a loader default, a
SAPIEN upgrade) shows up: the PhysX scene config and timestep, every joint drive, every collision shape's material and
offsets, every body's mass and inertia, every render material, the lights and the cameras. Poses of movable bodies
are state, not parameters (the seed-parity tests cover them). :func:`fingerprint` hashes them;
tests/test_sapien_frozen.py compares them with the record written when SAPIEN was frozen
(``python scripts/freeze_sapien.py``), so SAPIEN cannot be changed silently after the freeze.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from pushcut.sim.sapien.world import SapienWorld

SIGNIFICANT_DIGITS = 6  # float32 quantities, read back through PhysX / the renderer


def _rounded(value: Any) -> Any:
    """Floats (and nested lists of them) to SIGNIFICANT_DIGITS, so float32 read-back noise does not count."""
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return _rounded(value.tolist())
    if isinstance(value, (list, tuple)):
        return [_rounded(item) for item in value]
    if isinstance(value, (float, np.floating)):
        return float(f"{float(value):.{SIGNIFICANT_DIGITS}g}")
    if isinstance(value, np.integer):
        return int(value)
    return value


def _pose(pose: Any) -> list[float]:
    return [*pose.p.tolist(), *pose.q.tolist()]


def _joints(world: SapienWorld) -> dict[str, dict[str, Any]]:
    joints = {}
    for arm, piper in world.rig.arms.items():
        for joint in piper.articulation.get_active_joints():
            joints[f"{arm}/{joint.name}"] = {
                "stiffness": joint.stiffness, "damping": joint.damping, "force_limit": joint.force_limit,
                "armature": joint.armature, "friction": joint.friction, "limits": joint.limits,
                "drive_mode": str(joint.drive_mode),
            }  # fmt: skip
    return joints


def _physics_components(world: SapienWorld) -> dict[str, dict[str, Any]]:
    """Every physics component's collision shapes (material, offsets) and, for movable ones, mass and inertia."""
    components: dict[str, dict[str, Any]] = {}
    for entity in world.rig.scene.entities:
        for component in entity.components:
            shapes = getattr(component, "collision_shapes", None)
            if shapes is None:
                continue
            record: dict[str, Any] = {
                "type": type(component).__name__,
                "shapes": [{"kind": type(shape).__name__, "static_friction": shape.physical_material.static_friction,
                            "dynamic_friction": shape.physical_material.dynamic_friction,
                            "restitution": shape.physical_material.restitution, "contact_offset": shape.contact_offset,
                            "rest_offset": shape.rest_offset, "collision_groups": list(shape.collision_groups),
                            "local_pose": _pose(shape.local_pose)}
                           for shape in shapes],
            }  # fmt: skip
            if hasattr(component, "mass"):
                record.update(mass=component.mass, inertia=component.inertia, cmass=_pose(component.cmass_local_pose))
            if hasattr(component, "linear_damping"):
                record.update(linear_damping=component.linear_damping, angular_damping=component.angular_damping)
            components[f"{entity.name}#{len(components)}"] = record
    return components


def _render(world: SapienWorld) -> dict[str, Any]:
    materials, lights, cameras = {}, [], []
    for entity in world.rig.scene.entities:
        for component in entity.components:
            name = type(component).__name__
            if name == "RenderBodyComponent":
                for k, shape in enumerate(component.render_shapes):
                    for j, part in enumerate(getattr(shape, "parts", None) or [shape]):
                        material = part.material
                        materials[f"{entity.name}/{k}/{j}"] = {
                            "base_color": material.base_color, "roughness": material.roughness,
                            "metallic": material.metallic, "specular": material.specular,
                            "emission": material.emission, "textured": material.base_color_texture is not None,
                        }  # fmt: skip
            elif "Light" in name:
                lights.append({"type": name, "color": component.color, "pose": _pose(component.global_pose),
                               "shadow": component.shadow})  # fmt: skip
            elif name == "RenderCameraComponent":
                cameras.append({"name": component.name, "size": [component.width, component.height],
                                "intrinsics": component.get_intrinsic_matrix(), "near": component.near,
                                "far": component.far, "pose": _pose(component.global_pose)})  # fmt: skip
    return {"ambient": world.rig.scene.ambient_light, "lights": lights, "materials": materials, "cameras": cameras}


def scene_parameters(world: SapienWorld) -> dict[str, Any]:
    """Everything in ``world``'s SAPIEN scene that can change physics or pictures (module docstring), rounded."""
    config = world.rig.scene.physx_system.config
    physics = {
        "timestep": world.rig.scene.timestep,
        "config": {key: getattr(config, key) for key in ("gravity", "bounce_threshold", "enable_ccd", "enable_pcm",
                                                          "enable_tgs", "enable_enhanced_determinism",
                                                          "enable_friction_every_iteration")},
    }  # fmt: skip
    return _rounded({"physics": physics, "joints": _joints(world), "bodies": _physics_components(world),
                     "render": _render(world)})  # fmt: skip


def task_parameters(task: str, seed: int = 0) -> dict[str, Any]:
    """:func:`scene_parameters` of ``task``'s SAPIEN world, clean scene, after a reset on ``seed``, all three cameras:
    the scene the freeze records (scripts/freeze_sapien.py) and checks (tests/test_sapien_frozen.py)."""
    from pushcut.sim.registry import make

    env = make(task, cameras=("head_camera", "left_camera", "right_camera"), engine="sapien")
    try:
        env.reset(seed=seed)
        world = env.world
        if not isinstance(world, SapienWorld):
            raise TypeError(f"expected SAPIEN's world, got {type(world).__name__}")
        return scene_parameters(world)
    finally:
        env.close()


def fingerprint(parameters: dict[str, Any]) -> str:
    """SHA-256 of the parameters' canonical JSON."""
    return hashlib.sha256(json.dumps(parameters, sort_keys=True).encode()).hexdigest()


def differences(recorded: Any, now: Any, path: str = "") -> list[str]:
    """Where two parameter records differ, as readable paths (``joints/left/joint1/damping: 3.1 -> 3.4``)."""
    if isinstance(recorded, dict) and isinstance(now, dict):
        found = []
        for key in sorted(set(recorded) | set(now)):
            if key not in now or key not in recorded:
                found.append(f"{path}{key}: {'removed' if key not in now else 'added'}")
            else:
                found.extend(differences(recorded[key], now[key], f"{path}{key}/"))
        return found
    if isinstance(recorded, list) and isinstance(now, list) and len(recorded) == len(now):
        return [line for k, (a, b) in enumerate(zip(recorded, now)) for line in differences(a, b, f"{path}{k}/")]
    return [] if recorded == now else [f"{path.rstrip('/')}: {recorded!r} -> {now!r}"]
