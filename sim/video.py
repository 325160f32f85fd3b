"""MP4 writing (H.264 through PyAV's bundled FFmpeg; nothing to install on the system)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np


def write_mp4(path: str | Path, frames: Sequence[np.ndarray], fps: float) -> None:
    """Write RGB uint8 frames (H, W, 3) as an H.264 mp4 playable in browsers (yuv420p, even dimensions)."""
    if len(frames) == 0:
        raise ValueError("no frames to write")
    height, width = frames[0].shape[:2]
    height, width = height - height % 2, width - width % 2
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.mp4")
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=round(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast"}
        for frame in frames:
            image = np.ascontiguousarray(frame[:height, :width, :3], dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    tmp.replace(path)


def read_mp4(path: str | Path) -> np.ndarray:
    """All frames of a video as (T, H, W, 3) uint8."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
