"""The keypoint encoder of the `small` preset (train/vision.py): keypoints track what they look at, the policy built
on it saves and loads exactly, and a damaged encoder directory is refused with the file named."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from safetensors.torch import load_file, save_file  # noqa: E402

from pushcut.train.model import VLAPolicy  # noqa: E402
from pushcut.train.presets import get_preset  # noqa: E402
from pushcut.train.vision import KeypointEncoder, KeypointEncoderConfig  # noqa: E402

SMALL_ENCODER = KeypointEncoderConfig(image_size=32, channels=(8, 16), groups=4, keypoints=4, grid=2, hidden_size=16)


def _spot(x: int, y: int, size: int = 32) -> torch.Tensor:
    image = torch.zeros(1, 3, size, size)
    image[:, :, y - 1 : y + 2, x - 1 : x + 2] = 1.0
    return image


def test_keypoints_follow_a_moving_spot():
    """A keypoint is a soft-argmax: with a heat map that responds to brightness, it lands on the bright spot."""
    torch.manual_seed(0)
    enc = KeypointEncoder(SMALL_ENCODER).eval()
    with torch.no_grad():  # make heat map 0 the (positive) sum of the trunk's channels, sharply
        enc.heatmaps.weight.zero_()
        enc.heatmaps.bias.zero_()
        enc.log_temperature.fill_(-3.0)
    # find which way the trunk responds to the spot, then point heat map 0 at that response
    base = enc.trunk(torch.zeros(1, 3, 32, 32))
    lit = enc.trunk(_spot(16, 16))
    direction = (lit - base)[0, :, 4, 4]
    with torch.no_grad():
        enc.heatmaps.weight[0, :, 0, 0] = direction / direction.norm()
    xs = []
    for x in (6, 16, 26):
        with torch.no_grad():
            xs.append(float(enc(_spot(x, 16)).keypoints[0, 0, 0]))
    assert xs[0] < xs[1] < xs[2], xs
    assert xs[0] < -0.3 and xs[2] > 0.3


def test_encoder_output_shape_and_train_eval_equality():
    enc = KeypointEncoder(SMALL_ENCODER)
    x = torch.rand(3, 3, 32, 32)
    out = enc(x)
    assert out.last_hidden_state.shape == (3, SMALL_ENCODER.num_tokens, 16)
    assert out.keypoints.shape == (3, 4, 2) and out.keypoints.abs().max() <= 1.0
    enc.train()
    a = enc(x).last_hidden_state
    enc.eval()
    b = enc(x).last_hidden_state
    assert torch.equal(a, b)  # GroupNorm: GRPO's recomputed log-probs equal the rollout's


def test_bad_encoder_configs_are_rejected():
    with pytest.raises(ValueError, match="divide by groups"):
        KeypointEncoderConfig(channels=(10, 16), groups=4)
    with pytest.raises(ValueError, match="multiple of the total stride"):
        KeypointEncoderConfig(image_size=30, channels=(8, 16, 16), groups=4)
    with pytest.raises(ValueError, match="unknown keypoint encoder fields"):
        KeypointEncoderConfig.from_dict({"keypionts": 3})


def test_small_policy_round_trips_and_damage_is_named(tmp_path):
    torch.manual_seed(0)
    cfg = get_preset("small", image_size=32, vision=dict(channels=(8, 16), groups=4, keypoints=4, grid=2,
                                                         hidden_size=16), llm={"num_hidden_layers": 1})  # fmt: skip
    policy = VLAPolicy(cfg).eval()
    images = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)
    batch = policy.make_batch(images, ["press the bell", "ring it"], torch.zeros(2, 14))
    with torch.no_grad():
        out = policy.run(batch, all_layers=True)
    assert out.vision_tokens.shape == (2, 4 + 4, policy.llm.config.hidden_size)
    assert len(out.layer_action_hidden) == 2 and out.layer_action_hidden[0].shape == (2, cfg.n_action_tokens, 192)
    policy.save_pretrained(tmp_path / "p")
    again = VLAPolicy.from_pretrained(tmp_path / "p").eval()
    with torch.no_grad():
        assert torch.equal(again(batch), out.logits)

    weights = tmp_path / "p" / "vision" / "model.safetensors"
    state = load_file(str(weights))
    state["trunk.9.weight"] = state.pop("trunk.0.weight")
    save_file(state, str(weights))
    with pytest.raises(ValueError, match=r"model.safetensors: missing \['trunk.0.weight'\], unexpected"):
        VLAPolicy.from_pretrained(tmp_path / "p")
    config = tmp_path / "p" / "vision" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "model_type": "siglip_vision_model"}))
    with pytest.raises(ValueError, match="not a pushcut keypoint encoder"):
        VLAPolicy.from_pretrained(tmp_path / "p")


def test_keypoints_without_appearance_say_only_where():
    """appearance=False: two images whose keypoints land on the same spots give the same tokens, whatever is there."""
    import dataclasses

    torch.manual_seed(0)
    config = dataclasses.replace(SMALL_ENCODER, grid=0, appearance=False)
    enc = KeypointEncoder(config).eval()
    assert enc.keypoint_proj.in_features == 2 + 4 * config.n_frequencies  # positions and their Fourier features
    with torch.no_grad():
        enc.heatmaps.weight.zero_()  # every heat map flat: each keypoint sits at the image centre, for any image
        enc.heatmaps.bias.zero_()
        dark, bright = enc(torch.zeros(1, 3, 32, 32)), enc(torch.rand(1, 3, 32, 32))
    torch.testing.assert_close(dark.last_hidden_state, bright.last_hidden_state)
    with_appearance = KeypointEncoder(dataclasses.replace(config, appearance=True)).eval()
    with torch.no_grad():
        with_appearance.heatmaps.weight.zero_()
        with_appearance.heatmaps.bias.zero_()
        a, b = with_appearance(torch.zeros(1, 3, 32, 32)), with_appearance(torch.rand(1, 3, 32, 32))
    assert not torch.allclose(a.last_hidden_state, b.last_hidden_state)  # the features under them differ
