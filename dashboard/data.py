"""The dashboard's data layer: reading the trial database (docs/trials_db.md) into pandas tables, no Streamlit.

Views read through a read-only SQLite connection; corrections go through ``TrialsDB.amend_trial`` so every change
keeps its history. Anything the page cannot use is a :class:`DashboardError` (the whole database) or a line in
``Snapshot.problems`` (single rows), never an exception on the page.

Counting (as the trial runner's): the success rate is successes / judged, judged = success + failure. Aborted trials
are listed and counted on their own but are not in the denominator; rows with an unreadable outcome neither.
"""

from __future__ import annotations

import json
import math
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from pushcut.trials_db.database import OUTCOMES, SCHEMA_VERSION, TrialsDB, TrialsDBError


class DashboardError(RuntimeError):
    """The database cannot be shown; the message is meant for the page."""


@dataclass
class Snapshot:
    """Everything the views show, read in one go: sessions and trials with per-row problems already handled."""

    path: Path
    sessions: pd.DataFrame  # raw session columns, settings parsed
    trials: pd.DataFrame  # one row per trial, with its session's task / checkpoint / robot kind / operator
    corrected: set[int] = field(default_factory=set)  # ids of trials with an outcome_history row
    problems: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------- opening
def schema_version(path: Path) -> int:
    with closing(connect_readonly(path, check=False)) as conn:
        try:
            return conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as error:
            raise DashboardError(f"{path} is not a SQLite trial database ({error})") from None


def connect_readonly(path: str | Path, *, check: bool = True) -> sqlite3.Connection:
    """A read-only connection (the runner may be writing: WAL lets both proceed)."""
    path = Path(path)
    if not path.exists():
        raise DashboardError(f"no trial database at {path} (`pushcut trial run --db {path} ...` creates it)")
    if path.is_dir():
        raise DashboardError(f"{path} is a folder; --db needs a file such as trials.db")
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
    conn.row_factory = sqlite3.Row
    if check:
        version = schema_version(path)
        if version != SCHEMA_VERSION:
            conn.close()
            raise DashboardError(f"{path} has schema version {version}; this dashboard reads {SCHEMA_VERSION}")
    return conn


def database_problem(path: str | Path) -> str | None:
    """Why the dashboard cannot show ``path`` (None when it can, after migrating an older schema)."""
    try:
        prepare(path)
    except DashboardError as error:
        return str(error)
    return None


def prepare(path: str | Path) -> list[str]:
    """Check ``path`` and bring an older schema up to date through TrialsDB; returns notes for the page."""
    path = Path(path)
    version = schema_version(path)
    if version > SCHEMA_VERSION:
        raise DashboardError(f"{path} has schema version {version}, newer than this dashboard knows "
                             f"({SCHEMA_VERSION}): upgrade pushcut to read it")  # fmt: skip
    if version == 0:
        raise DashboardError(f"{path} is not a trial database (no schema version; `pushcut trial run` writes one)")
    if version == SCHEMA_VERSION:
        return []
    try:  # migrations only add tables and views: nothing the runner wrote changes
        TrialsDB(path).close()
    except (TrialsDBError, sqlite3.Error) as error:
        raise DashboardError(f"{path} has the older schema version {version} and could not be migrated to "
                             f"{SCHEMA_VERSION} ({error}); open it once with write access") from None  # fmt: skip
    added = ", ".join(_ADDED[v] for v in range(version + 1, SCHEMA_VERSION + 1) if v in _ADDED)
    return [f"{path.name}: migrated from schema version {version} to {SCHEMA_VERSION} (adds {added})"]


# ---------------------------------------------------------------------- loading
_NUMERIC = ("started_at", "ended_at", "duration_s", "latency_p50_ms", "latency_p95_ms", "actions", "chunks",
            "safety_event_count", "seed", "ticks", "smoothed_ticks")  # fmt: skip
_ADDED = {2: "correction history", 3: "strategies", 4: "smoothing statistics, calibration provenance"}


def local_time(seconds: pd.Series) -> pd.Series:
    """Unix seconds -> naive local date-times, daylight saving time included (NaT where missing)."""
    numbers = pd.to_numeric(seconds, errors="coerce")
    stamps = [_local(x) for x in numbers.astype(float)]
    return pd.Series(pd.to_datetime(stamps), index=seconds.index, dtype="datetime64[ns]")


def _local(seconds: float) -> datetime | None:
    try:
        return datetime.fromtimestamp(seconds) if math.isfinite(seconds) else None
    except (OverflowError, OSError, ValueError):  # a corrupted time far outside any clock
        return None


def load(path: str | Path) -> Snapshot:
    """Read the whole database (a few thousand rows at most) and flag the rows the page cannot trust."""
    path = Path(path)
    try:
        with closing(connect_readonly(path)) as conn:
            sessions = pd.read_sql_query("SELECT * FROM sessions ORDER BY id", conn)
            trials = pd.read_sql_query("SELECT * FROM trials ORDER BY session_id, k", conn)
            corrected = {int(r[0]) for r in conn.execute("SELECT DISTINCT trial_id FROM outcome_history")}
    except (sqlite3.Error, pd.errors.DatabaseError) as error:
        raise DashboardError(f"{path} could not be read ({error})") from None
    problems: list[str] = []
    sessions = _clean_sessions(sessions, problems)
    trials = _clean_trials(trials, sessions, problems)
    return Snapshot(path, sessions, trials, corrected, problems)


