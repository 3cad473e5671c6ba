"""Paired comparisons in the report and in asset metadata: a chart of the accuracy change per grid point
and task, and the HTML section "Paired comparisons" (rs_dagster.stats.paired has the statistics)."""

from __future__ import annotations

import html

import altair as alt
import polars as pl

from rs_dagster.stats.paired import ALPHA


def comparison_label(row: dict) -> str:
    """`A vs B` for two models, `M: v1 → v2` for a model's previous and current version."""
    if row["kind"] == "versions":
        return f"{row['model_a']}: {row['version_a'][:8]} → {row['version_b'][:8]}"
    return f"{row['model_a']} vs {row['model_b']}"


def labelled(comparisons: pl.DataFrame) -> pl.DataFrame:
    return comparisons.with_columns(
        pl.Series("comparison", [comparison_label(r) for r in comparisons.select("kind", "model_a", "version_a", "model_b", "version_b").iter_rows(named=True)], dtype=pl.String)
    )


def change_chart(comparisons: pl.DataFrame) -> alt.Chart:
    """Accuracy of B minus accuracy of A over the paired samples, per task (large marks) and grid point
    (small), one row per comparison; filled red where q <= 0.05."""
    data = labelled(comparisons).select(
        "comparison", "task", "level", pl.col("params_json").fill_null("(task pooled)"), "pairs", "b", "c", "p_value", "q_value",
        (pl.col("accuracy_b") - pl.col("accuracy_a")).alias("change"), "differs",
    )
    return (
        alt.Chart(alt.Data(values=data.to_dicts()))
        .mark_point(filled=True, opacity=0.8)
        .encode(
            x=alt.X("change:Q", title="accuracy B − accuracy A (paired samples)", scale=alt.Scale(domain=[-1, 1])),
            y=alt.Y("comparison:N", title=None, axis=alt.Axis(labelLimit=360)),
            color=alt.Color("differs:N", title=f"q ≤ {ALPHA}", scale=alt.Scale(domain=[False, True], range=["#9ecae9", "#d62728"])),
            size=alt.Size("level:N", scale=alt.Scale(domain=["point", "task"], range=[40, 160]), title="level"),
            shape=alt.Shape("task:N"),
            tooltip=["comparison:N", "task:N", "params_json:N", "pairs:Q", "b:Q", "c:Q", "p_value:Q", "q_value:Q", "change:Q"],
        )
        .properties(title="Paired comparisons: change in strict accuracy", width=460)
    )


def _table(frame: pl.DataFrame) -> str:
    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if value < 0.001 else f"{value:.3f}"
        return str(value)

    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell(v))}</td>" for v in row) + "</tr>" for row in frame.iter_rows())
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


INTRO = (
    "<h2>Paired comparisons</h2><p>Two runs on the same items: two models at their current versions, or one model's "
    "previous version (A) and its current one (B). Samples are paired on item and sample index under the current task "
    "version; a sample truncated or failed (error) on either side is excluded. Strict outcomes: an unparsed answer counts "
    "as not correct. b = A right and B wrong, c = A wrong and B right; p is the exact McNemar test (two-sided binomial "
    f"of b in b + c at ½); q is Benjamini–Hochberg over the task and point tests of one comparison; q ≤ {ALPHA} differs.</p>"
)


def comparisons_section(comparisons: pl.DataFrame, models: list[str], chart_img=None) -> list[str]:
    """HTML parts of the section; `chart_img(chart, alt)` renders a chart as an <img> (none: no chart).
    `models` are the models with results, for the sentence that says why there is nothing to compare."""
    sections = [INTRO]
    if comparisons.is_empty():
        if len(models) <= 1:
            who = f"only one model ({html.escape(models[0])}) has" if models else "no model has"
            sections.append(f'<p class="missing">Nothing to compare: {who} results, and no model has results of an earlier version on the same items.</p>')
        else:
            sections.append('<p class="missing">Nothing to compare: no two models (and no two versions of a model) answered the same items.</p>')
        return sections
    if len(models) <= 1:
        sections.append(f"<p>Only one model ({html.escape(models[0] if models else '?')}) has results: the comparisons below are between its versions.</p>")
    frame = labelled(comparisons)
    columns = ["task", "pairs", "excluded", "accuracy_a", "accuracy_b", "b", "c", "p_value", "q_value"]
    for (label,), rows in frame.group_by("comparison", maintain_order=True):
        tasks = rows.filter(pl.col("level") == "task")
        points = rows.filter(pl.col("level") == "point")
        differing = points.filter(pl.col("differs"))
        sections.append(f"<h3>{html.escape(label)}</h3>")
        sections.append(_table(tasks.select(columns)))
        if differing.is_empty():
            sections.append(f"<p>No grid point differs at q ≤ {ALPHA} ({points.height} points compared).</p>")
        else:
            sections.append(f"<p>{differing.height} of {points.height} grid points differ at q ≤ {ALPHA}:</p>")
            sections.append(_table(differing.select("task", "params_json", *columns[1:])))
    if chart_img is not None:
        sections.append(chart_img(change_chart(comparisons), "paired comparisons: change in accuracy"))
    return sections
