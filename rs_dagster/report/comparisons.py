"""Paired comparisons in the explorer, the exported report and asset metadata: a chart of the accuracy
change per grid point and task (rs_dagster.stats.paired has the statistics)."""

from __future__ import annotations

import altair as alt
import polars as pl

from rs_dagster.report.charts import point_label
from rs_dagster.stats.paired import ALPHA

DIFFERS = f"differs (q ≤ {ALPHA})"
SAME = "no significant difference"


def comparison_label(row: dict) -> str:
    """`A vs B` for two models, `M: v1 → v2` for a model's previous and current version."""
    if row["kind"] == "versions":
        return f"{row['model_a']}: {row['version_a'][:8]} → {row['version_b'][:8]}"
    return f"{row['model_a']} vs {row['model_b']}"


def labelled(comparisons: pl.DataFrame) -> pl.DataFrame:
    return comparisons.with_columns(
        pl.Series("comparison", [comparison_label(r) for r in comparisons.select("kind", "model_a", "version_a", "model_b", "version_b").iter_rows(named=True)], dtype=pl.String)
    )


def change_chart(comparisons: pl.DataFrame) -> alt.LayerChart:
    """Accuracy of B minus accuracy of A over the paired samples, per task (large marks) and grid point
    (small, labelled by its axis values in the tooltip), one row per comparison, tasks side by side in
    it; red where q <= 0.05. The rule at 0 is no change."""
    data = labelled(comparisons).select(
        "comparison", "task", "level", pl.col("params_json").map_elements(point_label, return_dtype=pl.String).fill_null("(task pooled)").alias("point"),
        "pairs", "b", "c", "p_value", "q_value", (pl.col("accuracy_b") - pl.col("accuracy_a")).alias("change"), "accuracy_a", "accuracy_b",
        pl.when(pl.col("differs")).then(pl.lit(DIFFERS)).otherwise(pl.lit(SAME)).alias("verdict"),
    )
    x = alt.X("change:Q", title="change in strict accuracy, B − A (paired samples)", scale=alt.Scale(domain=[-1, 1]), axis=alt.Axis(format="+.1f"))
    points = alt.Chart(alt.Data(values=data.to_dicts())).mark_point(filled=True, opacity=0.8).encode(
        x=x,
        y=alt.Y("comparison:N", title=None, axis=alt.Axis(labelLimit=300)),
        yOffset=alt.YOffset("task:N"),
        color=alt.Color("verdict:N", title=None, scale=alt.Scale(domain=[SAME, DIFFERS], range=["#9ecae9", "#d62728"])),
        size=alt.Size("level:N", scale=alt.Scale(domain=["point", "task"], range=[40, 160]), title="level"),
        shape=alt.Shape("task:N", title="task"),
        tooltip=[
            alt.Tooltip("comparison:N"), alt.Tooltip("task:N"), alt.Tooltip("point:N", title="grid point"),
            alt.Tooltip("change:Q", title="B − A", format="+.3f"), alt.Tooltip("accuracy_a:Q", title="accuracy A", format=".3f"),
            alt.Tooltip("accuracy_b:Q", title="accuracy B", format=".3f"), alt.Tooltip("pairs:Q", title="pairs (n)"),
            alt.Tooltip("b:Q", title="b: A right, B wrong"), alt.Tooltip("c:Q", title="c: A wrong, B right"),
            alt.Tooltip("p_value:Q", title="p (McNemar)", format=".3g"), alt.Tooltip("q_value:Q", title="q (BH)", format=".3g"),
        ],
    )
    zero = alt.Chart(alt.Data(values=[{"change": 0.0, "label": "no change"}]))
    rule = zero.mark_rule(color="#888", strokeDash=[3, 3]).encode(x=x)
    text = zero.mark_text(align="left", baseline="top", dx=3, dy=2, fontSize=10, color="#666").encode(x=x, text="label:N", y=alt.value(0))
    return (rule + text + points).properties(title="Paired comparisons: change in strict accuracy", width=440, height=alt.Step(24))
