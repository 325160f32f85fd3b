"""Photometric augmentation of SFT training images (``SFTConfig.color_jitter``, ``pushcut train sft --color-jitter``).

Each image gets its own random brightness, contrast, saturation and hue shift (:data:`COLOR_JITTER`):

    brightness  x * b                                        b ~ U(0.7, 1.3)
    contrast    (x - m) * c + m, m the image's mean luma      c ~ U(0.7, 1.3)
    saturation  luma + s * (x - luma)                        s ~ U(0.7, 1.3)
    hue         YIQ's chroma plane turned by 2 pi h rad       h ~ U(-0.05, 0.05) (a linear stand-in for HSV hue)

All four are affine in RGB and keep grey grey, so per image they compose into one 3x3 matrix and one grey offset
(built in numpy), applied in one pass by ``cv2.transform`` (uint8 in and out, rounded and clipped once, at the end,
rather than after every step; 15-30x faster than the same map as a numpy matmul).

Draws are deterministic per (seed, epoch, sample index, camera) (:func:`jitter_generators`), like SFT's crops, so
a resumed run and any number of DataLoader workers see the same images. Training only: evaluation, GRPO rollouts and
the policy server never jitter (train/preprocess.py has no such step).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ColorJitter:
    """The ranges of the four shifts: factors drawn uniformly from each (low, high), hue from U(-hue, hue) turns."""

    brightness: tuple[float, float] = (0.7, 1.3)
    contrast: tuple[float, float] = (0.7, 1.3)
    saturation: tuple[float, float] = (0.7, 1.3)
    hue: float = 0.05

    def __post_init__(self) -> None:
        for name in ("brightness", "contrast", "saturation"):
            low, high = getattr(self, name)
            if not 0.0 <= low <= high:
                raise ValueError(f"color jitter {name} must be a range 0 <= low <= high, got {(low, high)}")
        if not 0.0 <= self.hue <= 0.5:
            raise ValueError(f"color jitter hue must be in [0, 0.5] turns, got {self.hue}")

    def summary(self) -> str:
        """The ranges in words, e.g. for a command's help."""
        factors = (f"{name} x[{low:g}, {high:g}]" for name in ("brightness", "contrast", "saturation")
                   for low, high in [getattr(self, name)])  # fmt: skip
        return f"{', '.join(factors)}, hue +-{self.hue:g}"


COLOR_JITTER = ColorJitter()
"""The ranges ``--color-jitter`` trains with."""

JITTER_STREAM = 1
"""Last word of the jitter generators' keys: never equal to the crop's key (seed, epoch, index) of train/sft_data.py
(a key that only adds trailing zeros would give the same generator)."""

LUMA = np.array([0.299, 0.587, 0.114])  # Rec. 601, the Y row of YIQ
_RGB_TO_YIQ = np.array([LUMA, [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


def jitter_generators(seed: int, epoch: int, index: int, n_cameras: int) -> list[np.random.Generator]:
    """One generator per camera of sample ``index`` in ``epoch``, keyed by (seed, epoch, index, camera)."""
    return [np.random.default_rng([seed, epoch, index, camera, JITTER_STREAM]) for camera in range(n_cameras)]


def color_matrix(rng: np.random.Generator, mean_luma: float, ranges: ColorJitter = COLOR_JITTER) -> np.ndarray:
    """One draw of the four shifts as a (3, 4) affine map of RGB column vectors: ``y = A @ x + b`` with
    ``[A | b]``; ``mean_luma`` is the image's mean luma before the shifts (the contrast pivot)."""
    b = rng.uniform(*ranges.brightness)
    c = rng.uniform(*ranges.contrast)
    s = rng.uniform(*ranges.saturation)
    h = rng.uniform(-ranges.hue, ranges.hue)
    saturate = s * np.eye(3) + (1.0 - s) * np.outer(np.ones(3), LUMA)
    angle = -2.0 * np.pi * h  # turned against YIQ's I->Q sense, so h > 0 moves HSV hue forward (red to yellow)
    turn = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(angle), -np.sin(angle)], [0.0, np.sin(angle), np.cos(angle)]])
    hue = _YIQ_TO_RGB @ turn @ _RGB_TO_YIQ
    linear = c * b * (hue @ saturate)
    offset = np.full(3, (1.0 - c) * b * mean_luma)  # grey stays grey under saturation and hue
    return np.concatenate([linear, offset[:, None]], axis=1)


def color_jitter(
    images: np.ndarray, rngs: Sequence[np.random.Generator], ranges: ColorJitter = COLOR_JITTER
) -> np.ndarray:
    """uint8 RGB images (N, H, W, 3) with image k shifted by a draw from ``rngs[k]``; a new uint8 array."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"color jitter needs uint8 RGB images (N, H, W, 3), got {images.dtype} {images.shape}")
    if len(rngs) != len(images):
        raise ValueError(f"color jitter needs one generator per image: {len(rngs)} for {len(images)} images")
    import cv2  # here, not at the top: the command line's help reads COLOR_JITTER without loading OpenCV

    out = np.empty_like(images)
    for k, (image, rng) in enumerate(zip(images, rngs)):
        mean_luma = float(np.dot(cv2.mean(image)[:3], LUMA))
        out[k] = cv2.transform(image, color_matrix(rng, mean_luma, ranges))
    return out
