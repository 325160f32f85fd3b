"""A Piper URDF in a SAPIEN scene: checked, loaded, its collision filtering mirrored from MuJoCo's, its kinematics
verified against piper_spec's DH table, and its flange and tool poses.

Any URDF of the Piper's joint layout loads (`pushcut sim urdf --out` writes ours; a user may swap in another), as one
arm or as the dual file's two (`prefix` "" or "left_" / "right_"). Its link frames need not be DH frames, but joint
angles must mean what they mean on the SDK: the flange (joint6's child) has to sit where piper_spec's forward
kinematics puts it, within 1 mm, or the file is refused.

Without the filtering, PhysX lets every link collide with every other (SAPIEN's default groups), and the overlapping
capsules of neighbouring links blow the articulation apart on the first step.
"""

from __future__ import annotations

import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pushcut.sim import piper_geometry as geometry
from pushcut.sim import piper_spec as spec
from pushcut.sim.sapien.device import import_sapien
from pushcut.sim.urdf_layout import PiperLayout, PiperURDFError, check_piper_urdf, movable_joint_names

KINEMATICS_TOLERANCE_M = 1e-3
# Joint vectors the flange is checked at on load: zero, READY, and two spread across the envelope.
_CHECK_POSES = (spec.REST_POSE, spec.READY_POSE, np.array([0.8, 1.8, -1.9, 0.9, -0.7, 1.2]),
                np.array([-1.5, 0.4, -0.5, -1.2, 0.9, -1.6]))  # fmt: skip
_TCP = np.eye(4)
_TCP[2, 3] = spec.TCP_OFFSET_M


def pose_matrix(pose: Any) -> np.ndarray:
    """4x4 float64 transform of a sapien.Pose."""
    return np.asarray(pose.to_transformation_matrix(), dtype=float)


@dataclass
class SapienPiper:
    """A loaded Piper articulation: per arm prefix, its joints' qpos indices (joint1..6, finger_a, finger_b), base
    and flange links. It holds its scene: SAPIEN removes the links of a scene that is garbage-collected."""

    scene: Any
    articulation: Any
    layout: PiperLayout
    qpos_index: dict[str, np.ndarray]
    base_links: dict[str, Any]
    flange_links: dict[str, Any]

    def set_joints(self, joints: np.ndarray, opening: float = 1.0, prefix: str = "") -> None:
        """Put one arm at 6 joint angles (rad) and its gripper at an opening in [0, 1] (no physics)."""
        joints = np.asarray(joints, dtype=float)
        if joints.shape != (6,) or not np.isfinite(joints).all():
            raise ValueError(f"joints must be 6 finite angles (rad), got {joints!r}")
        qpos = np.asarray(self.articulation.get_qpos(), dtype=np.float32).copy()
        finger = float(np.clip(opening, 0.0, 1.0)) * spec.FINGER_STROKE_M
        qpos[self.qpos_index[prefix]] = np.concatenate([joints, [finger, finger]])
        self.articulation.set_qpos(qpos)

    def base_pose(self, prefix: str = "") -> np.ndarray:
        return pose_matrix(self.base_links[prefix].entity_pose)

    def flange_pose(self, prefix: str = "") -> np.ndarray:
        """World pose of the flange (link6) as a 4x4 transform."""
        return pose_matrix(self.flange_links[prefix].entity_pose)

    def tcp_pose(self, prefix: str = "") -> np.ndarray:
        """World pose of the tool centre point: TCP_OFFSET_M along the flange's z axis."""
        return self.flange_pose(prefix) @ _TCP

    def kinematics_error(self, joints: np.ndarray, prefix: str = "") -> float:
        """Distance (m) between the flange here and piper_spec's forward kinematics at ``joints``, in the arm's base
        frame (flange origin, and its axes 0.1 m out)."""
        self.set_joints(joints, prefix=prefix)
        local = np.linalg.inv(self.base_pose(prefix)) @ self.flange_pose(prefix)
        ref = spec.flange_pose(joints)
        points = np.vstack([np.zeros(3), 0.1 * np.eye(3)])
        return float(np.abs(points @ (local[:3, :3] - ref[:3, :3]).T + (local[:3, 3] - ref[:3, 3])).max())


def _filter_collisions(articulation: Any) -> None:
    contact_type, affinity = geometry.ARM_COLLISION_BITS
    for link in articulation.get_links():
        for shape in link.collision_shapes:
            groups = shape.get_collision_groups()
            shape.set_collision_groups([contact_type, affinity, groups[2], groups[3]])


def _without_visuals(urdf: Path, folder: str) -> Path:
    """A copy of ``urdf`` in ``folder`` without <visual> elements (SAPIEN's parser makes render materials for them,
    which needs a render device) and with relative mesh paths made absolute."""
    tree = ET.parse(urdf)
    for link in tree.getroot().iter("link"):
        for visual in link.findall("visual"):
            link.remove(visual)
    for mesh in tree.getroot().iter("mesh"):
        name = mesh.get("filename", "")
        if name and "://" not in name and not Path(name).is_absolute():
            mesh.set("filename", str((urdf.parent / name).resolve()))
    copy = Path(folder) / urdf.name
    tree.write(copy)
    return copy


def load_piper(scene: Any, urdf: str | Path, root_pose: np.ndarray | None = None, visuals: bool = True) -> SapienPiper:
    """Check ``urdf`` (PiperURDFError, one line), load it into ``scene`` with a fixed root at ``root_pose`` (4x4,
    default identity: a single arm's base, or the dual file's world), filter its collisions as MuJoCo does and verify
    its kinematics; then the arms stand at READY_POSE with open grippers. ``visuals=False`` loads the physics alone (for
    a scene without a render system)."""
    sapien = import_sapien()
    layout = check_piper_urdf(urdf)
    with tempfile.TemporaryDirectory(prefix="pushcut-urdf-") as folder:
        source = Path(urdf) if visuals else _without_visuals(Path(urdf), folder)
        builder = scene.create_urdf_loader().load_file_as_articulation_builder(str(source))
    if root_pose is not None:
        builder.set_initial_pose(sapien.Pose(np.asarray(root_pose, dtype=np.float32)))
    articulation = builder.build(fix_root_link=True)
    _filter_collisions(articulation)
    names = [joint.name for joint in articulation.get_active_joints()]
    links = {link.name: link for link in articulation.get_links()}
    joints = {joint.name: joint for joint in articulation.get_joints()}
    piper = SapienPiper(
        scene,
        articulation,
        layout,
        {p: np.array([names.index(n) for n in movable_joint_names(p)]) for p in layout.prefixes},
        {p: joints[f"{p}joint1"].parent_link for p in layout.prefixes},
        {p: links[layout.flanges[p]] for p in layout.prefixes},
    )
    for prefix in layout.prefixes:
        error = max(piper.kinematics_error(q, prefix) for q in _CHECK_POSES)
        if error > KINEMATICS_TOLERANCE_M:
            raise PiperURDFError(
                f"{layout.source}: its flange is {error * 1000:.1f} mm away from piper_spec's forward kinematics "
                f"(modified DH); expected joint angles that mean the SDK's, within {KINEMATICS_TOLERANCE_M * 1000:g} mm"
            )
        piper.set_joints(spec.READY_POSE, prefix=prefix)
    return piper
