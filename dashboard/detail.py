"""One trial in detail: its row, videos (resolved, missing ones flagged), safety events, correction history and the
commanded vs measured joints from its npz (docs/trials_db.md). Files that are missing or broken become messages."""

from __future__ import annotations

import sqlite3
import zipfile
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pushcut.dashboard.data import DashboardError, connect_readonly, history

MAX_PLOT_STEPS = 600  # joints are thinned to about this many time points for the plot


@dataclass(frozen=True)
class Video:
    camera: str
    stored: str  # the path as the database holds it
    path: Path  # resolved against the database's folder

    @property
    def exists(self) -> bool:
        return self.path.is_file()


@dataclass
class TrialDetail:
    row: dict
    videos: list[Video]
    events: pd.DataFrame  # t, reason, detail
    history: pd.DataFrame  # corrections, newest first
    joints: pd.DataFrame | None  # long: t, joint, kind (commanded / measured), value
    problems: list[str] = field(default_factory=list)


def resolve(db_path: str | Path, stored: str) -> Path:
    """A stored file path as a path: relative ones are relative to the database's folder (as TrialsDB.resolve)."""
    path = Path(stored)
    return path if path.is_absolute() else Path(db_path).parent / path


def trial_detail(db_path: str | Path, trial_id: int) -> TrialDetail:
    try:
        with closing(connect_readonly(db_path)) as conn:
            row = conn.execute("SELECT * FROM trials WHERE id = ?", (trial_id,)).fetchone()
            if row is None:
                raise DashboardError(f"no trial #{trial_id} in {db_path}")
            videos = conn.execute("SELECT camera, path FROM trial_videos WHERE trial_id = ? ORDER BY camera",
                                  (trial_id,)).fetchall()  # fmt: skip
            events = pd.read_sql_query("SELECT t, reason, detail FROM safety_events WHERE trial_id = ? ORDER BY t",
                                       conn, params=(trial_id,))  # fmt: skip
    except sqlite3.Error as error:
        raise DashboardError(f"trial #{trial_id} could not be read ({error})") from None
    problems: list[str] = []
    clips = [Video(str(v["camera"]), str(v["path"]), resolve(db_path, str(v["path"]))) for v in videos]
    problems += [f"video of {v.camera} is missing: {v.path}" for v in clips if not v.exists]
    joints = None
    if row["data_path"]:
        joints, problem = load_joints(resolve(db_path, row["data_path"]))
        if problem:
            problems.append(problem)
    return TrialDetail(dict(row), clips, events, history(db_path, trial_id), joints, problems)


def load_joints(path: Path, max_steps: int = MAX_PLOT_STEPS) -> tuple[pd.DataFrame | None, str | None]:
    """The npz's commanded and measured joints in long form, or (None, why not)."""
    if not path.is_file():
        return None, f"joint data is missing: {path}"
    try:
        with np.load(path, allow_pickle=False) as npz:
            t, commanded, measured = (np.asarray(npz[key], dtype=float) for key in ("t", "commanded", "measured"))
            names = [str(n) for n in npz["names"]] if "names" in npz.files else []
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as error:
        return None, f"joint data {path.name} is unreadable ({error})"
    steps = len(t)
    if t.ndim != 1 or commanded.shape != measured.shape or commanded.ndim != 2 or commanded.shape[0] != steps:
        return None, (f"joint data {path.name} has inconsistent shapes: t {t.shape}, commanded {commanded.shape}, "
                      f"measured {measured.shape}")  # fmt: skip
    if len(names) != commanded.shape[1]:
        names = [f"joint {i}" for i in range(commanded.shape[1])]
    keep = np.arange(0, steps, max(1, -(-steps // max_steps)))
    frames = []
    for kind, values in (("commanded", commanded), ("measured", measured)):
        wide = pd.DataFrame(values[keep], columns=names).assign(t=t[keep])
        frames.append(wide.melt(id_vars="t", var_name="joint", value_name="value").assign(kind=kind))
    return pd.concat(frames, ignore_index=True)[["t", "joint", "kind", "value"]], None
