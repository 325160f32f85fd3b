"""The table top's picture in SAPIEN: MuJoCo's texture pixels laid out on SAPIEN's box UVs.

A MuJoCo box with a cube texture shows one cube face per box face, stretched over it (``texrepeat`` applies to 2D
textures only), so the table top shows the texture's "up" face once. SAPIEN's box primitive maps its faces onto a
4 x 3 cross of a 2D texture (u across, v down the image rows):

    row 0 (v 0 .. 1/3):     -y face in column 1
    row 1 (v 1/3 .. 2/3):   -x, +z (top), +x, -z in columns 0 .. 3
    row 2 (v 2/3 .. 1):     +y face in column 1

The top cell runs x along its columns and y along its rows, as MuJoCo's up face does (its row 0 at -y). The side
cells get MuJoCo's "front" face turned so its row 0 (the top edge) meets the top cell; the 4 cm table edge shows it.

Textures are linear RGB (``srgb=False``): a uniform texture of a colour renders as that base colour does.
"""

from __future__ import annotations

import numpy as np

from pushcut.sim.mujoco_scene import CUBE_FACES

ATLAS_COLUMNS, ATLAS_ROWS = 4, 3


def box_atlas(faces: np.ndarray) -> np.ndarray:
    """SAPIEN box texture (3P, 4P, 4) uint8 RGBA from MuJoCo's cube faces (6, P, P, 3) uint8 (CUBE_FACES order)."""
    faces = np.asarray(faces)
    if faces.ndim != 4 or faces.shape[0] != len(CUBE_FACES) or faces.shape[1] != faces.shape[2] or faces.shape[3] != 3:
        raise ValueError(f"cube faces must be (6, P, P, 3) RGB in {CUBE_FACES} order, got shape {faces.shape}")
    pixels = faces.shape[1]
    up, down, side = (faces[CUBE_FACES.index(name)] for name in ("up", "down", "front"))
    atlas = np.zeros((ATLAS_ROWS * pixels, ATLAS_COLUMNS * pixels, 4), dtype=np.uint8)
    atlas[..., 3] = 255
    cells = {
        (1, 1): up,
        (1, 3): down,
        (0, 1): side[::-1],  # -y: the top edge at v = 1/3
        (2, 1): side,  # +y: the top edge at v = 2/3
        (1, 0): side.transpose(1, 0, 2)[:, ::-1],  # -x: the top edge at u = 1/4
        (1, 2): side.transpose(1, 0, 2),  # +x: the top edge at u = 1/2
    }
    for (row, column), image in cells.items():
        atlas[row * pixels : (row + 1) * pixels, column * pixels : (column + 1) * pixels, :3] = image
    return atlas


def uniform_atlas(rgba: np.ndarray, pixels: int) -> np.ndarray:
    """A box texture of one colour (rgba in [0, 1]), the size of :func:`box_atlas` for ``pixels``-wide faces."""
    colour = np.round(np.clip(np.asarray(rgba, dtype=float), 0.0, 1.0) * 255).astype(np.uint8)
    if colour.shape != (4,):
        raise ValueError(f"a colour is 4 numbers (rgba in [0, 1]), got {rgba!r}")
    return np.broadcast_to(colour, (ATLAS_ROWS * pixels, ATLAS_COLUMNS * pixels, 4)).copy()


def tinted_atlas(atlas: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """A copy of a uint8 RGBA texture with its RGB scaled by ``factor`` (3 numbers in [0, 1]), alpha kept."""
    factor = np.asarray(factor, dtype=float)
    if factor.shape != (3,) or not ((factor >= 0.0) & (factor <= 1.0)).all():
        raise ValueError(f"a texture tint is 3 factors in [0, 1], got {factor.tolist()}")
    tinted = np.asarray(atlas).copy()
    tinted[..., :3] = np.round(tinted[..., :3] * factor).astype(np.uint8)
    return tinted
