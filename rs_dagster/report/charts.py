"""Altair charts of points and leaderboards, rendered to PNG with vl-convert (no browser needed)."""

from __future__ import annotations

import base64

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


def surface_heatmap(surface: pl.DataFrame, x: str, y: str, title: str) -> alt.Chart:
    """Accuracy over a 2-D slice of the difficulty space: where it collapses."""
    data = surface.select(pl.col("x").cast(pl.String), pl.col("y").cast(pl.String), "accuracy", "n")
    base = alt.Chart(alt.Data(values=_values(data))).encode(
        x=alt.X("x:O", title=x, sort=None), y=alt.Y("y:O", title=y, sort="descending")
    )
    cells = base.mark_rect().encode(
        color=alt.Color("accuracy:Q", scale=alt.Scale(domain=[0, 1], scheme="viridis")), tooltip=["x:N", "y:N", "accuracy:Q", "n:Q"]
    )
    labels = base.mark_text(fontSize=11, color="white").encode(text=alt.Text("accuracy:Q", format=".2f"))
    return (cells + labels).properties(title=title, width=280, height=200)


def leaderboard_bars(board: pl.DataFrame) -> alt.Chart:
    data = board.select("model", "task", "accuracy", "ci_low", "ci_high")
    base = alt.Chart(alt.Data(values=_values(data))).encode(y=alt.Y("model:N", title=None))
    bars = base.mark_bar(color="#72b7b2").encode(x=alt.X("accuracy:Q", scale=alt.Scale(domain=[0, 1])))
    errors = base.mark_rule().encode(x="ci_low:Q", x2="ci_high:Q")
    return (bars + errors).properties(width=300, height=60).facet(row=alt.Row("task:N", title=None))
