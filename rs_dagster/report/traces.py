"""Charts of the analyses that look inside reasoning traces: gzip compression
of the traces by outcome (loops flagged), Kaplan-Meier survival and Aalen-Johansen incidence over output
tokens, and the hazard per bucket of tokens, its width chosen from the data (definitions: rs_dagster.stats.compression
and .hazard)."""

from __future__ import annotations

import altair as alt
import polars as pl

from rs_dagster.report.charts import Rows
from rs_dagster.stats.compression import LOOP_FACTOR, LOOP_FLOOR, LOOP_MIN_BYTES
from rs_dagster.stats.hazard import CAUSES

OUTCOME_ORDER = ["correct", "incorrect", "unparsed", "ambiguous", "truncated"]
OUTCOME_COLORS = ["#54a24b", "#e45756", "#b279a2", "#f58518", "#9d755d"]
CURVE_ORDER = ["answered", *CAUSES]
CURVE_COLORS = ["#4c78a8", "#54a24b", "#e45756", "#b279a2", "#f58518"]
CURVE_LABELS = {
    "answered": "S(t): no answer yet (Kaplan-Meier)",
    "correct": "F(t): answered correctly",
    "incorrect": "F(t): answered incorrectly",
    "unparsed": "F(t): answered outside the format",
    "ambiguous": "F(t): answered with a hedge (ambiguous)",
}
GOLDEN = 0.6180339887498949


def compression_chart(samples: pl.DataFrame, title: str) -> alt.LayerChart:
    """The reasoning trace's gzip ratio by strict outcome: a box per outcome, every trace a dot (loops
    in black), x jittered deterministically so equal ratios stay visible."""
    data = (
        samples.filter(pl.col("reasoning_ratio").is_not_null())
        .with_row_index("i")
        .select(
            "outcome", "reasoning_ratio", "reasoning_bytes", "completion_tokens", "point_id",
            pl.when(pl.col("loop")).then(pl.lit("loop")).otherwise(pl.lit("trace")).alias("kind"),
            (((pl.col("i").cast(pl.Float64) * GOLDEN) % 1.0) - 0.5).alias("jitter"),
        )
    )
    present = [o for o in OUTCOME_ORDER if o in set(data["outcome"].to_list())]
    base = alt.Chart(Rows(data.to_dicts()))
    x = alt.X("outcome:N", title="strict outcome", sort=present, axis=alt.Axis(labelAngle=0))
    y = alt.Y("reasoning_ratio:Q", title="gzip ratio of the trace (compressed / raw bytes)", scale=alt.Scale(zero=True))
    color = alt.Color("outcome:N", scale=alt.Scale(domain=OUTCOME_ORDER, range=OUTCOME_COLORS), legend=None)
    boxes = base.mark_boxplot(extent="min-max", opacity=0.35, size=40).encode(x=x, y=y, color=color)
    dots = base.mark_circle(size=22, opacity=0.8).encode(
        x=x,
        xOffset=alt.XOffset("jitter:Q", scale=alt.Scale(domain=[-1.2, 1.2])),
        y=y,
        color=alt.when(alt.datum.kind == "loop").then(alt.value("black")).otherwise(color),
        tooltip=[
            alt.Tooltip("outcome:N", title="strict outcome"), alt.Tooltip("reasoning_ratio:Q", title="gzip ratio", format=".3f"),
            alt.Tooltip("reasoning_bytes:Q", title="trace bytes"), alt.Tooltip("completion_tokens:Q", title="output tokens"),
            alt.Tooltip("kind:N", title="loop?"), alt.Tooltip("point_id:N", title="grid point"),
        ],
    )
    subtitle = f"black: loop (≥ {LOOP_MIN_BYTES} bytes and ratio < {LOOP_FACTOR} × the point's typical ratio, or < {LOOP_FLOOR})"
    return (boxes + dots).properties(title=alt.TitleParams(title, subtitle=subtitle), width=360, height=220)


