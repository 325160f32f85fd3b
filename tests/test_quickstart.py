"""The README's main job (`pushcut quickstart --fast`) produces every artefact it announces."""

import json
import subprocess
import sys

import imageio.v3 as iio


def test_quickstart_fast_writes_demos_video_and_picture(tmp_path):
    out = tmp_path / "qs"
    result = subprocess.run(
        [sys.executable, "-m", "pushcut", "quickstart", "--fast", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    index = json.loads((out / "demos" / "click_bell" / "index.json").read_text())
    assert len(index["episodes"]) == 4
    assert (out / "click_bell_expert.mp4").stat().st_size > 10_000
    assert iio.imread(out / "click_bell_cameras.png").shape == (240, 960, 3)
