"""Altair charts of points and leaderboards, rendered to PNG with vl-convert (no browser needed)."""

from __future__ import annotations

import base64
from typing import Final, cast

import altair as alt
import polars as pl
import vl_convert


def png_bytes(chart: alt.TopLevelMixin, scale: float = 1.5) -> bytes:
    return vl_convert.vegalite_to_png(chart.to_json(), scale=scale)


def png_markdown(chart: alt.TopLevelMixin, title: str = "chart") -> str:
    """Markdown with the PNG inlined, for Dagster's markdown metadata."""
    return png_markdown_of(png_bytes(chart), title)


def png_markdown_of(png: bytes, title: str = "chart") -> str:
    """Markdown with already rendered PNG bytes inlined."""
    return f"![{title}](data:image/png;base64,{base64.b64encode(png).decode()})"


def _values(frame: pl.DataFrame) -> list[dict]:
    return frame.to_dicts()


def accuracy_by_point(points: pl.DataFrame, title: str) -> alt.Chart:
    """Accuracy with its Wilson 95% interval per grid point, chance level marked."""
    data = points.filter(pl.col("accuracy").is_not_null()).select(
        "params_json", "accuracy", "ci_low", "ci_high", "guess_chance", "n"
    )
    base = alt.Chart(alt.Data(values=_values(data))).encode(
        y=alt.Y("params_json:N", title="grid point", sort=None, axis=alt.Axis(labelLimit=420))
    )
    bars = base.mark_rule(strokeWidth=2, color="#4c78a8").encode(
        x=alt.X("ci_low:Q", title="accuracy (Wilson 95% CI)", scale=alt.Scale(domain=[0, 1])), x2="ci_high:Q"
    )
    dots = base.mark_point(filled=True, size=60, color="#4c78a8").encode(x="accuracy:Q", tooltip=["params_json:N", "accuracy:Q", "n:Q"])
    chance = base.mark_tick(color="#e45756", thickness=2).encode(x="guess_chance:Q")
    return (bars + dots + chance).properties(title=title, width=420)


def _axis_order(surface: pl.DataFrame, value: str, rank: str) -> list[str] | None:
    """The axis values in the order of the surfaces table's rank column (numeric, else the manifold's)."""
    if rank not in surface.columns:
        return None
    return surface.sort(rank).unique(value, maintain_order=True)[value].cast(pl.String).to_list()


FAILING_SHARE = 0.02
"""A cell whose samples failed (endpoint errors) or were truncated more often than this is outlined."""


def surface_heatmap(surface: pl.DataFrame, x: str, y: str, title: str) -> alt.Chart:
    """Accuracy over a 2-D slice of the difficulty space: where it collapses. Axes run in the order of
    x_rank / y_rank (numeric order, else the manifold's), y growing upwards. Each cell shows its accuracy
    and the half-width of its Wilson 95% interval; a cell with more than 2% of its samples failed or
    truncated is outlined in red, since its accuracy speaks for fewer samples than asked."""
    data = surface.select(
        pl.col("x").cast(pl.String), pl.col("y").cast(pl.String), "accuracy", "n",
        ((pl.col("ci_high") - pl.col("ci_low")) / 2).alias("half_width"),
        (pl.col("truncation_rate") + pl.col("errors") / pl.col("n") > FAILING_SHARE).alias("failing"),
    ).with_columns(("±" + pl.col("half_width").round(2).cast(pl.String)).alias("half_width_label"))
    y_order = _axis_order(surface, "y", "y_rank")
    base = alt.Chart(alt.Data(values=_values(data))).encode(
        x=alt.X("x:O", title=x, sort=_axis_order(surface, "x", "x_rank"), axis=alt.Axis(labelAngle=0)),
        y=alt.Y("y:O", title=y, sort=list(reversed(y_order)) if y_order is not None else "descending"),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("accuracy:Q", scale=alt.Scale(domain=[0, 1], scheme="viridis")),
        tooltip=["x:N", "y:N", "accuracy:Q", "half_width:Q", "n:Q", "failing:N"],
    )
    labels = base.mark_text(fontSize=11, color="white", dy=-6).encode(text=alt.Text("accuracy:Q", format=".2f"))
    widths = base.mark_text(fontSize=9, color="white", dy=7).encode(text="half_width_label:N")
    outlines = base.transform_filter("datum.failing").mark_rect(filled=False, stroke="#d62728", strokeWidth=3)
    subtitle = f"accuracy and ±Wilson 95% half-width; red outline: over {FAILING_SHARE:.0%} of samples failed or truncated"
    return (cells + labels + widths + outlines).properties(title=alt.TitleParams(title, subtitle=subtitle), width=320, height=220)


