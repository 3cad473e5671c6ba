"""Altair views of stored token-FFT spectra (rows of `fft_spectra`, DESIGN §8).

Input frames have one row per (model, task, grid point): model, task, point_id, params_json (the point's
params as JSON), mean_magnitude and std_magnitude (lists on FREQUENCY_GRID), dc, low, mid, high.
Spectra span orders of magnitude (DC is the mean token id), so magnitudes and energies use log scales;
each mean spectrum is drawn over its ± std band across the prompts.
When several points share a line (same axis value, or a whole task), their mean spectra are averaged
with equal weight per point.

`with_points` joins spectra with the `points` table on (model, task, point_id); `task_figures` plans the
report's per-task views and says, for each one it cannot draw, which data is missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import altair as alt
import polars as pl

from rs_dagster.fft.spectrum import BANDS, FREQUENCY_GRID, varying_axis
from rs_dagster.report.charts import CURVE_Y_TITLE, MODEL_PALETTE, chance_key, models_and_chance, param_text, point_label

SPECTRUM_COLUMNS = [
    "model",
    "task",
    "point_id",
    "params_json",
    "mean_magnitude",
    "std_magnitude",
    "dc",
    "low",
    "mid",
    "high",
]
BAND_COLUMNS = ["dc", "low", "mid", "high"]
BAND_TITLES = {"dc": "DC (f = 0): mean token id²", **{name: f"{name} ({lo:g}, {hi:g}] cycles / token" for name, (lo, hi) in BANDS.items()}}
POINT_COLUMNS = ["n", "accuracy", "ci_low", "ci_high", "excess_accuracy", "truncation_rate", "guess_chance"]
"""What `with_points` takes from each row of `points`."""
JOIN_KEYS = ["model", "task", "point_id"]
STD_FLOOR = 0.1
"""On the log scale a band's lower edge, mean − std, is held at STD_FLOOR × mean where it would reach 0."""
_FREQUENCY = alt.X("frequency:Q", title="frequency (cycles / token)", scale=alt.Scale(domain=[0, 0.5]))
MAGNITUDE_TITLE = "magnitude |rfft(token ids)| / n (log)"
_MAGNITUDE = alt.Y("magnitude:Q", title=MAGNITUDE_TITLE, scale=alt.Scale(type="log"))
_STD_SUBTITLE = f"line: mean spectrum over the prompts; band: ± 1 std across prompts (lower edge held at {STD_FLOOR:g} × mean)"
_SEQUENTIAL = alt.SchemeParams("viridis", extent=[0, 0.85])  # numeric axis values: ordered; the pale end left out


