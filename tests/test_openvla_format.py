"""OpenVLA-OFT checkpoints as published (train/openvla/): the reference's numbers, strict loading, one-line errors.

Everything runs on `openvla_tiny` (tests/conftest.py): the real timm tower architectures made small, a 2-layer Llama
with the padded 32,064-token vocabulary, written under the reference key names; no weights are downloaded."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
if importlib.util.find_spec("timm") is None:  # importorskip would import it (timm_import.py imports it specially)
    pytest.skip("timm is not installed (scripts/setup.sh installs it with --no-deps)", allow_module_level=True)

from pushcut.train.checkpoint import load_checkpoint, read_metadata  # noqa: E402
from pushcut.train.inference import ChunkPolicy  # noqa: E402
from pushcut.train.openvla.actions import OFTActionTokenizer  # noqa: E402
from pushcut.train.openvla.checkpoint import inspect_checkpoint, load_openvla_checkpoint  # noqa: E402
from pushcut.train.openvla.layout import EMPTY_TOKEN_ID, PROMPT, CheckpointFormatError  # noqa: E402
from pushcut.train.openvla.preprocess import crop_and_resize  # noqa: E402
from pushcut.train.openvla.tiny import write_tiny_checkpoint  # noqa: E402

RNG = np.random.default_rng(0)
FRAMES = [{"head_camera": RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8)} for _ in range(2)]
STATES = RNG.uniform(-0.5, 0.5, (2, 14))
TEXTS = ["Click the bell", "press the red button with the left arm"]


@pytest.fixture(scope="module")
def runner(openvla_tiny) -> ChunkPolicy:
    return ChunkPolicy.from_checkpoint(openvla_tiny)


def copy_of(src, tmp_path, name="ckpt"):
    return shutil.copytree(src, tmp_path / name)


# ------------------------------------------------------------------------------------------- the reference's numbers
def test_action_maths_match_openvla_decoding():
    """pushcut's bin b is token id 31999 - b; decoding follows the reference's clip(32000 - id - 1, 0, 254) into the
    255 bin centres of linspace(-1, 1, 256), then 0.5 (x + 1) (max - min + 1e-8) + min where the mask is set."""
    low, high = np.array([-1.0, 0.0, 2.0]), np.array([1.0, 0.5, 3.0])
    mask = np.array([True, True, False])
    entry = {"min": low.tolist(), "max": high.tolist(), "mask": mask.tolist()}
    tok = OFTActionTokenizer.from_entry(entry, "bounds", 256, "test")
    ids = np.arange(31744, 32000)
    bins = 31999 - ids
    centres = (np.linspace(-1, 1, 256)[:-1] + np.linspace(-1, 1, 256)[1:]) / 2
    x = centres[np.clip(32000 - ids - 1, 0, 254)]
    expected = np.where(mask, 0.5 * (x[:, None] + 1) * (high - low + 1e-8) + low, x[:, None])
    np.testing.assert_array_equal(tok.decode(np.repeat(bins[:, None], 3, 1)), expected)
    # encoding: digitize of the clipped normalised action, 1 .. 256 → bins 0 .. 255 (the reference's 32000 - id)
    a = np.array([[-1.0, 0.0, 2.5], [1.0, 0.5, 0.3], [0.1, 0.77, -5.0]])
    norm = np.clip(np.where(mask, 2 * (a - low) / (high - low + 1e-8) - 1, a), -1, 1)
    np.testing.assert_array_equal(tok.encode(a), np.digitize(norm, np.linspace(-1, 1, 256)) - 1)
    # quantile statistics for LIBERO-style checkpoints
    q = OFTActionTokenizer.from_entry({"q01": [0.0], "q99": [2.0], "min": [-9.0], "max": [9.0]}, "bounds_q99", 256, "t")
    assert q.normalize(np.array([2.0]))[0] == pytest.approx(1.0)


def _tf_crop_and_resize(image: np.ndarray, box: tuple[float, float, float, float], size: int) -> np.ndarray:
    """TensorFlow's bilinear crop_and_resize kernel, written out pixel by pixel."""
    h, w, _ = image.shape
    y1, x1, y2, x2 = (np.float32(v) for v in box)
    out = np.zeros((size, size, 3), np.float32)
    for y in range(size):
        in_y = y1 * (h - 1) + y * ((y2 - y1) * (h - 1) / np.float32(size - 1))
        top, bottom = int(np.floor(in_y)), int(np.ceil(in_y))
        for x in range(size):
            in_x = x1 * (w - 1) + x * ((x2 - x1) * (w - 1) / np.float32(size - 1))
            left, right = int(np.floor(in_x)), int(np.ceil(in_x))
            tl, tr, bl, br = image[top, left], image[top, right], image[bottom, left], image[bottom, right]
            t = tl + (tr - tl) * np.float32(in_x - left)
            b = bl + (br - bl) * np.float32(in_x - left)
            out[y, x] = t + (b - t) * np.float32(in_y - top)
    return out


