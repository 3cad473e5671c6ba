"""Altair views of stored token-FFT spectra (rows of `fft_spectra`, DESIGN §8).

Input frames have one row per (model, task, grid point): model, task, point_id, params_json (the point's
params as JSON), mean_magnitude and std_magnitude (lists on FREQUENCY_GRID), dc, low, mid, high.
Spectra span orders of magnitude (DC is the mean token id), so magnitudes and energies use log scales.
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

from rs_dagster.fft.spectrum import FREQUENCY_GRID, varying_axis

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
POINT_COLUMNS = ["n", "accuracy", "ci_low", "ci_high", "excess_accuracy", "truncation_rate"]
"""What `with_points` takes from each row of `points`."""
JOIN_KEYS = ["model", "task", "point_id"]
_FREQUENCY = alt.X("frequency:Q", title="frequency (cycles/token)", scale=alt.Scale(domain=[0, 0.5]))
_MAGNITUDE = alt.Y("magnitude:Q", title="mean |rfft| / n (log)", scale=alt.Scale(type="log"))


def _require(df: pl.DataFrame, columns: list[str], chart: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{chart}: the frame lacks columns {missing}; it has {df.columns}")
    if df.is_empty():
        raise ValueError(f"{chart}: the frame has no rows")


def _long_spectra(df: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """One row per (keys, frequency): the mean of the points' mean magnitudes; zeros dropped for log scales."""
    grid = pl.Series("frequency", [FREQUENCY_GRID.tolist()] * df.height, dtype=pl.List(pl.Float64))
    return (
        df.select(*keys, "mean_magnitude", "std_magnitude")
        .with_columns(grid)
        .explode("frequency", "mean_magnitude", "std_magnitude")
        .group_by(*keys, "frequency")
        .agg(magnitude=pl.col("mean_magnitude").mean(), std=pl.col("std_magnitude").mean(), points=pl.len())
        .filter(pl.col("magnitude") > 0)
        .sort(*keys, "frequency")
    )


def spectra_by_projection(df: pl.DataFrame, axis: str) -> alt.Chart:
    """Log-magnitude vs frequency, one line per value of the params axis (dashed per model if several)."""
    _require(df, SPECTRUM_COLUMNS, "spectra_by_projection")
    params = [json.loads(text) for text in df["params_json"]]
    lacking = [pid for pid, p in zip(df["point_id"], params, strict=True) if axis not in p]
    if lacking:
        raise ValueError(
            f"spectra_by_projection: points {lacking[:5]} have no parameter {axis!r}; they have {sorted(params[0])}"
        )
    values = pl.Series(axis, [json.dumps(p[axis]) if isinstance(p[axis], (list, dict)) else p[axis] for p in params])
    long = _long_spectra(df.with_columns(values), ["model", axis])
    tasks = ", ".join(sorted(df["task"].unique()))
    encoding = {
        "x": _FREQUENCY,
        "y": _MAGNITUDE,
        "color": alt.Color(f"{axis}:O", title=axis, scale=alt.Scale(scheme="viridis")),
        "tooltip": [
            "model",
            axis,
            alt.Tooltip("frequency:Q", format=".3f"),
            alt.Tooltip("magnitude:Q", format=".4g"),
            "points",
        ],
    }
    if df["model"].n_unique() > 1:
        encoding["strokeDash"] = alt.StrokeDash("model:N")
    else:
        encoding["detail"] = "model:N"
    return (
        alt.Chart(long, title=f"{tasks}: prompt token spectrum by {axis}")
        .mark_line()
        .encode(**encoding)
        .properties(width=480, height=300)
    )


def projection_charts(df: pl.DataFrame) -> list[tuple[str, str, alt.Chart]]:
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


def model_comparison(df: pl.DataFrame) -> alt.Chart:
    """Log-magnitude vs frequency, one line per model, averaged over the points of one task."""
    _require(df, SPECTRUM_COLUMNS, "model_comparison")
    tasks = sorted(df["task"].unique())
    if len(tasks) != 1:
        raise ValueError(f"model_comparison: compares models on one task; the frame holds tasks {tasks}")
    long = _long_spectra(df, ["model"])
    return (
        alt.Chart(long, title=f"{tasks[0]}: prompt token spectrum by model")
        .mark_line()
        .encode(
            x=_FREQUENCY,
            y=_MAGNITUDE,
            color=alt.Color("model:N"),
            tooltip=[
                "model",
                alt.Tooltip("frequency:Q", format=".3f"),
                alt.Tooltip("magnitude:Q", format=".4g"),
                "points",
            ],
        )
        .properties(width=480, height=300)
    )


def band_vs_accuracy(df: pl.DataFrame) -> alt.Chart:
    """Accuracy of each grid point against its band energies, one panel per band (dc, low, mid, high)."""
    _require(df, [*SPECTRUM_COLUMNS, "accuracy"], "band_vs_accuracy")
    index = ["model", "task", "point_id", "params_json", "accuracy"]
    if "truncation_rate" in df.columns:
        index.append("truncation_rate")
    measured = df.filter(pl.col("accuracy").is_not_null())
    if measured.is_empty():
        raise ValueError("band_vs_accuracy: no row has an accuracy (every sample truncated or failed)")
    long = (
        measured.select(*index, *BAND_COLUMNS)
        .unpivot(index=index, on=BAND_COLUMNS, variable_name="band", value_name="energy")
        .filter(pl.col("energy") > 0)
    )
    tooltip = ["model", "task", "point_id", "params_json", alt.Tooltip("energy:Q", format=".4g"), alt.Tooltip("accuracy:Q", format=".3f")]
    if "truncation_rate" in index:
        tooltip.append(alt.Tooltip("truncation_rate:Q", format=".3f"))
    return (
        alt.Chart(long, title="band energy vs accuracy per grid point")
        .mark_point()
        .encode(
            x=alt.X(
                "energy:Q",
                title="mean squared magnitude (log)",
                scale=alt.Scale(type="log"),
                axis=alt.Axis(format="~s"),
            ),
            y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("model:N"),
            shape=alt.Shape("task:N"),
            column=alt.Column("band:N", sort=BAND_COLUMNS),
            tooltip=tooltip,
        )
        .properties(width=200, height=200)
        .resolve_scale(x="independent")
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
    comparison: alt.Chart | None = None
    bands: alt.Chart | None = None
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
