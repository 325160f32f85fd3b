"""What must hold before a tool moves the arms (replay), in two stages:

- :func:`check_before_connecting`: ``pushcut robot check``'s bus and arm checks on the real pair (interfaces up at
  the right bit rate, each arm answers, buses not swapped against the rig file, no e-stop, no errors, joints inside
  the limits with margin), read-only, before anything is enabled; the tool refuses on any FAIL.
- :func:`preflight`: on the connected :class:`~pushcut.robot.drivers.interface.Robot` (the twin too), fresh feedback,
  no fault, enabled, every joint inside the Piper's limits (``check``'s rule) and each gripper inside [0, 1]."""

from __future__ import annotations

import time

import numpy as np

from pushcut.robot.drivers.interface import Robot, RobotFault
from pushcut.robot.tools.check import CheckOptions, CheckResult, check_joint_limits, run_checks
from pushcut.robot.tools.robots import RobotChoice
from pushcut.sim import piper_spec as spec

FEEDBACK_MAX_AGE_S = 0.2


def check_before_connecting(choice: RobotChoice, rig: dict[str, str] | None = None) -> list[CheckResult]:
    """The FAILs of ``pushcut robot check``'s bus and arm checks for ``choice`` (the real pair; the twin has no bus,
    and :func:`preflight` covers its arms): empty when the arms may be connected and moved."""
    if choice.kind != "piper":
        return []
    options = CheckOptions(robot="piper", can={"left": choice.can_left, "right": choice.can_right}, rig=rig,
                           bustype=choice.can_bus)  # fmt: skip
    results, _links = run_checks(options)
    return [r for r in results if r.status == "FAIL"]


def preflight(robot: Robot) -> list[str]:
    """What is wrong with the connected ``robot`` (empty when it may move), one sentence each."""
    try:
        state = robot.get_state()
    except RobotFault as error:
        return [f"the robot does not answer: {error}"]
    problems = [f"fault: {fault}" for fault in state.faults]
    now = time.monotonic()
    for name, arm in zip(spec.ARMS, state.arms):
        if arm.fault and not state.faults:
            problems.append(f"fault: {name}: {arm.fault}")
        if not arm.enabled:
            problems.append(f"the {name} arm is not enabled")
        age = now - arm.timestamp
        if age > FEEDBACK_MAX_AGE_S:
            problems.append(f"the {name} arm's newest feedback is {age * 1000:.0f} ms old (feedback lost)")
        joints = np.asarray(arm.joints, dtype=float)
        if not np.all(np.isfinite(joints)):
            problems.append(f"the {name} arm's joints read {joints.tolist()}: not finite")
        else:  # the same limit rule as `pushcut robot check`
            limits = check_joint_limits(name, joints, margin_rad=0.0)
            if limits.status == "FAIL":
                problems.append(f"the {limits.name}: {limits.detail} -> {limits.fix}")
        if not np.isfinite(arm.gripper) or not -0.05 <= arm.gripper <= 1.05:
            problems.append(f"the {name} gripper reads {arm.gripper:.2f}, outside [0, 1]: check its stroke setting")
    return problems
