"""The minimal pre-flight before anything moves the arms (replay): the robot answers with fresh feedback, no arm
reports a fault or is disabled, every joint is inside the Piper's limits and each gripper inside [0, 1].
``pushcut robot check`` runs the complete list (interfaces, firmware, swapped buses, cameras, server); this is the
part that needs nothing but a connected :class:`~pushcut.robot.drivers.interface.Robot`."""

from __future__ import annotations

import math
import time

import numpy as np

from pushcut.robot.drivers.interface import Robot, RobotFault
from pushcut.sim import piper_spec as spec

FEEDBACK_MAX_AGE_S = 0.2
LIMIT_TOLERANCE_RAD = math.radians(0.5)  # encoder noise at a hard limit (the folded rest pose sits on two)


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
        for j, (value, (low, high)) in enumerate(zip(arm.joints, spec.JOINT_LIMITS_RAD)):
            if not np.isfinite(value) or not low - LIMIT_TOLERANCE_RAD <= value <= high + LIMIT_TOLERANCE_RAD:
                problems.append(f"the {name} arm's joint{j + 1} is at {math.degrees(value):.1f} deg, outside "
                                f"[{math.degrees(low):.1f}, {math.degrees(high):.1f}]: move it inside by hand "
                                "(motors disabled) or with the teach pendant")  # fmt: skip
        if not np.isfinite(arm.gripper) or not -0.05 <= arm.gripper <= 1.05:
            problems.append(f"the {name} gripper reads {arm.gripper:.2f}, outside [0, 1]: check its stroke setting")
    return problems
