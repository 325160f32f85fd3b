"""The trial database: SQLite (stdlib ``sqlite3``), WAL, versioned migrations. Schema: docs/trials_db.md.

Written by ``pushcut trial run`` (one finished trial = one transaction, committed before the next trial starts, so
a crash or ``kill -9`` never loses a finished trial) and read (and amended by operators) by the dashboard.

    db = TrialsDB("trials.db")                       # creates or migrates; TrialsDBError on a newer schema
    sid = db.create_session(SessionInfo(task="click_bell", checkpoint_label="sft", robot="sim", operator="ada",
                                        planned_trials=50))
    db.add_trial(sid, TrialRecord(k=1, outcome="success", judged_by="predicate", ...))
    db.amend_trial(trial_id, who="ada", outcome="failure", note="bell pressed by the wrong arm")
    for s in db.sessions(): print(s.task, s.judged, s.planned_trials, s.rate, s.interval)

Times are Unix seconds (UTC, ``time.time()``); file paths are stored as given (the runner stores them relative to
the database's folder when they lie under it; :meth:`TrialsDB.resolve` turns them back into paths).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pushcut.common.stats import wilson_interval
from pushcut.trials_db.schema import MIGRATIONS, SCHEMA_VERSION, TrialsDBError, migrate

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "TrialsDBError", "migrate", "TrialsDB", "SessionInfo", "TrialRecord",
           "SafetyEventRecord", "SessionSummary", "OUTCOMES", "JUDGES"]  # fmt: skip

T = TypeVar("T")
OUTCOMES = ("success", "failure", "aborted")
JUDGES = ("predicate", "operator")


# ---------------------------------------------------------------------- records
@dataclass(frozen=True)
class SessionInfo:
    task: str
    checkpoint_label: str
    robot: str  # driver: 'piper' or 'sim'
    operator: str
    planned_trials: int
    judge: str = "predicate"  # who marks outcomes: the task 'predicate' (sim) or the 'operator'
    robot_kind: str = "sim"  # 'real' or 'sim'
    checkpoint_id: str | None = None
    checkpoint_hash: str | None = None
    server: str | None = None
    seed_start: int | None = None
    settings: str = "{}"  # JSON: max_actions, action_hz, chunk, cameras, ...
    camera_calibration: str | None = None  # JSON provenance of the served policy's head-camera calibration (v4)


@dataclass(frozen=True)
class SafetyEventRecord:
    t: float  # seconds since the trial started
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class TrialRecord:
    k: int  # attempt number in the session, from 1
    outcome: str
    judged_by: str
    started_at: float
    ended_at: float
    end_reason: str  # the executor's: done, max_actions, fault, operator_stop, policy_error, watchdog
    seed: int | None = None
    instruction: str = ""
    note: str = ""
    actions: int = 0
    fault: str | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    chunks: int = 0
    data_path: str | None = None
    strategy: str | None = None  # sim-twin successes: grasp / push / drag / press (pushcut.sim.strategy)
    ticks: int = 0  # servo ticks of the executor (v4)
    smoothed_ticks: int = 0  # of them, ticks the safety filter's rate limits reshaped (routine smoothing, v4)
    videos: dict[str, str] = field(default_factory=dict)  # camera -> mp4 path
    safety_events: Sequence[SafetyEventRecord] = ()


@dataclass(frozen=True)
class SessionSummary:
    id: int
    task: str
    checkpoint_label: str
    checkpoint_hash: str | None
    robot: str
    robot_kind: str
    operator: str
    planned_trials: int
    judge: str
    seed_start: int | None
    attempts: int  # trials recorded, aborted ones included
    judged: int  # success + failure: the progress k of k / planned
    successes: int
    failures: int
    aborted: int
    created_at: float
    last_trial_at: float | None

    @property
    def complete(self) -> bool:
        return self.judged >= self.planned_trials

    @property
    def rate(self) -> float | None:
        return self.successes / self.judged if self.judged else None

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.successes, self.judged)


# ---------------------------------------------------------------------- the database
class TrialsDB:
    def __init__(self, path: str | Path, *, timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise TrialsDBError(f"{self.path} is a folder; --db needs a file such as trials.db")
        try:
            self.conn = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            if self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
                raise TrialsDBError(f"{self.path}: SQLite refused WAL mode (a network file system?)")
            self.conn.execute("PRAGMA synchronous = FULL")  # a committed trial survives a power cut too
            self.conn.execute("PRAGMA foreign_keys = ON")
            migrate(self.conn)
        except sqlite3.DatabaseError as error:
            raise TrialsDBError(f"{self.path} is not a usable trial database ({error})") from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> TrialsDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(self.conn)
            self.conn.execute("COMMIT")
            return result
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def resolve(self, stored: str) -> Path:
        """A stored file path as a path (relative ones are relative to the database's folder)."""
        path = Path(stored)
        return path if path.is_absolute() else self.path.parent / path

    def relative(self, path: str | Path) -> str:
        """How the runner stores ``path``: relative to the database's folder when under it, else absolute."""
        path = Path(path).resolve()
        try:
            return str(path.relative_to(self.path.parent.resolve()))
        except ValueError:
            return str(path)

    # ------------------------------------------------------------------ sessions
    def create_session(self, info: SessionInfo) -> int:
        if info.judge not in JUDGES:
            raise TrialsDBError(f"judge must be one of {JUDGES}, got {info.judge!r}")
        row = dataclasses.asdict(info)
        now = time.time()
        sql = (f"INSERT INTO sessions ({', '.join(row)}, created_at, updated_at) "
               f"VALUES ({', '.join('?' * len(row))}, ?, ?)")  # fmt: skip
        return self._transaction(lambda c: c.execute(sql, (*row.values(), now, now)).lastrowid)

    def find_session(self, task: str, checkpoint_label: str, operator: str, robot: str) -> SessionSummary | None:
        """The newest session with this identity (see docs/trials_db.md, "Resuming"), complete or not."""
        row = self.conn.execute(
            "SELECT id FROM sessions WHERE task = ? AND checkpoint_label = ? AND operator = ? AND robot = ? "
            "ORDER BY id DESC LIMIT 1", (task, checkpoint_label, operator, robot),
        ).fetchone()  # fmt: skip
        return self.session(row["id"]) if row else None

    def update_session(self, session_id: int, **fields: Any) -> None:
        allowed = {"planned_trials", "checkpoint_id", "checkpoint_hash", "server", "settings"}
        if not fields or set(fields) - allowed:
            raise TrialsDBError(f"update_session takes some of {sorted(allowed)}, got {sorted(fields)}")
        sets = ", ".join(f"{name} = ?" for name in fields)
        self._transaction(lambda c: c.execute(f"UPDATE sessions SET {sets}, updated_at = ? WHERE id = ?",
                                              (*fields.values(), time.time(), session_id)))  # fmt: skip

    def session_settings(self, session_id: int) -> dict[str, Any]:
        """The session's settings JSON (SessionInfo.settings) as a dict."""
        row = self.conn.execute("SELECT settings FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            raise TrialsDBError(f"no session #{session_id} in {self.path}")
        return json.loads(row["settings"])

    def session(self, session_id: int) -> SessionSummary:
        rows = self._summaries("WHERE s.id = ?", (session_id,))
        if not rows:
            raise TrialsDBError(f"no session #{session_id} in {self.path}")
        return rows[0]

    def sessions(self) -> list[SessionSummary]:
        return self._summaries("", ())

    def _summaries(self, where: str, args: tuple) -> list[SessionSummary]:
        names = [f.name for f in dataclasses.fields(SessionSummary)]
        query = (f"SELECT s.*, p.* FROM sessions s JOIN session_progress p ON p.session_id = s.id {where} "
                 "ORDER BY s.id")  # fmt: skip
        return [SessionSummary(**{n: row[n] for n in names}) for row in self.conn.execute(query, args)]

    # ------------------------------------------------------------------ trials
    def add_trial(self, session_id: int, trial: TrialRecord) -> int:
        """Record a finished trial with its videos and safety events, committed in one transaction."""
        if trial.outcome not in OUTCOMES or trial.judged_by not in JUDGES:
            raise TrialsDBError(f"outcome must be one of {OUTCOMES} and judged_by one of {JUDGES}, "
                                f"got {trial.outcome!r}, {trial.judged_by!r}")  # fmt: skip
        row = {f.name: getattr(trial, f.name) for f in dataclasses.fields(trial)
               if f.name not in ("videos", "safety_events")}  # fmt: skip
        row.update(session_id=session_id, duration_s=max(0.0, trial.ended_at - trial.started_at),
                   safety_event_count=len(trial.safety_events))  # fmt: skip
        sql = f"INSERT INTO trials ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})"

        def work(c: sqlite3.Connection) -> int:
            trial_id = c.execute(sql, tuple(row.values())).lastrowid
            c.executemany("INSERT INTO trial_videos VALUES (?, ?, ?)",
                          [(trial_id, cam, path) for cam, path in trial.videos.items()])  # fmt: skip
            c.executemany("INSERT INTO safety_events (trial_id, t, reason, detail) VALUES (?, ?, ?, ?)",
                          [(trial_id, e.t, e.reason, e.detail) for e in trial.safety_events])  # fmt: skip
            c.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", (time.time(), session_id))
            return trial_id

        return self._transaction(work)

    def trials(self, session_id: int) -> list[sqlite3.Row]:
        return self.conn.execute("SELECT * FROM trials WHERE session_id = ? ORDER BY k", (session_id,)).fetchall()

    def trial_videos(self, trial_id: int) -> dict[str, str]:
        rows = self.conn.execute("SELECT camera, path FROM trial_videos WHERE trial_id = ?", (trial_id,))
        return {r["camera"]: r["path"] for r in rows}

    def safety_events(self, trial_id: int) -> list[sqlite3.Row]:
        return self.conn.execute("SELECT * FROM safety_events WHERE trial_id = ? ORDER BY t", (trial_id,)).fetchall()

    def amend_trial(self, trial_id: int, who: str, outcome: str | None = None, note: str | None = None) -> None:
        """An operator's correction of the outcome and/or the note; the old values go to ``outcome_history``."""
        if outcome is not None and outcome not in OUTCOMES:
            raise TrialsDBError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
        if not who.strip():
            raise TrialsDBError("a correction needs the name of who makes it")

        def work(c: sqlite3.Connection) -> None:
            old = c.execute("SELECT outcome, note, session_id FROM trials WHERE id = ?", (trial_id,)).fetchone()
            if old is None:
                raise TrialsDBError(f"no trial #{trial_id} in {self.path}")
            new_outcome = old["outcome"] if outcome is None else outcome
            new_note = old["note"] if note is None else note
            now = time.time()
            c.execute("INSERT INTO outcome_history (trial_id, changed_by, changed_at, old_outcome, new_outcome, "
                      "old_note, new_note) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (trial_id, who, now, old["outcome"], new_outcome, old["note"], new_note))  # fmt: skip
            c.execute("UPDATE trials SET outcome = ?, note = ? WHERE id = ?", (new_outcome, new_note, trial_id))
            c.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", (now, old["session_id"]))

        self._transaction(work)

    def history(self, trial_id: int) -> list[sqlite3.Row]:
        query = "SELECT * FROM outcome_history WHERE trial_id = ? ORDER BY id"
        return self.conn.execute(query, (trial_id,)).fetchall()
