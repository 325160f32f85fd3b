"""Trials: the filtered list, one trial in detail (video, outcome, notes, safety events, commanded vs measured
joints), the correction form (who, new outcome, note; history kept) and the log of every correction."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import streamlit as st

from pushcut.dashboard import charts, data, detail, tables
from pushcut.dashboard.ui import csv_button, guarded, seconds_text
from pushcut.trials_db.database import OUTCOMES

KEEP = "(keep)"


def _number(value: object) -> str:
    return f"{value:.0f}" if isinstance(value, (int, float)) else "–"


def _date_range(trials: pd.DataFrame) -> tuple[date | None, date | None]:
    days = trials.started.dropna().dt.date
    if days.empty:
        return None, None
    first, last = days.min(), days.max()
    picked = st.date_input("Started between", value=(first, last), min_value=first, max_value=last, key="f_dates")
    picked = tuple(picked) if isinstance(picked, (tuple, list)) else (picked,)
    return (picked[0] if picked else None), (picked[-1] if len(picked) > 1 else None)


SMOOTHED_COLUMN = st.column_config.NumberColumn("smoothed %", format="%.0f", help="ticks the rate limits reshaped")


def render(path: str | Path, snapshot: data.Snapshot) -> None:
    trials = snapshot.trials
    if trials.empty:
        st.info("No trials yet.")
        return
    columns = st.columns(5)
    choices = {}
    for column, (name, label) in zip(columns, [("task", "Task"), ("checkpoint_label", "Checkpoint"),
                                               ("outcome", "Outcome"), ("operator", "Operator")]):  # fmt: skip
        choices[name] = column.multiselect(label, sorted(trials[name].unique()), key=f"f_{name}")
    with columns[4]:
        date_from, date_to = _date_range(trials)
    shown = tables.filter_trials(trials, tasks=choices["task"], checkpoints=choices["checkpoint_label"],
                                 outcomes=choices["outcome"], operators=choices["operator"], date_from=date_from,
                                 date_to=date_to)  # fmt: skip
    listing = tables.trial_list(shown, snapshot.corrected)
    st.caption(f"{len(listing)} of {len(trials)} trials")
    st.dataframe(seconds_text(listing, ["started"]), hide_index=True, height=320,
                 column_config={"id": st.column_config.NumberColumn("trial", width="small"), "session_id": "session",
                                "checkpoint_label": "checkpoint", "robot_kind": "robot",
                                "duration_s": st.column_config.NumberColumn("duration (s)", format="%.1f"),
                                "safety_event_count": "safety events", "smoothed_pct": SMOOTHED_COLUMN})  # fmt: skip
    csv_button(listing, "trials", key="csv_trials")
    if not listing.empty:
        labels = {int(r.id): f"#{r.id} · {r.task} · {r.checkpoint_label} · k={r.k} · {r.outcome}"
                  for r in listing.itertuples()}  # fmt: skip
        trial_id = st.selectbox("Trial", list(labels), format_func=labels.get, key="trial_pick")
        guarded("trial detail", render_detail, path, trial_id)
    with st.expander("Every correction"):
        corrections = data.history(path)
        if corrections.empty:
            st.write("No corrections yet.")
        else:
            st.dataframe(seconds_text(corrections, ["when"]), hide_index=True)
            csv_button(corrections, "corrections", key="csv_corrections")


def render_detail(path: str | Path, trial_id: int) -> None:
    info = detail.trial_detail(path, trial_id)
    row = info.row
    outcome = row["outcome"] if row["outcome"] in OUTCOMES else f"unreadable outcome ({row['outcome']!r})"
    st.subheader(f"Trial #{trial_id}: {outcome}")
    flash = st.session_state.pop("flash", None)
    if flash:
        st.success(flash)
    for problem in info.problems:
        st.warning(problem)
    left, right = st.columns(2)
    with left:
        for video in info.videos:
            if video.exists:
                st.video(str(video.path))
                st.caption(video.camera)
        if not info.videos:
            st.caption("No video recorded for this trial.")
    with right:
        st.markdown(
            f"**Outcome** {outcome} (judged by {row['judged_by']}; end: {row['end_reason']})  \n"
            f"**Instruction** {row['instruction'] or '–'}  \n**Note** {row['note'] or '–'}  \n"
            f"**Actions** {row['actions']} in {row['chunks']} chunks · latency p50/p95 "
            f"{_number(row['latency_p50_ms'])} / {_number(row['latency_p95_ms'])} ms  \n"
            f"**Fault** {row['fault'] or '–'} · **seed** {row['seed'] if row['seed'] is not None else '–'}  \n"
            f"**Smoothing** {_smoothing(row)}"
        )
        st.markdown("**Safety events**")
        if info.events.empty:
            st.caption("none")
        else:
            st.dataframe(info.events, hide_index=True)
    if info.joints is not None:
        st.markdown("**Commanded vs measured joints** (rad; grippers 0..1 open)")
        st.altair_chart(charts.joints_chart(info.joints), width="content")
    correction_form(path, trial_id, row)
    if not info.history.empty:
        st.markdown("**History of this trial**")
        st.dataframe(seconds_text(info.history, ["when"]), hide_index=True)


def correction_form(path: str | Path, trial_id: int, row: dict) -> None:
    with st.form(f"correct_{trial_id}"):
        st.markdown("**Correct the outcome or add a note** (kept as history: who, when, old → new)")
        who = st.text_input("Who", key=f"who_{trial_id}")
        outcome = st.selectbox("New outcome", [KEEP, "success", "failure", "aborted"], key=f"outcome_{trial_id}")
        note = st.text_area("Note", value=str(row["note"] or ""), key=f"note_{trial_id}")
        if not st.form_submit_button("Save correction"):
            return
    if not who.strip():
        st.error("Say who makes the correction.")
        return
    new_outcome = None if outcome == KEEP else outcome
    new_note = None if note == (row["note"] or "") else note
    try:
        st.session_state["flash"] = data.correct_trial(path, trial_id, who.strip(), new_outcome, new_note)
    except data.DashboardError as error:
        st.error(str(error))
        return
    st.rerun()


def _smoothing(row: dict) -> str:
    """Routine rate limiting as a share of the servo ticks (not safety events); '–' for trials before schema v4."""
    ticks, smoothed = row.get("ticks") or 0, row.get("smoothed_ticks") or 0
    if not ticks:
        return "–"
    return f"{smoothed} of {ticks} ticks ({smoothed / ticks:.0%}) rate-limited by the safety filter (routine)"
