"""The dashboard's data layer: statistics against reference values, tables of the seeded demo database, filters,
corrections with history, CSV, and every kind of bad input turned into a message."""

from __future__ import annotations

import io
import math
import sqlite3
import time
from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest
from dashboard_helpers import (
    ABORTED_TRIAL,
    CORRECTED_TRIAL,
    DEMO_TRIALS,
    allow_null_outcomes,
    corrupt,
    demo_copy,
    make_pristine_demo,
    raw,
    set_version,
    small_db,
    version_1_db,
    write_npz,
)

from pushcut.common.stats import wilson_interval
from pushcut.dashboard import data, detail, stats, tables
from pushcut.trials_db.database import SCHEMA_VERSION, TrialsDB


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return make_pristine_demo(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def snapshot(pristine):
    return data.load(pristine)


# ---------------------------------------------------------------------- statistics
@pytest.mark.parametrize(
    "successes, low, high",
    [(0, 0.0, 7.1), (5, 4.3, 21.4), (10, 11.2, 33.0), (25, 36.6, 63.4), (35, 56.2, 80.9), (40, 67.0, 88.8),
     (45, 78.6, 95.7), (50, 92.9, 100.0)],
)  # fmt: skip
def test_wilson_interval_matches_the_reference_table_for_50_trials(successes, low, high):
    lo, hi = wilson_interval(successes, 50)
    assert (round(100 * lo, 1), round(100 * hi, 1)) == (low, high)


def test_fisher_exact_two_sided_against_known_values():
    assert stats.fisher_exact_p(3, 4, 1, 4) == pytest.approx(34 / 70)  # the lady tasting tea
    assert stats.fisher_exact_p(1, 10, 11, 14) == pytest.approx(0.002759, abs=5e-7)  # Wikipedia's worked example
    assert stats.fisher_exact_p(0, 50, 50, 50) == pytest.approx(2 / math.comb(100, 50))  # only the two extremes
    assert stats.fisher_exact_p(25, 50, 35, 50) == pytest.approx(0.06558, abs=1e-5)
    assert stats.fisher_exact_p(25, 50, 35, 50) == stats.fisher_exact_p(35, 50, 25, 50)  # two-sided: symmetric
    assert stats.fisher_exact_p(20, 50, 20, 50) == 1.0
    assert stats.fisher_exact_p(0, 0, 5, 10) == 1.0 and stats.fisher_exact_p(0, 10, 0, 10) == 1.0
    with pytest.raises(ValueError):
        stats.fisher_exact_p(6, 5, 1, 5)


def test_two_proportion_z_test_and_the_verdict():
    z, p = stats.two_proportion_z(25, 50, 35, 50)  # pooled 0.6, se = sqrt(0.24 * 0.04)
    assert z == pytest.approx(0.2 / math.sqrt(0.0096)) and p == pytest.approx(0.04123, abs=1e-5)
    assert stats.two_proportion_z(0, 50, 0, 50) == (0.0, 1.0) and stats.two_proportion_z(0, 0, 1, 2) == (0.0, 1.0)
    close, far = stats.difference(25, 50, 35, 50), stats.difference(10, 50, 40, 50)
    assert close.diff == pytest.approx(0.2) and "cannot tell them apart" in close.verdict(("sft", "grpo"))
    assert far.verdict(("sft", "grpo")) == "significant at 0.05: grpo is better"
    assert stats.difference(0, 0, 3, 5).verdict() == "no judged trials on one side"


# ---------------------------------------------------------------------- tables of the demo database
def test_sessions_overview_counts_rates_intervals_and_status(snapshot):
    now = time.time()
    overview = tables.sessions_overview(snapshot.sessions, snapshot.trials, now).set_index("session_id")
    assert list(overview.progress) == ["50/50", "50/50", "50/50", "50/50", "12/50"]
    assert list(overview.successes) == [25, 35, 10, 40, 9] and list(overview.aborted) == [0, 0, 0, 1, 0]
    assert list(overview.status) == ["complete"] * 4 + ["running"]
    assert overview.loc[3, "rate"] == 0.2 and round(100 * overview.loc[3, "ci_high"], 1) == 33.0
    assert (overview.loc[4, "judged"], overview.loc[4, "failures"]) == (50, 10)  # the aborted attempt is apart
    later = tables.sessions_overview(snapshot.sessions, snapshot.trials, now + 2 * tables.RUNNING_WINDOW_S)
    assert later.status.iloc[-1] == "paused"
    assert overview.started.notna().all() and overview.last_trial.notna().all()


def test_comparison_in_the_papers_layout_with_the_average(snapshot):
    table = tables.comparison(snapshot.trials, "real")
    grid = tables.comparison_grid(table)
    assert list(grid.index) == ["click_bell", "handover_block", "Average"] and list(grid.columns) == ["sft", "grpo"]
    assert grid.loc["click_bell", "sft"] == "50% [36.6–63.4] n=50"
    assert grid.loc["handover_block", "grpo"] == "80% [67.0–88.8] n=50"
    assert grid.loc["Average", "grpo"].startswith("75% [") and grid.loc["Average", "grpo"].endswith("n=100")
    average = table[table.task == "Average"].set_index("checkpoint")
    assert average.loc["sft", "rate"] == pytest.approx(0.35) and average.loc["grpo", "aborted"] == 1
    sim = tables.comparison(snapshot.trials, "sim")
    assert list(sim.checkpoint.unique()) == ["grpo"] and sim.judged.iloc[0] == 12


def test_strategies_of_successful_sim_trials(snapshot):
    sim = snapshot.trials[snapshot.trials.robot_kind == "sim"]
    ways = tables.strategies(sim)
    assert ways.to_dict("records") == [
        {"task": "click_bell", "checkpoint": "grpo", "press": int((sim.outcome == "success").sum())}]  # fmt: skip
    assert tables.strategies(snapshot.trials[snapshot.trials.robot_kind == "real"]).empty  # real arms: none


def test_the_average_is_the_mean_of_task_rates_when_n_differs():
    trials = pd.DataFrame({"session_id": [1, 1, 2, 2, 2, 2], "k": [1, 2, 1, 2, 3, 4], "robot_kind": "real",
                           "task": ["a", "a", "b", "b", "b", "b"], "checkpoint_label": "x",
                           "outcome": ["success", "failure", "failure", "failure", "failure", "aborted"]})  # fmt: skip
    average = tables.comparison(trials).set_index("task").loc["Average"]
    assert average.rate == pytest.approx(0.25)  # (1/2 + 0/3) / 2, not the pooled 1/5
    assert (average.judged, average.successes, average.aborted, average.tasks) == (5, 1, 1, 2)
    assert tables.comparison(trials, "sim").empty and tables.comparison_grid(tables.comparison(trials, "sim")).empty


def test_differences_per_task_and_pooled_with_n_and_significance(snapshot):
    diff = tables.differences(tables.comparison(snapshot.trials, "real"), "sft", "grpo").set_index("task")
    assert list(diff.index) == ["click_bell", "handover_block", "all 2 tasks (pooled)"]
    click = diff.loc["click_bell"]
    assert (click.n_a, click.n_b, click["diff"]) == (50, 50, pytest.approx(0.2))
    assert click.fisher_p == pytest.approx(0.06558, abs=1e-5) and click.z_p < 0.05  # the z test would say yes
    assert "cannot tell them apart" in click.verdict
    assert diff.loc["handover_block", "verdict"] == "significant at 0.05: grpo is better"
    assert diff.loc["all 2 tasks (pooled)", "n_a"] == 100
    assert tables.differences(tables.comparison(snapshot.trials, "real"), "sft", "nope").empty


def test_trial_filters(snapshot):
    trials = snapshot.trials
    assert len(tables.filter_trials(trials)) == DEMO_TRIALS
    assert list(tables.filter_trials(trials, outcomes=["aborted"]).id) == [ABORTED_TRIAL]
    handover = tables.filter_trials(trials, tasks=["handover_block"], checkpoints=["grpo"])
    assert len(handover) == 51 and set(handover.operator) == {"ben"}
    assert len(tables.filter_trials(trials, operators=["ada"], outcomes=["success"])) == 60
    assert len(tables.filter_trials(trials, robot_kinds=["sim"], sessions=[5])) == 12
    listing = tables.trial_list(trials, snapshot.corrected)
    assert listing.set_index("id").loc[CORRECTED_TRIAL, "corrected"] and listing.corrected.sum() == 1
    assert listing.started.is_monotonic_decreasing


def test_date_filter_uses_the_local_day_both_ends_included(tmp_path):
    days = [datetime(2026, 1, 10, 12), datetime(2026, 1, 11, 23, 59), datetime(2026, 1, 12, 0, 1)]
    trials = data.load(small_db(tmp_path / "t.db", ["success", "failure", "success"], days=days)).trials
    assert list(tables.filter_trials(trials, date_from=date(2026, 1, 11)).k) == [2, 3]
    assert list(tables.filter_trials(trials, date_to=date(2026, 1, 11)).k) == [1, 2]
    assert list(tables.filter_trials(trials, date_from=date(2026, 1, 12), date_to=date(2026, 1, 12)).k) == [3]


def test_routine_smoothing_is_a_share_of_the_ticks_in_the_trial_list(snapshot):
    listing = tables.trial_list(snapshot.trials, snapshot.corrected)
    row = listing[(listing.session_id == 1) & (listing.k == 3)].iloc[0]
    assert row.smoothed_pct == pytest.approx(100 * (37 * 3 % 420) / 4200)
    assert list(listing.columns).index("smoothed_pct") == list(listing.columns).index("safety_event_count") + 1


def test_trial_detail_of_the_demo(pristine):
    info = detail.trial_detail(pristine, CORRECTED_TRIAL)
    assert info.problems == [] and info.row["outcome"] == "failure"
    assert [v.camera for v in info.videos] == ["head_camera"] and info.videos[0].exists
    assert set(info.joints.kind) == {"commanded", "measured"} and info.joints.joint.nunique() == 14
    assert len(info.joints) == 45 * 14 * 2
    assert list(info.history[["changed_by", "old_outcome", "new_outcome"]].iloc[0]) == ["ada", "success", "failure"]
    assert list(detail.trial_detail(pristine, 9).events.reason) == ["joint_limit"]


def test_corrections_go_through_trialsdb_and_keep_history(pristine, tmp_path):
    path = demo_copy(pristine, tmp_path)
    message = data.correct_trial(path, 1, "eve", outcome="aborted", note="scene was not reset")
    assert message.startswith("trial #1: outcome") and "by eve" in message
    assert data.correct_trial(path, 1, "bob", note="checked on video") == "trial #1: note changed by bob"
    log = data.history(path, 1)
    assert list(log.changed_by) == ["bob", "eve"]  # newest first
    assert (log.old_note.iloc[0], log.new_note.iloc[0]) == ("scene was not reset", "checked on video")
    assert len(data.history(path)) == 3  # with the demo's own correction
    snapshot = data.load(path)
    assert snapshot.corrected == {1, CORRECTED_TRIAL}
    overview = tables.sessions_overview(snapshot.sessions, snapshot.trials, time.time())
    first = overview.set_index("session_id").loc[1]
    assert (first.judged, first.aborted) == (49, 1)  # an aborted trial leaves the denominator
    for kwargs, match in ((dict(who=" ", note="x"), "who"), (dict(who="eve"), "nothing to change"),
                          (dict(who="eve", outcome="great"), "outcome must be")):  # fmt: skip
        with pytest.raises(data.DashboardError, match=match):
            data.correct_trial(path, 1, **kwargs)
    with pytest.raises(data.DashboardError, match="no trial #999"):
        data.correct_trial(path, 999, "eve", note="x")
    assert len(data.history(path, 1)) == 2  # refused corrections leave nothing


def test_csv_export_round_trips(snapshot):
    table = tables.comparison(snapshot.trials, "real")
    back = pd.read_csv(io.BytesIO(data.to_csv(table)))
    assert list(back.columns) == list(table.columns) and len(back) == len(table)
    assert back.rate.tolist() == pytest.approx(table.rate.tolist())
    assert data.to_csv(pd.DataFrame()).strip() == b""


# ---------------------------------------------------------------------- bad input
def test_an_empty_database_gives_empty_tables(tmp_path):
    path = tmp_path / "empty.db"
    TrialsDB(path).close()
    assert data.prepare(path) == []
    snapshot = data.load(path)
    assert snapshot.sessions.empty and snapshot.trials.empty and snapshot.problems == []
    assert tables.sessions_overview(snapshot.sessions, snapshot.trials, time.time()).empty
    assert tables.comparison(snapshot.trials).empty and data.history(path).empty
    assert tables.filter_trials(snapshot.trials, date_from=date(2026, 1, 1)).empty


def test_a_session_without_trials_yet(tmp_path):
    snapshot = data.load(small_db(tmp_path / "t.db", []))
    row = tables.sessions_overview(snapshot.sessions, snapshot.trials, time.time()).iloc[0]
    assert (row.progress, row.successes, row.status) == ("0/50", 0, "running") and pd.isna(row.rate)
    assert pd.isna(row.last_trial) and tables.comparison(snapshot.trials).empty


def test_an_older_schema_is_migrated_through_trialsdb_with_a_note(tmp_path):
    path = version_1_db(tmp_path / "old.db")
    with pytest.raises(data.DashboardError, match="schema version 1"):
        data.connect_readonly(path)
    assert data.prepare(path) == [f"old.db: migrated from schema version 1 to {SCHEMA_VERSION} (adds correction "
                                  "history, strategies, smoothing statistics, calibration provenance)"]  # fmt: skip
    assert data.schema_version(path) == SCHEMA_VERSION and data.prepare(path) == []
    overview = tables.sessions_overview(*(lambda s: (s.sessions, s.trials))(data.load(path)), time.time())
    assert (overview.robot_kind.iloc[0], overview.progress.iloc[0], overview.successes.iloc[0]) == ("real", "2/50", 1)


@pytest.mark.parametrize(
    "make, match",
    [(lambda p: set_version(small_db(p, ["success"]), SCHEMA_VERSION + 1), "newer than this dashboard knows"),
     (lambda p: p.write_bytes(b"not sqlite at all " * 100), "not a SQLite trial database"),
     (lambda p: raw(p).execute("CREATE TABLE other (x)"), "not a trial database"),
     (lambda p: None, "no trial database at"),
     (lambda p: p.mkdir(), "is a folder")],
    ids=["newer", "not-sqlite", "foreign-sqlite", "missing", "folder"],
)  # fmt: skip
def test_unusable_databases_are_one_friendly_message(tmp_path, make, match):
    path = tmp_path / "trials.db"
    make(path)
    with pytest.raises(data.DashboardError, match=match):
        data.prepare(path)
    assert match in data.database_problem(path)
    with pytest.raises(data.DashboardError):
        data.load(path)


def test_corrupted_rows_become_problems_not_exceptions(tmp_path):
    path = small_db(tmp_path / "t.db", ["success", "failure", "success", "failure", "success"])
    allow_null_outcomes(path)
    corrupt(path, "UPDATE trials SET outcome = NULL WHERE k = 1")
    corrupt(path, "UPDATE trials SET outcome = 'maybe' WHERE k = 2")
    corrupt(path, "UPDATE trials SET started_at = 'yesterday' WHERE k = 3")
    corrupt(path, "UPDATE sessions SET settings = '{not json' WHERE id = 1")
    corrupt(path, "UPDATE trials SET ended_at = 1e300 WHERE k = 4")
    corrupt(path, "UPDATE sessions SET updated_at = 1")
    corrupt(path, "INSERT INTO trials (session_id, k, outcome, judged_by, started_at, ended_at, duration_s, "
                  "end_reason) VALUES (7, 1, 'success', 'predicate', 1, 2, 1, 'done')")  # fmt: skip
    snapshot = data.load(path)
    text = "\n".join(snapshot.problems)
    assert "trial(s) #1, #2: unreadable outcome" in text and "#3: started_at is not a number" in text
    assert "session(s) #1: settings are not valid JSON" in text and "#6: their session is missing" in text
    overview = tables.sessions_overview(snapshot.sessions, snapshot.trials, time.time()).iloc[0]
    assert (overview.judged, overview.successes, overview.invalid) == (3, 2, 2)  # invalid rows are not judged
    assert overview.status == "paused" and pd.isna(overview.last_trial)  # 1e300 s is no time and no heartbeat
    assert snapshot.trials.set_index("id").loc[6, "task"] == "?"
    assert list(tables.comparison(snapshot.trials).task.unique()) == ["click_bell", "?", "Average"]
    assert list(tables.filter_trials(snapshot.trials, date_from=date(2000, 1, 1)).k) == [1, 2, 4, 5]  # NaT: never
    info = detail.trial_detail(path, 1)
    assert info.row["outcome"] is None and info.joints is None and info.problems == []


def test_missing_and_broken_trial_files_are_messages(tmp_path):
    path = small_db(tmp_path / "t.db", ["success"] * 5)
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    write_npz(tmp_path / "shape.npz", measured=np.ones((3, 14)))
    np.savez(tmp_path / "nokey.npz", t=np.arange(3))
    write_npz(tmp_path / "good.npz", steps=2000)
    conn = raw(path)
    for k, name in enumerate(["missing.npz", "bad.npz", "shape.npz", "nokey.npz", "good.npz"], 1):
        conn.execute("UPDATE trials SET data_path = ? WHERE k = ?", (name, k))
    conn.execute("INSERT INTO trial_videos VALUES (1, 'head_camera', 'videos/gone.mp4')")
    conn.close()
    first = detail.trial_detail(path, 1)
    assert first.problems == [f"video of head_camera is missing: {tmp_path / 'videos/gone.mp4'}",
                              f"joint data is missing: {tmp_path / 'missing.npz'}"]  # fmt: skip
    assert not first.videos[0].exists
    assert "unreadable" in detail.trial_detail(path, 2).problems[0]
    assert "inconsistent shapes" in detail.trial_detail(path, 3).problems[0]
    assert "unreadable" in detail.trial_detail(path, 4).problems[0]
    good = detail.trial_detail(path, 5).joints
    assert good.t.nunique() <= detail.MAX_PLOT_STEPS and good.joint.iloc[0] == "joint 0"  # thinned, named
    with pytest.raises(data.DashboardError, match="no trial #99"):
        detail.trial_detail(path, 99)


def test_the_readonly_connection_cannot_write(pristine):
    conn = data.connect_readonly(pristine)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("DELETE FROM trials")
    conn.close()
