"""Charts and the report section of the analyses that look inside reasoning traces: gzip compression
of the traces by outcome (loops flagged), Kaplan-Meier survival and Aalen-Johansen incidence over output
tokens, and the hazard per 256-token bucket (definitions: rs_dagster.stats.compression and .hazard)."""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field

import altair as alt
import polars as pl

from rs_dagster.stats.compression import LOOP_FACTOR, LOOP_FLOOR, LOOP_MIN_BYTES
from rs_dagster.stats.hazard import ALL_TIERS, BUCKET_TOKENS, CAUSES

OUTCOME_ORDER = ["correct", "incorrect", "unparsed", "truncated"]
OUTCOME_COLORS = ["#54a24b", "#e45756", "#b279a2", "#9d755d"]
CURVE_ORDER = ["answered", *CAUSES]
CURVE_COLORS = ["#4c78a8", "#54a24b", "#e45756", "#b279a2"]
CURVE_LABELS = {
    "answered": "S(t): no answer yet (Kaplan-Meier)",
    "correct": "F(t): answered correctly",
    "incorrect": "F(t): answered incorrectly",
    "unparsed": "F(t): answered outside the format",
}
GOLDEN = 0.6180339887498949


@dataclass
class TraceTables:
    """The tables the section draws from; empty frames make it say what is missing."""

    compression: pl.DataFrame = field(default_factory=pl.DataFrame)
    hazard: pl.DataFrame = field(default_factory=pl.DataFrame)
    survival: pl.DataFrame = field(default_factory=pl.DataFrame)


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
    base = alt.Chart(alt.Data(values=data.to_dicts()))
    x = alt.X("outcome:N", title="strict outcome", sort=present, axis=alt.Axis(labelAngle=0))
    y = alt.Y("reasoning_ratio:Q", title="gzip bytes / raw bytes of the reasoning trace", scale=alt.Scale(zero=True))
    color = alt.Color("outcome:N", scale=alt.Scale(domain=OUTCOME_ORDER, range=OUTCOME_COLORS), legend=None)
    boxes = base.mark_boxplot(extent="min-max", opacity=0.35, size=40).encode(x=x, y=y, color=color)
    dots = base.mark_circle(size=22, opacity=0.8).encode(
        x=x,
        xOffset=alt.XOffset("jitter:Q", scale=alt.Scale(domain=[-1.2, 1.2])),
        y=y,
        color=alt.condition(alt.datum.kind == "loop", alt.value("black"), color),
        tooltip=["outcome:N", "reasoning_ratio:Q", "reasoning_bytes:Q", "completion_tokens:Q", "kind:N", "point_id:N"],
    )
    subtitle = f"black: loop (≥ {LOOP_MIN_BYTES} bytes and ratio < {LOOP_FACTOR} × the point's typical ratio, or < {LOOP_FLOOR})"
    return (boxes + dots).properties(title=alt.TitleParams(title, subtitle=subtitle), width=360, height=220)


def survival_chart(survival: pl.DataFrame, title: str, median: float | None = None) -> alt.LayerChart:
    """S(t) with its band and the cumulative incidence of each answer kind, as step functions over tokens."""
    data = survival.filter(pl.col("curve").is_in(CURVE_ORDER)).sort("curve", "tokens").with_columns(
        label=pl.col("curve").replace_strict(CURVE_LABELS, default=pl.col("curve"))
    )
    labels = [CURVE_LABELS[c] for c in CURVE_ORDER]
    base = alt.Chart(alt.Data(values=data.select("curve", "label", "tokens", "estimate", "ci_low", "ci_high", "at_risk", "events", "censored").to_dicts()))
    color = alt.Color("label:N", title=None, scale=alt.Scale(domain=labels, range=CURVE_COLORS), legend=alt.Legend(orient="bottom", columns=2))
    x = alt.X("tokens:Q", title="output tokens (completion_tokens)", axis=alt.Axis(format="d"))
    band = base.mark_area(opacity=0.15, interpolate="step-after").encode(
        x=x, y=alt.Y("ci_low:Q", scale=alt.Scale(domain=[0, 1])), y2="ci_high:Q", color=color
    )
    line = base.mark_line(interpolate="step-after").encode(
        x=x,
        y=alt.Y("estimate:Q", title="probability", scale=alt.Scale(domain=[0, 1])),
        color=color,
        tooltip=["label:N", "tokens:Q", "estimate:Q", "ci_low:Q", "ci_high:Q", "at_risk:Q", "events:Q", "censored:Q"],
    )
    layers = band + line
    if median is not None:
        rule = alt.Chart(alt.Data(values=[{"median": median}])).mark_rule(strokeDash=[4, 3], color="#4c78a8").encode(x="median:Q")
        layers = layers + rule
    subtitle = "truncation censors; dashed: median tokens to answer" if median is not None else "truncation censors; median not reached"
    return layers.properties(title=alt.TitleParams(title, subtitle=subtitle), width=420, height=220)