def _clean_sessions(sessions: pd.DataFrame, problems: list[str]) -> pd.DataFrame:
    sessions = sessions.copy()
    for column in ("task", "checkpoint_label", "robot_kind", "operator", "robot"):
        missing = sessions[column].isna()
        if missing.any():
            problems.append(f"session(s) {_ids(sessions.id[missing])}: no {column}; shown as '?'")
        sessions[column] = sessions[column].fillna("?").astype(str)
    for column in ("planned_trials", "created_at", "updated_at"):
        sessions[column] = pd.to_numeric(sessions[column], errors="coerce")
    bad_plan = ~(sessions.planned_trials > 0)
    if bad_plan.any():
        problems.append(f"session(s) {_ids(sessions.id[bad_plan])}: no valid planned number of trials")
    parsed = [_parse_settings(text) for text in sessions.settings]
    sessions["settings"] = [settings for settings, _ in parsed]
    bad_json = [bad for _, bad in parsed]
    if any(bad_json):
        problems.append(f"session(s) {_ids(sessions.id[bad_json])}: settings are not valid JSON; ignored")
    return sessions


def _parse_settings(text: object) -> tuple[dict, bool]:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        value = None
    return (value, False) if isinstance(value, dict) else ({}, True)


def _clean_trials(trials: pd.DataFrame, sessions: pd.DataFrame, problems: list[str]) -> pd.DataFrame:
    trials = trials.copy()
    bad = ~trials.outcome.isin(OUTCOMES)
    if bad.any():
        problems.append(f"trial(s) {_ids(trials.id[bad])}: unreadable outcome; listed as 'invalid' and left out "
                        "of the rates (correct it in the trial detail)")  # fmt: skip
    trials["outcome"] = trials.outcome.where(~bad, "invalid")
    for column in _NUMERIC:
        numbers = pd.to_numeric(trials[column], errors="coerce")
        broken = numbers.isna() & trials[column].notna()
        if broken.any():
            problems.append(f"trial(s) {_ids(trials.id[broken])}: {column} is not a number; left blank")
        trials[column] = numbers
    trials["note"] = trials.note.fillna("").astype(str)
    trials["strategy"] = trials.strategy.fillna("").astype(str)  # blank: a real-arm trial or a failure
    # routine smoothing by the safety filter's rate limits, in % of the servo ticks (blank before schema v4)
    trials["smoothed_pct"] = 100.0 * trials.smoothed_ticks / trials.ticks.where(trials.ticks > 0)
    context = sessions[["id", "task", "checkpoint_label", "robot_kind", "robot", "operator"]]
    trials = trials.merge(context.rename(columns={"id": "session_id"}), on="session_id", how="left")
    orphans = trials.task.isna()
    if orphans.any():
        problems.append(f"trial(s) {_ids(trials.id[orphans])}: their session is missing; shown under '?'")
    for column in ("task", "checkpoint_label", "robot_kind", "robot", "operator"):
        trials[column] = trials[column].fillna("?")
    trials["started"] = local_time(trials.started_at)
    return trials


def _ids(ids: pd.Series) -> str:
    ids = [f"#{int(i)}" for i in ids]
    return ", ".join(ids[:8]) + (f" and {len(ids) - 8} more" if len(ids) > 8 else "")


# ---------------------------------------------------------------------- corrections
def correct_trial(
    path: str | Path, trial_id: int, who: str, outcome: str | None = None, note: str | None = None
) -> str:
    """An operator's correction through TrialsDB (history kept); returns a line saying what changed."""
    if outcome is None and note is None:
        raise DashboardError("nothing to change: pick a new outcome or write a note")
    try:
        with TrialsDB(path) as db:
            before = db.conn.execute("SELECT outcome, note FROM trials WHERE id = ?", (trial_id,)).fetchone()
            db.amend_trial(trial_id, who=who, outcome=outcome, note=note)
    except (TrialsDBError, sqlite3.Error) as error:
        raise DashboardError(f"the correction was not saved: {error}") from None
    changes = []
    if outcome is not None and outcome != before["outcome"]:
        changes.append(f"outcome {before['outcome']} → {outcome}")
    if note is not None and note != before["note"]:
        changes.append("note changed")
    return f"trial #{trial_id}: " + (", ".join(changes) or "nothing changed (recorded anyway)") + f" by {who}"


def history(path: str | Path, trial_id: int | None = None) -> pd.DataFrame:
    """Corrections (newest first), of one trial or of all, with the trial's session context."""
    where, args = ("WHERE h.trial_id = ?", (trial_id,)) if trial_id is not None else ("", ())
    query = ("SELECT h.trial_id, t.session_id, t.k, s.task, s.checkpoint_label, h.changed_at, h.changed_by, "
             "h.old_outcome, h.new_outcome, h.old_note, h.new_note FROM outcome_history h "
             f"LEFT JOIN trials t ON t.id = h.trial_id LEFT JOIN sessions s ON s.id = t.session_id {where} "
             "ORDER BY h.id DESC")  # fmt: skip
    with closing(connect_readonly(path)) as conn:
        table = pd.read_sql_query(query, conn, params=args)
    table.insert(0, "when", local_time(table.pop("changed_at")))
    return table


def to_csv(table: pd.DataFrame) -> bytes:
    """Any table as UTF-8 CSV bytes (for download buttons)."""
    return table.to_csv(index=False).encode("utf-8")
