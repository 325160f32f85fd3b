"""Photometric augmentation of SFT images (train/augment.py)."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest

from pushcut.train.augment import COLOR_JITTER, ColorJitter, color_jitter, jitter_generators

IDENTITY = ColorJitter((1.0, 1.0), (1.0, 1.0), (1.0, 1.0), 0.0)


def _images(n: int = 3, size: int = 16) -> np.ndarray:
    """Smooth colourful images: a gradient per channel, away from 0 and 255."""
    ramp = np.linspace(40, 215, size)
    image = np.stack([np.add.outer(ramp, ramp) / 2, np.add.outer(ramp, ramp[::-1]) / 2, np.tile(ramp, (size, 1))], -1)
    return np.stack([np.roll(image, k, axis=-1) for k in range(n)]).round().astype(np.uint8)


def _jitter(images: np.ndarray, seed=0, epoch=0, index=0, ranges=COLOR_JITTER) -> np.ndarray:
    return color_jitter(images, jitter_generators(seed, epoch, index, len(images)), ranges)


def test_jitter_changes_pixels_and_keeps_shape_and_dtype():
    images = _images()
    out = _jitter(images)
    assert out.shape == images.shape and out.dtype == np.uint8
    assert all(not np.array_equal(o, i) for o, i in zip(out, images))  # every camera is shifted
    assert np.abs(out.astype(int) - images).mean() > 2
    np.testing.assert_array_equal(images, _images())  # the input is left alone


def test_jitter_is_deterministic_per_seed_epoch_index_and_camera():
    images = _images()
    out = _jitter(images, seed=3, epoch=1, index=5)
    np.testing.assert_array_equal(out, _jitter(images, seed=3, epoch=1, index=5))
    for other in (dict(seed=4, epoch=1, index=5), dict(seed=3, epoch=2, index=5), dict(seed=3, epoch=1, index=6)):
        assert not np.array_equal(out, _jitter(images, **other)), other
    same = np.stack([images[0]] * 3)  # one image seen by three cameras gets three different shifts
    shifted = _jitter(same)
    assert not np.array_equal(shifted[0], shifted[1]) and not np.array_equal(shifted[1], shifted[2])
    # camera c's draw does not depend on how many cameras there are
    np.testing.assert_array_equal(_jitter(images[:1], seed=3, epoch=1, index=5)[0], out[0])


def test_the_jitter_key_never_reuses_the_crop_generator():
    """SFT's crop of (seed, epoch, index) uses default_rng([seed, epoch, index]); a key that only added zeros would
    give the same stream."""
    crop = np.random.default_rng([0, 0, 0]).random(4)
    assert not np.allclose(jitter_generators(0, 0, 0, 1)[0].random(4), crop)


def test_results_saturate_within_uint8():
    bright = np.full((2, 4, 4, 3), 250, np.uint8)
    brighter = _jitter(bright, ranges=ColorJitter((1.3, 1.3), (1.0, 1.0), (1.0, 1.0), 0.0))
    assert brighter.min() == 255  # clipped, not wrapped round to small values
    dark = np.zeros((1, 4, 4, 3), np.uint8)
    dark[0, 0, 0] = 255  # one white pixel on black: strong contrast pushes black below 0
    contrasted = _jitter(dark, ranges=ColorJitter((1.0, 1.0), (1.3, 1.3), (1.0, 1.0), 0.0))
    assert contrasted[0, 1, 1].tolist() == [0, 0, 0] and contrasted[0, 0, 0].tolist() == [255, 255, 255]
    random = _jitter(np.random.default_rng(0).integers(0, 256, (8, 8, 8, 3), dtype=np.uint8))
    assert random.dtype == np.uint8 and random.min() == 0 and random.max() == 255


def test_each_shift_does_what_it_says():
    images = _images(1)
    np.testing.assert_array_equal(_jitter(images, ranges=IDENTITY), images)
    darker = _jitter(images, ranges=ColorJitter((0.7, 0.7), (1.0, 1.0), (1.0, 1.0), 0.0))
    np.testing.assert_allclose(darker, images * 0.7, atol=0.51)
    grey = np.full((1, 4, 4, 3), 128, np.uint8)  # saturation and hue keep grey grey
    np.testing.assert_array_equal(_jitter(grey, ranges=ColorJitter((1.0, 1.0), (1.0, 1.0), (0.7, 1.3), 0.05)), grey)
    hue_only = ColorJitter((1.0, 1.0), (1.0, 1.0), (1.0, 1.0), 0.05)
    for rgb in ((200, 40, 40), (40, 200, 40), (40, 40, 200)):
        colour = np.full((1, 1, 1, 3), rgb, np.uint8)
        before = colorsys.rgb_to_hsv(*(np.array(rgb) / 255))[0]
        for top, sign in ((True, 1), (False, -1)):  # h = +0.05, then -0.05: HSV hue turns by about h
            after = colorsys.rgb_to_hsv(*(color_jitter(colour, [_RangeEnd(top)], hue_only).ravel() / 255))[0]
            turn = (after - before + 0.5) % 1.0 - 0.5
            assert 0.02 < sign * turn < 0.1, (rgb, top, turn)


class _RangeEnd:
    """A stand-in generator that draws the top (or the bottom) of every range."""

    def __init__(self, top: bool) -> None:
        self.top = top

    def uniform(self, low: float, high: float) -> float:
        return high if self.top else low


def test_the_ranges_read_as_the_help_says():
    assert COLOR_JITTER.summary() == "brightness x[0.7, 1.3], contrast x[0.7, 1.3], saturation x[0.7, 1.3], hue +-0.05"


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="uint8 RGB images"):
        color_jitter(_images().astype(np.float32), jitter_generators(0, 0, 0, 3))
    with pytest.raises(ValueError, match="one generator per image: 2 for 3 images"):
        color_jitter(_images(), jitter_generators(0, 0, 0, 2))
    with pytest.raises(ValueError, match="brightness must be a range"):
        ColorJitter(brightness=(1.3, 0.7))
    with pytest.raises(ValueError, match="hue must be in"):
        ColorJitter(hue=0.6)