def hazard_chart(hazard: pl.DataFrame, title: str) -> alt.Chart:
    """Per 256-token bucket: answers in the bucket / samples at risk at its start, stacked by kind."""
    long = hazard.select("bucket_start", "bucket_end", "at_risk", *[f"hazard_{c}" for c in CAUSES]).unpivot(
        index=["bucket_start", "bucket_end", "at_risk"], variable_name="cause", value_name="hazard"
    ).with_columns(pl.col("cause").str.strip_prefix("hazard_"), pl.col("hazard").fill_null(0.0))
    return (
        alt.Chart(alt.Data(values=long.to_dicts()))
        .mark_bar()
        .encode(
            x=alt.X("bucket_start:O", title=f"bucket start (tokens, {BUCKET_TOKENS} per bucket)", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("hazard:Q", title="hazard: answers / at risk", stack="zero", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("cause:N", title="answer", scale=alt.Scale(domain=list(CAUSES), range=CURVE_COLORS[1:])),
            order=alt.Order("cause:N"),
            tooltip=["bucket_start:Q", "bucket_end:Q", "at_risk:Q", "cause:N", "hazard:Q"],
        )
        .properties(title=title, width=420, height=180)
    )


def _missing(note: str) -> str:
    return f'<p class="missing">{html.escape(note)}</p>'


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


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


def _compression_part(samples: pl.DataFrame, label: str, img: Callable, table: Callable) -> list[str]:
    traces = samples.filter(pl.col("reasoning_ratio").is_not_null())
    if traces.is_empty():
        return [_missing(
            f"No compression view for {label}: none of its {samples.height} samples has a reasoning trace (the model returned "
            "no reasoning_content, reasoning or <think> text), so there is nothing to compress."
        )]
    parts = [img(compression_chart(samples, f"{label}: reasoning trace compression"), f"compression: {label}"), table(compression_summary(samples))]
    loops = int(samples["loop"].sum())
    truncated = samples.filter(pl.col("outcome") == "truncated")
    parts.append(f"<p>{loops} of {traces.height} traces flagged as loops"
                 + (f"; {int(truncated['loop'].sum())} of the {truncated.height} truncated samples loop.</p>" if truncated.height else ".</p>"))
    if truncated.is_empty():
        parts.append(_missing(f"No truncated box for {label}: no sample ran into max_tokens, so every trace ended with an answer."))
    return parts


def _hazard_part(hazard: pl.DataFrame, survival: pl.DataFrame, label: str, img: Callable) -> list[str]:
    first = hazard.row(0, named=True)
    truncated = int(hazard["truncated"].sum())
    median = first["median_tokens"]
    parts = [img(survival_chart(survival, f"{label}: tokens to answer", median), f"survival: {label}"),
             img(hazard_chart(hazard, f"{label}: hazard per {BUCKET_TOKENS}-token bucket"), f"hazard: {label}")]
    if median is None:
        parts.append(_missing(f"Median tokens to answer for {label} not reached: {truncated} of {first['samples']} samples were "
                              "truncated, so S(t) never falls to 0.5."))
    else:
        parts.append(f"<p>Median tokens to answer: {median:.0f} (95% CI {_fmt(first['median_ci_low'], 0)}–{_fmt(first['median_ci_high'], 0)}; "
                     f"— : the band never reaches 0.5) over {first['samples']} samples, {truncated} truncated (censored).</p>")
    if truncated == 0:
        parts.append(_missing(f"Nothing censored for {label}: no sample was truncated, so S(t) is the plain share of samples "
                              "still without an answer after t tokens."))
    return parts


def traces_section(tables: TraceTables, img: Callable, table: Callable) -> list[str]:
    """HTML parts: per model × task, the compression of the traces by outcome and the curves over
    tokens (every sample of the partition's current versions, tier `all`); each view that cannot be
    drawn says why in one sentence. `img(chart, alt)` and `table(frame)` render as the report does."""
    sections = [
        "<h2>Inside the reasoning traces</h2>",
        (f"<p><b>Compression</b>: gzip bytes / raw bytes of each sample's reasoning trace, by strict outcome. Repetition "
        f"compresses well, so a degenerate loop sits far below the rest: a trace of at least {LOOP_MIN_BYTES} bytes is a "
        f"<i>loop</i> when its ratio is below {LOOP_FACTOR} × the median ratio of its grid point's finished traces, or below "
        f"{LOOP_FLOOR}. <b>Tokens to answer</b>: survival over completion tokens; an answer is the event and truncation at "
        "max_tokens censors. S(t) is the Kaplan-Meier share still without an answer after t tokens; the incidence curves "
        "(Aalen-Johansen, the other kinds of answer competing) give the probability of having answered correctly, "
        f"incorrectly or outside the format by t. The hazard of a {BUCKET_TOKENS}-token bucket is the answers in it divided by "
        "the samples still running at its start.</p>"),
    ]
    compression, hazard, survival = tables.compression, tables.hazard, tables.survival
    if compression.is_empty() and hazard.is_empty():
        return [*sections, _missing(
            "No trace analyses: the compression and hazard tables have no rows (they are computed per model × task by "
            "`rs eval`, or by materializing the `compression` and `hazard` assets)."
        )]
    pairs = sorted({*_pairs(compression), *_pairs(hazard)})
    for model, task in pairs:
        label = f"{model} / {task}"
        sections.append(f"<h3>{html.escape(label)}</h3>")
        mine = _of(compression, model, task)
        if compression.is_empty() or mine.is_empty():
            sections.append(_missing(f"No compression view for {label}: the compression table has no rows for it (materialize `compression`)."))
        else:
            sections.extend(_compression_part(mine, label, img, table))
        pooled = _of(hazard, model, task).filter(pl.col("tier") == ALL_TIERS) if not hazard.is_empty() else hazard
        curves = _of(survival, model, task).filter(pl.col("tier") == ALL_TIERS) if not survival.is_empty() else survival
        if not pooled.is_empty():
            sections.extend(_hazard_part(pooled, curves, label, img))
        elif not mine.is_empty() and mine["completion_tokens"].is_null().all():
            sections.append(_missing(f"No survival view for {label}: the endpoint reported no completion_tokens for any of its "
                                     f"{mine.height} samples, so there is no time to answer."))
        else:
            sections.append(_missing(f"No survival view for {label}: the hazard table has no rows for it (materialize `hazard`)."))
    return sections


def _pairs(frame: pl.DataFrame) -> set[tuple[str, str]]:
    return set(frame.select("model", "task").unique().iter_rows()) if not frame.is_empty() else set()


def _of(frame: pl.DataFrame, model: str, task: str) -> pl.DataFrame:
    return frame.filter((pl.col("model") == model) & (pl.col("task") == task))


def trace_tables(warehouse) -> TraceTables:
    """The tables the section reads, each empty when it does not exist yet (a `Warehouse`)."""

    def read(table: str, sql: str) -> pl.DataFrame:
        return warehouse.query(sql) if warehouse.has_table(table) else pl.DataFrame()

    return TraceTables(
        compression=read(
            "compression",
            "SELECT model, task, point_id, outcome, completion_tokens, reasoning_bytes, reasoning_ratio, loop "
            "FROM compression ORDER BY model, task, point_id, test_case_id, sample_index",
        ),
        hazard=read("hazard", "SELECT * FROM hazard ORDER BY model, task, tier, bucket_start"),
        survival=read("survival", "SELECT * FROM survival ORDER BY model, task, tier, curve, tokens"),
    )
