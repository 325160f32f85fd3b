"""The localiser (train/localiser.py) and SFT's vision switches: the policy's keypoint encoder trained to find the
objects on demonstration frames, scored on held-out episodes, then carried into SFT (--vision-init,
--freeze-vision); and the auxiliary position loss read from the vision tokens (--aux-vision-weight)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from conftest import MICRO_POLICY  # noqa: E402

from pushcut.train.checkpoint import load_checkpoint, load_training_state  # noqa: E402
from pushcut.train.localiser import REPORT_FILE, WEIGHTS_FILE, LocaliserConfig, train_localiser  # noqa: E402
from pushcut.train.sft import VISION_AUX_METRIC_NAMES, SFTConfig, train_sft  # noqa: E402


@pytest.fixture(scope="module")
def localiser(click_bell_demos, tmp_path_factory):
    out = tmp_path_factory.mktemp("localiser")
    config = LocaliserConfig(str(click_bell_demos), str(out), steps=12, batch_size=8, holdout_episodes=1,
                             num_workers=0)  # fmt: skip
    return out, train_localiser(config)


def _sft(data, out, **kw) -> SFTConfig:
    base = dict(data=str(data), out=str(out), preset="small", max_steps=4, batch_size=4, lr=1e-3, warmup_steps=1,
                num_workers=0, log_every=2, progress=False, device="cpu")  # fmt: skip
    return SFTConfig(**{**base, **kw})


def test_the_localiser_learns_and_is_scored_on_episodes_it_never_saw(localiser, click_bell_demos):
    out, report = localiser
    assert (out / WEIGHTS_FILE).is_file() and not (out / (WEIGHTS_FILE + ".tmp")).exists()
    assert json.loads((out / REPORT_FILE).read_text()) == json.loads(json.dumps(report))
    from pushcut.sim.dataset import DemoDataset

    demos = DemoDataset(str(click_bell_demos))
    last = demos.episode(len(demos) - 1)  # the held-out episode: every one of its frames
    assert report["held_out_frames"] == report["all_frames_cm"]["n"] == len(last)
    assert report["first_frame_cm"]["n"] == 1
    assert 0.0 < report["all_frames_cm"]["median"] < 100.0 and 0.0 <= report["side_correct"] <= 1.0
    assert report["final_train_loss"] < 1.0  # z-scored MSE: below predicting the mean


def test_sft_starts_from_the_localiser_and_freezing_keeps_its_encoder(localiser, click_bell_demos, tmp_path):
    out, _ = localiser
    saved = torch.load(out / WEIGHTS_FILE, weights_only=True)
    train_sft(_sft(click_bell_demos, tmp_path / "frozen", vision_init=str(out), freeze_vision=True))
    policy = load_checkpoint(tmp_path / "frozen" / "latest").policy
    for name, value in saved["vision_state"].items():
        torch.testing.assert_close(policy.vision.state_dict()[name], value)  # not one step moved it
    moved = any(not torch.equal(policy.projector.state_dict()[k], v) for k, v in saved["projector_state"].items())
    assert moved  # the projector still trains
    train_sft(_sft(click_bell_demos, tmp_path / "free", vision_init=str(out)))
    free = load_checkpoint(tmp_path / "free" / "latest").policy
    assert any(not torch.equal(free.vision.state_dict()[k], v) for k, v in saved["vision_state"].items())


def test_aux_vision_loss_trains_is_logged_and_resumes_exactly(click_bell_demos, tmp_path):
    full = train_sft(_sft(click_bell_demos, tmp_path / "full", max_steps=6, aux_vision_weight=1.0))
    rows = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert all(set(VISION_AUX_METRIC_NAMES) <= set(r) for r in rows)
    assert all(r["train/loss"] > r["train/action_loss"] for r in rows)  # the readout's loss is added
    train_sft(_sft(click_bell_demos, tmp_path / "without", max_steps=6))
    with_aux = load_checkpoint(tmp_path / "full" / "latest").policy.vision.state_dict()
    without = load_checkpoint(tmp_path / "without" / "latest").policy.vision.state_dict()
    assert any(not torch.equal(with_aux[k], without[k]) for k in with_aux)  # its gradient reaches the encoder
    assert "vision_position_head" in load_training_state(tmp_path / "full" / "latest")
    train_sft(_sft(click_bell_demos, tmp_path / "split", max_steps=6, stop_after=2, aux_vision_weight=1.0))
    resumed = train_sft(_sft(click_bell_demos, tmp_path / "split", max_steps=6, resume=True, aux_vision_weight=1.0))
    assert resumed["losses"] == pytest.approx(full["losses"][2:], rel=1e-6, abs=1e-7)


def test_bad_localiser_inputs_are_named(localiser, click_bell_demos, tmp_path):
    out, _ = localiser
    with pytest.raises(ValueError, match=r"2 episodes, not more than --holdout-episodes 2"):
        train_localiser(LocaliserConfig(str(click_bell_demos), str(tmp_path / "x"), steps=1, holdout_episodes=2))
    with pytest.raises(ValueError, match=r"preset 'tiny' uses 'siglip'.*--preset small"):
        train_localiser(LocaliserConfig(str(click_bell_demos), str(tmp_path / "x"), preset="tiny", steps=1))
    with pytest.raises(FileNotFoundError, match=r"vision.pt not found: train one with `pushcut train localiser"):
        train_sft(_sft(click_bell_demos, tmp_path / "none", vision_init=str(tmp_path)))
    with pytest.raises(ValueError, match=r"a localiser of preset 'small'.*this run's policy is 'small'"):
        train_sft(_sft(click_bell_demos, tmp_path / "other", vision_init=str(out),
                       preset_overrides={"vision": {"keypoints": 16}}))  # fmt: skip
    with pytest.raises(ValueError, match=r"vision_init starts a new policy's encoder; init brings a whole policy"):
        _sft(click_bell_demos, tmp_path / "both", vision_init=str(out), init=str(out))


def test_sft_mixes_a_second_directory_and_refuses_another_task(click_bell_demos, tmp_path):
    import shutil

    from pushcut.train.checkpoint import read_metadata

    second = tmp_path / "second"
    shutil.copytree(click_bell_demos, second)
    result = train_sft(_sft(click_bell_demos, tmp_path / "mixed", preset="tiny", preset_overrides=MICRO_POLICY,
                            extra_data=str(second), extra_episodes=1, max_steps=2))  # fmt: skip
    meta = read_metadata(tmp_path / "mixed" / "latest")["extra"]
    assert meta["episodes"] == 3 and meta["extra_dataset"] == str(second)  # two episodes + the second's first one
    assert meta["extra_world"] == meta["world"] and result["step"] == 2
    train_sft(_sft(click_bell_demos, tmp_path / "continued", preset="tiny", preset_overrides=MICRO_POLICY,
                   init=str(tmp_path / "mixed" / "latest"), max_steps=1))  # fmt: skip
    continued = read_metadata(tmp_path / "continued" / "latest")["extra"]
    assert continued["start_worlds"] == [meta["world"]]  # the start's worlds (both clean here), once
    index = json.loads((second / "index.json").read_text())
    index["task"] = "move_can_pot"
    (second / "index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match=r"second \(move_can_pot.*cannot be mixed with .*the same task"):
        train_sft(_sft(click_bell_demos, tmp_path / "bad", preset="tiny", preset_overrides=MICRO_POLICY,
                       extra_data=str(second)))  # fmt: skip
