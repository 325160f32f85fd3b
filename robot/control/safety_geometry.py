"""The geometric layer of the safety filter: the TCP workspace box and the inter-arm clearance (pure functions).

It runs after the joint-space layers (:mod:`pushcut.robot.control.safety`) on 14-D commands (it only ever changes arm
joints), and checks two configurations per tick: the candidate command and the *stopping configuration*, where
each joint would come to rest braking at the maximum deceleration from the candidate's velocity
(``q + v |v| / 2a``). Checking where the arm would stop, not only where it is, lets the filter brake smoothly before
a boundary instead of slamming into it. On a violation:

1. the offending arm(s) brake at the maximum deceleration from the previous command (both arms for clearance);
2. if the braked command itself still violates, the arm(s) hold the previous command (a hard stop — the only
   intervention of the filter that may exceed the acceleration limit: a position bound is not negotiable).

A configuration that was already violating (e.g. the robot was started outside the box) may move as long as it
gets no worse, so that the operator can always drive it back. Margins are signed metres: the distance to the
nearest box face inside (outside: minus the largest per-axis excess), the capsule surface distance minus the
minimum distance.

Cost: forward kinematics is skipped while the arms provably stay clear. A point of the chain moves at most
``sum_i reach_i |dq_i|`` for a joint change ``dq`` (``reach_i``: the chain length beyond joint i, an upper bound of
its lever arm), so while that bound, for the command and for its stopping configuration, stays below the margins
computed at the last evaluation (the :class:`GeometryCache`), nothing can be hit. In replays of the expert
demonstrations at 200 Hz this skips about 95 % of the evaluations. An evaluation is a fixed number of numpy calls
for both configurations together, whatever the geometry: forward kinematics (about 15), one product for the box and
the separating-axis bound (about 6) and, only when that bound cannot prove the arms apart, all 72 capsule pairs at
once (about 35, :func:`~pushcut.robot.control.kinematics.chain_gaps`); the few numbers per configuration are then
Python floats. Its margins are :data:`ROUNDING_M` (1 nm)
smaller than exact, so that it is never less conservative than the implementation it replaced, which
tests/safety_reference.py keeps for the property tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pushcut.robot.control import kinematics as kin
from pushcut.sim import piper_spec as spec

ARMS = spec.ARMS
ARM_INDICES = np.r_[spec.LEFT_ARM_SLICE, spec.RIGHT_ARM_SLICE]  # the 12 joint dimensions of the 14-D action


def _chain_reach() -> np.ndarray:
    """``(14, 2)``: per action dimension and arm, the chain length from the joint's origin to the TCP (a bound on
    how far any chain point moves per radian of that joint); 0 for the grippers and the other arm."""
    points = kin.chain_points(np.zeros((1, 6)), np.eye(4)[None])[0]
    lengths = np.linalg.norm(np.diff(points, axis=0), axis=1)  # base, upper arm, forearm, wrist, hand, fingers
    beyond = np.cumsum(lengths[::-1])[::-1]  # beyond[k]: from chain point k to the TCP
    origin_point = (1, 1, 2, 3, 3, 4)  # joint i rotates about an axis through this chain point
    reach = np.zeros((spec.ACTION_DIM, 2))
    for arm, dims in enumerate((spec.LEFT_ARM_SLICE, spec.RIGHT_ARM_SLICE)):
        reach[dims, arm] = [beyond[k] for k in origin_point]
    return reach


REACH = _chain_reach()


# Rounding allowance, metres: the margins are computed this much smaller than exact, so that no reordering of the
# floating-point arithmetic can make the check less conservative than its reference (tests/safety_reference.py).
ROUNDING_M = 1e-9


@dataclass(frozen=True, eq=False)
class GeometryLimits:
    """The arrays the geometric layer needs, derived once from a :class:`~pushcut.robot.control.safety.SafetyConfig`
    (:meth:`build`)."""

    bases: np.ndarray  # (4, 4, 4): left, right, left, right base frames (two configurations per evaluation)
    box_low: np.ndarray  # (3,) world frame, metres
    box_high: np.ndarray
    check_workspace: bool
    min_distance: float | None  # None: no inter-arm check
    radii: np.ndarray  # (6,) capsule radii per chain segment
    max_radius: float
    axis: np.ndarray  # (3,) unit vector from the left base to the right base (separating axis)
    half_inv_accel: np.ndarray  # (14,) 1 / (2 a_max), 0 for the grippers
    # Derived for speed (see build): the chains' kinematics.chain_basis; per chain, the directions every chain point
    # is projected on in one product (the separating axis, signed -axis for left and +axis for right so that the
    # bound is a sum of two minima, then +x, +y, +z, -x, -y, -z for the box); what the box faces add to those
    # projections (-low, +high, the box shrunk by ROUNDING_M); what the bound and the exact surface distances
    # subtract (radii, the minimum distance and ROUNDING_M).
    basis: np.ndarray  # (4, 6, 3, 16)
    probes: np.ndarray  # (4, 3, 7)
    box_faces: np.ndarray  # (6,)
    bound_offset: float
    pair_offsets: np.ndarray  # (6, 6)

    @classmethod
    def build(
        cls, bases: np.ndarray, box_low: np.ndarray, box_high: np.ndarray, check_workspace: bool,
        min_distance: float | None, radii: np.ndarray, max_accel: np.ndarray,
    ) -> GeometryLimits:  # fmt: skip
        """From the two arms' base frames ``(2, 4, 4)``, the box, the capsule radii ``(6,)`` and the 14 maximum
        accelerations (inf for the grippers)."""
        axis = bases[1, :3, 3] - bases[0, :3, 3]
        axis = axis / np.linalg.norm(axis)
        bases = np.concatenate([bases, bases])
        allowance = (min_distance or 0.0) + ROUNDING_M
        probes = np.concatenate([np.stack([-axis, axis, -axis, axis])[:, :, None],
                                 np.tile(np.hstack([np.eye(3), -np.eye(3)]), (4, 1, 1))], axis=2)  # fmt: skip
        return cls(
            bases=bases, box_low=box_low, box_high=box_high, check_workspace=check_workspace,
            min_distance=min_distance, radii=radii, max_radius=float(radii.max()), axis=axis,
            half_inv_accel=0.5 / max_accel, basis=kin.chain_basis(bases), probes=probes,
            box_faces=np.concatenate([-box_low - ROUNDING_M, box_high - ROUNDING_M]),
            bound_offset=2.0 * float(radii.max()) + allowance, pair_offsets=radii[:, None] + radii[None, :] + allowance,
        )  # fmt: skip


@dataclass(frozen=True, eq=False)
class GeometryCache:
    """The configurations forward kinematics last ran on (a command and its stopping configuration) and the
    smallest margins found there, metres; valid while the arms stay within them."""

    configs: np.ndarray  # (2, 14): command, stopping configuration
    left: float  # workspace margin of the left TCP
    right: float
    clearance: float


@dataclass(frozen=True)
class Finding:
    """One geometric intervention: ``reason`` is "workspace" or "arm_distance"; ``action`` "brake" or "hold"."""

    reason: str
    arms: tuple[int, ...]
    action: str
    detail: str


def margins(limits: GeometryLimits, configs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Signed margins of 14-D ``configs`` ``(M, 14)`` (M <= 2): workspace ``(M, 2)`` (distance to the nearest box
    face inside, minus the largest per-axis excess outside: a 1-Lipschitz measure), clearance ``(M,)`` (exact
    when the separating-axis bound cannot prove it positive, else that bound), and the closest segment pair
    ``(M, 2)`` where the exact clearance is negative (-1 elsewhere). Both margins are :data:`ROUNDING_M` smaller
    than exact."""
    return _arrays(*_evaluate(limits, configs))


