"""The shared observation → chunk path (train/inference.py): resizing, sampling log-probs, bad input."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from pushcut.sim.registry import make  # noqa: E402
from pushcut.train.inference import ChunkPolicy  # noqa: E402


@pytest.fixture(scope="module")
def runner(micro_checkpoint):
    return ChunkPolicy.from_checkpoint(micro_checkpoint)


@pytest.fixture(scope="module")
def observation():
    env = make("click_bell", image_width=64, image_height=48, cameras=("head_camera",))
    obs, _ = env.reset(seed=3)
    env.close()
    return obs


def _frames(obs, size=None):
    rgb = obs["observation"]["head_camera"]["rgb"]
    if size is not None:
        import cv2

        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)
    return {"head_camera": rgb}


def test_prepare_resizes_any_image_size_and_normalises_state(runner, observation):
    state = observation["joint_action"]["vector"]
    for size in (None, (320, 240), (50, 50)):
        inputs = runner.prepare([_frames(observation, size)], [state], [observation["instruction"]])
        assert inputs.images.shape == (1, 1, runner.image_size, runner.image_size, 3)
        assert inputs.images.dtype == np.uint8
        assert inputs.proprio.dtype == np.float32 and np.all(np.abs(inputs.proprio) <= 1.0)
    from_obs = runner.prepare_observations([observation, observation])
    assert len(from_obs) == 2 and np.array_equal(from_obs.images[0], from_obs.images[1])


def test_greedy_is_deterministic_and_actions_are_bin_centres(runner, observation):
    inputs = runner.prepare_observations([observation])
    a, b = runner.predict(inputs), runner.predict(inputs)
    assert a.log_probs is None
    assert np.array_equal(a.tokens, b.tokens) and np.array_equal(a.actions, b.actions)
    assert a.actions.shape == (1, runner.chunk, 14) and a.actions.dtype == np.float32
    np.testing.assert_allclose(a.actions, runner.tokenizer.decode(a.tokens), atol=1e-6)
    with torch.no_grad():
        expected = runner.policy.greedy(runner.batch(inputs)).numpy()
    assert np.array_equal(a.tokens, expected)


def test_sampled_log_probs_equal_a_fresh_forward_pass(runner, observation):
    inputs = runner.prepare_observations([observation, observation])
    gen = torch.Generator().manual_seed(0)
    pred = runner.predict(inputs, temperature=1.6, generator=gen)
    with torch.no_grad():
        recomputed = runner.policy.log_probs(runner.batch(inputs), torch.from_numpy(pred.tokens), 1.6).numpy()
    np.testing.assert_allclose(pred.log_probs, recomputed, atol=1e-5)
    assert np.all(pred.log_probs <= 0)
    again = runner.predict(inputs, temperature=1.6, generator=torch.Generator().manual_seed(0))
    assert np.array_equal(again.tokens, pred.tokens)


def test_bad_inputs_are_named(runner, observation):
    state = observation["joint_action"]["vector"]
    frames = _frames(observation)
    text = observation["instruction"]
    with pytest.raises(ValueError, match="uint8"):
        runner.prepare([{"head_camera": frames["head_camera"].astype(np.float32) / 255}], [state], [text])
    with pytest.raises(ValueError, match="RGB"):
        runner.prepare([{"head_camera": frames["head_camera"][..., :1]}], [state], [text])
    with pytest.raises(KeyError, match="head_camera"):
        runner.prepare([{"left_camera": frames["head_camera"]}], [state], [text])
    with pytest.raises(ValueError, match=r"states must have shape \(1, 14\)"):
        runner.prepare([frames], [state[:7]], [text])
    bad = state.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match=r"NaN/inf in row\(s\) \[1\]"):
        runner.prepare([frames, frames], [state, bad], [text, text])
    with pytest.raises(ValueError, match="instructions"):
        runner.prepare([frames], [state], text)
    with pytest.raises(ValueError, match="2 instructions"):
        runner.prepare([frames], [state], [text, text])
    with pytest.raises(ValueError, match="temperature"):
        runner.predict(runner.prepare([frames], [state], [text]), temperature=-1.0)
