"""SFT samples over a demonstration directory (train/sft_data.py), on a tiny generated click_bell dataset."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pushcut.sim.dataset import DemoDataset  # noqa: E402
from pushcut.train.action_tokenizer import ActionTokenizer  # noqa: E402
from pushcut.train.preprocess import preprocess_images  # noqa: E402
from pushcut.train.presets import get_preset  # noqa: E402
from pushcut.train.sft_data import SFTDataset, collate, compute_norm_stats  # noqa: E402

SMALL = {"image_width": 64, "image_height": 48}
CONFIG = get_preset("tiny", image_size=32, chunk=8, cameras=("head_camera", "left_camera"))


@pytest.fixture(scope="module")
def data_dir(click_bell_demos):
    return click_bell_demos


@pytest.fixture(scope="module")
def parts(data_dir):
    action_stats, proprio_stats = compute_norm_stats(DemoDataset(data_dir))
    return ActionTokenizer(action_stats, n_bins=CONFIG.n_bins), proprio_stats


def _dataset(root, parts, config=CONFIG, **kw) -> SFTDataset:
    tokenizer, proprio_stats = parts
    return SFTDataset(root, config, tokenizer, proprio_stats, **kw)


def test_one_sample_per_timestep_with_expected_fields(data_dir, parts):
    demos = DemoDataset(data_dir)
    ds = _dataset(data_dir, parts, train=False)
    lengths = [len(ep) for ep in demos]
    assert len(ds) == sum(lengths) and ds.locate(lengths[0]) == (1, 0) and ds.locate(len(ds) - 1) == (1, lengths[1] - 1)
    s = ds[lengths[0] + 3]
    ep = demos.episode(1)
    assert s["images"].shape == (2, 32, 32, 3) and s["images"].dtype == np.uint8
    assert s["instruction"] == ep.instruction and (s["episode"], s["t"]) == (1, 3)
    np.testing.assert_allclose(s["proprio"], ActionTokenizer(parts[1]).normalize(ep.states[3]), atol=1e-6)
    assert np.all(np.abs(s["proprio"]) <= 1.0)
    np.testing.assert_allclose(s["actions"], ep.actions[3:11].astype(np.float32))
    # eval mode: the centre crop of the decoded frames, identical to what serving computes
    np.testing.assert_array_equal(s["images"][0], preprocess_images(ep.frames("head_camera", [3])[0], 32))
    np.testing.assert_array_equal(s["images"][1], preprocess_images(ep.frames("left_camera", [3])[0], 32))


def test_target_is_padded_with_the_last_action(data_dir, parts):
    ds = _dataset(data_dir, parts, train=False)
    actions = DemoDataset(data_dir).episode(0).actions
    T = len(actions)
    tail = ds[T - 3]["actions"]
    np.testing.assert_allclose(tail[:3], actions[T - 3 :].astype(np.float32))
    np.testing.assert_allclose(tail[3:], np.repeat(actions[-1:], 5, axis=0).astype(np.float32))
    np.testing.assert_allclose(ds[T - 1]["actions"], np.repeat(actions[-1:], 8, axis=0).astype(np.float32))


def test_tokens_decode_within_half_a_bin(data_dir, parts):
    tokenizer = parts[0]
    ds = _dataset(data_dir, parts, train=False)
    for i in range(0, len(ds), 7):
        s = ds[i]
        target = ds.target(s["episode"], s["t"])
        assert s["tokens"].shape == (8, 14) and s["tokens"].dtype == np.int64
        err = np.abs(tokenizer.decode(s["tokens"]) - target)
        half = np.where(tokenizer.stats.constant, np.inf, tokenizer.bin_width / 2)
        assert np.all(err <= half + 1e-9)


def test_dataset_with_wrong_action_dimension_fails_naming_the_file(data_dir, parts, tmp_path):
    copy = tmp_path / "bad_dim"
    shutil.copytree(data_dir, copy)
    path = copy / DemoDataset(copy).entries[1]["file"]
    with h5py.File(path, "r+") as f:
        actions = f["joint_action/vector"][:]
        del f["joint_action/vector"]
        f.create_dataset("joint_action/vector", data=actions[:, :7])
    with pytest.raises(ValueError, match=rf"{path.name}.*\({len(actions)}, 7\)"):
        _dataset(copy, parts)


def test_missing_camera_fails_naming_it_and_the_available_ones(data_dir, parts, tmp_path):
    copy = tmp_path / "no_left"
    shutil.copytree(data_dir, copy)
    path = copy / DemoDataset(copy).entries[0]["file"]
    with h5py.File(path, "r+") as f:
        del f["observation/left_camera"]
    with pytest.raises(ValueError, match=r"'left_camera'.*available cameras: \['head_camera', 'right_camera'\]"):
        _dataset(copy, parts)
    _dataset(copy, parts, config=CONFIG.replace(cameras=("head_camera",)))  # a policy that does not need it is fine


def test_random_crops_depend_on_seed_epoch_and_index_only(data_dir, parts):
    ds = _dataset(data_dir, parts, train=True, seed=3)
    epoch0 = [ds[i]["images"] for i in range(10)]
    for i in range(10):
        np.testing.assert_array_equal(ds[i]["images"], epoch0[i])  # repeatable
    ds.set_epoch(1)
    assert any(not np.array_equal(ds[i]["images"], epoch0[i]) for i in range(10))  # a new epoch, new crops
    ds.set_epoch(0)
    np.testing.assert_array_equal(ds[4]["images"], epoch0[4])


def test_color_jitter_is_off_by_default_and_shifts_the_same_crops_per_seed_epoch_and_index(data_dir, parts):
    from pushcut.sim.dataset import decode_jpeg
    from pushcut.train.augment import color_jitter, jitter_generators

    plain = _dataset(data_dir, parts, train=True, seed=3)
    assert not plain.color_jitter
    ep = plain.episodes[0]
    with h5py.File(ep.path, "r") as f:
        raw = np.stack([decode_jpeg(f[f"observation/{cam}/rgb"][2]) for cam in CONFIG.cameras])
    crop = preprocess_images(raw, CONFIG.image_size, train=True, rng=np.random.default_rng([3, 0, 2]))
    np.testing.assert_array_equal(plain[2]["images"], crop)  # off: exactly the crops of before
    jittered = _dataset(data_dir, parts, train=True, seed=3, color_jitter=True)
    expected = color_jitter(crop, jitter_generators(3, 0, 2, len(CONFIG.cameras)))
    np.testing.assert_array_equal(jittered[2]["images"], expected)  # on: the same crop, shifted per camera
    assert not np.array_equal(expected, crop)
    epoch0 = [jittered[i]["images"] for i in range(6)]
    jittered.set_epoch(1)
    assert all(not np.array_equal(jittered[i]["images"], epoch0[i]) for i in range(6))
    jittered.set_epoch(0)
    np.testing.assert_array_equal(jittered[4]["images"], epoch0[4])


@pytest.mark.parametrize("color_jitter", [False, True])
def test_dataloader_workers_give_the_same_batches(data_dir, parts, color_jitter):
    ds = _dataset(data_dir, parts, train=True, seed=1, color_jitter=color_jitter)
    ds.set_epoch(2)
    order = np.random.default_rng(0).permutation(len(ds))[:12].tolist()

    def batches(workers):
        loader = torch.utils.data.DataLoader(ds, batch_size=4, sampler=order, num_workers=workers, collate_fn=collate)
        return list(loader)

    serial, parallel = batches(0), batches(2)
    assert len(serial) == len(parallel) == 3
    for x, y in zip(serial, parallel):
        assert x["instructions"] == y["instructions"]
        for key in ("images", "proprio", "actions", "tokens", "episode", "t"):
            assert torch.equal(x[key], y[key]), key
    b = serial[0]
    assert b["images"].shape == (4, 2, 32, 32, 3) and b["images"].dtype == torch.uint8
    assert b["tokens"].shape == (4, 8, 14) and b["proprio"].dtype == torch.float32


def test_collated_batch_feeds_the_model(data_dir, parts):
    pytest.importorskip("transformers")
    from pushcut.train.model import build_policy

    config = CONFIG.replace(llm={"num_hidden_layers": 1}, vision={"num_hidden_layers": 1})
    ds = _dataset(data_dir, parts, config=config, train=False)
    b = collate([ds[i] for i in (0, 1, 2)])
    torch.manual_seed(0)
    policy = build_policy(config)
    batch = policy.make_batch(b["images"], b["instructions"], b["proprio"])
    loss = policy.loss(batch, b["tokens"])
    assert torch.isfinite(loss) and policy.greedy(batch).shape == b["tokens"].shape
