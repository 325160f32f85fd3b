"""The Streamlit dashboard of trial outcomes (issue 7): sessions, comparisons, trials. Start it with
``pushcut dashboard --db trials.db`` or ``streamlit run dashboard/app.py -- --db trials.db``; the database may also
come from the ``PUSHCUT_DASHBOARD_DB`` environment variable. ``--align-dir DIR`` (or ``PUSHCUT_ALIGN_DIR``) adds
the live camera alignment (view_align.py). Data layer: data.py, tables.py, detail.py, stats.py."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import streamlit as st

from pushcut.dashboard import data, view_align, view_compare, view_sessions, view_trials
from pushcut.dashboard.ui import guarded


def arguments() -> tuple[str | None, str | None]:
    """The database and the camera-alignment folder (``--db`` / ``--align-dir``, else the environment)."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--db")
    parser.add_argument("--align-dir")
    known, _ = parser.parse_known_args(sys.argv[1:])
    return known.db or os.environ.get("PUSHCUT_DASHBOARD_DB"), known.align_dir or os.environ.get("PUSHCUT_ALIGN_DIR")


def main() -> None:
    st.set_page_config(page_title="pushcut · trials", page_icon="🤖", layout="wide")
    st.title("pushcut · trial outcomes")
    path, align_dir = arguments()
    if not path:
        st.error("No trial database given: start the dashboard with `pushcut dashboard --db trials.db`.")
        st.stop()
    try:
        notes = data.prepare(path)  # checks the schema; migrates an older one (once) through TrialsDB
        snapshot = data.load(path)
    except data.DashboardError as error:
        st.error(str(error))
        st.stop()
    st.session_state.setdefault("notes", []).extend(notes)
    st.caption(f"Database: `{path}` · success rate = successes / judged (success + failure); aborted trials are "
               "counted apart · intervals are Wilson 95 %")  # fmt: skip
    for note in st.session_state["notes"]:
        st.info(note)
    for problem in snapshot.problems:
        st.warning(problem)
    names = ["Sessions", "Comparison", "Trials"] + (["Camera alignment"] if align_dir else [])
    sessions, comparison, trials, *alignment = st.tabs(names)
    with sessions:
        guarded("sessions overview", view_sessions.render, path, snapshot)
    with comparison:
        guarded("comparison", view_compare.render, snapshot)
    with trials:
        guarded("trial list", view_trials.render, path, snapshot)
    for tab in alignment:
        with tab:
            guarded("camera alignment", view_align.render, Path(align_dir))


# Streamlit runs this file as "__main__"; multiprocessing re-imports a leftover __main__ (after AppTest) as
# "__mp_main__" in worker processes, which must not start the app.
if __name__ == "__main__":
    main()
