"""The minimal pre-flight before anything moves the arms (replay): the robot answers with fresh feedback, no arm
reports a fault or is disabled, every joint is inside the Piper's limits (``check``'s rule) and each gripper inside
[0, 1].
``pushcut robot check`` runs the complete list (interfaces, firmware, swapped buses, cameras, server); this is the
part that needs nothing but a connected :class:`~pushcut.robot.drivers.interface.Robot`."""

from __future__ import annotations

import time

import numpy as np

from pushcut.robot.drivers.interface import Robot, RobotFault
from pushcut.robot.tools.check import check_joint_limits
from pushcut.sim import piper_spec as spec

FEEDBACK_MAX_AGE_S = 0.2


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