def _require(df: pl.DataFrame, columns: list[str], chart: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{chart}: the frame lacks columns {missing}; it has {df.columns}")
    if df.is_empty():
        raise ValueError(f"{chart}: the frame has no rows")


def _long_spectra(df: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """One row per (keys, frequency): the mean of the points' mean magnitudes and of their std, and the
    std band around it (std_low, std_high); zeros dropped for log scales."""
    grid = pl.Series("frequency", [FREQUENCY_GRID.tolist()] * df.height, dtype=pl.List(pl.Float64))
    return (
        df.select(*keys, "mean_magnitude", "std_magnitude")
        .with_columns(grid)
        .explode("frequency", "mean_magnitude", "std_magnitude")
        .group_by(*keys, "frequency")
        .agg(magnitude=pl.col("mean_magnitude").mean(), std=pl.col("std_magnitude").mean(), points=pl.len())
        .filter(pl.col("magnitude") > 0)
        .with_columns(
            pl.max_horizontal(pl.col("magnitude") - pl.col("std"), STD_FLOOR * pl.col("magnitude")).alias("std_low"),
            (pl.col("magnitude") + pl.col("std")).alias("std_high"),
        )
        .sort(*keys, "frequency")
    )


def _spectrum_layers(long: pl.DataFrame, color: alt.Color, select: alt.Parameter, tooltip: list, **encoding) -> alt.LayerChart:
    """Mean spectrum lines over their ± std bands (one per model and colour), zoomable (scales bound) and
    highlighted by the legend; `encoding` tells the lines of several models apart."""
    band = alt.Chart().mark_area().encode(
        x=_FREQUENCY, y=alt.Y("std_low:Q", title=MAGNITUDE_TITLE, scale=alt.Scale(type="log")), y2="std_high:Q", color=color,
        opacity=alt.when(select).then(alt.value(0.12)).otherwise(alt.value(0.0)), detail="model:N",
    )
    line = alt.Chart().mark_line().encode(
        x=_FREQUENCY, y=_MAGNITUDE, color=color, tooltip=tooltip,
        opacity=alt.when(select).then(alt.value(1.0)).otherwise(alt.value(0.15)), **encoding,
    ).add_params(select, alt.selection_interval(bind="scales"))
    return alt.LayerChart(layer=[band, line], data=long).properties(width=480, height=300)


def _axis_values(params: list[dict], axis: str) -> tuple[pl.Series, bool]:
    """The axis value of each point and whether they are all numbers (an ordered axis); other values
    (text, booleans, lists) become their readable text."""
    raw = [p[axis] for p in params]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw):
        return pl.Series(axis, raw), True
    return pl.Series(axis, [param_text(v) for v in raw], dtype=pl.String), False


def spectra_by_projection(df: pl.DataFrame, axis: str) -> alt.LayerChart:
    """Log-magnitude vs frequency, one line per value of the params axis (dashed per model if several),
    each over its ± std band. Numeric axis values get a sequential palette in their order, categorical
    ones (a notation, a style) a categorical palette."""
    _require(df, SPECTRUM_COLUMNS, "spectra_by_projection")
    params = [json.loads(text) for text in df["params_json"]]
    lacking = [pid for pid, p in zip(df["point_id"], params, strict=True) if axis not in p]
    if lacking:
        raise ValueError(
            f"spectra_by_projection: points {lacking[:5]} have no parameter {axis!r}; they have {sorted(params[0])}"
        )
    values, numeric = _axis_values(params, axis)
    long = _long_spectra(df.with_columns(values), ["model", axis])
    tasks = ", ".join(sorted(df["task"].unique()))
    scale = alt.Scale(scheme=_SEQUENTIAL) if numeric else alt.Scale(scheme=MODEL_PALETTE)
    color = alt.Color(f"{axis}:{'O' if numeric else 'N'}", title=axis, scale=scale, legend=alt.Legend(symbolOpacity=1))
    tooltip = [
        alt.Tooltip("model:N"), alt.Tooltip(f"{axis}:{'O' if numeric else 'N'}"), alt.Tooltip("frequency:Q", format=".3f"),
        alt.Tooltip("magnitude:Q", title="mean magnitude", format=".4g"), alt.Tooltip("std:Q", title="std across prompts", format=".4g"),
        alt.Tooltip("points:Q", title="grid points averaged"),
    ]
    several = df["model"].n_unique() > 1
    encoding = {"strokeDash": alt.StrokeDash("model:N", title="model")} if several else {"detail": alt.Detail("model:N")}
    select = alt.selection_point(fields=[axis], bind="legend")
    return _spectrum_layers(long, color, select, tooltip, **encoding).properties(
        title=alt.TitleParams(f"{tasks}: prompt token spectrum by {axis}", subtitle=_STD_SUBTITLE)
    )


def projection_charts(df: pl.DataFrame) -> list[tuple[str, str, alt.LayerChart]]:
    """(projection, axis, spectra_by_projection chart) for each projection the frame's points belong to:
    within a projection only its axis varies, so the axis is the one parameter that varies there. A task
    without projections gets one chart by the first parameter that varies over all its points."""
    _require(df, [*SPECTRUM_COLUMNS, "projections"], "projection_charts")
    names = sorted(df["projections"].explode().drop_nulls().unique())
    subsets = [(name, df.filter(pl.col("projections").list.contains(name))) for name in names] or [("", df)]
    charts = []
    for name, subset in subsets:
        if axis := varying_axis(subset):
            charts.append((name, axis, spectra_by_projection(subset, axis)))
    return charts


def model_comparison(df: pl.DataFrame) -> alt.LayerChart:
    """Log-magnitude vs frequency, one line per model over its ± std band, averaged over the points of one task."""
    _require(df, SPECTRUM_COLUMNS, "model_comparison")
    tasks = sorted(df["task"].unique())
    if len(tasks) != 1:
        raise ValueError(f"model_comparison: compares models on one task; the frame holds tasks {tasks}")
    long = _long_spectra(df, ["model"])
    color = alt.Color("model:N", title="model", scale=alt.Scale(scheme=MODEL_PALETTE), legend=alt.Legend(symbolOpacity=1))
    tooltip = [
        alt.Tooltip("model:N"), alt.Tooltip("frequency:Q", format=".3f"),
        alt.Tooltip("magnitude:Q", title="mean magnitude", format=".4g"), alt.Tooltip("std:Q", title="std across prompts", format=".4g"),
        alt.Tooltip("points:Q", title="grid points averaged"),
    ]
    select = alt.selection_point(fields=["model"], bind="legend")
    return _spectrum_layers(long, color, select, tooltip).properties(
        title=alt.TitleParams(f"{tasks[0]}: prompt token spectrum by model", subtitle=_STD_SUBTITLE)
    )


def band_vs_accuracy(df: pl.DataFrame) -> alt.FacetChart:
    """Strict accuracy of each grid point (with its Wilson 95% interval) against its band energies, one
    panel per band (dc, low, mid, high) in a 2 × 2 grid that fits the report, chance marked."""
    _require(df, [*SPECTRUM_COLUMNS, *POINT_COLUMNS], "band_vs_accuracy")
    index = ["model", "task", "point_id", "params_json", *POINT_COLUMNS]
    measured = df.filter(pl.col("accuracy").is_not_null())
    if measured.is_empty():
        raise ValueError("band_vs_accuracy: no row has an accuracy (every sample truncated or failed)")
    long = (
        measured.select(*index, *BAND_COLUMNS)
        .unpivot(index=index, on=BAND_COLUMNS, variable_name="band", value_name="energy")
        .filter(pl.col("energy") > 0)
        .with_columns(
            pl.col("params_json").map_elements(point_label, return_dtype=pl.String).alias("point"),
            pl.format("{}–{}", pl.col("ci_low").round(3), pl.col("ci_high").round(3)).alias("interval"),
        )
    )
    colors = models_and_chance(sorted(long["model"].unique().to_list()))
    y = alt.Y("accuracy:Q", title=CURVE_Y_TITLE, scale=alt.Scale(domain=[0, 1]))
    x = alt.X("energy:Q", title="band energy: mean squared magnitude (log)", scale=alt.Scale(type="log"), axis=alt.Axis(format="~s"))
    tooltip = [
        alt.Tooltip("model:N"), alt.Tooltip("point:N", title="grid point"), alt.Tooltip("band:N"),
        alt.Tooltip("energy:Q", format=".4g"), alt.Tooltip("accuracy:Q", title="strict accuracy", format=".3f"),
        alt.Tooltip("interval:N", title="Wilson 95% CI"), alt.Tooltip("n:Q", title="samples"),
        alt.Tooltip("truncation_rate:Q", title="truncated", format=".3f"),
    ]
    dots = alt.Chart().mark_point(filled=True, size=40).encode(
        x=x, y=y, color=alt.Color("model:N", title="model", scale=colors, legend=alt.Legend(symbolOpacity=1)), tooltip=tooltip
    )
    errors = alt.Chart().mark_rule(opacity=0.5).encode(x=x, y=alt.Y("ci_low:Q", title=CURVE_Y_TITLE), y2="ci_high:Q", color=alt.Color("model:N", scale=colors))
    chance = chance_key(alt.Chart().mark_rule(strokeDash=[2, 2]), colors).encode(y=alt.Y("mean(guess_chance):Q", title=CURVE_Y_TITLE))
    header = " : ".join(f"datum.value == '{band}' ? '{title}'" for band, title in BAND_TITLES.items()) + " : datum.value"
    tasks = ", ".join(sorted(long["task"].unique()))
    return (
        alt.layer(errors, dots, chance, data=long)
        .properties(width=260, height=170)
        .facet(facet=alt.Facet("band:N", sort=BAND_COLUMNS, title=None, header=alt.Header(labelExpr=header)), columns=2)
        .resolve_scale(x="independent")
        .properties(title=alt.TitleParams(f"{tasks}: band energy vs strict accuracy per grid point", subtitle="rule: Wilson 95% CI of accuracy"))
    )


def with_points(spectra: pl.DataFrame, points: pl.DataFrame) -> pl.DataFrame:
    """Spectra rows that have a `points` row, on (model, task, point_id), with the point's POINT_COLUMNS.

    Inner join: a spectrum of a point that was not evaluated (fft_spectra covers the whole manifold,
    points only the evaluated tiers) has no accuracy to set it against. Accuracy stays null where every
    sample of the point was truncated or failed; truncation_rate is always set."""
    _require(spectra, SPECTRUM_COLUMNS, "with_points")
    missing = [c for c in [*JOIN_KEYS, *POINT_COLUMNS] if c not in points.columns]
    if missing:
        raise ValueError(f"with_points: the points frame lacks columns {missing}; it has {points.columns}")
    return spectra.join(points.select(*JOIN_KEYS, *POINT_COLUMNS), on=JOIN_KEYS, how="inner").sort(JOIN_KEYS)


@dataclass
class TaskFigures:
    """The report's token-FFT comparison views of one task; a view is None when its data is missing,
    and `missing` then says why, in words for the reader."""

    task: str
    models: list[str]
    joined: pl.DataFrame
    """with_points rows of this task that have an accuracy (the band chart's points)."""
    comparison: alt.LayerChart | None = None
    bands: alt.FacetChart | None = None
    missing: list[str] = field(default_factory=list)


def task_figures(spectra: pl.DataFrame, points: pl.DataFrame) -> list[TaskFigures]:
    """Per task of `spectra`: model_comparison when ≥ 2 models have spectra of it, and band_vs_accuracy
    when some of its spectra join a `points` row with an accuracy. An empty or column-less `points`
    frame (nothing evaluated yet) means no band chart."""
    joined = (
        with_points(spectra, points)
        if not points.is_empty()
        else spectra.head(0).with_columns(pl.lit(None, pl.Float64).alias(c) for c in POINT_COLUMNS)
    )
    figures = []
    for task in sorted(spectra["task"].unique()):
        frame = spectra.filter(pl.col("task") == task)
        models = sorted(frame["model"].unique())
        measured = joined.filter((pl.col("task") == task) & pl.col("accuracy").is_not_null())
        figure = TaskFigures(task=task, models=models, joined=measured)
        if len(models) >= 2:
            figure.comparison = model_comparison(frame)
        else:
            figure.missing.append(
                f"No model comparison: only {models[0]} has spectra of {task}; it needs a second model with a "
                "`tokenizer:` entry and its fft_spectra."
            )
        if not measured.is_empty():
            figure.bands = band_vs_accuracy(measured)
            left_out = sorted(set(models) - set(measured["model"]))
            if left_out:
                figure.missing.append(
                    f"The band energy vs accuracy chart leaves out {', '.join(left_out)}: no grid point of {task} "
                    "evaluated with an accuracy in `points`."
                )
        else:
            figure.missing.append(
                f"No band energy vs accuracy: no grid point of {task} has both a spectrum and an accuracy in "
                f"`points` for {', '.join(models)}; evaluate {'that model' if len(models) == 1 else 'those models'} "
                "on the task first (`rs eval`)."
            )
        figures.append(figure)
    return figures