def test_centre_crop_is_simplevla_rl_center_crop_image():
    image = RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    side = np.sqrt(np.float32(0.9))
    off = (np.float32(1) - side) / np.float32(2)
    ref = _tf_crop_and_resize(image.astype(np.float32) * np.float32(1 / 255), (off, off, off + side, off + side), 14)
    expected = np.minimum(np.clip(ref, 0, 1) * np.float32(255.5), 255).astype(np.uint8)
    got = crop_and_resize(image, 14)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1  # float rounding order at most
    assert (got == expected).mean() > 0.98
    # the whole image at its own size comes back unchanged; training crops move the window
    np.testing.assert_array_equal(crop_and_resize(image[:20, :20], 20, crop_area=1.0), image[:20, :20])
    moved = crop_and_resize(image, 14, train=True, rng=np.random.default_rng(1))
    assert moved.shape == got.shape and not np.array_equal(moved, got)


def test_prompt_is_openvlas_with_the_empty_token(runner):
    tok = runner.policy.tokenizer
    ids = tok.ids("Click The Bell")
    words = tok.tok.convert_ids_to_tokens(ids)
    assert ids[0] == 1 and ids[-1] == EMPTY_TOKEN_ID
    assert words[1:-1] == tok.tok.tokenize(PROMPT.format(instruction="click the bell"))
    assert "bell" in words and "Bell" not in words


