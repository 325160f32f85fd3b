"""The live camera-alignment view's folder, shared by its writer (``pushcut robot align --live``) and its viewer (the
dashboard's "Camera alignment" tab), which never import each other:

- ``live.png``: the newest blend of the real frame and the twin (replaced atomically, never half-written);
- ``live.json``: the status of that frame (:class:`LiveStatus`);
- ``nudges.txt``: one nudge per line, ``dx,dy,dz,droll,dpitch,dyaw`` (metres, degrees), appended by the viewer; the
  writer applies each new line once, in order, and reports it in the status (or why it was rejected).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

LIVE_IMAGE = "live.png"
LIVE_STATUS = "live.json"
NUDGES = "nudges.txt"


@dataclass
class LiveStatus:
    frame: int  # frames rendered so far
    time: float  # unix time of this frame
    position: tuple[float, float, float]  # the head camera's pose now (world frame, metres)
    rpy_deg: tuple[float, float, float]
    edge_distance_px: float  # the alignment score (robot/tools/align.py): lower is better; nan without arms in view
    pixel_difference: float
    nudges_applied: list[str] = field(default_factory=list)  # in the order applied
    nudges_rejected: list[str] = field(default_factory=list)  # "LINE: why"
    running: bool = True  # False once the live view stopped (its last frame stays)


def write_status(folder: Path, status: LiveStatus) -> None:
    """Replace ``folder/live.json`` atomically."""
    replace_file(folder / LIVE_STATUS, json.dumps(asdict(status)).encode())


def read_status(folder: Path) -> LiveStatus | None:
    """The newest status, or None when there is none (yet) or it cannot be read."""
    try:
        data = json.loads((folder / LIVE_STATUS).read_text())
        return LiveStatus(**data)
    except (OSError, ValueError, TypeError):
        return None


def replace_file(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` through a temporary file and a rename: a reader sees the old or the new file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(content)
    os.replace(tmp, path)


def append_nudge(folder: Path, dx_m: float, dy_m: float, dz_m: float, roll_deg: float, pitch_deg: float,
                 yaw_deg: float) -> str:  # fmt: skip
    """Queue one nudge for the live view; returns the line written."""
    line = ",".join(f"{v:.6g}" for v in (dx_m, dy_m, dz_m, roll_deg, pitch_deg, yaw_deg))
    with (folder / NUDGES).open("a") as f:
        f.write(line + "\n")
    return line


def read_nudges(folder: Path, already: int) -> list[str]:
    """The complete lines of ``nudges.txt`` after the first ``already`` (a line still being written waits)."""
    try:
        text = (folder / NUDGES).read_text()
    except FileNotFoundError:
        return []
    lines = text.split("\n")[:-1]  # the part after the last newline is not complete yet
    return [line.strip() for line in lines[already:]]
