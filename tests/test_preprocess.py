"""The single image preprocessing of the token VLA (train/preprocess.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pushcut.train.preprocess import preprocess_cameras, preprocess_images


def _image(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("shape", [(48, 64, 3), (5, 48, 64, 3), (2, 3, 48, 64, 3), (100, 30, 3), (8, 8, 3)])
def test_any_size_is_resized_and_leading_dims_kept(shape):
    images = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    for train in (False, True):
        out = preprocess_images(images, 32, train=train, rng=np.random.default_rng(1))
        assert out.shape == shape[:-3] + (32, 32, 3) and out.dtype == np.uint8


def test_centre_crop_is_deterministic_and_matches_reference():
    image = _image()
    out = preprocess_images(image, 64)
    np.testing.assert_array_equal(out, preprocess_images(image, 64))
    ch, cw = round(48 * 0.9**0.5), round(64 * 0.9**0.5)  # 46 x 61: 90 % of the area
    top, left = (48 - ch) // 2, (64 - cw) // 2
    ref = cv2.resize(
        np.ascontiguousarray(image[top : top + ch, left : left + cw]), (64, 64), interpolation=cv2.INTER_AREA
    )
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(preprocess_images(image[None], 64)[0], out)  # batched == single


def test_random_crop_reproducible_from_generator_and_varies():
    image = _image(96, 128)
    a = preprocess_images(np.stack([image] * 8), 48, train=True, rng=np.random.default_rng(7))
    b = preprocess_images(np.stack([image] * 8), 48, train=True, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert len({x.tobytes() for x in a}) > 1  # each image draws its own window
    centre = preprocess_images(image, 48)
    assert np.abs(a.astype(int) - centre.astype(int)).mean() < 128  # same content, a shifted window


def test_crop_area_one_is_a_plain_resize():
    image = _image()
    ref = cv2.resize(image, (32, 32), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(preprocess_images(image, 32, crop_area=1.0), ref)
    np.testing.assert_array_equal(
        preprocess_images(image, 32, train=True, rng=np.random.default_rng(), crop_area=1.0), ref
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16, np.int64])
def test_wrong_dtype_is_an_error_naming_uint8(dtype):
    with pytest.raises(ValueError, match="uint8"):
        preprocess_images(_image().astype(dtype), 64)


@pytest.mark.parametrize("shape", [(48, 64, 4), (48, 64, 1), (48, 64), (3, 48, 64), (64,)])
def test_wrong_channels_or_rank_is_an_error_naming_the_shape(shape):
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        preprocess_images(np.zeros(shape, dtype=np.uint8), 64)


def test_bad_arguments():
    with pytest.raises(ValueError, match="Generator"):
        preprocess_images(_image(), 64, train=True)
    with pytest.raises(ValueError, match="image_size"):
        preprocess_images(_image(), 0)
    with pytest.raises(ValueError, match="crop_area"):
        preprocess_images(_image(), 64, crop_area=0.0)


def test_per_camera_dict_is_stacked_in_config_order():
    frames = {"head_camera": _image(48, 64, 0), "left_camera": _image(120, 160, 1), "right_camera": _image(seed=2)}
    out = preprocess_cameras(frames, ("left_camera", "head_camera"), 32)
    assert out.shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(out[0], preprocess_images(frames["left_camera"], 32))
    with pytest.raises(KeyError, match="front_camera.*available"):
        preprocess_cameras(frames, ("front_camera",), 32)
    with pytest.raises(ValueError, match="head_camera.*uint8"):
        preprocess_cameras({"head_camera": frames["head_camera"] / 255.0}, ("head_camera",), 32)
