"""The AgileX Piper arm in numbers: joint names, limits, speeds, kinematics, dual-arm layout.

This is the single source of truth shared by the MuJoCo model (sim/) and the real robot's safety limits (robot/),
so it imports nothing but numpy and must never import mujoco or torch.

Sources:
- joint limits: piper_sdk `piper_param_manager.py` (the conservative commanded envelope);
- kinematics: piper_sdk `kinematics/piper_fk.py`, modified (Craig) DH, firmware >= S-V1.6-3 (`dh_is_offset=1`);
- 3 rad/s maximum joint speed (`MotorAngleLimitMaxSpdSet` range);
- gripper: two parallel fingers, 0-0.035 m each (0-0.07 m stroke), RoboTwin's [0, 1] with 1 = open;
- dual layout: RoboTwin `env_cfg/robot/dual_piper.yml`, bases at (+-0.3, -0.45), yaw 90 deg (facing +y).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ARM_JOINT_NAMES: tuple[str, ...] = ("joint1", "joint2", "joint3", "joint4", "joint5", "joint6")
ARMS: tuple[str, str] = ("left", "right")

# Commanded joint envelope in radians (piper_sdk table): (lower, upper) per joint.
JOINT_LIMITS_RAD: np.ndarray = np.array(
    [
        [-2.6179, 2.6179],
        [0.0, 3.14],
        [-2.967, 0.0],
        [-1.745, 1.745],
        [-1.22, 1.22],
        [-2.09439, 2.09439],
    ]
)
MAX_JOINT_SPEED_RAD_S = 3.0
FINGER_STROKE_M = 0.035  # per finger; the gripper opens 0.07 m in total
GRIPPER_STROKE_M = 2 * FINGER_STROKE_M

# Modified DH parameters (mm / rad) for joint i: link transform = RotX(alpha) TransX(a) RotZ(theta + offset) TransZ(d).
DH_A_MM = (0.0, 0.0, 285.03, -21.98, 0.0, 0.0)
DH_ALPHA = (0.0, -math.pi / 2, 0.0, math.pi / 2, -math.pi / 2, math.pi / 2)
DH_THETA_OFFSET = (0.0, math.radians(-172.22), math.radians(-102.78), 0.0, 0.0, 0.0)
DH_D_MM = (123.0, 0.0, 0.0, 250.75, 0.0, 91.0)

# Tool geometry of our simulated gripper, along the flange (link6) z axis.
TCP_OFFSET_M = 0.135  # flange -> centre between the finger pads
FINGER_BASE_OFFSET_M = 0.0925

# Poses (radians). REST: folded, the pose the real arm is parked in before disabling.
# READY: elbow up, gripper pointing down-forward above the near table; experts start and end here.
REST_POSE = np.zeros(6)
READY_POSE = np.array([0.0, 1.0, -0.9, 0.0, 0.75, 0.0])

# 14-D action / state layout shared by sim, policy, server and robot.
ACTION_DIM = 14
ACTION_NAMES: tuple[str, ...] = tuple(
    [f"left_{j}" for j in ARM_JOINT_NAMES]
    + ["left_gripper"]
    + [f"right_{j}" for j in ARM_JOINT_NAMES]
    + ["right_gripper"]
)
LEFT_ARM_SLICE = slice(0, 6)
LEFT_GRIPPER_INDEX = 6
RIGHT_ARM_SLICE = slice(7, 13)
RIGHT_GRIPPER_INDEX = 13
# Each arm's 7 action dimensions (6 joints + gripper).
ARM_ACTION_SLICES: dict[str, slice] = {"left": slice(0, 7), "right": slice(7, 14)}

# Where every episode starts (sim reset, the real arms before a trial): both arms at READY_POSE, grippers open.
READY_ACTION: np.ndarray = np.concatenate([READY_POSE, [1.0], READY_POSE, [1.0]])
READY_ACTION.flags.writeable = False


@dataclass(frozen=True)
class ArmMount:
    """Where an arm's base sits in the world frame (metres) and which way it faces (yaw, radians)."""

    name: str
    position: tuple[float, float, float]
    yaw: float


TABLE_TOP_Z = 0.74
DUAL_PIPER_MOUNTS: tuple[ArmMount, ArmMount] = (
    ArmMount("left", (-0.3, -0.45, TABLE_TOP_Z), math.pi / 2),
    ArmMount("right", (0.3, -0.45, TABLE_TOP_Z), math.pi / 2),
)


def action_limits() -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of the 14-D action: joint limits for arms, [0, 1] for grippers."""
    arm_low, arm_high = JOINT_LIMITS_RAD[:, 0], JOINT_LIMITS_RAD[:, 1]
    low = np.concatenate([arm_low, [0.0], arm_low, [0.0]])
    high = np.concatenate([arm_high, [1.0], arm_high, [1.0]])
    return low, high


def dh_link_transform(alpha: float, a: float, theta: float, d: float) -> np.ndarray:
    """4x4 modified-DH transform RotX(alpha) TransX(a) RotZ(theta) TransZ(d)."""
    ca, sa, ct, st = math.cos(alpha), math.sin(alpha), math.cos(theta), math.sin(theta)
    return np.array(
        [
            [ct, -st, 0.0, a],
            [st * ca, ct * ca, -sa, -sa * d],
            [st * sa, ct * sa, ca, ca * d],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )


def forward_kinematics(joints: np.ndarray) -> list[np.ndarray]:
    """Frames of link1..link6 in the arm's base frame (metres) for 6 joint angles (radians)."""
    joints = np.asarray(joints, dtype=float)
    if joints.shape != (6,):
        raise ValueError(f"forward_kinematics expects 6 joint angles, got shape {joints.shape}")
    frames = []
    transform = np.eye(4)
    for i in range(6):
        link = dh_link_transform(DH_ALPHA[i], DH_A_MM[i] / 1000, joints[i] + DH_THETA_OFFSET[i], DH_D_MM[i] / 1000)
        transform = transform @ link
        frames.append(transform.copy())
    return frames


def flange_pose(joints: np.ndarray) -> np.ndarray:
    """4x4 pose of the flange (link6) in the arm's base frame."""
    return forward_kinematics(joints)[-1]


def tcp_pose(joints: np.ndarray) -> np.ndarray:
    """4x4 pose of the tool centre point (between the finger pads) in the arm's base frame."""
    pose = flange_pose(joints)
    pose[:3, 3] += pose[:3, 2] * TCP_OFFSET_M
    return pose


def mount_transform(mount: ArmMount) -> np.ndarray:
    """4x4 transform from an arm's base frame to the world frame."""
    c, s = math.cos(mount.yaw), math.sin(mount.yaw)
    transform = np.eye(4)
    transform[:3, :3] = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
    transform[:3, 3] = mount.position
    return transform
