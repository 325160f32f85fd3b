"""Altair charts of the dashboard (no Streamlit): success rates with Wilson whiskers, commanded vs measured joints."""

from __future__ import annotations

import altair as alt
import pandas as pd

KINDS = ["commanded", "measured"]


def comparison_chart(table: pd.DataFrame) -> alt.LayerChart:
    """Bars of success rate per task (Average included) and checkpoint, with Wilson 95 % interval whiskers."""
    rows = table[table.judged > 0].assign(
        rate_pct=lambda d: 100 * d.rate, low_pct=lambda d: 100 * d.ci_low, high_pct=lambda d: 100 * d.ci_high
    )
    tasks = list(dict.fromkeys(rows.task))
    base = alt.Chart(rows).encode(
        x=alt.X("task:N", sort=tasks, title=None, axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("checkpoint:N", sort=list(dict.fromkeys(rows.checkpoint))),
        tooltip=[
            alt.Tooltip("task:N"), alt.Tooltip("checkpoint:N"), alt.Tooltip("judged:Q", title="n"),
            alt.Tooltip("successes:Q"), alt.Tooltip("rate_pct:Q", title="rate %", format=".1f"),
            alt.Tooltip("low_pct:Q", title="Wilson low %", format=".1f"),
            alt.Tooltip("high_pct:Q", title="Wilson high %", format=".1f"),
        ],
    )  # fmt: skip
    bars = base.mark_bar().encode(
        y=alt.Y("rate_pct:Q", title="success rate (%)", scale=alt.Scale(domain=[0, 100])),
        color=alt.Color("checkpoint:N", sort=list(dict.fromkeys(rows.checkpoint)), title="checkpoint"),
    )
    whiskers = base.mark_errorbar(ticks={"size": 14}, color="black").encode(
        y=alt.Y("low_pct:Q", title="success rate (%)"), y2="high_pct:Q"
    )
    return alt.layer(bars, whiskers).properties(height=320)


def joints_chart(joints: pd.DataFrame, columns: int = 7) -> alt.FacetChart:
    """Small multiples, one per joint: commanded (the executor's targets) and measured (feedback) over time."""
    names = list(dict.fromkeys(joints.joint))
    return (
        alt.Chart(joints)
        .mark_line(strokeWidth=1.5)
        .encode(
            x=alt.X("t:Q", title="time (s)"),
            y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
            color=alt.Color(
                "kind:N",
                scale=alt.Scale(domain=KINDS, range=["#1f77b4", "#ff7f0e"]),
                title=None,
                legend=alt.Legend(orient="top"),
            ),
            strokeDash=alt.StrokeDash("kind:N", scale=alt.Scale(domain=KINDS), legend=None),
        )
        .properties(width=115, height=80)
        .facet(facet=alt.Facet("joint:N", sort=names, title=None), columns=columns)
        .resolve_scale(y="independent")
    )
