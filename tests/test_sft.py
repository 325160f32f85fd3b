"""SFT trainer (train/sft.py) and checkpoints (train/checkpoint.py) on a tiny generated click_bell dataset."""

from __future__ import annotations

import json
import shutil

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from conftest import MICRO_POLICY as OVERRIDES  # noqa: E402

from pushcut.train.checkpoint import (  # noqa: E402
    CHECKPOINT_FILE,
    MODEL_DIR,
    TRAINING_STATE_FILE,
    find_checkpoints,
    load_checkpoint,
    load_training_state,
    save_checkpoint,
)
from pushcut.train.sft import METRIC_NAMES, SFTConfig, train_sft  # noqa: E402


@pytest.fixture(scope="module")
def data_dir(click_bell_demos):
    return click_bell_demos


@pytest.fixture(autouse=True)
def _deterministic():
    prev = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(prev)


def _config(data_dir, out, **kw) -> SFTConfig:
    base = dict(
        data=str(data_dir),
        out=str(out),
        preset="tiny",
        preset_overrides=OVERRIDES,
        max_steps=8,
        batch_size=4,
        lr=2e-3,
        warmup_steps=2,
        num_workers=0,
        seed=0,
        log_every=2,
        progress=False,
        device="cpu",
    )
    base.update(kw)
    return SFTConfig(**base)


@pytest.fixture(scope="module")
def run_a(data_dir, tmp_path_factory):
    torch.use_deterministic_algorithms(True)
    out = tmp_path_factory.mktemp("run_a")
    result = train_sft(_config(data_dir, out, save_every=4))
    return out, result


def _state(ckpt):
    return {k: v.detach().clone() for k, v in load_checkpoint(ckpt).policy.state_dict().items()}


def test_loss_decreases_and_metrics_are_written(run_a):
    out, result = run_a
    losses = result["losses"]
    assert len(losses) == 8 and result["step"] == 8
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2 - 0.2, losses
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6, 8]
    assert all(set(METRIC_NAMES) <= set(r) for r in rows)
    assert all(0.0 <= r["train/token_accuracy"] <= 1.0 and r["train/samples_per_s"] > 0 for r in rows)
    assert list((out / "tb").iterdir()), "TensorBoard event file missing"
    assert [p.name for p in find_checkpoints(out / "checkpoints")] == ["step_4", "step_8"]
    assert (out / "latest").resolve() == (out / "checkpoints" / "step_8").resolve()
    print(
        f"\nSFT samples/s (test overrides of tiny, CPU, batch 4): {result['samples_per_s']:.1f} compute, "
        f"{result['samples_per_s_end_to_end']:.1f} end-to-end; {result['num_parameters']} parameters"
    )


def test_checkpoint_round_trip_gives_identical_logits(run_a, tmp_path):
    out, _ = run_a
    policy, tokenizer, proprio, meta = load_checkpoint(out / "latest")
    assert meta["step"] == 8 and meta["tasks"] == ["click_bell"] and meta["chunk"] == 4 and meta["image_size"] == 32
    assert proprio.dim == 14 and tokenizer.dim == 14 and meta["action_hz"] > 0
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (3, 32, 32, 3), generator=g, dtype=torch.uint8)
    proprio_in = torch.rand(3, 14, generator=g) * 2 - 1
    batch = policy.make_batch(images, ["click the bell"] * 3, proprio_in)
    with torch.no_grad():
        ref = policy(batch)
    copy = save_checkpoint(
        tmp_path / "copy",
        policy,
        tokenizer,
        proprio,
        preset="tiny",
        action_hz=meta["action_hz"],
        tasks=meta["tasks"],
        step=meta["step"],
    )
    again, tok2, prop2, meta2 = load_checkpoint(copy)
    with torch.no_grad():
        assert torch.equal(again(again.make_batch(images, ["click the bell"] * 3, proprio_in)), ref)
    assert tok2.stats == tokenizer.stats and prop2 == proprio and meta2["step"] == 8
    # overwriting an existing checkpoint replaces it atomically and leaves no temporary directories behind
    save_checkpoint(copy, policy, tokenizer, proprio, preset="tiny", action_hz=10.0, tasks=["click_bell"], step=9)
    assert load_checkpoint(copy).metadata["step"] == 9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy"]


