"""Charts of a watched model's nights (the `nights` table): the canary's accuracy per night with its
Wilson interval, the nights with a drift alarm and the nights the server changed marked on it, and the
output tokens and latency that drift tests also watch."""

from __future__ import annotations

import altair as alt
import polars as pl

from rs_dagster.report.charts import MARK_COLOR, MODEL_PALETTE, interval_text

DRIFTED = "drift alarm (▼)"
SERVER_CHANGED = "server changed (dashed)"
KINDS = {"strict accuracy": MARK_COLOR, DRIFTED: "#d62728", SERVER_CHANGED: "#9467bd"}
"""The colour of each kind of mark on the accuracy chart, keyed by its legend entry."""

SUBTITLE = "rule: Wilson 95% interval; ▼ a night with a drift alarm; dashed: the server changed"
Y_TITLE = "strict accuracy"
"""Short: a task's row is 150 px high (the subtitle names the interval)."""
NIGHT = alt.X("night:T", timeUnit="utcyearmonthdate", title="night", axis=alt.Axis(format="%b %d", labelAngle=0))
"""Nights on a time axis in UTC: `2026-01-03` parses as UTC midnight, so a local time zone never moves it a day."""


def _kind(mark: alt.Chart, kind: str) -> alt.Chart:
    """The layer as `kind` in the legend (a computed field: a constant gets no legend entry)."""
    scale = alt.Scale(domain=list(KINDS), range=list(KINDS.values()))
    return mark.transform_calculate(kind=f"'{kind}'").encode(color=alt.Color("kind:N", title=None, scale=scale))


def accuracy_chart(nights: pl.DataFrame, title: str) -> alt.FacetChart:
    """Strict accuracy per night with its Wilson 95% interval, one row per task. A night with a drift alarm
    gets a red triangle at the top (its tooltip says what moved); a night whose server reported another model
    or fingerprint than the night before gets a dashed vertical line (its tooltip lists both)."""
    data = nights.select(
        "task", "night", "n", "correct", "errors", "accuracy", "ci_low", "ci_high", interval_text(), "drifted", "drift_summary",
        "server_changed", "response_models", "fingerprints",
    )
    scale = alt.Scale(domain=[0, 1])
    base = alt.Chart().encode(x=NIGHT)
    intervals = base.mark_rule(strokeWidth=2, opacity=0.5, color=MARK_COLOR).encode(
        y=alt.Y("ci_low:Q", title=Y_TITLE, scale=scale), y2="ci_high:Q"
    )
    line = _kind(base.mark_line(point=alt.OverlayMarkDef(filled=True, size=40)), "strict accuracy").encode(
        y=alt.Y("accuracy:Q", title=Y_TITLE, scale=scale),
        tooltip=[
            alt.Tooltip("task:N"), alt.Tooltip("night:N"), alt.Tooltip("accuracy:Q", title="strict accuracy", format=".3f"),
            alt.Tooltip("interval:N", title="Wilson 95% CI"), alt.Tooltip("correct:Q"), alt.Tooltip("n:Q", title="answered (n)"),
            alt.Tooltip("errors:Q"),
        ],
    )
    drift = _kind(base.transform_filter("datum.drifted").mark_point(shape="triangle-down", size=150, filled=True, opacity=1), DRIFTED).encode(
        y=alt.value(6), tooltip=[alt.Tooltip("night:N"), alt.Tooltip("drift_summary:N", title="what moved")]
    ).properties(name="drift_markers")
    server = _kind(base.transform_filter("datum.server_changed").mark_rule(strokeDash=[4, 3], strokeWidth=1.5), SERVER_CHANGED).encode(
        tooltip=[alt.Tooltip("night:N"), alt.Tooltip("response_models:N", title="reported model"),
                 alt.Tooltip("fingerprints:N", title="fingerprint")]
    ).properties(name="server_changes")
    return (
        alt.layer(intervals, server, line, drift, data=alt.Data(values=data.to_dicts()))
        .properties(width=640, height=150)
        .facet(row=alt.Row("task:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left", labelFontWeight="bold")))
        .properties(title=alt.TitleParams(title, subtitle=SUBTITLE))
    )


def usage_chart(nights: pl.DataFrame, title: str) -> alt.HConcatChart:
    """Mean output tokens and median latency per night, one line per task: what the drift tests compare
    besides accuracy (a model that starts thinking longer or a slower server shows here first)."""
    data = nights.select("task", "night", "n", "mean_output_tokens", "median_latency_s")
    base = alt.Chart(alt.Data(values=data.to_dicts())).encode(
        x=NIGHT, color=alt.Color("task:N", title="task", scale=alt.Scale(scheme=MODEL_PALETTE)),
        tooltip=[
            alt.Tooltip("task:N"), alt.Tooltip("night:N"), alt.Tooltip("mean_output_tokens:Q", title="mean output tokens", format=".1f"),
            alt.Tooltip("median_latency_s:Q", title="median latency (s)", format=".2f"), alt.Tooltip("n:Q", title="answered (n)"),
        ],
    )
    point = alt.OverlayMarkDef(filled=True, size=30)
    tokens = base.mark_line(point=point).encode(y=alt.Y("mean_output_tokens:Q", title="mean output tokens")).properties(
        width=340, height=160, title="mean output tokens per answer"
    )
    latency = base.mark_line(point=point).encode(y=alt.Y("median_latency_s:Q", title="median latency (s)")).properties(
        width=340, height=160, title="median latency per request"
    )
    return alt.hconcat(tokens, latency).properties(title=title)
