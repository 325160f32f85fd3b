"""The `pushcut sim` command line, as a user runs it."""

import json
import subprocess
import sys

import imageio.v3 as iio
import pytest

from pushcut.sim.video import read_mp4


def pushcut(*args, check=True):
    result = subprocess.run([sys.executable, "-m", "pushcut", *args], capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_tasks_json_lists_step_limits():
    rows = json.loads(pushcut("sim", "tasks", "--json").stdout)
    names = {r["name"] for r in rows}
    assert "click_bell" in names and all(r["step_limit"] > 0 for r in rows)


def test_render_writes_three_cameras_side_by_side(tmp_path):
    out = tmp_path / "scene.png"
    pushcut("sim", "render", "--task", "click_bell", "--seed", "1", "--out", str(out))
    image = iio.imread(out)
    assert image.shape == (240, 960, 3)


def test_video_writes_the_expert_episode(tmp_path):
    out = tmp_path / "episode.mp4"
    result = pushcut("sim", "video", "--task", "click_bell", "--seed", "0", "--out", str(out))
    assert "success" in result.stdout
    frames = read_mp4(out)
    assert frames.shape[1:] == (240, 320, 3) and len(frames) > 10


def test_demo_json_summary(tmp_path):
    result = pushcut(
        "sim",
        "demo",
        "--task",
        "click_bell",
        "--episodes",
        "2",
        "--out",
        str(tmp_path / "d"),
        "--image-width",
        "64",
        "--image-height",
        "48",
        "--json",
    )
    summary = json.loads(result.stdout)
    assert summary["kept"] == 2 and summary["seeds_tried"] >= 2 and 0 < summary["expert_success_rate"] <= 1


@pytest.mark.parametrize(
    "args, message",
    [
        (("sim", "render", "--task", "fly_to_moon", "--out", "x.png"), "registered tasks: "),
        (("sim", "demo", "--task", "nope", "--episodes", "1", "--out", "d"), "unknown task 'nope'"),
        (("sim", "render", "--task", "click_bell", "--out", "scene.jpg"), "must end in .png"),
    ],
)
def test_bad_input_gives_one_clear_error(tmp_path, args, message):
    result = pushcut(*args, check=False)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_unwritable_output_dir_is_reported_before_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = pushcut("sim", "demo", "--task", "click_bell", "--episodes", "1", "--out", str(blocker / "d"), check=False)
    assert result.returncode == 2 and "not writable" in result.stderr