def test_half_written_checkpoint_is_never_valid(run_a, tmp_path):
    out, _ = run_a
    ckpts = tmp_path / "checkpoints"
    shutil.copytree(out / "checkpoints" / "step_4", ckpts / "step_4")
    # a crash mid-write: the temp dir has weights but no JSON yet — and even a complete temp dir is refused
    partial = ckpts / "step_8.tmp-12345"
    shutil.copytree(out / "checkpoints" / "step_8", partial)
    assert [p.name for p in find_checkpoints(ckpts)] == ["step_4"]
    with pytest.raises(ValueError, match="temporary"):
        load_checkpoint(partial)
    (partial / CHECKPOINT_FILE).unlink()
    assert [p.name for p in find_checkpoints(ckpts)] == ["step_4"]
    with pytest.raises(ValueError, match="temporary"):
        load_checkpoint(partial)
    # even under a final name, a directory without its JSON (written last) is not a checkpoint
    partial.rename(ckpts / "step_8")
    assert [p.name for p in find_checkpoints(ckpts)] == ["step_4"]
    with pytest.raises(FileNotFoundError, match=CHECKPOINT_FILE):
        load_checkpoint(ckpts / "step_8")


@pytest.mark.parametrize(
    "remove",
    [
        CHECKPOINT_FILE,
        f"{MODEL_DIR}/policy_extras.safetensors",
        f"{MODEL_DIR}/llm/model.safetensors",
        f"{MODEL_DIR}/vision/config.json",
        f"{MODEL_DIR}/policy_config.json",
    ],
)
def test_missing_file_is_named(run_a, tmp_path, remove):
    out, _ = run_a
    ck = tmp_path / "ck"
    shutil.copytree(out / "checkpoints" / "step_8", ck)
    (ck / remove).unlink()
    name = remove.split("/")[-1].replace(".", r"\.")
    with pytest.raises((FileNotFoundError, ValueError), match=name):
        load_checkpoint(ck)


def test_inconsistent_files_are_named(run_a, tmp_path):
    out, _ = run_a
    ck = tmp_path / "ck"
    shutil.copytree(out / "checkpoints" / "step_8", ck)
    meta_path = ck / CHECKPOINT_FILE
    good = json.loads(meta_path.read_text())

    bad = json.loads(json.dumps(good))
    bad["proprio_stats"]["low"] = bad["proprio_stats"]["low"][:13]
    bad["proprio_stats"]["high"] = bad["proprio_stats"]["high"][:13]
    meta_path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=f"{CHECKPOINT_FILE}.*proprio_stats dim 13"):
        load_checkpoint(ck)

    bad = json.loads(json.dumps(good))
    bad["chunk"] = 8
    meta_path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=f"{CHECKPOINT_FILE}.*chunk"):
        load_checkpoint(ck)

    bad = json.loads(json.dumps(good))  # json and model/policy_config.json disagree
    bad["policy_config"]["chunk"] = bad["chunk"] = 8
    meta_path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="policy_config.json.*chunk"):
        load_checkpoint(ck)

    meta_path.write_text(json.dumps(good))
    (ck / TRAINING_STATE_FILE).unlink()
    load_checkpoint(ck)  # inference needs no training state ...
    with pytest.raises(FileNotFoundError, match=TRAINING_STATE_FILE):  # ... resuming does
        load_training_state(ck)


def test_bad_dataset_fails_before_training(tmp_path, data_dir):
    with pytest.raises(ValueError, match="camera 'wrist_x'"):
        train_sft(_config(data_dir, tmp_path / "o", preset_overrides={**OVERRIDES, "cameras": ("wrist_x",)}))
    assert not (tmp_path / "o" / "checkpoints").exists()
    with pytest.raises(FileNotFoundError, match="latest"):
        train_sft(_config(data_dir, tmp_path / "o2", resume=True))


