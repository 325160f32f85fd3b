"""World-frame forward kinematics of the two Pipers, vectorised, and capsule distances between their links.

The safety filter (:mod:`pushcut.robot.safety`) needs, every servo tick, the tool centre points of both arms (for the
workspace box) and a coarse link model (for the inter-arm distance). Everything here is numpy on small batched
arrays, built from the DH table and mounts of :mod:`pushcut.sim.piper_spec` (the same numbers as the MuJoCo model):

- :func:`chain_points` maps joint vectors ``(N, 6)`` and base frames ``(N, 4, 4)`` to the 7 points of each arm's
  capsule chain in the world frame, ``(N, 7, 3)``: base, shoulder (link1 origin), elbow (link3), wrist (link4),
  flange (link6), palm (finger base) and TCP. Consecutive points are the axes of the 6 link capsules.
- :func:`segment_distances` is the exact closest distance between all pairs of two sets of segments, and
  :func:`chain_clearance` the minimum surface distance between two capsule chains (negative = overlap).
- :func:`clearance_lower_bound` is a cheap separating-axis bound that lets the filter skip the exact test when the
  arms are far apart (the usual case).

Cost matters (the filter runs at 100-200 Hz): a handful of numpy calls on tiny arrays, no per-joint Python loops
except the 6-step chain product.
"""

from __future__ import annotations

import numpy as np

from pushcut.sim import piper_spec as spec

POINT_NAMES: tuple[str, ...] = ("base", "shoulder", "elbow", "wrist", "flange", "palm", "tcp")
SEGMENT_NAMES: tuple[str, ...] = ("base", "upper_arm", "forearm", "wrist", "hand", "fingers")
TCP = POINT_NAMES.index("tcp")

# Modified-DH link transform RotX(alpha) TransX(a) RotZ(theta) TransZ(d) = CONST + cos(theta) COS + sin(theta) SIN.
_CA = np.round(np.cos(spec.DH_ALPHA), 12)  # exact 0 / +-1 for the Piper's right angles
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
_CHAIN_FRAMES = (0, 2, 3, 5)  # link frames whose origins are chain points (link2 = link1, link5 = link4 origins)
_TINY = 1e-300


def mount_frames(mounts: tuple[spec.ArmMount, ...] = spec.DUAL_PIPER_MOUNTS) -> np.ndarray:
    """Base-to-world transforms of the arms, ``(len(mounts), 4, 4)``."""
    return np.stack([spec.mount_transform(m) for m in mounts])


def chain_points(joints: np.ndarray, bases: np.ndarray) -> np.ndarray:
    """World points ``(N, 7, 3)`` of the capsule chains (:data:`POINT_NAMES`) for joints ``(N, 6)`` and base frames
    ``(N, 4, 4)``. Agrees with :func:`pushcut.sim.piper_spec.forward_kinematics` and ``tcp_pose``."""
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


def segment_distances(
    p0: np.ndarray, p1: np.ndarray, q0: np.ndarray, q1: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closest distances between every segment ``p0[k, i]-p1[k, i]`` and every ``q0[k, j]-q1[k, j]`` (inputs
    ``(M, n, 3)`` and ``(M, m, 3)``), shape ``(M, n, m)``, with the parameters ``s, t`` in [0, 1] of the closest
    points ``p0 + s (p1 - p0)`` and ``q0 + t (q1 - q0)``.

    The squared distance is convex in (s, t) on the unit square. Take the optimum of ``s`` on the infinite lines
    clamped to [0, 1] (any ``s`` for parallel lines), then the best ``t`` for it clamped to [0, 1], then the best
    ``s`` for that ``t``: this reaches the constrained minimum (the classic clamped line-line construction, where the
    last projection also covers the parallel and degenerate cases). Dot products are small matrix products; the
    distance itself is taken between the closest points (no cancellation near contact).
    """
    d1, d2 = p1 - p0, q1 - q0
    q0t, d2t = q0.swapaxes(-1, -2), d2.swapaxes(-1, -2)
    a = np.sum(d1 * d1, axis=-1)[..., :, None]
    e = np.sum(d2 * d2, axis=-1)[..., None, :]
    b = d1 @ d2t
    c = np.sum(d1 * p0, axis=-1)[..., :, None] - d1 @ q0t  # d1 . (p0 - q0)
    f = p0 @ d2t - np.sum(d2 * q0, axis=-1)[..., None, :]  # d2 . (p0 - q0)
    a_safe, e_safe = np.maximum(a, _TINY), np.maximum(e, _TINY)
    s = np.minimum(np.maximum((b * f - c * e) / np.maximum(a * e - b * b, _TINY), 0.0), 1.0)
    t = np.minimum(np.maximum((b * s + f) / e_safe, 0.0), 1.0)
    s = np.minimum(np.maximum((b * t - c) / a_safe, 0.0), 1.0)
    closest_p = p0[..., :, None, :] + s[..., None] * d1[..., :, None, :]
    closest_q = q0[..., None, :, :] + t[..., None] * d2[..., None, :, :]
    gap = closest_p - closest_q
    return np.sqrt(np.sum(gap * gap, axis=-1)), s, t


def chain_clearance(points_a: np.ndarray, points_b: np.ndarray, radii: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum surface distance between capsule chains ``points_a[k]`` and ``points_b[k]`` (``(M, K + 1, 3)`` each,
    capsule radii ``(K,)``), shape ``(M,)``, negative when they overlap; and the closest segment pair ``(M, 2)``
    (indices into :data:`SEGMENT_NAMES`)."""
    dist, _, _ = segment_distances(points_a[:, :-1], points_a[:, 1:], points_b[:, :-1], points_b[:, 1:])
    surface = dist - (radii[:, None] + radii[None, :])
    flat = surface.reshape(len(surface), -1)
    best = np.argmin(flat, axis=1)
    pairs = np.stack(np.divmod(best, surface.shape[2]), axis=1)
    return flat[np.arange(len(flat)), best], pairs


def clearance_lower_bound(
    points_a: np.ndarray, points_b: np.ndarray, axis: np.ndarray, max_radius: float
) -> np.ndarray:
    """A cheap lower bound of :func:`chain_clearance`, ``(M,)``: the gap between the chains' projections on a unit
    ``axis`` pointing from chain a to chain b (any point pair is at least that far apart), minus two radii."""
    gap = np.min(points_b @ axis, axis=1) - np.max(points_a @ axis, axis=1)
    return gap - 2.0 * max_radius
