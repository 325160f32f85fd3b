"""The Streamlit dashboard through AppTest (every view on the seeded demo database, corrections through the form,
bad databases as messages, never an exception) and the `pushcut dashboard` command's errors."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import streamlit as st
from dashboard_helpers import (
    ABORTED_TRIAL,
    DEMO_TRIALS,
    allow_null_outcomes,
    corrupt,
    demo_copy,
    make_pristine_demo,
    raw,
    set_version,
    small_db,
    version_1_db,
)
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from pushcut.cli import app as cli
from pushcut.dashboard import data, tables, view_sessions
from pushcut.dashboard.cli import streamlit_command
from pushcut.trials_db.database import SCHEMA_VERSION, TrialsDB

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return make_pristine_demo(tmp_path_factory.mktemp("demo"))


def run_app(monkeypatch, db: Path | None) -> AppTest:
    if db is None:
        monkeypatch.delenv("PUSHCUT_DASHBOARD_DB", raising=False)
    else:
        monkeypatch.setenv("PUSHCUT_DASHBOARD_DB", str(db))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_every_view_on_the_demo_database(monkeypatch, pristine):
    at = run_app(monkeypatch, pristine)
    assert not at.error and not at.warning
    assert [t.label for t in at.tabs] == ["Sessions", "Comparison", "Trials"]
    (running,) = at.progress
    assert running.value == 24 and "click_bell · grpo · sim · sim-runner: 12/50 judged, 9 successes" in running.text
    overview = at.dataframe[0].value
    assert list(overview.progress) == ["50/50"] * 4 + ["12/50"] and list(overview.wilson_95)[0] == "36.6–63.4 %"
    grid = at.table[0].value
    assert grid.loc["click_bell", "sft"] == "50% [36.6–63.4] n=50" and list(grid.columns) == ["sft", "grpo"]
    assert "Fisher p = 0.0656: not significant at 0.05" in texts(at.markdown)
    assert at.selectbox(key="compare_a").value == "sft" and at.selectbox(key="compare_b").value == "grpo"
    assert f"{DEMO_TRIALS} of {DEMO_TRIALS} trials" in texts(at.caption)
    assert {b.label for b in at.get("download_button")} >= {
        "Download sessions.csv", "Download comparison_real.csv", "Download trials.csv"}  # fmt: skip
    assert at.subheader[-1].value.startswith("Trial #213")  # the newest trial in detail


def test_comparison_of_the_sim_robot_has_one_checkpoint(monkeypatch, pristine):
    at = run_app(monkeypatch, pristine)
    at.radio(key="compare_kind").set_value("sim").run()
    assert list(at.table[0].value.columns) == ["grpo"]
    assert "Only one checkpoint (grpo)" in texts(at.info)
    at.radio(key="compare_kind").set_value("real").run()
    at.selectbox(key="compare_b").set_value("sft").run()
    assert "Pick two different checkpoints." in texts(at.info)


def test_filters_and_the_detail_of_an_aborted_trial(monkeypatch, pristine):
    at = run_app(monkeypatch, pristine)
    at.multiselect(key="f_outcome").set_value(["aborted"]).run()
    assert f"1 of {DEMO_TRIALS} trials" in texts(at.caption)
    assert at.selectbox(key="trial_pick").value == ABORTED_TRIAL
    assert at.subheader[-1].value == f"Trial #{ABORTED_TRIAL}: aborted"
    assert "arm bumped the table, reset" in texts(at.markdown)
    shown = texts(at.markdown)
    assert "of 4200 ticks (" in shown and "rate-limited by the safety filter (routine)" in shown
    at.multiselect(key="f_outcome").set_value([]).run()
    at.multiselect(key="f_operator").set_value(["ben"]).run()
    assert f"101 of {DEMO_TRIALS} trials" in texts(at.caption)


def test_a_correction_through_the_form_is_saved_with_history(monkeypatch, pristine, tmp_path):
    path = demo_copy(pristine, tmp_path)
    at = run_app(monkeypatch, path)
    at.selectbox(key="trial_pick").set_value(1).run()
    save = next(b for b in at.button if b.label == "Save correction")
    save.click().run()
    assert "Say who makes the correction." in texts(at.error)
    at.text_input(key="who_1").input("eve")
    at.selectbox(key="outcome_1").set_value("aborted")
    at.text_area(key="note_1").input("scene was not reset")
    next(b for b in at.button if b.label == "Save correction").click().run()
    assert not at.exception
    assert "trial #1: outcome" in texts(at.success) and "by eve" in texts(at.success)
    assert at.subheader[-1].value == "Trial #1: aborted"
    history = at.dataframe[-2].value  # this trial's history, then the log of every correction
    assert list(history.changed_by) == ["eve"] and list(history.new_note) == ["scene was not reset"]
    with TrialsDB(path) as db:
        assert [r["changed_by"] for r in db.history(1)] == ["eve"]
        assert db.session(1).aborted == 1


def test_no_database_given(monkeypatch):
    at = run_app(monkeypatch, None)
    assert "No trial database given" in texts(at.error)


def test_an_empty_database(monkeypatch, tmp_path):
    path = tmp_path / "empty.db"
    TrialsDB(path).close()
    at = run_app(monkeypatch, path)
    assert not at.error
    assert "No sessions yet" in texts(at.info) and "nothing to compare" in texts(at.info)


def test_an_older_schema_is_migrated_with_a_note(monkeypatch, tmp_path):
    at = run_app(monkeypatch, version_1_db(tmp_path / "old.db"))
    assert f"migrated from schema version 1 to {SCHEMA_VERSION}" in texts(at.info)
    assert at.table[0].value.loc["click_bell", "sft"] == "50% [9.5–90.5] n=2"


@pytest.mark.parametrize("kind", ["newer", "not-sqlite", "missing"])
def test_unusable_databases_show_one_message(monkeypatch, tmp_path, kind):
    path = tmp_path / "trials.db"
    if kind == "newer":
        set_version(small_db(path, ["success"]), SCHEMA_VERSION + 1)
    elif kind == "not-sqlite":
        path.write_bytes(b"\x00garbage" * 200)
    at = run_app(monkeypatch, path)
    (error,) = at.error
    assert {"newer": "upgrade pushcut", "not-sqlite": "not a SQLite", "missing": "no trial database"}[
        kind
    ] in error.value
    assert not at.tabs


def test_broken_rows_and_missing_files_are_warnings(monkeypatch, tmp_path):
    path = small_db(tmp_path / "t.db", ["success", "failure", "success"])
    allow_null_outcomes(path)
    corrupt(path, "UPDATE trials SET outcome = NULL WHERE k = 3")
    corrupt(path, "UPDATE sessions SET settings = 'oops'")
    conn = raw(path)
    conn.execute("UPDATE trials SET data_path = 'gone.npz' WHERE k = 3")
    conn.execute("INSERT INTO trial_videos VALUES (3, 'head_camera', 'gone.mp4')")
    conn.close()
    at = run_app(monkeypatch, path)
    warnings = texts(at.warning)
    assert "#3: unreadable outcome" in warnings and "settings are not valid JSON" in warnings
    assert at.subheader[-1].value == "Trial #3: unreadable outcome (None)"
    assert "video of head_camera is missing" in warnings and "joint data is missing" in warnings
    assert at.table[0].value.loc["click_bell", "sft"].startswith("50% ")  # 1 of the 2 readable judged trials


def test_a_failing_view_is_a_message_and_the_others_still_work(monkeypatch, pristine):
    def broken(*args, **kwargs):
        raise ValueError("boom")

    monkeypatch.setattr(tables, "comparison", broken)
    at = run_app(monkeypatch, pristine)
    assert "The comparison could not be shown (ValueError: boom)" in texts(at.error)
    assert at.progress and f"{DEMO_TRIALS} of {DEMO_TRIALS} trials" in texts(at.caption)


def test_the_live_overview_survives_a_database_that_vanished(monkeypatch, tmp_path):
    shown: list[str] = []
    monkeypatch.setattr(st, "error", shown.append)
    view_sessions._live_overview(tmp_path / "gone.db", (5,))  # what a timed rerun of the fragment runs
    assert len(shown) == 1 and "no trial database at" in shown[0]


# ---------------------------------------------------------------------- the command
def test_the_command_refuses_a_missing_or_unusable_database_and_a_taken_port(tmp_path, pristine):
    runner = CliRunner()
    result = runner.invoke(cli, ["dashboard", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 2 and "no trial database at" in result.output
    newer = small_db(tmp_path / "new.db", ["success"])
    set_version(newer, SCHEMA_VERSION + 1)
    result = runner.invoke(cli, ["dashboard", "--db", str(newer)])
    assert result.exit_code == 2 and "newer than this dashboard knows" in result.output
    result = runner.invoke(cli, ["dashboard", "--db", str(pristine), "--align-dir", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "--align-dir" in result.output and "is not a folder" in result.output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(cli, ["dashboard", "--db", str(pristine), "--port", str(port)])
    assert result.exit_code == 2 and f"port {port} on 127.0.0.1 is already in use" in result.output
    assert data.database_problem(pristine) is None


def test_the_streamlit_command_line_is_headless_without_usage_statistics(tmp_path):
    command = streamlit_command(tmp_path / "t.db", "127.0.0.1", 8600)
    assert command[1:4] == ["-m", "streamlit", "run"] and command[4].endswith("dashboard/app.py")
    flags = dict(zip(command[5:-3:2], command[6:-3:2]))
    assert flags == {"--server.address": "127.0.0.1", "--server.port": "8600", "--server.headless": "true",
                     "--browser.gatherUsageStats": "false", "--client.toolbarMode": "minimal"}  # fmt: skip
    assert command[-3:] == ["--", "--db", str((tmp_path / "t.db").resolve())]
    with_align = streamlit_command(tmp_path / "t.db", "127.0.0.1", 8600, tmp_path / "align")
    assert with_align[-5:] == ["--", "--db", str((tmp_path / "t.db").resolve()), "--align-dir",
                               str((tmp_path / "align").resolve())]  # fmt: skip


def test_the_camera_alignment_tab_shows_the_live_view_and_queues_nudges(monkeypatch, tmp_path, pristine):
    import time

    import numpy as np

    from pushcut.common.live_view import LIVE_IMAGE, LiveStatus, read_nudges, write_status

    folder = tmp_path / "align"
    folder.mkdir()
    monkeypatch.setenv("PUSHCUT_ALIGN_DIR", str(folder))
    at = run_app(monkeypatch, pristine)
    assert [t.label for t in at.tabs] == ["Sessions", "Comparison", "Trials", "Camera alignment"]
    assert "No live view in" in texts(at.tabs[3].info)

    import cv2

    cv2.imwrite(str(folder / LIVE_IMAGE), np.zeros((24, 32, 3), np.uint8))
    status = LiveStatus(7, time.time(), (0.0, -0.5, 0.8), (0.0, -40.0, 0.0), 2.345, 12.5,
                        nudges_applied=["0.01,0,0,0,0,0"], nudges_rejected=["x: not six numbers"])  # fmt: skip
    write_status(folder, status)
    at = run_app(monkeypatch, pristine)
    tab = at.tabs[3]
    assert not tab.error and [m.value for m in tab.metric] == ["2.35 px", "12.5"]
    assert "rejected: x: not six numbers" in texts(tab.warning)
    assert "-0.5000" in texts(tab.markdown) and "Nudges applied: 1" in texts(tab.markdown)
    tab.number_input(key="dx").set_value(1.5)
    tab.number_input(key="dyaw").set_value(-0.25)
    tab.button[0].click()
    at.run()
    assert read_nudges(folder, 0) == ["0.015,0,0,0,0,-0.25"]
    assert "queued `0.015,0,0,0,0,-0.25`" in texts(at.tabs[3].success)
