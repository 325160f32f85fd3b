"""Camera alignment: the live blend of the real head camera and the twin that `pushcut robot align --live --out DIR`
keeps writing (pushcut.common.live_view), refreshed every second, with its score and pose, and a form that queues a
nudge of the twin's camera pose for it to apply. Shown when the dashboard is started with ``--align-dir DIR``."""

from __future__ import annotations

import math
import time
from pathlib import Path

import streamlit as st

from pushcut.common.live_view import LIVE_IMAGE, append_nudge, read_status
from pushcut.dashboard.ui import guarded

REFRESH_S = 1.0
AXES = (("dx", "cm"), ("dy", "cm"), ("dz", "cm"), ("droll", "deg"), ("dpitch", "deg"), ("dyaw", "deg"))


def render(folder: Path) -> None:
    st.caption(f"Live view of `pushcut robot align --live --out {folder}`: the real frame and the twin blended, the "
               "twin's arm outline in green. Score: mean distance of that outline to the real edges (px, lower is "
               "better). x right along the table, y away from the robot, z up; angles about the camera's own "
               "axes.")  # fmt: skip
    st.fragment(_live, run_every=REFRESH_S)(folder)
    with st.form("nudge", clear_on_submit=True):
        st.markdown("**Nudge the twin's camera**")
        columns = st.columns(len(AXES))
        values = [col.number_input(f"{axis} ({unit})", value=0.0, step=0.5 if unit == "cm" else 0.25, key=axis,
                                   format="%.2f") for col, (axis, unit) in zip(columns, AXES)]  # fmt: skip
        if st.form_submit_button("Apply nudge"):
            dx, dy, dz, roll, pitch, yaw = values
            if not any(values):
                st.warning("All six values are 0: nothing to apply.")
            else:
                line = append_nudge(folder, dx / 100, dy / 100, dz / 100, roll, pitch, yaw)
                st.success(f"queued `{line}` (metres, degrees); the live view applies it on its next frame")


def _live(folder: Path) -> None:
    guarded("camera alignment view", _show, folder)


def _show(folder: Path) -> None:
    status = read_status(folder)
    image = folder / LIVE_IMAGE
    if status is None or not image.is_file():
        st.info(f"No live view in `{folder}` yet: start `pushcut robot align --camera head_camera=SERIAL --live "
                f"--out {folder} --write-calibration head_camera.json`.")  # fmt: skip
        return
    age = time.time() - status.time
    state = "running" if status.running else "stopped (its last frame)"
    score = "–" if math.isnan(status.edge_distance_px) else f"{status.edge_distance_px:.2f} px"
    left, right = st.columns([3, 2])
    left.image(image.read_bytes(), caption=f"frame {status.frame}, {age:.1f} s ago, {state}",
               width="stretch")  # fmt: skip
    right.metric("Score (edge distance)", score)
    right.metric("Pixel difference", f"{status.pixel_difference:.1f}")
    x, y, z = status.position
    roll, pitch, yaw = status.rpy_deg
    right.markdown(f"Pose: xyz **{x:.4f} {y:.4f} {z:.4f}** m · rpy **{roll:.2f} {pitch:.2f} {yaw:.2f}** deg")
    right.markdown(f"Nudges applied: {len(status.nudges_applied)}")
    for rejected in status.nudges_rejected:
        right.warning(f"rejected: {rejected}")
    if status.running and age > 5 * REFRESH_S:
        st.warning(f"The live view has not written a frame for {age:.0f} s: is `pushcut robot align --live` still "
                   "running?")  # fmt: skip
