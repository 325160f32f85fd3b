"""The `pushcut sim` command line, as a user runs it."""

import json
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest

from pushcut.sim.engine_compare import LABEL_BAND_PX, pixel_difference
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


# The --sim sapien tests run SAPIEN in `python -m pushcut` child processes, so import_sapien() never sets the render
# variables in this one (conftest.restore_render_variables has nothing to give back here).
SAME_SCENE_MAX_DIFFERENCE = 10.0  # 8-bit levels; MuJoCo's colour model in SAPIEN (sapien/looks.py): measured 5.3-7.0


def _grey_correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.mean(axis=-1).ravel(), b.mean(axis=-1).ravel())[0, 1])


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    """`sim render --task click_bell --seed 1` in each engine: {engine: (image, stdout)}."""
    out = tmp_path_factory.mktemp("renders")
    shown = {}
    for engine in ("mujoco", "sapien"):
        path = out / f"{engine}.png"
        result = pushcut("sim", "render", "--task", "click_bell", "--seed", "1", "--sim", engine, "--out", str(path))
        shown[engine] = (iio.imread(path), result.stdout)
    return shown


def test_render_sim_sapien_draws_mujocos_scene_in_its_own_pixels(renders):
    (mujoco, _), (sapien, stdout) = renders["mujoco"], renders["sapien"]
    assert stdout.startswith("wrote ") and "(sapien): Give the bell a press" in stdout
    assert sapien.shape == mujoco.shape == (240, 960, 3)
    for camera in range(3):
        ours, theirs = (image[:, camera * 320 : (camera + 1) * 320] for image in (mujoco, sapien))
        assert 1.0 < pixel_difference(ours, theirs) < SAME_SCENE_MAX_DIFFERENCE, f"camera {camera}"
        assert _grey_correlation(ours, theirs) > 0.6, f"camera {camera}: not the same layout"


def test_compare_lays_out_each_engines_head_picture_and_prints_their_difference(tmp_path, renders):
    out = tmp_path / "engines.png"
    result = pushcut("sim", "compare", "--task", "click_bell", "--seed", "1", "--out", str(out))
    grid = iio.imread(out)
    assert grid.shape == (240, 640, 3)
    heads = {engine: image[:, :320] for engine, (image, _) in renders.items()}
    np.testing.assert_array_equal(grid[LABEL_BAND_PX:, :320], heads["mujoco"][LABEL_BAND_PX:])
    np.testing.assert_array_equal(grid[LABEL_BAND_PX:, 320:], heads["sapien"][LABEL_BAND_PX:])
    assert grid[:LABEL_BAND_PX].mean() < heads["mujoco"][:LABEL_BAND_PX].mean()  # the labels' dark band
    printed = float(result.stdout.split("click_bell")[-1].split()[0])
    assert printed == pytest.approx(pixel_difference(heads["mujoco"], heads["sapien"]), abs=0.05)


def test_video_sim_sapien_films_the_same_episode(tmp_path):
    films = {}
    for engine in ("mujoco", "sapien"):
        out = tmp_path / f"{engine}.mp4"
        result = pushcut("sim", "video", "--task", "click_bell", "--seed", "0", "--sim", engine, "--out", str(out))
        assert f"({engine}): " in result.stdout and "expert success" in result.stdout
        films[engine] = read_mp4(out)
    mujoco, sapien = films["mujoco"], films["sapien"]
    assert sapien.shape == mujoco.shape and len(sapien) > 10  # the same actions, frame for frame
    for index in (0, len(sapien) // 2, len(sapien) - 1):
        assert 1.0 < pixel_difference(mujoco[index], sapien[index]) < SAME_SCENE_MAX_DIFFERENCE, f"frame {index}"


@pytest.mark.parametrize("command, sim", [("render", "bullet"), ("video", "robotwin")])
def test_bad_sim_for_a_rendering_command_is_one_line(tmp_path, command, sim):
    out = tmp_path / ("x.png" if command == "render" else "x.mp4")
    result = pushcut("sim", command, "--task", "click_bell", "--sim", sim, "--out", str(out), check=False)
    assert result.returncode == 2 and not out.exists()
    assert result.stderr.strip() == (
        f"error: pushcut sim {command} runs pushcut's own worlds: --sim mujoco or sapien, got {sim!r}"
    )


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
        (("sim", "compare", "--task", "click_bell", "--camera", "top", "--out", "g.png"), "unknown camera(s) ['top']"),
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