def test_logits_are_the_reference_sequence_read_one_position_early(runner):
    """Recompute each row alone in the reference's layout ([BOS][patches][proprio][prompt][zeros][</s>], no padding,
    full-vocabulary LM head) and read the logits at NUM_PATCHES + NUM_PROMPT_TOKENS .. + chunk x dim, columns
    [-320:-64]; in pushcut's order they are flipped."""
    policy = runner.policy
    inputs = runner.prepare(FRAMES, STATES, TEXTS)
    batch = runner.batch(inputs)
    assert batch["attention_mask"].sum(1).tolist()[0] < batch["input_ids"].shape[1]  # row 0 is padded
    with torch.no_grad():
        ours = policy(batch)
        lm = policy.language_model
        embed = lm.get_input_embeddings()
        for i, text in enumerate(TEXTS):
            ids = torch.tensor(policy.tokenizer.ids(text))
            n = policy.config.n_action_tokens
            full = torch.cat([ids, torch.ones(n, dtype=torch.long), torch.tensor([2])])
            emb = embed(full[None])
            emb[:, len(ids) : len(ids) + n] = 0  # the reference zeroes the placeholders' embeddings
            pixels = policy.normalization.pixel_values(torch.from_numpy(inputs.images[i]))
            patches = policy.projector(policy.vision_backbone(pixels))
            proprio = policy.proprio_projector(torch.from_numpy(inputs.proprio[i : i + 1]))[:, None]
            x = torch.cat([emb[:, :1], patches, proprio, emb[:, 1:]], dim=1)
            mask = torch.ones(1, 1, x.shape[1], x.shape[1], dtype=torch.bool)  # bidirectional, nothing padded
            logits = lm(inputs_embeds=x, attention_mask=mask, use_cache=False).logits
            start = patches.shape[1] + 1 + len(ids) - 1  # NUM_PATCHES (+ proprio) + NUM_PROMPT_TOKENS
            ref = logits[0, start : start + n, -256 - 64 : -64]
            torch.testing.assert_close(ours[i].reshape(n, 256), ref.flip(-1), rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------------------------ the chunk path
def test_greedy_and_sampled_chunks_with_log_probs_equal_a_recomputed_pass(runner):
    inputs = runner.prepare(FRAMES, STATES, TEXTS)
    greedy = runner.predict(inputs)
    assert greedy.actions.shape == (2, 25, 14) and greedy.log_probs is None
    np.testing.assert_array_equal(runner.predict(inputs).tokens, greedy.tokens)
    np.testing.assert_array_equal(greedy.actions, runner.tokenizer.decode(greedy.tokens).astype(np.float32))
    gen = torch.Generator().manual_seed(0)
    sampled = runner.predict(inputs, temperature=1.6, generator=gen)
    with torch.no_grad():
        recomputed = runner.policy.log_probs(runner.batch(inputs), torch.from_numpy(sampled.tokens), 1.6)
    np.testing.assert_allclose(recomputed.numpy(), sampled.log_probs, rtol=1e-5, atol=1e-6)
    assert (sampled.tokens != greedy.tokens).any()


def test_metadata_from_a_published_directory(openvla_tiny):
    meta = read_metadata(openvla_tiny)
    assert (meta["preset"], meta["chunk"], meta["image_size"]) == ("openvla-oft", 25, 28)
    assert meta["cameras"] == ["head_camera"]
    assert meta["tasks"] == ["click_bell"] and meta["_policy_config"].action_dim == 14
    cfg = inspect_checkpoint(openvla_tiny).policy
    assert cfg.use_proprio and cfg.norm_type == "bounds" and cfg.unnorm_key == "click_bell_1k"


def test_proprio_projector_as_openvla_ofts_separate_file(openvla_tiny, tmp_path, runner):
    d = write_tiny_checkpoint(tmp_path / "file", proprio_as_file=True)
    assert any(p.name.startswith("proprio_projector--") for p in d.iterdir())
    other = ChunkPolicy.from_checkpoint(d)
    inputs = runner.prepare(FRAMES, STATES, TEXTS)
    np.testing.assert_array_equal(other.predict(inputs).tokens, runner.predict(inputs).tokens)  # same seed
    # both copies present: the file wins, as SimpleVLA-RL loads it over the weights (model.resume=False)
    both = copy_of(openvla_tiny, tmp_path, "both")
    state = {k: v + 1.0 for k, v in runner.policy.proprio_projector.state_dict().items()}
    torch.save(state, both / "proprio_projector--5_checkpoint.pt")
    loaded = load_checkpoint(both).policy.proprio_projector.state_dict()
    assert all(torch.equal(loaded[k], state[k]) for k in state)


# ------------------------------------------------------------------------------------------------- strict loading
def test_a_missing_shard_a_renamed_key_and_a_wrong_dtype_are_named(openvla_tiny, tmp_path):
    from safetensors.torch import load_file, save_file

    d = copy_of(openvla_tiny, tmp_path, "shard")
    shard = sorted(d.glob("model-*.safetensors"))[-1]
    shard.unlink()
    with pytest.raises(FileNotFoundError, match=rf"{shard.name} is missing \(a shard listed in"):
        load_checkpoint(d)

    d = copy_of(openvla_tiny, tmp_path, "renamed")
    index = json.loads((d / "model.safetensors.index.json").read_text())
    old = "language_model.model.norm.weight"
    path = d / index["weight_map"][old]
    tensors = load_file(str(path))
    tensors["language_model.model.final_norm.weight"] = tensors.pop(old)
    save_file(tensors, str(path), metadata={"format": "pt"})
    index["weight_map"]["language_model.model.final_norm.weight"] = index["weight_map"].pop(old)
    (d / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointFormatError, match=rf"missing 1 tensor.*{old}.*1 unexpected.*final_norm.weight"):
        load_checkpoint(d)

    d = copy_of(openvla_tiny, tmp_path, "dtype")
    key = "projector.fc1.weight"
    index = json.loads((d / "model.safetensors.index.json").read_text())
    path = d / index["weight_map"][key]
    tensors = load_file(str(path))
    tensors[key] = tensors[key].half()
    save_file(tensors, str(path), metadata={"format": "pt"})
    with pytest.raises(CheckpointFormatError, match=rf"dtype float32: {key} is torch.float16 in {path.name}"):
        load_checkpoint(d)


def test_bad_directories_fail_in_one_line_naming_the_file(openvla_tiny, tmp_path):
    d = copy_of(openvla_tiny, tmp_path, "llama")
    raw = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**raw, "model_type": "llama"}))
    with pytest.raises(ValueError, match=r"config.json: model_type 'llama' is not an OpenVLA-OFT checkpoint"):
        read_metadata(d)

    d = copy_of(openvla_tiny, tmp_path, "notok")
    (d / "tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"has no tokenizer: neither tokenizer.json nor tokenizer.model"):
        load_checkpoint(d)

    d = copy_of(openvla_tiny, tmp_path, "size")
    raw = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**raw, "image_sizes": [56, 56]}))
    (d / "preprocessor_config.json").unlink()
    with pytest.raises(CheckpointFormatError, match=r"image_sizes \[56, 56\] need .*pos_embed.*built for another"):
        load_checkpoint(d)
    shutil.copy(openvla_tiny / "preprocessor_config.json", d)
    with pytest.raises(CheckpointFormatError, match=r"input_sizes \[\[3, 28, 28\], .*do not match.*\[56, 56\]"):
        read_metadata(d)

    d = copy_of(openvla_tiny, tmp_path, "width")  # config.json says the first tower is 40 wide, the weights 32
    raw = json.loads((d / "config.json").read_text())
    raw["pushcut_timm_kwargs"][0]["embed_dim"] = 40
    (d / "config.json").write_text(json.dumps(raw))
    with pytest.raises(CheckpointFormatError) as error:
        load_checkpoint(d)
    message = str(error.value)
    assert "timm_model_ids[0] 'vit_large_patch14_reg4_dinov2.lvd142m' with pushcut_timm_kwargs[0]" in message
    assert "is a tower of width 40" in message and "featurizer.pos_embed of width 32" in message
    assert "image size" not in message and "\n" not in message

    with pytest.raises(CheckpointFormatError) as error:
        load_openvla_checkpoint(openvla_tiny, unnorm_key="lift_pot_1k")
    assert "unnorm key 'lift_pot_1k' not found; available unnorm keys: ['click_bell_1k']" in str(error.value)
    assert "\n" not in str(error.value)