def survival_chart(survival: pl.DataFrame, title: str, median: float | None = None) -> alt.LayerChart:
    """S(t) with its 95% band and the cumulative incidence of each answer kind (with theirs), as step
    functions over tokens; the median tokens to answer marked and labelled. Zooms along tokens in a browser."""
    data = survival.filter(pl.col("curve").is_in(CURVE_ORDER)).sort("curve", "tokens").with_columns(
        label=pl.col("curve").replace_strict(CURVE_LABELS, default=pl.col("curve")),
        interval=pl.format("{}–{}", pl.col("ci_low").round(3), pl.col("ci_high").round(3)),
    )
    labels = [CURVE_LABELS[c] for c in CURVE_ORDER]
    columns = ["curve", "label", "tokens", "estimate", "ci_low", "ci_high", "interval", "at_risk", "events", "censored"]
    base = alt.Chart(Rows(data.select(columns).to_dicts()))
    color = alt.Color(
        "label:N", title=None, scale=alt.Scale(domain=labels, range=CURVE_COLORS),
        legend=alt.Legend(orient="bottom", columns=2, labelLimit=300, symbolOpacity=1),
    )
    x = alt.X("tokens:Q", title="output tokens", axis=alt.Axis(format="d"))
    probability = alt.Scale(domain=[0, 1])
    band = base.mark_area(opacity=0.15, interpolate="step-after").encode(
        x=x, y=alt.Y("ci_low:Q", title="probability (95% CI band)", scale=probability), y2="ci_high:Q", color=color
    )
    line = base.mark_line(interpolate="step-after").encode(
        x=x,
        y=alt.Y("estimate:Q", title="probability (95% CI band)", scale=probability),
        color=color,
        tooltip=[
            alt.Tooltip("label:N", title="curve"), alt.Tooltip("tokens:Q", title="output tokens"),
            alt.Tooltip("estimate:Q", format=".3f"), alt.Tooltip("interval:N", title="95% CI"),
            alt.Tooltip("at_risk:Q", title="at risk"), alt.Tooltip("events:Q"), alt.Tooltip("censored:Q", title="censored (truncated)"),
        ],
    ).add_params(alt.selection_interval(bind="scales", encodings=["x"]))
    layers = band + line
    if median is not None:
        marker = alt.Chart(alt.Data(values=[{"median": median, "label": f"median {median:.0f}", "top": 1.0}]))
        rule = marker.mark_rule(strokeDash=[4, 3], color="#4c78a8").encode(x="median:Q")
        text = marker.mark_text(align="left", dx=4, dy=8, fontSize=10, color="#4c78a8").encode(x="median:Q", y=alt.Y("top:Q", scale=probability), text="label:N")
        layers = layers + rule + text
    subtitle = "truncation censors; dashed: median tokens to answer" if median is not None else "truncation censors; median not reached"
    return layers.properties(title=alt.TitleParams(title, subtitle=subtitle), width=420, height=220)


def bucket_tokens(hazard: pl.DataFrame) -> int | None:
    """The bucket width of a hazard table (rs_dagster.stats.hazard.bucket_width chose it from the data); None
    when the table is empty or mixes widths (several models or tasks)."""
    if hazard.is_empty():
        return None
    widths = (hazard["bucket_end"] - hazard["bucket_start"]).unique().to_list()
    return int(widths[0]) if len(widths) == 1 else None


def hazard_chart(hazard: pl.DataFrame, title: str) -> alt.Chart:
    """Per bucket of tokens (as wide as the table's, chosen from the data): answers in the bucket / samples
    at risk at its start, stacked by kind (the kinds' hazards add up to the bucket's hazard), each bar
    spanning its bucket on a token scale. A table written before a kind of answer existed (ambiguous) has
    no columns of it: there was no such answer then."""
    width = bucket_tokens(hazard)
    hazard = hazard.with_columns(
        *(pl.lit(0, pl.Int64).alias(c) for c in CAUSES if c not in hazard.columns),
        *(pl.lit(None, pl.Float64).alias(f"hazard_{c}") for c in CAUSES if f"hazard_{c}" not in hazard.columns),
    )
    long = hazard.select("bucket_start", "bucket_end", "at_risk", *[f"hazard_{c}" for c in CAUSES], *CAUSES).unpivot(
        index=["bucket_start", "bucket_end", "at_risk", *CAUSES], variable_name="cause", value_name="hazard"
    ).with_columns(pl.col("cause").str.strip_prefix("hazard_"), pl.col("hazard").fill_null(0.0))
    long = long.with_columns(
        pl.coalesce(*(pl.when(pl.col("cause") == c).then(pl.col(c)) for c in CAUSES)).alias("answers")
    ).drop(*CAUSES)
    x_title = f"output tokens ({width}-token buckets)" if width else "output tokens (buckets)"
    return (
        alt.Chart(Rows(long.to_dicts()))
        .mark_bar()
        .encode(
            x=alt.X("bucket_start:Q", bin=alt.Bin(binned=True, step=width) if width else "binned", title=x_title, axis=alt.Axis(format="d")),
            x2="bucket_end:Q",
            y=alt.Y("hazard:Q", title="hazard: answers / samples at risk", stack="zero"),
            color=alt.Color("cause:N", title="answer", scale=alt.Scale(domain=list(CAUSES), range=CURVE_COLORS[1:])),
            order=alt.Order("cause:N"),
            tooltip=[
                alt.Tooltip("bucket_start:Q", title="from token"), alt.Tooltip("bucket_end:Q", title="to token"),
                alt.Tooltip("cause:N", title="answer"), alt.Tooltip("hazard:Q", format=".3f"),
                alt.Tooltip("answers:Q", title="answers in bucket"), alt.Tooltip("at_risk:Q", title="at risk (n)"),
            ],
        )
        .properties(title=title, width=420, height=180)
    )


def compression_summary(samples: pl.DataFrame) -> pl.DataFrame:
    """Per strict outcome, pooled over a partition's points: samples, traces, ratio quantiles, loops."""
    ratio = pl.col("reasoning_ratio")
    summary = samples.group_by("outcome").agg(
        samples=pl.len(),
        traces=ratio.is_not_null().sum(),
        ratio_p10=ratio.quantile(0.1, interpolation="linear"),
        ratio_p50=ratio.quantile(0.5, interpolation="linear"),
        ratio_p90=ratio.quantile(0.9, interpolation="linear"),
        loops=pl.col("loop").sum(),
    )
    order = {o: i for i, o in enumerate(OUTCOME_ORDER)}
    return summary.sort(pl.col("outcome").replace_strict(order, default=len(order), return_dtype=pl.Int64))
