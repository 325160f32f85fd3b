"""The numbers of the safety filter (:mod:`pushcut.robot.control.safety`): a frozen config with named presets.

Joint limits and the maximum joint speed come from :mod:`pushcut.sim.piper_spec` — the same module the MuJoCo model is
built from — and are only ever tightened here (a margin, a lower speed), never widened. The other numbers are
starting points to tune on hardware:

- speed, acceleration and joint margin default to the execution's own limits (:mod:`pushcut.sim.execution.limits`,
  which the sim env and the executor's motion profile both apply), so the filter leaves what the executor plays
  unchanged and acts only on what is unsafe; ``first_run`` is stricter. The Piper firmware accepts 0-5 rad/s^2
  (``JointMaxAccConfig``); its own profile does the rest on the arm.
- workspace box (world frame, metres): the table area the tasks use, from just above the table top to 0.65 m above
  it; it contains the REST and READY tool centre points.
- capsules: radii per chain segment (base, upper arm, forearm, wrist, hand, fingers) of a coarse Piper link model;
  the minimum surface distance between the two arms' capsules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from functools import cached_property

import numpy as np

from pushcut.robot.control import kinematics as kin
from pushcut.robot.control.safety_geometry import ARM_INDICES, GeometryLimits
from pushcut.sim import piper_spec as spec
from pushcut.sim.execution.limits import GRIPPER_INDICES, PIPER_MOTION, check_joint_limits, envelope_limits
from pushcut.sim.execution.rate import RateLimits

__all__ = ["ARM_INDICES", "GRIPPER_INDICES", "FilterLimits", "SafetyConfig"]


@dataclass(frozen=True, eq=False)
class FilterLimits(RateLimits):
    """Per-dimension arrays derived from a :class:`SafetyConfig` (computed once per config): the rate layer's
    (:class:`~pushcut.sim.execution.rate.RateLimits`) and the geometry's."""

    geometry: GeometryLimits | None = None  # None: no workspace and no clearance check


@dataclass(frozen=True)
class SafetyConfig:
    # Defaults: the execution's own limits (sim/execution/limits.py), so what the executor plays passes unchanged.
    joint_margin_rad: float = PIPER_MOTION.joint_margin_rad  # joints stay this far inside piper_spec's limits
    max_joint_speed: float = PIPER_MOTION.max_joint_speed  # rad/s, at most the spec's
    max_joint_accel: float = PIPER_MOTION.max_joint_accel  # rad/s^2
    gripper_max_speed: float | None = None  # opening units ([0, 1]) per second; None: unlimited
    check_workspace: bool = True
    workspace_low: tuple[float, float, float] = (-0.7, -0.7, spec.TABLE_TOP_Z + 0.005)
    workspace_high: tuple[float, float, float] = (0.7, 0.45, spec.TABLE_TOP_Z + 0.65)
    min_arm_distance_m: float | None = 0.01  # surface distance between the arms' capsules; None: no check
    link_radii_m: tuple[float, ...] = (0.05, 0.045, 0.04, 0.04, 0.045, 0.025)
    mounts: tuple[spec.ArmMount, spec.ArmMount] = spec.DUAL_PIPER_MOUNTS  # base placement in the world frame
    report_tolerance: float = 1e-3  # changes smaller than this (rad, opening units) are applied but not reported

    def __post_init__(self) -> None:
        check_joint_limits(self.joint_margin_rad, self.max_joint_speed, self.max_joint_accel)
        if self.gripper_max_speed is not None and not self.gripper_max_speed > 0.0:
            raise ValueError(f"gripper_max_speed={self.gripper_max_speed} must be positive or None")
        if len(self.workspace_low) != 3 or len(self.workspace_high) != 3:
            raise ValueError("workspace_low and workspace_high are (x, y, z) in metres")
        if not all(lo < hi for lo, hi in zip(self.workspace_low, self.workspace_high)):
            raise ValueError(f"empty workspace box {self.workspace_low} .. {self.workspace_high}")
        if self.min_arm_distance_m is not None and not self.min_arm_distance_m >= 0.0:
            raise ValueError(f"min_arm_distance_m={self.min_arm_distance_m} must be >= 0 or None")
        if len(self.link_radii_m) != len(kin.SEGMENT_NAMES) or min(self.link_radii_m) < 0.0:
            raise ValueError(f"link_radii_m needs {len(kin.SEGMENT_NAMES)} radii >= 0 ({', '.join(kin.SEGMENT_NAMES)})")
        if len(self.mounts) != 2:
            raise ValueError("mounts: one ArmMount per arm (left, right)")
        if not self.report_tolerance >= 0.0:
            raise ValueError(f"report_tolerance={self.report_tolerance} must be >= 0")

    @classmethod
    def piper_default(cls) -> SafetyConfig:
        """Day-to-day limits: 3 deg joint margin, the spec's 3 rad/s, 20 rad/s^2, 1 cm between the arms."""
        return cls()

    @classmethod
    def first_run(cls) -> SafetyConfig:
        """A new setup or checkpoint: slow (1 rad/s, the firmware's 5 rad/s^2), 5 deg margin, 8 cm between the arms,
        TCP at least 2 cm above the table."""
        base = cls()
        low = (base.workspace_low[0], base.workspace_low[1], spec.TABLE_TOP_Z + 0.02)
        return replace(base, joint_margin_rad=math.radians(5.0), max_joint_speed=1.0, max_joint_accel=5.0,
                       gripper_max_speed=1.0, workspace_low=low, min_arm_distance_m=0.08)  # fmt: skip

    @cached_property
    def limits(self) -> FilterLimits:
        rate = envelope_limits(self.joint_margin_rad, self.max_joint_speed, self.max_joint_accel,
                               self.gripper_max_speed)  # fmt: skip
        geometry = None
        if self.check_workspace or self.min_arm_distance_m is not None:
            geometry = GeometryLimits.build(
                kin.mount_frames(self.mounts), np.asarray(self.workspace_low, dtype=float),
                np.asarray(self.workspace_high, dtype=float), self.check_workspace, self.min_arm_distance_m,
                np.asarray(self.link_radii_m, dtype=float), rate.max_accel,
            )  # fmt: skip
        return FilterLimits(**{f: getattr(rate, f) for f in RATE_FIELDS}, geometry=geometry)


RATE_FIELDS = tuple(f.name for f in fields(RateLimits))