def test_several_statistics_need_a_choice_listing_them(tmp_path):
    d = write_tiny_checkpoint(tmp_path / "multi", unnorm_keys=("click_bell_1k", "lift_pot_1k"))
    with pytest.raises(CheckpointFormatError, match=r"2 datasets \['click_bell_1k', 'lift_pot_1k'\]: choose one"):
        read_metadata(d)
    (d / "pushcut_openvla.json").write_text(json.dumps({"unnorm_key": "lift_pot_1k"}))
    assert read_metadata(d)["tasks"] == ["lift_pot"]
    (d / "pushcut_openvla.json").write_text(json.dumps({"unnorm_key": "stack_bowls"}))
    with pytest.raises(CheckpointFormatError, match=r"'stack_bowls' not found; available unnorm keys: \['click_bell"):
        read_metadata(d)


def test_a_7d_libero_checkpoint_is_refused_before_any_rollout_or_trial(tmp_path):
    from pushcut.train.evaluate import evaluate
    from pushcut.train.grpo import check_init

    d = write_tiny_checkpoint(tmp_path / "libero", action_dim=7, proprio_dim=8, use_proprio=False,
                              unnorm_keys=("libero_spatial_no_noops",))  # fmt: skip
    meta = read_metadata(d)
    assert (meta["chunk"], meta["_policy_config"].norm_type) == (8, "bounds_q99")
    with pytest.raises(ValueError, match=r"outputs 7-D actions; the dual-Piper sim needs 14-D"):
        evaluate(d, "click_bell", 1)
    with pytest.raises(ValueError, match=r"action_dim 7 / proprio_dim 7, the dual-Piper sim needs 14 / 14"):
        check_init(d, ("click_bell",), allow_new_tasks=True)


def test_timm_is_imported_without_torchvision():
    from pushcut.train.openvla import timm_import

    timm = timm_import.import_timm()
    assert hasattr(timm, "create_model")
    if not timm_import.torchvision_works():
        assert not any(n == "torchvision" or n.startswith("torchvision.") for n in sys.modules)
        placeholder = timm.layers.create_norm.FrozenBatchNorm2d
        with pytest.raises(ImportError, match="needs a working torchvision"):
            placeholder(8)


def test_the_action_rate_has_one_definition():
    from pushcut.common import conventions
    from pushcut.train.openvla import layout

    assert layout.DEFAULT_ACTION_HZ is conventions.DEFAULT_ACTION_HZ
    assert layout.Sidecar(cameras=("head_camera",)).action_hz == conventions.DEFAULT_ACTION_HZ
    source = Path(layout.__file__).read_text()
    assert not re.search(r"DEFAULT_ACTION_HZ\s*=|250(\.0)?\s*/\s*15", source), "layout.py defines the rate again"
