"""Sessions overview: running sessions as progress bars, every session in a table; refreshes on its own while a
session runs (or while the database is still empty)."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import streamlit as st

from pushcut.dashboard import data, tables
from pushcut.dashboard.ui import csv_button, guarded, interval_text, seconds_text

REFRESH_S = 5.0


def running_ids(overview: pd.DataFrame) -> tuple[int, ...]:
    return tuple(int(i) for i in overview.session_id[overview.status == "running"])


def render(path: str | Path, snapshot: data.Snapshot) -> None:
    overview = tables.sessions_overview(snapshot.sessions, snapshot.trials, time.time())
    running = running_ids(overview)
    live = bool(running) or overview.empty
    st.fragment(_live_overview, run_every=REFRESH_S if live else None)(path, running)


def _live_overview(path: str | Path, running_before: tuple[int, ...]) -> None:
    # the fragment's own reruns happen outside the app's error boundary: it needs one of its own
    guarded("sessions overview", _overview, path, running_before)


def _overview(path: str | Path, running_before: tuple[int, ...]) -> None:
    snapshot = data.load(path)
    overview = tables.sessions_overview(snapshot.sessions, snapshot.trials, time.time())
    if running_ids(overview) != running_before:
        st.rerun(scope="app")  # a session started or ended: refresh every view
    if overview.empty:
        st.info("No sessions yet. `pushcut trial run --db ...` records them; they appear here as they arrive.")
        return
    for row in overview[overview.status == "running"].itertuples():
        fraction = min(1.0, row.judged / row.planned_trials) if row.planned_trials > 0 else 0.0
        st.progress(fraction, text=f"**running** · #{row.session_id} {row.task} · {row.checkpoint_label} · "
                    f"{row.robot_kind} · {row.operator}: {row.progress} judged, {row.successes} successes "
                    f"({tables.rate_text(row.rate, row.ci_low, row.ci_high, row.judged)})")  # fmt: skip
    shown = seconds_text(overview, ["started", "last_trial"])
    shown.insert(shown.columns.get_loc("ci_low"), "wilson_95", [interval_text(lo, hi) for lo, hi in
                                                                 zip(shown.ci_low, shown.ci_high)])  # fmt: skip
    st.dataframe(
        shown.drop(columns=["ci_low", "ci_high", "judged"]),
        hide_index=True,
        column_config={
            "session_id": st.column_config.NumberColumn("#", width="small"),
            "checkpoint_label": "checkpoint",
            "robot_kind": "robot",
            "robot": "driver",
            "progress": st.column_config.TextColumn("k / N", help="judged trials (success + failure) / planned"),
            "planned_trials": None,
            "rate": st.column_config.NumberColumn("success rate", format="percent"),
            "wilson_95": st.column_config.TextColumn("Wilson 95 %"),
            "invalid": st.column_config.NumberColumn("unreadable", help="trials with an unreadable outcome"),
            "last_trial": "last trial",
        },
    )  # fmt: skip
    st.caption(f"Updated {time.strftime('%H:%M:%S')}" + (f"; refreshes every {REFRESH_S:g} s while a session runs"
                                                          if running_before else ""))  # fmt: skip
    csv_button(overview, "sessions", key="csv_sessions")
