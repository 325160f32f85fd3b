"""The trial database's schema as versioned migrations (``PRAGMA user_version``); docs/trials_db.md describes it.
Stdlib only."""

from __future__ import annotations

import sqlite3


class TrialsDBError(RuntimeError):
    """The database cannot be used: a newer schema, not a trial database, a bad value."""


# ---------------------------------------------------------------------- schema, in versioned migrations
# Each migration is a list of SQL statements separated by ";" (none inside literals), run in one transaction
# (executescript would commit on its own). Never edit a released migration: append a new one.
_V1_CORE = """
        CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            task TEXT NOT NULL,
            checkpoint_label TEXT NOT NULL,
            checkpoint_id TEXT,
            checkpoint_hash TEXT,
            robot TEXT NOT NULL,
            robot_kind TEXT NOT NULL CHECK (robot_kind IN ('real', 'sim')),
            operator TEXT NOT NULL,
            server TEXT,
            planned_trials INTEGER NOT NULL CHECK (planned_trials > 0),
            judge TEXT NOT NULL CHECK (judge IN ('predicate', 'operator')),
            seed_start INTEGER,
            settings TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE INDEX sessions_identity ON sessions (task, checkpoint_label, operator, robot);
        CREATE TABLE trials (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            k INTEGER NOT NULL CHECK (k >= 1),
            seed INTEGER,
            instruction TEXT NOT NULL DEFAULT '',
            outcome TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'aborted')),
            judged_by TEXT NOT NULL CHECK (judged_by IN ('predicate', 'operator')),
            note TEXT NOT NULL DEFAULT '',
            started_at REAL NOT NULL,
            ended_at REAL NOT NULL,
            duration_s REAL NOT NULL,
            actions INTEGER NOT NULL DEFAULT 0,
            end_reason TEXT NOT NULL,
            fault TEXT,
            latency_p50_ms REAL,
            latency_p95_ms REAL,
            chunks INTEGER NOT NULL DEFAULT 0,
            safety_event_count INTEGER NOT NULL DEFAULT 0,
            data_path TEXT,
            UNIQUE (session_id, k)
        );
        CREATE TABLE trial_videos (
            trial_id INTEGER NOT NULL REFERENCES trials (id) ON DELETE CASCADE,
            camera TEXT NOT NULL,
            path TEXT NOT NULL,
            PRIMARY KEY (trial_id, camera)
        );
        CREATE TABLE safety_events (
            id INTEGER PRIMARY KEY,
            trial_id INTEGER NOT NULL REFERENCES trials (id) ON DELETE CASCADE,
            t REAL NOT NULL,
            reason TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX safety_events_trial ON safety_events (trial_id);
"""

# v2: operator corrections (the dashboard): a history row per change; per-session progress as a view.
_V2_CORRECTIONS = """
        CREATE TABLE outcome_history (
            id INTEGER PRIMARY KEY,
            trial_id INTEGER NOT NULL REFERENCES trials (id) ON DELETE CASCADE,
            changed_by TEXT NOT NULL,
            changed_at REAL NOT NULL,
            old_outcome TEXT NOT NULL,
            new_outcome TEXT NOT NULL,
            old_note TEXT NOT NULL,
            new_note TEXT NOT NULL
        );
        CREATE INDEX outcome_history_trial ON outcome_history (trial_id);
        CREATE VIEW session_progress AS
            SELECT s.id AS session_id,
                   COUNT(t.id) AS attempts,
                   COALESCE(SUM(t.outcome IN ('success', 'failure')), 0) AS judged,
                   COALESCE(SUM(t.outcome = 'success'), 0) AS successes,
                   COALESCE(SUM(t.outcome = 'failure'), 0) AS failures,
                   COALESCE(SUM(t.outcome = 'aborted'), 0) AS aborted,
                   MAX(t.ended_at) AS last_trial_at
            FROM sessions s LEFT JOIN trials t ON t.session_id = s.id
            GROUP BY s.id;
"""

# v3: how a successful sim-twin trial did it (grasp / push / drag / press; NULL for real arms and failures).
_V3_STRATEGY = """
        ALTER TABLE trials ADD COLUMN strategy TEXT;
"""

# v4: routine smoothing as a per-trial statistic (servo ticks, and those the safety filter's rate limits reshaped:
# no longer one safety event each), and the provenance of the head-camera calibration a session's policy was trained
# with (JSON, as the policy server announced it; NULL when none).
_V4_SMOOTHING_CALIBRATION = """
        ALTER TABLE trials ADD COLUMN ticks INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE trials ADD COLUMN smoothed_ticks INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE sessions ADD COLUMN camera_calibration TEXT
"""

MIGRATIONS: tuple[str, ...] = (_V1_CORE, _V2_CORRECTIONS, _V3_STRATEGY, _V4_SMOOTHING_CALIBRATION)
SCHEMA_VERSION = len(MIGRATIONS)  # PRAGMA user_version of an up-to-date database


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Apply the migrations after the database's ``user_version`` up to ``target``, each in its own transaction."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise TrialsDBError(f"schema version {version} is newer than this pushcut knows ({SCHEMA_VERSION}): "
                            "upgrade pushcut, or use another --db")  # fmt: skip
    for number in range(version + 1, target + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in filter(str.strip, MIGRATIONS[number - 1].split(";")):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return max(version, target)
