"""The Piper's joint drives in SAPIEN: MuJoCo's position servos (`piper_model`) as PhysX joint drives.

A MuJoCo position servo pushes with ``kp (target - q) - kv v`` and the joint adds its own damping ``-d v``; a PhysX
drive pushes with ``stiffness (target - q) + damping (0 - v)``. So each SAPIEN drive gets

- stiffness = the servo's kp (``piper_model.JOINT_KP``, ``GRIPPER_KP``: read, not repeated);
- damping = kv + the joint's damping (``piper_geometry.ARM_JOINT_DAMPING``, ``FINGER_DAMPING``), where kv is what
  MuJoCo's ``dampratio`` makes of the servo: ``dampratio * 2 sqrt(kp * m)``, m the joint's reflected inertia at the
  zero pose (MuJoCo's qpos0), ``1 / (M^-1)_jj`` with the armature in M. Here M is SAPIEN's own (the Pinocchio model
  of the loaded URDF) plus ``piper_geometry``'s armature, which PhysX joints carry too (URDF has no field for it);
- force limit = the servo's force range (``JOINT_FORCE_LIMIT_NM``, ``GRIPPER_FORCE_N``).

The gripper is one servo on finger_a, as in MuJoCo; finger_b follows through the URDF's mimic (a PhysX fixed tendon,
made by SAPIEN's loader) and keeps only its joint damping. PhysX's joint friction (SAPIEN's default 0.05) and link
damping are set to zero: MuJoCo's model has neither. Gravity compensation (MuJoCo's ``gravcomp``) is applied per
physics step by the rig (``compute_passive_force``). tests/test_sapien_rig.py checks that MuJoCo's compiled servos
have these dampings and that both engines track the same targets to within about 2 mm.

These drives are MuJoCo's servos in free motion, measured: the kv above equal the compiled ``biasprm`` (from
``dof_invweight0``, armature included), and on a 1 rad/s ramp of every joint with the gripper closing in 0.2 s the
two engines' joints stay within 1.4 mrad and the openings within 0.008. stack_bowls_two's 0/10 in SAPIEN, first put
down to servo lag, was contact friction: the arm's links had SAPIEN's default material (friction 0.3), so the bowl
slid out of the pads (MuJoCo: 1.5), and a pad grazing the table slid where MuJoCo's sticks; that MuJoCo "lag" was the
arm held by the table. The rig gives the links MuJoCo's frictions (`rig.py`); nothing here changed for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from pushcut.sim import piper_geometry as geometry
from pushcut.sim import piper_model
from pushcut.sim import piper_spec as spec

# piper_model writes its position servos with dampratio="1" (critically damped at the zero pose).
SERVO_DAMPING_RATIO = 1.0
FINGER_A, FINGER_B = (name for name, _ in geometry.FINGERS)


@dataclass(frozen=True)
class JointDrive:
    """One joint's drive in SAPIEN's terms (N m / rad or N / m; N m s / rad or N s / m; N m or N; kg m^2 or kg)."""

    joint: str
    stiffness: float
    damping: float
    force_limit: float
    armature: float


def servo_damping(kp: float, reflected_inertia: float, ratio: float = SERVO_DAMPING_RATIO) -> float:
    """MuJoCo's kv for a position servo of gain ``kp`` and damping ratio ``ratio`` on a joint of that inertia."""
    if kp < 0.0 or reflected_inertia <= 0.0:
        raise ValueError(f"servo damping needs kp >= 0 and a positive inertia, got {kp} and {reflected_inertia}")
    return ratio * 2.0 * math.sqrt(kp * reflected_inertia)


def reflected_inertia(articulation: Any, indices: np.ndarray, armature: np.ndarray) -> np.ndarray:
    """Each joint's reflected inertia at qpos = 0 as MuJoCo's compiler takes it for ``dampratio``: 1 / (M^-1)_jj
    (its ``dof_invweight0``), M the joint-space mass matrix of the links (SAPIEN's Pinocchio model) at the active
    joints ``indices``, plus the joints' ``armature`` on its diagonal."""
    model = articulation.create_pinocchio_model()
    full = np.asarray(model.compute_generalized_mass_matrix(np.zeros(articulation.dof)), dtype=float)
    mass = full[np.ix_(indices, indices)] + np.diag(armature)
    return 1.0 / np.diag(np.linalg.inv(mass))


def piper_drives(articulation: Any, indices: np.ndarray, prefix: str = "") -> tuple[JointDrive, ...]:
    """The drives of one arm: joint1..6, finger_a, finger_b; ``indices`` are their active-joint indices in
    ``articulation`` (SapienPiper.qpos_index)."""
    indices = np.asarray(indices)
    if indices.shape != (8,):
        raise ValueError(f"expected the 8 active joints of a Piper (joint1..6, {FINGER_A}, {FINGER_B}), got {indices}")
    armature = np.array([geometry.ARM_JOINT_ARMATURE] * 6 + [geometry.FINGER_ARMATURE] * 2)
    inertia = reflected_inertia(articulation, indices, armature)
    drives = []
    for k, name in enumerate(spec.ARM_JOINT_NAMES):
        kp = piper_model.JOINT_KP[k]
        damping = servo_damping(kp, inertia[k]) + geometry.ARM_JOINT_DAMPING
        drives.append(JointDrive(f"{prefix}{name}", kp, damping, geometry.JOINT_FORCE_LIMIT_NM, armature[k]))
    kp = piper_model.GRIPPER_KP
    damping = servo_damping(kp, inertia[6]) + geometry.FINGER_DAMPING
    drives.append(JointDrive(f"{prefix}{FINGER_A}", kp, damping, geometry.GRIPPER_FORCE_N, armature[6]))
    drives.append(JointDrive(f"{prefix}{FINGER_B}", 0.0, geometry.FINGER_DAMPING, 0.0, armature[7]))
    return tuple(drives)


def apply_drives(articulation: Any, drives: tuple[JointDrive, ...]) -> None:
    """Set the drives on the articulation's joints, and PhysX's joint friction and link damping to zero."""
    joints = {joint.name: joint for joint in articulation.get_active_joints()}
    missing = [drive.joint for drive in drives if drive.joint not in joints]
    if missing:
        raise ValueError(f"the articulation has no joints {missing}; expected the Piper's layout")
    for drive in drives:
        joint = joints[drive.joint]
        joint.set_drive_property(drive.stiffness, drive.damping, drive.force_limit, "force")
        joint.set_armature(np.array([drive.armature], dtype=np.float32))
        joint.set_friction(0.0)
    for link in articulation.get_links():
        link.set_linear_damping(0.0)
        link.set_angular_damping(0.0)


def finger_travel(opening: float) -> float:
    """Finger travel (m) of a gripper opening in [0, 1] (RoboTwin's convention, 1 = open)."""
    return float(np.clip(opening, 0.0, 1.0)) * spec.FINGER_STROKE_M
