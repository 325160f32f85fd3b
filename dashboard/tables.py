"""The dashboard's tables, as pure functions of a :class:`~pushcut.dashboard.data.Snapshot`'s frames: sessions
overview, comparison per task x checkpoint (with the average over tasks), checkpoint differences with their tests,
and the trial list's filters. Rates are successes / judged (success + failure); aborted trials are counted apart."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date

import pandas as pd

from pushcut.common.stats import wilson_interval
from pushcut.dashboard.data import local_time
from pushcut.dashboard.stats import difference

RUNNING_WINDOW_S = 600.0  # an incomplete session with activity this recent is "running"
AVERAGE = "Average"


def _counts(trials: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """attempts, judged, successes, failures, aborted, invalid per group of ``keys``."""
    flags = pd.DataFrame({name: trials.outcome == name for name in ("success", "failure", "aborted", "invalid")})
    flags[keys] = trials[keys]
    counts = flags.groupby(keys, sort=False).sum().astype(int)
    counts.columns = ["successes", "failures", "aborted", "invalid"]
    counts.insert(0, "judged", counts.successes + counts.failures)
    counts.insert(0, "attempts", trials.groupby(keys, sort=False).size())
    return counts.reset_index()


def _with_interval(table: pd.DataFrame) -> pd.DataFrame:
    judged = table.judged.astype(int)
    table["rate"] = (table.successes / judged.where(judged > 0)).astype(float)
    bounds = [
        wilson_interval(int(s), int(n)) if n > 0 else (float("nan"),) * 2 for s, n in zip(table.successes, judged)
    ]
    table["ci_low"] = [low for low, _ in bounds]
    table["ci_high"] = [high for _, high in bounds]
    return table


def sessions_overview(sessions: pd.DataFrame, trials: pd.DataFrame, now: float) -> pd.DataFrame:
    """One row per session: identity, status, progress k/N, counts, rate, Wilson 95 % interval, times."""
    columns = ["session_id", "attempts", "judged", "successes", "failures", "aborted", "invalid"]
    counts = _counts(trials, ["session_id"]) if len(trials) else pd.DataFrame(columns=columns)
    last = trials.groupby("session_id").ended_at.max().rename("last_trial_at") if len(trials) else None
    table = sessions.rename(columns={"id": "session_id"}).merge(counts, on="session_id", how="left")
    table = table.merge(last, on="session_id", how="left") if last is not None else table.assign(last_trial_at=None)
    for column in columns[1:]:
        table[column] = table[column].fillna(0).astype(int)
    table = _with_interval(table)
    times = pd.concat([pd.to_numeric(table.updated_at), pd.to_numeric(table.last_trial_at)], axis=1)
    activity = times.where(times < now + 3600).max(axis=1)  # a corrupted time in the future is no heartbeat
    complete = table.judged >= table.planned_trials
    running = ~complete & (now - activity < RUNNING_WINDOW_S)
    table["status"] = ["complete" if c else "running" if r else "paused" for c, r in zip(complete, running)]
    table["progress"] = [f"{j}/{int(n) if pd.notna(n) else '?'}" for j, n in zip(table.judged, table.planned_trials)]
    table["started"] = local_time(table.created_at)
    table["last_trial"] = local_time(table.last_trial_at)
    return table[["session_id", "status", "task", "checkpoint_label", "robot_kind", "robot", "operator", "progress",
                  "judged", "planned_trials", "successes", "failures", "aborted", "invalid", "rate", "ci_low",
                  "ci_high", "started", "last_trial"]]  # fmt: skip


def _order(trials: pd.DataFrame, column: str) -> list[str]:
    """Values of ``column`` in the order they first appear (sessions are numbered in time)."""
    return list(dict.fromkeys(trials.sort_values(["session_id", "k"])[column]))


def comparison(trials: pd.DataFrame, robot_kind: str | None = None) -> pd.DataFrame:
    """Per task x checkpoint: sessions, judged n, successes, aborted, rate and interval; plus one ``Average`` row per
    checkpoint: the mean of its per-task rates (the paper's convention), with n and the interval of the pooled
    trials (the same thing when every task has the same n) and how many tasks it covers."""
    columns = ["task", "checkpoint", "tasks", "sessions", "judged", "successes", "aborted", "rate", "ci_low", "ci_high"]
    if robot_kind is not None:
        trials = trials[trials.robot_kind == robot_kind]
    if trials.empty:
        return pd.DataFrame(columns=columns)
    per_task = _counts(trials, ["task", "checkpoint_label"]).rename(columns={"checkpoint_label": "checkpoint"})
    sessions = trials.groupby(["task", "checkpoint_label"]).session_id.nunique().rename("sessions").reset_index()
    sessions = sessions.rename(columns={"checkpoint_label": "checkpoint"})
    per_task = _with_interval(per_task.merge(sessions, on=["task", "checkpoint"]).assign(tasks=1))
    rows = [per_task]
    for checkpoint in _order(trials, "checkpoint_label"):
        mine = per_task[per_task.checkpoint == checkpoint]
        pooled = mine[["sessions", "judged", "successes", "aborted"]].sum()
        average = _with_interval(pd.DataFrame([{"task": AVERAGE, "checkpoint": checkpoint, **pooled.to_dict(),
                                                "tasks": int(mine.judged.gt(0).sum())}]))  # fmt: skip
        average["rate"] = mine.rate.mean()  # NaN-skipping: tasks with judged trials only
        rows.append(average)
    table = pd.concat(rows, ignore_index=True)
    tasks = [*_order(trials, "task"), AVERAGE]
    table["task"] = pd.Categorical(table.task, tasks, ordered=True)
    table["checkpoint"] = pd.Categorical(table.checkpoint, _order(trials, "checkpoint_label"), ordered=True)
    table = table.sort_values(["task", "checkpoint"]).reset_index(drop=True)
    table[["task", "checkpoint"]] = table[["task", "checkpoint"]].astype(str)
    return table[columns]


def strategies(trials: pd.DataFrame) -> pd.DataFrame:
    """Per task x checkpoint: how the successful sim-twin trials did it (grasp / push / drag / press, counts), in the
    order of the comparison; empty when no success has a recorded strategy."""
    done = trials[(trials.outcome == "success") & (trials.strategy != "")]
    if done.empty:
        return pd.DataFrame()
    table = done.groupby(["task", "checkpoint_label", "strategy"]).size().unstack("strategy", fill_value=0)
    table = table.reset_index().rename(columns={"checkpoint_label": "checkpoint"})
    table.columns.name = None
    return table


def rate_text(rate: float, low: float, high: float, n: int) -> str:
    """'62% [48.1–74.2] n=50' (or '–' without judged trials)."""
    if n <= 0 or pd.isna(rate):
        return "–"
    return f"{rate:.0%} [{100 * low:.1f}–{100 * high:.1f}] n={n}"


def comparison_grid(table: pd.DataFrame) -> pd.DataFrame:
    """The paper's layout: tasks (then Average) down, checkpoints across, 'rate [Wilson 95 %] n' in each cell."""
    if table.empty:
        return pd.DataFrame()
    cells = table.assign(cell=[rate_text(r, lo, hi, n) for r, lo, hi, n in
                               zip(table.rate, table.ci_low, table.ci_high, table.judged)])  # fmt: skip
    grid = cells.pivot(index="task", columns="checkpoint", values="cell").fillna("–")
    grid = grid.loc[list(dict.fromkeys(table.task)), list(dict.fromkeys(table.checkpoint))]
    grid.columns.name = None
    return grid


def differences(table: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """Checkpoint ``b`` against ``a`` per task they share and over all those tasks pooled: n, rates, b - a, the
    two-sided Fisher exact and two-proportion z p-values, and a verdict at 5 %."""
    per_task = table[table.task != AVERAGE]
    left = per_task[per_task.checkpoint == a].set_index("task")
    right = per_task[per_task.checkpoint == b].set_index("task")
    shared = [task for task in left.index if task in right.index]
    pairs = [(task, left.loc[task], right.loc[task]) for task in shared]
    if len(shared) > 1:
        pairs.append((f"all {len(shared)} tasks (pooled)", left.loc[shared].sum(), right.loc[shared].sum()))
    rows = []
    for task, x, y in pairs:
        d = difference(int(x.successes), int(x.judged), int(y.successes), int(y.judged))
        rows.append({"task": task, "a": a, "n_a": d.n_a, "rate_a": d.rate_a, "b": b, "n_b": d.n_b, "rate_b": d.rate_b,
                     "diff": d.diff, "fisher_p": d.fisher_p, "z_p": d.z_p, "verdict": d.verdict((a, b))})  # fmt: skip
    return pd.DataFrame(rows)


def filter_trials(
    trials: pd.DataFrame,
    *,
    tasks: Collection[str] = (),
    checkpoints: Collection[str] = (),
    outcomes: Collection[str] = (),
    operators: Collection[str] = (),
    robot_kinds: Collection[str] = (),
    sessions: Collection[int] = (),
    date_from: date | None = None,
    date_to: date | None = None,
) -> pd.DataFrame:
    """The trials matching every filter given (an empty collection or None means no filter); dates are the local
    day a trial started, both ends included."""
    keep = pd.Series(True, index=trials.index)
    for column, wanted in (("task", tasks), ("checkpoint_label", checkpoints), ("outcome", outcomes),
                           ("operator", operators), ("robot_kind", robot_kinds), ("session_id", sessions)):  # fmt: skip
        if wanted:
            keep &= trials[column].isin(list(wanted))
    day = trials.started.dt.date
    if date_from is not None:
        keep &= day >= date_from
    if date_to is not None:
        keep &= day <= date_to
    return trials[keep.fillna(False)]


TRIAL_COLUMNS = ["id", "session_id", "k", "task", "checkpoint_label", "robot_kind", "operator", "outcome",
                 "strategy", "corrected", "judged_by", "started", "duration_s", "end_reason", "safety_event_count",
                 "smoothed_pct", "seed", "note"]  # fmt: skip


def trial_list(trials: pd.DataFrame, corrected: Collection[int]) -> pd.DataFrame:
    """The trial list's columns, newest first, with a flag for trials whose outcome or note was corrected."""
    table = trials.assign(corrected=trials.id.isin(list(corrected)))
    return table.sort_values(["started", "id"], ascending=False, na_position="last")[TRIAL_COLUMNS]
