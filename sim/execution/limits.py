"""The execution's limits, defined once: what the sim env and the robot executor both execute.

Sources (../shared/reference/robotwin_and_piper.md, serving_and_safety.md): the Piper's joint envelope and its 3 rad/s
maximum joint speed are in :mod:`pushcut.sim.piper_spec`; its firmware accepts joint accelerations of 0-5 rad/s^2
(``JointMaxAccConfig``). The execution's 20 rad/s^2 is what the safety filter allowed before the two were unified
(limits may only move toward the firmware's, never away); the firmware's own profile does the rest on the arm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from pushcut.sim import piper_spec as spec
from pushcut.sim.execution.rate import RateLimits

SERVO_HZ = 100.0  # joint commands per second (the executor's servo loop; the sim's servo-target updates)
GRIPPER_INDICES = np.array([spec.LEFT_GRIPPER_INDEX, spec.RIGHT_GRIPPER_INDEX])
ARM_INDICES = np.r_[spec.LEFT_ARM_SLICE, spec.RIGHT_ARM_SLICE]


@dataclass(frozen=True)
class MotionLimits:
    """How fast commands may move. Grippers have no speed limit here (the Piper's gripper has its own drive)."""

    servo_hz: float = SERVO_HZ
    max_joint_speed: float = spec.MAX_JOINT_SPEED_RAD_S  # rad/s
    max_joint_accel: float = 20.0  # rad/s^2
    joint_margin_rad: float = math.radians(3.0)  # commands stay this far inside piper_spec.JOINT_LIMITS_RAD
    smoothing_actions: float = 1.0  # the plan is averaged over this many action periods (plan.py)

    def __post_init__(self) -> None:
        if not 1.0 <= self.servo_hz <= 1000.0:
            raise ValueError(f"servo_hz={self.servo_hz} must be within [1, 1000]")
        check_joint_limits(self.joint_margin_rad, self.max_joint_speed, self.max_joint_accel)
        if not 0.0 <= self.smoothing_actions <= 4.0:
            raise ValueError(f"smoothing_actions={self.smoothing_actions} must be in [0, 4]")

    @cached_property
    def rate(self) -> RateLimits:
        """Per-dimension limits of the rate profile: the envelope shrunk by the margin, speed and acceleration."""
        return envelope_limits(self.joint_margin_rad, self.max_joint_speed, self.max_joint_accel, None)

    @cached_property
    def rate_without_envelope(self) -> RateLimits:
        """Speed and acceleration only: the robot's profile, which leaves the envelope to the safety filter (the
        same clamp and the same braking, with the filter's limits), so that a policy asking past a joint limit is
        still an intervention the operator sees."""
        return envelope_limits(None, self.max_joint_speed, self.max_joint_accel, None)


def check_joint_limits(margin_rad: float, joint_speed: float, joint_accel: float) -> None:
    """ValueError unless the margin, speed and acceleration are ones the Piper allows (the execution's and the
    safety filter's: only ever tighter than piper_spec)."""
    ranges = spec.JOINT_LIMITS_RAD[:, 1] - spec.JOINT_LIMITS_RAD[:, 0]
    if not 0.0 <= margin_rad < 0.25 * ranges.min():
        raise ValueError(f"joint_margin_rad={margin_rad} must be in [0, {0.25 * ranges.min():.3f})")
    if not 0.0 < joint_speed <= spec.MAX_JOINT_SPEED_RAD_S:
        raise ValueError(f"max_joint_speed={joint_speed} must be in (0, {spec.MAX_JOINT_SPEED_RAD_S}] rad/s "
                         "(piper_spec.MAX_JOINT_SPEED_RAD_S)")  # fmt: skip
    if not 0.0 < joint_accel < math.inf:
        raise ValueError(f"max_joint_accel={joint_accel} must be positive and finite")


UNBOUNDED = 1e6  # an envelope no command reaches (radians, opening units)


def envelope_limits(
    margin_rad: float | None, joint_speed: float, joint_accel: float, gripper_speed: float | None
) -> RateLimits:
    """:class:`RateLimits` over the 14-D action: joints inside the Piper's envelope by ``margin_rad`` (None: no
    envelope), grippers in [0, 1]; grippers have no acceleration limit (nor a speed limit when ``gripper_speed`` is
    None)."""
    low, high = spec.action_limits()
    if margin_rad is None:
        low, high = np.full(spec.ACTION_DIM, -UNBOUNDED), np.full(spec.ACTION_DIM, UNBOUNDED)
    else:
        low[ARM_INDICES] += margin_rad
        high[ARM_INDICES] -= margin_rad
    speed = np.full(spec.ACTION_DIM, float(joint_speed))
    speed[GRIPPER_INDICES] = math.inf if gripper_speed is None else gripper_speed
    accel = np.full(spec.ACTION_DIM, float(joint_accel))
    accel[GRIPPER_INDICES] = math.inf
    return RateLimits.build(low, high, speed, accel)


PIPER_MOTION = MotionLimits()  # the execution every stage uses (sim env, robot executor); the filter's defaults
