"""The geometric layer of the safety filter as it was before issue 25 made it faster (commit ff5751e): forward
kinematics by six 4 x 4 products, exact capsule distances from the general segment-pair routine, the separating-axis
bound, and :func:`guard` on top of them. Kept as it was (names aside; the notes of findings left out) as the
reference that the property tests in tests/test_safety.py hold the fast path to: never less conservative."""

from __future__ import annotations

import numpy as np

from pushcut.robot.control import kinematics as kin
from pushcut.robot.control.safety_geometry import REACH, Finding, GeometryCache, GeometryLimits
from pushcut.sim import piper_spec as spec

_CA = np.round(np.cos(spec.DH_ALPHA), 12)
_SA = np.round(np.sin(spec.DH_ALPHA), 12)
_A = np.asarray(spec.DH_A_MM) / 1000.0
_D = np.asarray(spec.DH_D_MM) / 1000.0
_THETA_OFFSET = np.asarray(spec.DH_THETA_OFFSET)
_CONST = np.zeros((6, 4, 4))
_CONST[:, 0, 3], _CONST[:, 1, 2], _CONST[:, 1, 3] = _A, -_SA, -_SA * _D
_CONST[:, 2, 2], _CONST[:, 2, 3], _CONST[:, 3, 3] = _CA, _CA * _D, 1.0
_COS = np.zeros((6, 4, 4))
_COS[:, 0, 0], _COS[:, 1, 1], _COS[:, 2, 1] = 1.0, _CA, _SA
_SIN = np.zeros((6, 4, 4))
_SIN[:, 0, 1], _SIN[:, 1, 0], _SIN[:, 2, 0] = -1.0, _CA, _SA
_CHAIN_FRAMES = (0, 2, 3, 5)
_TINY = 1e-300


def chain_points(joints: np.ndarray, bases: np.ndarray) -> np.ndarray:
    theta = joints + _THETA_OFFSET
    links = _CONST + np.cos(theta)[..., None, None] * _COS + np.sin(theta)[..., None, None] * _SIN
    points = np.empty((len(joints), 7, 3))
    points[:, 0] = bases[:, :3, 3]
    frame = bases
    slot = 1
    for i in range(6):
        frame = frame @ links[:, i]
        if i in _CHAIN_FRAMES:
            points[:, slot] = frame[:, :3, 3]
            slot += 1
    z_axis = frame[:, :3, 2]
    points[:, 5] = points[:, 4] + z_axis * spec.FINGER_BASE_OFFSET_M
    points[:, 6] = points[:, 4] + z_axis * spec.TCP_OFFSET_M
    return points


def segment_pairs(p0, d1, q0, d2):
    n, m = p0.shape[1], q0.shape[1]
    gram = np.concatenate([p0, d1], axis=1) @ np.concatenate([q0, d2], axis=1).swapaxes(-1, -2)
    pd2, d1q, b = gram[:, :n, n:], gram[:, n:, :n], gram[:, n:, n:]
    rows_p = np.sum(np.concatenate([d1, p0], axis=1) * np.concatenate([d1, d1], axis=1), axis=-1)
    rows_q = np.sum(np.concatenate([d2, q0], axis=1) * np.concatenate([d2, d2], axis=1), axis=-1)
    a, pd1 = rows_p[:, :n, None], rows_p[:, n:, None]
    e, qd2 = rows_q[:, None, :m], rows_q[:, None, m:]
    c = pd1 - d1q
    f = pd2 - qd2
    s = np.minimum(np.maximum((b * f - c * e) / np.maximum(a * e - b * b, _TINY), 0.0), 1.0)
    t = np.minimum(np.maximum((b * s + f) / np.maximum(e, _TINY), 0.0), 1.0)
    s = np.minimum(np.maximum((b * t - c) / np.maximum(a, _TINY), 0.0), 1.0)
    gap = (p0[:, :, None] + s[..., None] * d1[:, :, None]) - (q0[:, None] + t[..., None] * d2[:, None])
    return np.sqrt(np.sum(gap * gap, axis=-1)), s, t


def chain_clearance(points_a, points_b, radii):
    dist, _, _ = segment_pairs(points_a[:, :-1], np.diff(points_a, axis=1), points_b[:, :-1], np.diff(points_b, axis=1))
    surface = (dist - (radii[:, None] + radii[None, :])).reshape(len(dist), -1)
    best = np.argmin(surface, axis=1)
    return surface.min(axis=1), np.array([divmod(int(k), dist.shape[2]) for k in best]).reshape(-1, 2)


def clearance_lower_bound(points_a, points_b, axis, max_radius):
    gap = np.min(points_b @ axis, axis=1) - np.max(points_a @ axis, axis=1)
    return gap - 2.0 * max_radius


def margins(limits: GeometryLimits, configs: np.ndarray):
    m = len(configs)
    arm_indices = np.r_[spec.LEFT_ARM_SLICE, spec.RIGHT_ARM_SLICE]
    points = chain_points(configs[:, arm_indices].reshape(2 * m, 6), limits.bases[: 2 * m])
    if limits.check_workspace:
        tcp = points[:, kin.TCP]
        workspace = -np.maximum(limits.box_low - tcp, tcp - limits.box_high).max(axis=1).reshape(m, 2)
    else:
        workspace = np.full((m, 2), np.inf)
    clearance = np.full(m, np.inf)
    pairs = np.full((m, 2), -1)
    if limits.min_distance is not None:
        left, right = points[0::2], points[1::2]
        clearance = clearance_lower_bound(left, right, limits.axis, limits.max_radius) - limits.min_distance
        if clearance.min() < 0.0:
            near = np.flatnonzero(clearance < 0.0)
            exact, pairs[near] = chain_clearance(left[near], right[near], limits.radii)
            clearance[near] = exact - limits.min_distance
    return workspace, clearance, pairs


def guard(limits, previous, previous_velocity, candidate, velocity, accel_step, dt, cache):
    """The old ``safety_geometry.guard`` (notes shortened: only reasons, arms and actions are compared)."""
    stop_offset = velocity * np.abs(velocity) * limits.half_inv_accel
    if cache is not None:
        change = cache.configs - candidate
        change[1] -= stop_offset
        (left_c, right_c), (left_s, right_s) = (np.abs(change) @ REACH).tolist()
        left, right = max(left_c, left_s), max(right_c, right_s)
        if left < cache.left and right < cache.right and left + right < cache.clearance:
            return candidate, cache, []
    configs = np.stack([candidate, candidate + stop_offset])
    workspace, clearance, pairs = margins(limits, configs)
    arm_bad = workspace.min(axis=0) < 0.0
    clear_bad = bool(clearance.min() < 0.0)
    if not arm_bad.any() and not clear_bad:
        return candidate, GeometryCache(configs, *workspace.min(axis=0).tolist(), float(clearance.min())), []
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
        findings.append(Finding("workspace", (int(a),), "brake", ""))
    if clear_bad:
        findings.append(Finding("arm_distance", (0, 1), "brake", ""))
    for _ in range(2):
        workspace, clearance, pairs = margins(limits, command[None])
        hold_arms = np.flatnonzero(workspace[0] < ws_floor)
        if clearance[0] < clear_floor:
            findings.append(Finding("arm_distance", (0, 1), "hold", ""))
            return np.where(REACH.sum(axis=1) > 0, previous, candidate), None, findings
        if not len(hold_arms):
            break
        for a in hold_arms:
            findings.append(Finding("workspace", (int(a),), "hold", ""))
            command = np.where(REACH[:, a] > 0, previous, command)
    return command, None, findings
