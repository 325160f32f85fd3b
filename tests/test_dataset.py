"""Demonstration datasets: RoboTwin HDF5 layout, index, reader, replay, interrupted runs."""

import json
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from pushcut.sim import make
from pushcut.sim.dataset import DemoDataset
from pushcut.sim.demos import generate_demos

SMALL = {"image_width": 64, "image_height": 48}


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demos")
    summary = generate_demos("click_bell", 3, out, seed=0, workers=2, env_overrides=SMALL, progress=False)
    assert summary.kept == 3 and summary.seeds_tried >= 3
    assert summary.strategies == {"press": 3}  # every kept episode says how it succeeded
    return out


def test_layout_matches_robotwin(dataset_dir):
    index = json.loads((dataset_dir / "index.json").read_text())
    assert index["task"] == "click_bell" and len(index["episodes"]) == 3
    assert [e["strategy"] for e in index["episodes"]] == ["press"] * 3
    assert (dataset_dir / "seed.txt").read_text().split() == [str(e["seed"]) for e in index["episodes"]]
    with h5py.File(dataset_dir / "data" / "episode0.hdf5", "r") as f:
        for cam in ("head_camera", "left_camera", "right_camera"):
            rgb = f[f"observation/{cam}/rgb"]
            assert rgb.dtype.kind == "S" and bytes(rgb[0][:2]) == b"\xff\xd8"  # JPEG magic
            assert f[f"observation/{cam}/intrinsic_cv"].shape[1:] == (3, 3)
        length = f["joint_action/vector"].shape[0]
        assert f["joint_action/left_arm"].shape == (length, 6)
        assert f["joint_action/right_gripper"].shape == (length,)
        assert f["joint_state/vector"].shape == (length, 14)
        assert f["endpose/left_endpose"].shape == (length, 7)
        assert f.attrs["task"] == "click_bell" and "instruction" in f.attrs
    instructions = json.loads((dataset_dir / "instructions" / "episode0.json").read_text())
    assert len(instructions["seen"]) >= 10 and len(instructions["unseen"]) >= 3


def test_reader_and_replay_reproduce_the_episode(dataset_dir):
    data = DemoDataset(dataset_dir)
    assert len(data) == 3 and data.cameras == ("head_camera", "left_camera", "right_camera")
    episode = data.episode(1)
    frames = episode.frames("head_camera", [0, len(episode) - 1])
    assert frames.shape == (2, 48, 64, 3) and frames.dtype == np.uint8
    env = make("click_bell", cameras=())
    try:
        env.reset(seed=episode.seed)
        np.testing.assert_allclose(env.measured_joints(), episode.states[0], atol=1e-9)
        for action in episode.actions:
            env.step(action)
        assert env.success, "replaying the recorded actions on the recorded seed must succeed again"
    finally:
        env.close()
    with pytest.raises(KeyError, match="no camera"):
        episode.frames("top_camera")


def test_reader_errors_name_the_problem(tmp_path, dataset_dir):
    with pytest.raises(FileNotFoundError, match="index.json"):
        DemoDataset(tmp_path)
    index = json.loads((dataset_dir / "index.json").read_text())
    index["episodes"].append({"file": "data/episode99.hdf5", "seed": 1, "length": 1, "instruction": "x"})
    (tmp_path / "index.json").write_text(json.dumps(index))
    with pytest.raises(FileNotFoundError, match="episode99"):
        DemoDataset(tmp_path).episode(3)


def test_unwritable_output_fails_before_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(PermissionError, match="not writable"):
        generate_demos("click_bell", 1, blocker / "out", env_overrides=SMALL, progress=False)


def test_interrupted_demo_run_leaves_only_complete_episodes(tmp_path):
    out = tmp_path / "demos"
    command = [
        sys.executable,
        "-m",
        "pushcut",
        "sim",
        "demo",
        "--task",
        "click_bell",
        "--episodes",
        "40",
        "--out",
        str(out),
        "--image-width",
        "64",
        "--image-height",
        "48",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list((out / "data").glob("episode1.hdf5")):
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    files = sorted((out / "data").iterdir())
    assert files and all(f.name.startswith("episode") and f.suffix == ".hdf5" for f in files)
    for f in files:
        with h5py.File(f, "r") as h:
            assert h["joint_action/vector"].shape[0] > 0
    data = DemoDataset(out)
    assert 2 <= len(data) <= len(files)


def test_rerun_resumes_and_refuses_a_different_dataset(tmp_path):
    out = tmp_path / "d"
    first = generate_demos("click_bell", 2, out, env_overrides=SMALL, progress=False)
    assert first.kept == 2
    again = generate_demos("click_bell", 2, out, env_overrides=SMALL, progress=False)
    assert again.kept == 2 and again.seeds_tried == 0 and again.strategies == {"press": 2}  # nothing to do
    more = generate_demos("click_bell", 3, out, env_overrides=SMALL, progress=False)
    seeds = [e.seed for e in DemoDataset(out)]
    assert more.kept == 3 and len(set(seeds)) == 3 and seeds[:2] == [0, 1]
    with pytest.raises(ValueError, match="different env config"):
        generate_demos("click_bell", 3, out, env_overrides={"image_width": 32, "image_height": 24}, progress=False)
    fresh = generate_demos("click_bell", 1, out, env_overrides=SMALL, progress=False, overwrite=True)
    assert fresh.kept == 1 and len(DemoDataset(out)) == 1 and len(list((out / "data").iterdir())) == 1


def test_a_worker_that_dies_at_start_up_is_an_error_not_a_hang(tmp_path, monkeypatch):
    # Worker processes re-import the parent's __main__ script; one that crashes there (as a Streamlit app left as
    # __main__ by AppTest once did) must end the run with a clear error instead of being respawned forever.
    script = tmp_path / "crashing_main.py"
    script.write_text("raise SystemExit('this script must not run in a worker')\n")
    fake_main = type(sys)("__main__")
    fake_main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", fake_main)
    with pytest.raises(RuntimeError, match="worker process died"):
        generate_demos("click_bell", 2, tmp_path / "demos", workers=1, progress=False,
                       env_overrides={"image_width": 64, "image_height": 48})  # fmt: skip