def test_exact_resume_matches_uninterrupted_run(run_a, data_dir, tmp_path):
    out_a, result_a = run_a
    out_b = tmp_path / "run_b"
    # run B: the same 8-step schedule, stopped after 4 steps (its checkpoint step_4 holds the training state) ...
    first = train_sft(_config(data_dir, out_b, save_every=0, stop_after=4))
    assert first["step"] == 4 and first["losses"] == pytest.approx(result_a["losses"][:4], rel=1e-6)
    assert [p.name for p in find_checkpoints(out_b / "checkpoints")] == ["step_4"]
    # ... then restarted: scramble every global RNG so that only the restored state can reproduce run A
    import random

    import numpy as np

    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    resumed = train_sft(_config(data_dir, out_b, resume=True))
    assert resumed["step"] == 8 and len(resumed["losses"]) == 4
    assert resumed["losses"] == pytest.approx(result_a["losses"][4:], rel=1e-6, abs=1e-7)
    sa, sb = _state(out_a / "latest"), _state(out_b / "latest")
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.allclose(sa[k], sb[k], rtol=1e-6, atol=1e-7), k
    rows = [json.loads(line)["step"] for line in (out_b / "metrics.jsonl").read_text().splitlines()]
    assert rows == [2, 4, 6, 8]


