"""Altair charts of points and leaderboards, rendered to SVG or PNG with vl-convert (no browser needed)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from concurrent.futures import Future
from typing import Final, cast

import altair as alt
import polars as pl
import vl_convert

from rs_dagster.report.drawing import markdown_soon

LABEL_GAP = 5
"""Pixels Vega keeps between two axis labels it shows (Vega-Lite's labelSeparation, 0 by default): Vega hides
labels that come closer (labelOverlap, on for every quantitative axis, greedy on log scales), measuring them
in the font it has, and a page or an SVG viewer may draw the same text in a wider sans-serif (DejaVu Sans is
about 14% wider than the Arial-metric font vl-convert measures with), which would close a smaller gap."""


def vega_lite(chart: alt.TopLevelMixin) -> dict:
    """The chart's Vega-Lite spec as the explorer, the report and asset metadata draw it: axis labels kept
    LABEL_GAP apart (a chart's own labelSeparation wins). Without altair's jsonschema validation, which took
    2-3 times as long as the spec itself (survival chart: 29 ms against 14 ms) in every evaluation run and
    report; every chart builder's spec is validated by tests/test_chart_quality.py instead."""
    spec = chart.to_dict(validate=False)
    spec.setdefault("config", {}).setdefault("axis", {}).setdefault("labelSeparation", LABEL_GAP)
    return spec


def png_bytes(chart: alt.TopLevelMixin, scale: float = 1.5) -> bytes:
    return vl_convert.vegalite_to_png(vega_lite(chart), scale=scale)


def chart_markdown(chart: alt.TopLevelMixin, title: str = "chart") -> str:
    """Markdown with the chart inlined as SVG, for Dagster's markdown metadata (rs_dagster.report.drawing)."""
    return chart_markdown_soon(chart, title).result()


def chart_markdown_soon(chart: alt.TopLevelMixin, title: str = "chart") -> Future[str]:
    """chart_markdown drawn while the caller goes on with its writes and checks (the survival and hazard chart:
    ~100 ms of a run's step). The spec is built here; `.result()` is the markdown, or the drawing's error."""
    return markdown_soon(vega_lite(chart), title)


def _values(frame: pl.DataFrame) -> alt.Data:
    """The frame's rows as a chart's inline data: Rows when every column holds JSON values already (numbers,
    text, booleans), alt.Data (which altair converts) when one holds anything else (dates, decimals, lists...)."""
    rows = frame.to_dicts()
    plain = all((dtype.is_numeric() and not dtype.is_decimal()) or dtype in (pl.String, pl.Boolean, pl.Null) for dtype in frame.schema.values())
    return Rows(rows) if plain else alt.Data(values=rows)


class Rows(alt.Data):
    """A chart's inline rows, as alt.Data(values=rows) writes them, that altair neither validates row by row
    when the chart is built (debug mode checked every value against the schema) nor copies at each
    .encode()/.properties()/layer, nor walks again when it writes the spec: 120 of the survival chart's 250 ms
    at 1,140 rows. The rows must be JSON values already (numbers, strings, None), as polars' to_dicts gives
    them for numeric and text columns: dates would not become Vega DateTime objects."""

    _class_is_valid_at_instantiation = False  # the rows: validated with the whole spec by tests/test_chart_quality.py

    def __init__(self, rows: list[dict]):
        super().__init__(values=rows)

    def __deepcopy__(self, memo: object = None) -> Rows:
        return Rows(self._kwds["values"])  # a new object (altair joins the data of layers by identity), the same rows

    def to_dict(self, validate: bool = True, *, ignore: list[str] | None = None, context: dict | None = None) -> dict:
        return {"values": self._kwds["values"]}

    def __repr__(self) -> str:
        return "Data" + super().__repr__().removeprefix("Rows")  # as alt.Data's: altair names a layer by a hash of it


CHANCE = "chance (uniform guess)"
CHANCE_COLOR = "#333333"
CURVE_Y_TITLE = "strict accuracy (Wilson 95% CI)"
MODEL_PALETTE: Final = "tableau10"  # categorical: models are unordered
MARK_COLOR = "#4c78a8"


def param_text(value: object) -> str:
    """A parameter value as plain text: lists in brackets, no JSON quotes."""
    if isinstance(value, list):
        return "[" + ", ".join(param_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "(" + ", ".join(f"{k}={param_text(v)}" for k, v in value.items()) + ")"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def point_label(params_json: str, keys: list[str] | None = None) -> str:
    """A grid point as its axis values, `terms=4 · depth=2` (only `keys`, when given): readable where the
    JSON text of params_json is not."""
    params = json.loads(params_json)
    return " · ".join(f"{k}={param_text(params[k])}" for k in (keys or params) if k in params)


def varying_params(params_json: list[str]) -> list[str]:
    """The parameters that take several values among the points, in the first point's order: what tells
    the points apart (all of them when nothing varies)."""
    params = [json.loads(text) for text in params_json]
    keys = list(params[0]) if params else []
    varying = [k for k in keys if len({json.dumps(p.get(k), sort_keys=True) for p in params}) > 1]
    return varying or keys


GridKey = tuple[int, float, str, str]


def value_order(value: object) -> GridKey:
    """A parameter value's place in the order of a grid's values: a number by its value (12 after 3), before
    every other value (text, booleans, lists), which go in the order of their text; a missing value last."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "", "")
    if value is None:
        return (2, 0.0, "", "")
    return (1, 0.0, param_text(value), json.dumps(value, sort_keys=True))


def grid_order(params_json: Iterable[str], keys: list[str] | None = None) -> list[str]:
    """The distinct grid points (params_json texts) in the order of their values, parameter by parameter
    (`keys` first, then the others in the order the points name them), each as value_order puts it: numbers
    numerically (terms=3, 6, 12, 24, 48, where the JSON text sorts 12, 24, 3, 48, 6), other values by their text."""
    points = {text: json.loads(text) for text in dict.fromkeys(params_json)}
    names = list(dict.fromkeys([*(keys or []), *(k for params in points.values() for k in params)]))
    return sorted(points, key=lambda text: ([value_order(points[text].get(k)) for k in names], text))


def sort_points(frame: pl.DataFrame, *by: str, column: str = "params_json") -> pl.DataFrame:
    """The frame's rows sorted by the columns `by`, then by grid point in grid_order (rows without a point,
    a null `column`, after those with one), rows that tie keeping their order."""
    if frame.is_empty() or column not in frame.columns:
        return frame
    order = {text: i for i, text in enumerate(grid_order(frame[column].drop_nulls().to_list()))}
    rank = pl.col(column).replace_strict(order, default=None, return_dtype=pl.Int64)
    return frame.sort([*(pl.col(c) for c in by), rank], nulls_last=True, maintain_order=True)


def axis_order(values: Iterable[object]) -> list[str]:
    """Axis values as text in order: those that read as numbers numerically, before the others in text order."""
    def key(text: str) -> GridKey:
        try:
            number = float(text)
        except ValueError:
            return value_order(text)
        return value_order(number) if math.isfinite(number) else value_order(text)

    return sorted(dict.fromkeys(str(v) for v in values if v is not None), key=key)


def interval_text(low: str = "ci_low", high: str = "ci_high", digits: int = 3) -> pl.Expr:
    """`0.412–0.731`: an interval as one tooltip line."""
    return pl.format("{}–{}", pl.col(low).round(digits), pl.col(high).round(digits)).alias("interval")


TABLEAU10 = ["#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d", "#bab0ac"]
"""MODEL_PALETTE's colours, for a scale that adds the chance entry to the models."""


def models_and_chance(models: list[str]) -> alt.Scale:
    """One categorical colour scale for the models and CHANCE, so a chance mark gets a legend entry beside
    the models (a second colour legend would repeat in every facet)."""
    return alt.Scale(domain=[*models, CHANCE], range=[*(TABLEAU10 * (len(models) // 10 + 1))[: len(models)], CHANCE_COLOR])


def chance_key(mark: alt.Chart, scale: alt.Scale | None = None) -> alt.Chart:
    """The layer as the legend entry CHANCE: Vega-Lite gives a constant (datum) no legend, so the entry
    is a computed field; `scale` when other layers colour by model (models_and_chance)."""
    return mark.transform_calculate(key=f"'{CHANCE}'").encode(
        color=alt.Color("key:N", title="model" if scale else None, scale=scale or alt.Scale(domain=[CHANCE], range=[CHANCE_COLOR]))
    )


def accuracy_by_point(points: pl.DataFrame, title: str) -> alt.LayerChart:
    """Strict accuracy with its Wilson 95% interval per grid point, chance level marked. A point is
    labelled by the parameters that vary between the points (the fixed ones go to the subtitle), in
    numeric order of their values."""
    measured = points.filter(pl.col("accuracy").is_not_null())
    keys = varying_params(measured["params_json"].to_list())
    order = grid_order(measured["params_json"].to_list(), keys)
    data = measured.select(
        pl.col("params_json").map_elements(lambda text: point_label(text, keys), return_dtype=pl.String).alias("point"),
        "accuracy", "ci_low", "ci_high", "guess_chance", "n", "answered", interval_text(),
    )
    labels = [point_label(text, keys) for text in order]
    base = alt.Chart(_values(data)).encode(
        y=alt.Y("point:N", title=f"grid point ({', '.join(keys)})", sort=labels, axis=alt.Axis(labelLimit=300))
    )
    x = alt.X("ci_low:Q", title=CURVE_Y_TITLE, scale=alt.Scale(domain=[0, 1]))
    intervals = base.mark_rule(strokeWidth=2, color=MARK_COLOR).encode(x=x, x2="ci_high:Q")
    dots = base.mark_point(filled=True, size=60, color=MARK_COLOR).encode(
        x=alt.X("accuracy:Q", title=CURVE_Y_TITLE),
        tooltip=[
            alt.Tooltip("point:N", title="grid point"), alt.Tooltip("accuracy:Q", title="strict accuracy", format=".3f"),
            alt.Tooltip("interval:N", title="Wilson 95% CI"), alt.Tooltip("n:Q", title="samples"),
            alt.Tooltip("answered:Q", title="answered"), alt.Tooltip("guess_chance:Q", title="chance", format=".3f"),
        ],
    )
    chance = chance_key(base.mark_tick(thickness=2)).encode(x=alt.X("guess_chance:Q", title=CURVE_Y_TITLE))
    fixed = [k for k in json.loads(order[0]) if k not in keys] if order else []
    subtitle = f"fixed: {point_label(order[0], fixed)}" if fixed else ""
    return (intervals + dots + chance).properties(title=alt.TitleParams(title, subtitle=subtitle), width=420)


def _axis_order(surface: pl.DataFrame, value: str, rank: str) -> list[str]:
    """The axis values in the order of the surfaces table's rank column (numeric, else the manifold's); a
    table without it (written before it existed): numbers numerically, then text (axis_order)."""
    if rank not in surface.columns:
        return axis_order(surface[value].to_list())
    return surface.sort(rank).unique(value, maintain_order=True)[value].cast(pl.String).to_list()


FAILING_SHARE = 0.02
"""A cell whose samples failed (endpoint errors) or were truncated more often than this is outlined."""


def surface_heatmap(surface: pl.DataFrame, x: str, y: str, title: str) -> alt.LayerChart:
    """Accuracy over a 2-D slice of the difficulty space: where it collapses. Axes run in the order of
    x_rank / y_rank (numeric order, else the manifold's), y growing upwards. Each cell shows its accuracy
    and the half-width of its Wilson 95% interval; a cell with more than 2% of its samples failed or
    truncated is outlined in red, since its accuracy speaks for fewer samples than asked. Chance, the
    floor of the colour scale that matters, is named in the subtitle."""
    data = surface.select(
        pl.col("x").cast(pl.String), pl.col("y").cast(pl.String), "accuracy", "n", "answered", "guess_chance", interval_text(),
        ((pl.col("ci_high") - pl.col("ci_low")) / 2).alias("half_width"),
        (pl.col("truncation_rate") + pl.col("errors") / pl.col("n") > FAILING_SHARE).alias("failing"),
    ).with_columns(("±" + pl.col("half_width").round(2).cast(pl.String)).alias("half_width_label"))
    y_order = _axis_order(surface, "y", "y_rank")
    base = alt.Chart(_values(data)).encode(
        x=alt.X("x:O", title=x, sort=_axis_order(surface, "x", "x_rank"), axis=alt.Axis(labelAngle=0)),
        y=alt.Y("y:O", title=y, sort=list(reversed(y_order))),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("accuracy:Q", title="strict accuracy", scale=alt.Scale(domain=[0, 1], scheme="viridis")),
        tooltip=[
            alt.Tooltip("x:N", title=x), alt.Tooltip("y:N", title=y), alt.Tooltip("accuracy:Q", title="strict accuracy", format=".3f"),
            alt.Tooltip("interval:N", title="Wilson 95% CI"), alt.Tooltip("n:Q", title="samples"), alt.Tooltip("answered:Q", title="answered"),
            alt.Tooltip("guess_chance:Q", title="chance", format=".3f"), alt.Tooltip("failing:N", title=f"over {FAILING_SHARE:.0%} failed or truncated"),
        ],
    )
    ink = alt.condition("datum.accuracy > 0.6", alt.value("black"), alt.value("white"))  # legible on viridis' yellow end
    labels = base.mark_text(fontSize=11, dy=-6).encode(text=alt.Text("accuracy:Q", format=".2f"), color=ink)
    widths = base.mark_text(fontSize=9, dy=7).encode(text="half_width_label:N", color=ink)
    outlines = base.transform_filter("datum.failing").mark_rect(filled=False, stroke="#d62728", strokeWidth=3)
    low, high = cast(float, surface["guess_chance"].min()), cast(float, surface["guess_chance"].max())
    level = f"{low:.2f}" if low == high else f"{low:.2f}–{high:.2f}"
    subtitle = [
        "strict accuracy and ±Wilson 95% half-width; red outline: over "
        f"{FAILING_SHARE:.0%} of samples failed or truncated", f"chance (uniform guess): {level}",
    ]
    return (cells + labels + widths + outlines).properties(title=alt.TitleParams(title, subtitle=subtitle), width=320, height=220)


def leaderboard_bars(board: pl.DataFrame) -> alt.FacetChart:
    """Strict accuracy per task, one bar per tier and model (side by side, never stacked), with its
    Wilson 95% interval as a rule and the tier's chance level as a tick."""
    data = board.select("model", "task", "tier", "accuracy", "ci_low", "ci_high", "guess_chance", "answered", "samples", interval_text())
    tiers = [t for t in ("easy", "medium", "hard") if t in set(board["tier"])]
    tiers += sorted(set(board["tier"]) - set(tiers))
    x = alt.X("accuracy:Q", title=CURVE_Y_TITLE, scale=alt.Scale(domain=[0, 1]))
    base = alt.Chart().encode(y=alt.Y("tier:N", title=None, sort=tiers))
    select = alt.selection_point(fields=["model"], bind="legend")
    colors = models_and_chance(sorted(board["model"].unique().to_list()))
    bars = base.mark_bar().encode(
        x=x, yOffset="model:N",
        color=alt.Color("model:N", title="model", scale=colors),
        opacity=alt.when(select).then(alt.value(1.0)).otherwise(alt.value(0.25)),
        tooltip=[
            alt.Tooltip("model:N"), alt.Tooltip("task:N"), alt.Tooltip("tier:N"),
            alt.Tooltip("accuracy:Q", title="strict accuracy", format=".3f"), alt.Tooltip("interval:N", title="Wilson 95% CI"),
            alt.Tooltip("answered:Q", title="answered"), alt.Tooltip("samples:Q", title="samples"),
            alt.Tooltip("guess_chance:Q", title="chance", format=".3f"),
        ],
    ).add_params(select)
    errors = base.mark_rule(color="black").encode(x=alt.X("ci_low:Q", title=CURVE_Y_TITLE), x2="ci_high:Q", yOffset="model:N")
    chance = chance_key(base.mark_tick(thickness=2), colors).encode(x=alt.X("guess_chance:Q", title=CURVE_Y_TITLE))
    return (
        alt.layer(bars, errors, chance, data=_values(data))
        .properties(width=420, height=alt.Step(14))  # per bar
        .facet(row=alt.Row("task:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left", labelFontWeight="bold")))
        .resolve_scale(y="independent")  # a task lists only the tiers it was evaluated at
        .properties(title=alt.TitleParams("Leaderboard: strict accuracy per task and tier", subtitle="tick: chance level; rule: Wilson 95% CI"))
    )


def is_numeric_axis(curve: pl.DataFrame) -> bool:
    """A projection's axis is numeric when every value on it is a number (projections.axis_numeric)."""
    return curve.height > 0 and curve["axis_numeric"].is_not_null().all()


LINE_KINDS = {"strict accuracy": [1, 0], "flexible accuracy": [5, 3], CHANCE: [2, 2]}
"""The dash of each kind of line on a difficulty curve, keyed by its legend entry."""
TRUTH_KIND = "known truth (calibration)"
TRUTH_DASH = [8, 4]
"""A calibration model's true accuracy (rs_dagster.calibration): long dashes in the model's colour, in the
dash legend only on a curve that has one."""
TRUTH = "true_accuracy"
"""The column of a projections frame that holds a calibration model's true accuracy (rs_dagster.explore.truth)."""


def _line_kind(mark: alt.Chart, kind: str, kinds: dict[str, list[int]] = LINE_KINDS) -> alt.Chart:
    """The layer's lines as `kind` in the dash legend of `kinds` (a computed field: a constant gets no legend)."""
    return mark.transform_calculate(kind=f"'{kind}'").encode(
        strokeDash=alt.StrokeDash(
            "kind:N", title=None, scale=alt.Scale(domain=list(kinds), range=list(kinds.values())), legend=alt.Legend(symbolType="stroke", symbolSize=400)
        )
    )


def _truth_rows(curve: pl.DataFrame) -> pl.DataFrame:
    """The curve's points that carry a known truth (TRUTH), as the truth line draws them: named `<model> (truth)`,
    with the measured accuracy, its interval and whether the interval covers the truth."""
    if TRUTH not in curve.columns:
        return pl.DataFrame()
    covered = pl.when(pl.col("accuracy").is_null()).then(pl.lit("no answered sample")).when(
        (pl.col("ci_low") <= pl.col(TRUTH)) & (pl.col(TRUTH) <= pl.col("ci_high"))).then(pl.lit("yes")).otherwise(pl.lit("no"))
    return curve.filter(pl.col(TRUTH).is_not_null()).sort("model", "axis_rank").select(
        "model", (pl.col("model") + " (truth)").alias("series"), "axis_value", "axis_numeric", "axis_rank", TRUTH, "accuracy", "n",
        interval_text(), covered.alias("covered"),
    )


def difficulty_curve(curve: pl.DataFrame, axis: str, title: str) -> alt.LayerChart:
    """Strict accuracy along one projection's axis, one line per model, with its Wilson 95% interval.

    `curve` holds rows of the projections table for one task and projection. A numeric axis is a
    quantitative scale (log when its values are positive and span a factor of 10 or more), so the points
    sit in numeric order at their distances, the interval drawn as a band; a categorical axis keeps the
    order of axis_rank (the manifold's order) with an error bar per value. Rows with no answered sample
    have no accuracy and are left out. Clicking a model in the legend (in a browser) brings its lines forward."""
    data = curve.filter(pl.col("accuracy").is_not_null()).sort("model", "axis_rank").select(
        "model", "axis_value", "axis_numeric", "axis_rank", "accuracy", "ci_low", "ci_high", "flexible_accuracy", "n", "answered",
        interval_text(),
    )
    numeric = is_numeric_axis(curve)
    if numeric:
        values = sorted(set(curve["axis_numeric"].to_list()))
        log = values[0] > 0 and values[-1] / values[0] >= 10
        scale = alt.Scale(type="log", nice=False) if log else alt.Scale(zero=False)
        # Every value gets a tick; on a log scale values crowd at the top of each decade (40, 48), so labels
        # that would come within LABEL_GAP of the previous shown one are left out, greedily from the left.
        x = alt.X("axis_numeric:Q", title=axis, scale=scale,
                  axis=alt.Axis(values=values, labelOverlap="greedy" if log else True, labelSeparation=LABEL_GAP))
    else:
        order = curve.sort("axis_rank").unique("axis_value", maintain_order=True)["axis_value"].to_list()
        x = alt.X("axis_value:O", title=axis, sort=order, axis=alt.Axis(labelAngle=0))
    accuracy_scale = alt.Scale(domain=[0, 1])
    select = alt.selection_point(fields=["model"], bind="legend")
    color = alt.Color("model:N", title="model", scale=alt.Scale(scheme=MODEL_PALETTE), legend=alt.Legend(symbolOpacity=1))
    truth = _truth_rows(curve)
    kinds = {**LINE_KINDS, TRUTH_KIND: TRUTH_DASH} if not truth.is_empty() else LINE_KINDS
    base = alt.Chart(_values(data)).encode(x=x, color=color)
    interval = base.mark_area() if numeric else base.mark_rule(strokeWidth=2)
    interval = interval.encode(
        y=alt.Y("ci_low:Q", title=CURVE_Y_TITLE, scale=accuracy_scale, stack=None), y2="ci_high:Q",
        opacity=alt.when(select).then(alt.value(0.18 if numeric else 0.6)).otherwise(alt.value(0.03)),
    )
    tooltip = [
        alt.Tooltip("model:N"), alt.Tooltip("axis_value:N", title=axis),
        alt.Tooltip("accuracy:Q", title="strict accuracy", format=".3f"), alt.Tooltip("interval:N", title="Wilson 95% CI"),
        alt.Tooltip("flexible_accuracy:Q", title="flexible accuracy", format=".3f"),
        alt.Tooltip("n:Q", title="samples"), alt.Tooltip("answered:Q", title="answered"),
    ]
    faded = alt.when(select).then(alt.value(1.0)).otherwise(alt.value(0.15))
    line = _line_kind(base.mark_line(point=alt.OverlayMarkDef(filled=True, size=50)), "strict accuracy", kinds).encode(
        y=alt.Y("accuracy:Q", title=CURVE_Y_TITLE, scale=accuracy_scale), order="axis_rank:Q", tooltip=tooltip, opacity=faded,
    ).add_params(select)
    # Flexible accuracy dashed beside it: where a model answers outside the requested form, the gap
    # between the lines is what format costs it, and the curve's shape stays visible.
    flexible = _line_kind(base.mark_line(strokeDash=[5, 3], point=alt.OverlayMarkDef(filled=False, size=30)), "flexible accuracy", kinds).encode(
        y=alt.Y("flexible_accuracy:Q", title=CURVE_Y_TITLE, scale=accuracy_scale), order="axis_rank:Q", tooltip=tooltip,
        opacity=alt.when(select).then(alt.value(0.7)).otherwise(alt.value(0.1)),
    )
    # Chance level: what a uniform guess scores, the floor a curve collapses to.
    chance = _line_kind(alt.Chart(alt.Data(values=[{"chance": cast(float, curve["guess_chance"].mean())}])).mark_rule(color="gray"), CHANCE, kinds).encode(
        y=alt.Y("chance:Q", title=CURVE_Y_TITLE, scale=accuracy_scale),
        tooltip=[alt.Tooltip("chance:Q", title=CHANCE, format=".3f")],
    )
    subtitle = f"{'band' if numeric else 'bar'}: Wilson 95% interval of strict accuracy"
    layered = interval + line + flexible + chance
    if not truth.is_empty():
        # A calibration model's true accuracy, long dashes in its colour: its band should cover the line at
        # about 95% of the points; hovering a diamond says whether the interval there does.
        layered += _line_kind(alt.Chart(_values(truth)).mark_line(
            strokeDash=TRUTH_DASH, strokeWidth=2, point=alt.OverlayMarkDef(shape="diamond", filled=True, size=45)), TRUTH_KIND, kinds).encode(
            x=x, color=color, y=alt.Y(f"{TRUTH}:Q", title=CURVE_Y_TITLE, scale=accuracy_scale), order="axis_rank:Q", opacity=faded,
            tooltip=[
                alt.Tooltip("series:N", title="line"), alt.Tooltip("axis_value:N", title=axis),
                alt.Tooltip(f"{TRUTH}:Q", title="true accuracy", format=".3f"), alt.Tooltip("accuracy:Q", title="measured (strict)", format=".3f"),
                alt.Tooltip("interval:N", title="Wilson 95% CI"), alt.Tooltip("covered:N", title="interval covers the truth"),
                alt.Tooltip("n:Q", title="samples"),
            ],
        )
        subtitle += "; long dashes: a calibration model's known truth"
    return layered.properties(title=alt.TitleParams(title, subtitle=subtitle), width=380, height=220)
