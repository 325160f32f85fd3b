"""How well the twin's head camera matches the real one: the real frame's edge map, the mean distance of the twin's
arm outline to those edges (the alignment score; robot/tools/align.py explains why), and the blend the operator
looks at (half real, half twin, the twin's arm outline in green)."""

from __future__ import annotations

import math

import numpy as np

OUTLINE = (0, 255, 0)


def outline(mask: np.ndarray) -> np.ndarray:
    """The mask's boundary pixels (in the mask, with a 4-neighbour outside it)."""
    inner = mask.copy()
    inner[1:, :] &= mask[:-1, :]
    inner[:-1, :] &= mask[1:, :]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return mask & ~inner


def edge_map(real: np.ndarray) -> np.ndarray:
    """Per pixel, the distance to the nearest edge (Canny) of the real frame."""
    import cv2

    edges = cv2.Canny(cv2.cvtColor(real, cv2.COLOR_RGB2GRAY), 50, 150)
    return cv2.distanceTransform(np.where(edges > 0, 0, 255).astype(np.uint8), cv2.DIST_L2, 3)


def edge_distance(distance: np.ndarray, mask: np.ndarray) -> float:
    """Mean distance (pixels) from the twin's arm outline to the nearest real edge (``edge_map``); nan without arms."""
    boundary = outline(mask)
    return float(distance[boundary].mean()) if boundary.any() else math.nan


def blend(real: np.ndarray, twin: np.ndarray, mask: np.ndarray) -> np.ndarray:
    image = ((real.astype(np.uint16) + twin.astype(np.uint16)) // 2).astype(np.uint8)
    image[outline(mask)] = OUTLINE
    return image
