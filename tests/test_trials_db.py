"""The SQLite trial database: schema, WAL, migrations, durability under kill -9, outcome corrections with history."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from pushcut.common.conventions import EVAL_SEED_START
from pushcut.common.stats import wilson_interval
from pushcut.trials_db.database import (
    SCHEMA_VERSION,
    SafetyEventRecord,
    SessionInfo,
    TrialRecord,
    TrialsDB,
    TrialsDBError,
    migrate,
)

INFO = SessionInfo(task="click_bell", checkpoint_label="sft", robot="sim", operator="ada", planned_trials=50)


def _trial(k: int, outcome: str = "success", **extra) -> TrialRecord:
    now = time.time()
    return TrialRecord(k=k, outcome=outcome, judged_by="predicate", started_at=now - 2.0, ended_at=now,
                       end_reason="done", seed=EVAL_SEED_START + k, instruction="press the bell", **extra)  # fmt: skip


def test_fresh_database_has_the_schema_in_wal_mode(tmp_path):
    path = tmp_path / "trials.db"
    with TrialsDB(path) as db:
        assert db.version == SCHEMA_VERSION
        tables = {r[0] for r in db.conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
        assert {"sessions", "trials", "trial_videos", "safety_events", "outcome_history", "session_progress"} <= tables
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent: readers see WAL too
    raw.close()


def test_trial_with_videos_and_safety_events_and_the_session_summary(tmp_path):
    with TrialsDB(tmp_path / "t.db") as db:
        sid = db.create_session(INFO)
        events = [SafetyEventRecord(0.5, "velocity_clamp", "left_joint2"), SafetyEventRecord(1.0, "watchdog")]
        tid = db.add_trial(sid, _trial(1, videos={"head_camera": "v/1.mp4"}, safety_events=events, actions=40,
                                       latency_p50_ms=20.0, latency_p95_ms=35.0, chunks=5))  # fmt: skip
        db.add_trial(sid, _trial(2, "failure"))
        db.add_trial(sid, _trial(3, "aborted", note="scene knocked over"))
        row = db.trials(sid)[0]
        assert (row["actions"], row["chunks"], row["safety_event_count"]) == (40, 5, 2)
        assert row["duration_s"] == pytest.approx(2.0)
        assert db.trial_videos(tid) == {"head_camera": "v/1.mp4"}
        assert [(e["reason"], e["detail"]) for e in db.safety_events(tid)] == [
            ("velocity_clamp", "left_joint2"), ("watchdog", "")]  # fmt: skip
        s = db.session(sid)
        assert (s.attempts, s.judged, s.successes, s.failures, s.aborted) == (3, 2, 1, 1, 1)
        assert s.rate == 0.5 and not s.complete and s.last_trial_at is not None
        assert db.find_session("click_bell", "sft", "ada", "sim").id == sid
        assert db.find_session("click_bell", "rl", "ada", "sim") is None
        with pytest.raises(sqlite3.IntegrityError):  # k is unique per session; nothing of the failed trial stays
            db.add_trial(sid, _trial(1, videos={"wrist": "x.mp4"}, safety_events=events))
        assert db.conn.execute("SELECT COUNT(*) FROM safety_events").fetchone()[0] == 2
        assert db.conn.execute("SELECT COUNT(*) FROM trial_videos").fetchone()[0] == 1
        with pytest.raises(TrialsDBError, match="outcome"):
            db.add_trial(sid, _trial(4, "maybe"))


def test_migrates_a_version_1_database_keeping_its_rows(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, target=1) == 1
    conn.execute(
        "INSERT INTO sessions (task, checkpoint_label, robot, robot_kind, operator, planned_trials, judge, "
        "created_at, updated_at) VALUES ('click_bell', 'sft', 'piper', 'real', 'ada', 50, 'operator', 1, 1)"
    )
    conn.execute("INSERT INTO trials (session_id, k, outcome, judged_by, started_at, ended_at, duration_s, "
                 "end_reason) VALUES (1, 1, 'success', 'operator', 1, 2, 1, 'done')")  # fmt: skip
    conn.close()
    with TrialsDB(path) as db:
        assert db.version == SCHEMA_VERSION
        s = db.session(1)
        assert (s.robot_kind, s.judged, s.successes) == ("real", 1, 1)
        db.amend_trial(1, who="bob", outcome="failure")  # the v2 table works on migrated data
        assert db.session(1).successes == 0
        assert db.trials(1)[0]["strategy"] is None  # v3: a real-arm trial has no simulator-judged strategy
        row = db.trials(1)[0]
        assert (row["ticks"], row["smoothed_ticks"]) == (0, 0)  # v4: no statistic recorded for older trials
        assert db.conn.execute("SELECT camera_calibration FROM sessions").fetchone()[0] is None


def test_smoothing_statistic_and_calibration_provenance_are_kept(tmp_path):
    provenance = '{"camera": "head_camera", "sha256": "ab12", "serial": "123456789012"}'
    with TrialsDB(tmp_path / "t.db") as db:
        sid = db.create_session(SessionInfo(**{**INFO.__dict__, "camera_calibration": provenance}))
        db.add_trial(sid, _trial(1, ticks=300, smoothed_ticks=12))
        row = db.trials(sid)[0]
        assert (row["ticks"], row["smoothed_ticks"], row["safety_event_count"]) == (300, 12, 0)
        stored = db.conn.execute("SELECT camera_calibration FROM sessions WHERE id = ?", (sid,)).fetchone()[0]
        assert stored == provenance


def test_sim_successes_keep_their_strategy(tmp_path):
    with TrialsDB(tmp_path / "t.db") as db:
        sid = db.create_session(INFO)
        db.add_trial(sid, _trial(1, strategy="push"))
        db.add_trial(sid, _trial(2, "failure"))
        assert [r["strategy"] for r in db.trials(sid)] == ["push", None]


def test_a_newer_schema_or_a_foreign_file_is_refused_clearly(tmp_path):
    path = tmp_path / "new.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(TrialsDBError, match="newer than this pushcut knows"):
        TrialsDB(path)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(TrialsDBError, match="not a usable trial database"):
        TrialsDB(junk)
    with pytest.raises(TrialsDBError, match="folder"):
        TrialsDB(tmp_path)


def test_outcome_corrections_keep_history(tmp_path):
    with TrialsDB(tmp_path / "t.db") as db:
        sid = db.create_session(INFO)
        tid = db.add_trial(sid, _trial(1, "success"))
        db.amend_trial(tid, who="bob", outcome="failure", note="the wrong arm pressed it")
        db.amend_trial(tid, who="eve", note="confirmed on video")
        history = [dict(r) for r in db.history(tid)]
        assert [(h["changed_by"], h["old_outcome"], h["new_outcome"]) for h in history] == [
            ("bob", "success", "failure"), ("eve", "failure", "failure")]  # fmt: skip
        assert (history[1]["old_note"], history[1]["new_note"]) == ("the wrong arm pressed it", "confirmed on video")
        row = db.trials(sid)[0]
        assert (row["outcome"], row["note"], row["judged_by"]) == ("failure", "confirmed on video", "predicate")
        assert db.session(sid).successes == 0
        with pytest.raises(TrialsDBError, match="outcome must be"):
            db.amend_trial(tid, who="bob", outcome="great")
        with pytest.raises(TrialsDBError, match="no trial"):
            db.amend_trial(999, who="bob", note="x")
        assert len(db.history(tid)) == 2  # failed corrections left nothing behind


WRITER = textwrap.dedent("""
    import sys, time
    from pushcut.trials_db.database import SessionInfo, TrialRecord, TrialsDB
    db = TrialsDB(sys.argv[1])
    sid = db.create_session(SessionInfo("click_bell", "sft", "sim", "ada", 1000))
    for k in range(1, 1000):
        now = time.time()
        db.add_trial(sid, TrialRecord(k=k, outcome="success" if k % 2 else "failure", judged_by="predicate",
                                      started_at=now, ended_at=now, end_reason="done", seed=k))
        print(k, flush=True)