def leaderboard_bars(board: pl.DataFrame) -> alt.Chart:
    """Strict accuracy per task, one bar per tier and model (side by side, never stacked), with its
    Wilson 95% interval as a rule."""
    data = board.select("model", "task", "tier", "accuracy", "ci_low", "ci_high")
    tiers = [t for t in ("easy", "medium", "hard") if t in set(board["tier"])]
    base = alt.Chart(alt.Data(values=_values(data))).encode(
        y=alt.Y("tier:N", title=None, sort=tiers), yOffset="model:N",
        color=alt.Color("model:N", scale=alt.Scale(scheme=MODEL_PALETTE)),
    )
    bars = base.mark_bar().encode(x=alt.X("accuracy:Q", title=CURVE_Y_TITLE, scale=alt.Scale(domain=[0, 1])))
    errors = base.mark_rule(color="black").encode(x="ci_low:Q", x2="ci_high:Q")
    return (bars + errors).properties(width=360, height=20 * len(tiers) * max(1, board["model"].n_unique())).facet(
        row=alt.Row("task:N", title=None)
    )


CURVE_Y_TITLE = "accuracy (strict, Wilson 95% CI)"
MODEL_PALETTE: Final = "tableau10"  # categorical: models are unordered


def is_numeric_axis(curve: pl.DataFrame) -> bool:
    """A projection's axis is numeric when every value on it is a number (projections.axis_numeric)."""
    return curve.height > 0 and curve["axis_numeric"].is_not_null().all()


def difficulty_curve(curve: pl.DataFrame, axis: str, title: str) -> alt.Chart:
    """Strict accuracy along one projection's axis, one line per model, with its Wilson 95% interval.

    `curve` holds rows of the projections table for one task and projection. A numeric axis is a
    quantitative scale (log when its values are positive and span a factor of 10 or more), so the points
    sit in numeric order at their distances, the interval drawn as a band; a categorical axis keeps the
    order of axis_rank (the manifold's order) with an error bar per value. Rows with no answered sample
    have no accuracy and are left out."""
    data = curve.filter(pl.col("accuracy").is_not_null()).sort("model", "axis_rank").select(
        "model", "axis_value", "axis_numeric", "axis_rank", "accuracy", "ci_low", "ci_high", "flexible_accuracy", "n", "answered"
    )
    numeric = is_numeric_axis(curve)
    if numeric:
        values = sorted(set(curve["axis_numeric"].to_list()))
        log = values[0] > 0 and values[-1] / values[0] >= 10
        scale = alt.Scale(type="log", nice=False) if log else alt.Scale(zero=False)
        x = alt.X("axis_numeric:Q", title=axis, scale=scale, axis=alt.Axis(values=values))
    else:
        order = curve.sort("axis_rank").unique("axis_value", maintain_order=True)["axis_value"].to_list()
        x = alt.X("axis_value:O", title=axis, sort=order, axis=alt.Axis(labelAngle=0))
    accuracy_scale = alt.Scale(domain=[0, 1])
    base = alt.Chart(alt.Data(values=_values(data))).encode(
        x=x, color=alt.Color("model:N", title="model", scale=alt.Scale(scheme=MODEL_PALETTE))
    )
    interval = base.mark_area(opacity=0.18) if numeric else base.mark_rule(strokeWidth=2, opacity=0.6)
    interval = interval.encode(y=alt.Y("ci_low:Q", title=CURVE_Y_TITLE, scale=accuracy_scale, stack=None), y2="ci_high:Q")
    line = base.mark_line(point=alt.OverlayMarkDef(filled=True, size=50)).encode(
        y=alt.Y("accuracy:Q", title=CURVE_Y_TITLE, scale=accuracy_scale),
        order="axis_rank:Q",
        tooltip=["model:N", "axis_value:N", "accuracy:Q", "ci_low:Q", "ci_high:Q", "n:Q", "answered:Q"],
    )
    # Flexible accuracy dashed beside it: where a model answers outside the requested form, the gap
    # between the lines is what format costs it, and the curve's shape stays visible.
    flexible = base.mark_line(strokeDash=[5, 3], opacity=0.7, point=alt.OverlayMarkDef(filled=False, size=30)).encode(
        y=alt.Y("flexible_accuracy:Q", scale=accuracy_scale),
        order="axis_rank:Q",
        tooltip=["model:N", "axis_value:N", "flexible_accuracy:Q", "n:Q"],
    )
    # Chance level: what a uniform guess scores, the floor a curve collapses to.
    chance = alt.Chart(alt.Data(values=[{"chance": cast(float, curve["guess_chance"].mean())}])).mark_rule(
        color="gray", strokeDash=[2, 2]
    ).encode(y=alt.Y("chance:Q", scale=accuracy_scale))
    subtitle = "solid: strict accuracy with its Wilson 95% interval; dashed: flexible accuracy; dotted gray: chance"
    return (interval + line + flexible + chance).properties(title=alt.TitleParams(title, subtitle=subtitle), width=360, height=220)
