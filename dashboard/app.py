"""The Streamlit dashboard of trial outcomes (issue 7): sessions, comparisons, trials. Start it with
``pushcut dashboard --db trials.db`` or ``streamlit run dashboard/app.py -- --db trials.db``; the database may also
come from the ``PUSHCUT_DASHBOARD_DB`` environment variable. Data layer: data.py, tables.py, detail.py, stats.py."""

from __future__ import annotations

import argparse
import os
import sys

import streamlit as st

from pushcut.dashboard import data, view_compare, view_sessions, view_trials
from pushcut.dashboard.ui import guarded


def database_argument() -> str | None:
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--db")
    known, _ = parser.parse_known_args(sys.argv[1:])
    return known.db or os.environ.get("PUSHCUT_DASHBOARD_DB")


def main() -> None:
    st.set_page_config(page_title="pushcut · trials", page_icon="🤖", layout="wide")
    st.title("pushcut · trial outcomes")
    path = database_argument()
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
    sessions, comparison, trials = st.tabs(["Sessions", "Comparison", "Trials"])
    with sessions:
        guarded("sessions overview", view_sessions.render, path, snapshot)
    with comparison:
        guarded("comparison", view_compare.render, snapshot)
    with trials:
        guarded("trial list", view_trials.render, path, snapshot)


# Streamlit runs this file as "__main__"; multiprocessing re-imports a leftover __main__ (after AppTest) as
# "__mp_main__" in worker processes, which must not start the app.
if __name__ == "__main__":
    main()
