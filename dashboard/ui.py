"""Small Streamlit helpers shared by the views: friendly error boundaries, CSV download buttons, number formats."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from pushcut.dashboard.data import DashboardError, to_csv

log = logging.getLogger("pushcut.dashboard")


def guarded(what: str, render: Callable[..., Any], *args: Any) -> None:
    """Run a view; an error becomes a message on the page (the traceback goes to the dashboard's terminal)."""
    try:
        render(*args)
    except DashboardError as error:
        st.error(str(error))
    except Exception as error:  # noqa: BLE001 - the page must never show a stack trace
        log.exception("dashboard: the %s failed", what)
        st.error(f"The {what} could not be shown ({type(error).__name__}: {error}). The other views still work; "
                 "the terminal running the dashboard has the details.")  # fmt: skip


def csv_button(table: pd.DataFrame, name: str, key: str) -> None:
    st.download_button(f"Download {name}.csv", to_csv(table), file_name=f"{name}.csv", mime="text/csv", key=key,
                       on_click="ignore")  # fmt: skip


def interval_text(low: float, high: float) -> str:
    return "–" if pd.isna(low) else f"{100 * low:.1f}–{100 * high:.1f} %"


def seconds_text(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Date-times rounded to the second for display."""
    return table.assign(**{c: table[c].dt.floor("s") for c in columns})