def test_cli_trains_and_reports_bad_data(data_dir, tmp_path):
    import subprocess
    import sys

    base = [
        sys.executable,
        "-m",
        "pushcut",
        "train",
        "sft",
        "--batch-size",
        "4",
        "--max-steps",
        "2",
        "--warmup-steps",
        "1",
        "--num-workers",
        "0",
        "--set",
        f"image_size={OVERRIDES['image_size']}",
        "--set",
        f"chunk={OVERRIDES['chunk']}",
        "--set",
        "vision=" + json.dumps(OVERRIDES["vision"]),
        "--set",
        "llm=" + json.dumps(OVERRIDES["llm"]),
    ]
    ok = subprocess.run(
        [*base, "--data", str(data_dir), "--out", str(tmp_path / "run"), "--color-jitter"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert "trained 2 steps" in ok.stdout
    from pushcut.train.checkpoint import read_metadata

    assert read_metadata(tmp_path / "run" / "latest")["extra"]["sft_config"]["color_jitter"] is True
    bad = subprocess.run(
        [*base, "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run2")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "error:" in bad.stderr and "Traceback" not in bad.stderr


def test_init_continues_weights_and_stats_and_max_minutes_stops(run_a, data_dir, tmp_path):
    start = load_checkpoint(run_a[0] / "latest")
    summary = train_sft(_config(data_dir, tmp_path / "cont", init=str(run_a[0] / "latest"), max_steps=1))
    cont = load_checkpoint(summary["checkpoint"])
    assert cont.tokenizer.to_dict() == start.tokenizer.to_dict()  # same action space as the run it continues
    assert cont.proprio_stats.to_dict() == start.proprio_stats.to_dict()
    # one step of lr 2e-3 from the init weights: close to them, far from a fresh initialisation
    fresh = load_checkpoint(train_sft(_config(data_dir, tmp_path / "fresh", max_steps=1))["checkpoint"])
    name = "action_queries"
    a, b, c = (x.policy.state_dict()[name] for x in (start, cont, fresh))
    assert (b - a).abs().max() < (c - a).abs().max()
    timed = train_sft(_config(data_dir, tmp_path / "timed", max_steps=50, max_minutes=0.0))
    assert timed["step"] == 1 and timed["checkpoint"].endswith("step_1")
    with pytest.raises(ValueError, match=r"is a 'tiny' checkpoint that differs from --preset 'tiny' .*'image_size'"):
        train_sft(_config(data_dir, tmp_path / "bad", init=str(run_a[0] / "latest"), preset_overrides={}))
    with pytest.raises(ValueError, match=r"differs from --preset 'small'.*pass --preset tiny"):
        train_sft(_config(data_dir, tmp_path / "bad", init=str(run_a[0] / "latest"), preset="small",
                          preset_overrides={}))  # fmt: skip


def test_soft_targets_and_aux_position_loss_train_and_resume_exactly(data_dir, tmp_path):
    """HL-Gauss targets + the auxiliary position loss: metrics written, the head's state resumes exactly (it lives
    in the training state, not in the policy), and the policy checkpoint is the same format as without them."""
    from pushcut.train.sft import AUX_METRIC_NAMES

    extra = dict(label_sigma=1.5, aux_position_weight=1.0)
    full = train_sft(_config(data_dir, tmp_path / "full", **extra))
    rows = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert all(set(METRIC_NAMES) | set(AUX_METRIC_NAMES) <= set(r) for r in rows)
    assert rows[-1]["train/aux_position_loss"] < rows[0]["train/aux_position_loss"]
    assert all(r["train/loss"] > r["train/action_loss"] for r in rows)  # the aux term is added
    state = load_training_state(tmp_path / "full" / "latest")
    assert state["position_head"]["linear.weight"].shape == (3, 64)  # click_bell: one body (the bell), xyz
    plain = train_sft(_config(data_dir, tmp_path / "plain", max_steps=1))["checkpoint"]
    assert _state(tmp_path / "full" / "latest").keys() == _state(plain).keys()  # the head is never in the policy
    train_sft(_config(data_dir, tmp_path / "split", stop_after=4, **extra))
    resumed = train_sft(_config(data_dir, tmp_path / "split", resume=True, **extra))
    assert resumed["losses"] == pytest.approx(full["losses"][4:], rel=1e-6, abs=1e-7)


def test_color_jitter_is_off_by_default_recorded_in_the_checkpoint_and_resumes_exactly(run_a, data_dir, tmp_path):
    from pushcut.train.checkpoint import read_metadata

    assert not SFTConfig(data="d", out="o").color_jitter
    assert read_metadata(run_a[0] / "latest")["extra"]["sft_config"]["color_jitter"] is False
    full = train_sft(_config(data_dir, tmp_path / "full", color_jitter=True))
    assert read_metadata(tmp_path / "full" / "latest")["extra"]["sft_config"]["color_jitter"] is True
    assert full["losses"] != pytest.approx(run_a[1]["losses"], rel=1e-6)  # the images it trained on differ
    train_sft(_config(data_dir, tmp_path / "split", stop_after=4, color_jitter=True))
    resumed = train_sft(_config(data_dir, tmp_path / "split", resume=True, color_jitter=True))
    assert resumed["losses"] == pytest.approx(full["losses"][4:], rel=1e-6, abs=1e-7)


def test_aux_position_loss_needs_recorded_positions(data_dir, tmp_path):
    import h5py

    copy = tmp_path / "old_demos"
    shutil.copytree(data_dir, copy)
    with h5py.File(copy / "data" / "episode1.hdf5", "a") as f:
        del f["privileged/object_positions"]
    with pytest.raises(ValueError, match=r"episode1.hdf5: no privileged/object_positions .* record the demonstrations"):
        train_sft(_config(copy, tmp_path / "out", aux_position_weight=1.0))
    assert train_sft(_config(copy, tmp_path / "plain", max_steps=1))["step"] == 1  # plain SFT does not need them


def test_a_small_checkpoint_continues_under_its_own_preset():
    """A checkpoint's config comes back from JSON with lists where the preset has tuples (the small preset's conv
    channels): that is the same architecture, and only a real difference is refused."""
    from pushcut.train.presets import PolicyConfig, get_preset
    from pushcut.train.sft import check_same_policy

    wanted = get_preset("small")
    found = PolicyConfig.from_dict(json.loads(json.dumps(wanted.to_dict())))
    check_same_policy("ckpt", "small", found, "small", wanted)
    other = get_preset("small", vision={"keypoints": 16})
    with pytest.raises(ValueError, match=r"'small' checkpoint that differs from --preset 'small' .*\['vision'\]"):
        check_same_policy("ckpt", "small", found, "small", other)
