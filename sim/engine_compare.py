"""The same initial scenes in MuJoCo and in SAPIEN, side by side (issue 26; `pushcut sim compare`): one row per task,
columns MuJoCo | SAPIEN, each tile labelled, and per task the mean absolute pixel difference of the two pictures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from pushcut.sim.registry import make
from pushcut.sim.world import ENGINES

ENGINE_TITLES = {"mujoco": "MuJoCo", "sapien": "SAPIEN"}  # how a label names each of ENGINES
LABEL_BAND_PX = 22  # height of the dark band the label is written on, at the tile's top


@dataclass(frozen=True)
class SceneView:
    """One engine's picture of a task's initial scene."""

    task: str
    engine: str
    image: np.ndarray  # (H, W, 3) uint8
    instruction: str


@dataclass(frozen=True)
class EngineComparison:
    """The views of every task in every engine (rows in task order, columns in ENGINES order) and the grid of them."""

    rows: tuple[tuple[SceneView, ...], ...]
    grid: np.ndarray

    def mean_abs_difference(self) -> dict[str, float]:
        """Per task, the mean absolute difference of the first two engines' pictures (MuJoCo's, SAPIEN's) in 8-bit
        levels (0-255), averaged over every pixel and colour channel."""
        return {row[0].task: pixel_difference(row[0].image, row[1].image) for row in self.rows}


def pixel_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two uint8 images of one shape, in 8-bit levels."""
    if a.shape != b.shape:
        raise ValueError(f"images of shapes {a.shape} and {b.shape}; expected one shape")
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def render_initial(task: str, engine: str, seed: int, camera: str, width: int, height: int) -> SceneView:
    """``camera``'s picture of ``task``'s initial scene on ``seed`` (clean randomisation) in ``engine``."""
    env = make(task, engine=engine, cameras=(camera,), image_width=width, image_height=height)
    try:
        obs, info = env.reset(seed=seed)
        return SceneView(task, engine, obs["observation"][camera]["rgb"], info["instruction"])
    finally:
        env.close()


def labelled(image: np.ndarray, text: str) -> np.ndarray:
    """A copy of ``image`` with ``text`` in white on a dark band along its top."""
    tile = image.copy()
    band = tile[:LABEL_BAND_PX]
    band[:] = (band * 0.35).astype(np.uint8)
    cv2.putText(tile, text, (6, LABEL_BAND_PX - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def compare_engines(
    tasks: Sequence[str], seed: int = 0, camera: str = "head_camera", width: int = 320, height: int = 240
) -> EngineComparison:
    """Render every task's initial scene in each of ENGINES and lay the labelled pictures out as a grid."""
    rows = tuple(tuple(render_initial(t, e, seed, camera, width, height) for e in ENGINES) for t in tasks)
    grid = np.concatenate(
        [np.concatenate([labelled(v.image, f"{v.task} - {ENGINE_TITLES[v.engine]}") for v in row], axis=1)
         for row in rows],
        axis=0,
    )  # fmt: skip
    return EngineComparison(rows, grid)