def _arrays(
    workspace: list[float], clearance: list[float], surface: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_evaluate`'s lists as :func:`margins`' arrays."""
    m = len(clearance)
    pairs = np.full((m, 2), -1)
    if surface is not None and min(clearance) < 0.0:
        near = np.array(clearance) < 0.0
        pairs[near] = kin.closest_pairs(surface)[near]
    return np.array(workspace).reshape(m, 2), np.array(clearance), pairs


def _evaluate(limits: GeometryLimits, configs: np.ndarray) -> tuple[list[float], list[float], np.ndarray | None]:
    """:func:`margins` as lists (the per-configuration numbers are few: Python arithmetic beats numpy calls on them):
    workspace margins left, right of each configuration; clearances; the exact surface distances ``(M, 6, 6)``
    when they were needed."""
    m = len(configs)
    joints = configs.reshape(m, 2, 7)[:, :, :6]  # the action is left arm, left gripper, right arm, right gripper
    points = kin.chain_points(joints, limits.bases[: 2 * m], limits.basis[: 2 * m])
    projections = points @ limits.probes[: 2 * m]  # (2M, 7 points, 7 directions)
    if limits.check_workspace:  # x - low and high - x of the TCP, exactly (x * 1 + y * 0 + z * 0 = x)
        workspace = (projections[:, kin.TCP, 1:] + limits.box_faces).min(axis=1).tolist()
    else:
        workspace = [np.inf] * (2 * m)
    if limits.min_distance is None:
        return workspace, [np.inf] * m, None
    # Separating axis: min over the right chain of x.axis plus min over the left chain of -x.axis, minus two radii.
    low = projections[:, :, 0].min(axis=1).tolist()
    clearance = [low[2 * k] + low[2 * k + 1] - limits.bound_offset for k in range(m)]
    if min(clearance) >= 0.0:
        return workspace, clearance, None
    surface = kin.chain_gaps(points.reshape(m, 2, 7, 3), limits.pair_offsets)
    exact = surface.reshape(m, -1).min(axis=1).tolist()
    return workspace, [e if c < 0.0 else c for c, e in zip(clearance, exact)], surface


def _clearance_note(limits: GeometryLimits, clearance: float, pair: np.ndarray) -> str:
    i, j = (kin.SEGMENT_NAMES[int(k)] for k in pair)
    return f"left {i} to right {j}: {clearance + limits.min_distance:.3f} m apart, minimum {limits.min_distance:.3f} m"


def guard(
    limits: GeometryLimits,
    previous: np.ndarray,
    previous_velocity: np.ndarray,
    candidate: np.ndarray,
    velocity: np.ndarray,
    accel_step: np.ndarray,
    dt: float,
    cache: GeometryCache | None,
) -> tuple[np.ndarray, GeometryCache | None, list[Finding]]:
    """The 14-D command after the workspace and clearance checks (grippers untouched), the new cache and what was
    done. ``previous``/``previous_velocity``: the last command and its velocity; ``candidate``/``velocity``: the
    output of the joint-space layers; ``accel_step``: the largest velocity change per tick, ``a_max * dt``."""
    stop_offset = velocity * np.abs(velocity) * limits.half_inv_accel  # candidate -> stopping configuration
    if cache is not None:
        # How far any chain point of each arm can have moved since the cached command / stopping configuration.
        change = cache.configs - candidate
        change[1] -= stop_offset
        (left_c, right_c), (left_s, right_s) = (np.abs(change) @ REACH).tolist()
        left, right = max(left_c, left_s), max(right_c, right_s)
        if left < cache.left and right < cache.right and left + right < cache.clearance:
            return candidate, cache, []
    configs = np.array((candidate, candidate + stop_offset))
    evaluated = _evaluate(limits, configs)
    (left_c, right_c, left_s, right_s), clearances, _ = evaluated
    left, right, clear = min(left_c, left_s), min(right_c, right_s), min(clearances)
    if left >= 0.0 and right >= 0.0 and clear >= 0.0:
        return candidate, GeometryCache(configs, left, right, clear), []
    workspace, clearance, pairs = _arrays(*evaluated)

    # Already-violating states may move if they get no worse (floors <= 0), so the robot can be driven back.
    prev_workspace, prev_clearance, _ = margins(limits, previous[None])
    ws_floor = np.minimum(prev_workspace[0], 0.0)
    clear_floor = min(float(prev_clearance[0]), 0.0)
    arm_bad = workspace.min(axis=0) < ws_floor
    clear_bad = bool(clearance.min() < clear_floor)
    if not arm_bad.any() and not clear_bad:
        return candidate, None, []

    findings: list[Finding] = []
    braking = (REACH[:, arm_bad].sum(axis=1) > 0) if not clear_bad else (REACH.sum(axis=1) > 0)
    braked_velocity = previous_velocity - np.clip(previous_velocity, -accel_step, accel_step)
    command = np.where(braking, previous + braked_velocity * dt, candidate)
    for a in np.flatnonzero(arm_bad):
        findings.append(Finding("workspace", (int(a),), "brake", _workspace_note(a, workspace[:, a])))
    if clear_bad:
        k = int(np.argmin(clearance))
        note = _clearance_note(limits, float(clearance[k]), pairs[k])
        findings.append(
            Finding("arm_distance", (0, 1), "brake", f"command or stopping configuration too close ({note})")
        )
    # The braked command must itself be clear; otherwise hold. Holding one arm changes the pair, so check twice.
    for _ in range(2):
        workspace, clearance, pairs = margins(limits, command[None])
        hold_arms = np.flatnonzero(workspace[0] < ws_floor)
        if clearance[0] < clear_floor:
            note = _clearance_note(limits, float(clearance[0]), pairs[0])
            findings.append(Finding("arm_distance", (0, 1), "hold", f"braked command still too close ({note})"))
            return np.where(REACH.sum(axis=1) > 0, previous, candidate), None, findings
        if not len(hold_arms):
            break
        for a in hold_arms:
            findings.append(Finding("workspace", (int(a),), "hold", _workspace_note(a, workspace[:, a])))
            command = np.where(REACH[:, a] > 0, previous, command)  # exactly as safe as before
    return command, None, findings


def _workspace_note(arm: int, margin: np.ndarray) -> str:
    return f"{ARMS[arm]} TCP {-float(margin.min()):.3f} m outside the workspace box (command or stopping point)"