""")


def test_finished_trials_survive_kill_9_of_the_writer(tmp_path):
    path = tmp_path / "t.db"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        committed = 0
        while committed < 5:
            line = writer.stdout.readline()
            assert line, "the writer died before committing 5 trials"
            committed = int(line)
        writer.send_signal(signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait(30)
    assert writer.returncode == -signal.SIGKILL
    with TrialsDB(path) as db:
        assert db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        ks = [r["k"] for r in db.trials(1)]
        assert len(ks) >= committed and ks == list(range(1, len(ks) + 1))  # every reported trial, no gaps
        assert db.session(1).judged == len(ks)


@pytest.mark.parametrize(("successes", "low", "high"), [(0, 0.0, 0.071), (5, 0.043, 0.214), (25, 0.366, 0.634),
                                                        (45, 0.786, 0.957), (50, 0.929, 1.0)])  # fmt: skip
def test_wilson_interval_matches_the_reference_table(successes, low, high):
    got = wilson_interval(successes, 50)
    assert got == pytest.approx((low, high), abs=6e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_trial_list_and_run_cli_errors(tmp_path):
    from typer.testing import CliRunner

    from pushcut.cli import app

    path = tmp_path / "trials.db"
    with TrialsDB(path) as db:
        sid = db.create_session(INFO)
        for k in range(1, 11):
            db.add_trial(sid, _trial(k, "success" if k <= 5 else "failure"))
        db.add_trial(sid, _trial(11, "aborted"))
    cli = CliRunner()
    listed = cli.invoke(app, ["trial", "list", "--db", str(path)])
    assert listed.exit_code == 0, listed.output
    assert "click_bell" in listed.output and "10/50" in listed.output and "50%" in listed.output
    assert "24%-76%" in listed.output  # Wilson 95 % of 5/10
    missing = cli.invoke(app, ["trial", "list", "--db", str(tmp_path / "none.db")])
    assert missing.exit_code == 2 and "no trial database" in missing.output
    bad = cli.invoke(app, ["trial", "run", "--task", "click_bell", "--checkpoint-label", "x", "--operator", "ada",
                           "--robot", "ur5", "--db", str(path)])  # fmt: skip
    assert bad.exit_code == 2 and "--robot must be 'sim', 'piper' or 'virtual-piper'" in bad.output
