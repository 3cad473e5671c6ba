"""Each token-FFT chart renders to a PNG from a frame shaped like the `fft_spectra` rows."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from rs_dagster.fft import charts
from rs_dagster.fft.spectrum import summarize_point
from rs_dagster.report.charts import png_bytes

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def spectra_frame() -> pl.DataFrame:
    """Two models × three points of one axis; synthetic ids whose period and mean depend on the point."""
    rng = np.random.default_rng(0)
    rows = []
    for model, offset in (("model-a", 1000), ("model-b", 30000)):
        for terms in (4, 8, 16):
            sequences = [
                (offset + 50 * (np.arange(60 + i) % (terms // 2)) + rng.integers(0, 20, 60 + i)).tolist()
                for i in range(8)
            ]
            point = summarize_point(sequences)
            rows.append(
                {
                    "model": model,
                    "task": "arithmetic",
                    "point_id": f"p{terms}",
                    "params_json": json.dumps({"terms": terms, "depth": 1}),
                    "mean_magnitude": point.mean_magnitude,
                    "std_magnitude": point.std_magnitude,
                    "dc": point.dc,
                    "low": point.low,
                    "mid": point.mid,
                    "high": point.high,
                    "accuracy": 1.0 - terms / 20,
                }
            )
    frame = pl.DataFrame(rows)
    return frame.with_columns(  # the rest of what with_points joins on, so band_vs_accuracy can draw it
        n=pl.lit(16), ci_low=pl.col("accuracy") - 0.1, ci_high=pl.col("accuracy") + 0.05, excess_accuracy=pl.col("accuracy"),
        truncation_rate=pl.lit(0.0), guess_chance=pl.lit(0.25),
    )


def spectra_only() -> pl.DataFrame:
    """spectra_frame as the fft_spectra table holds it, with nothing of `points`."""
    return spectra_frame().drop(charts.POINT_COLUMNS)


@pytest.mark.parametrize(
    "make",
    [
        lambda df: charts.spectra_by_projection(df.filter(pl.col("model") == "model-a"), "terms"),
        lambda df: charts.spectra_by_projection(df, "terms"),
        charts.model_comparison,
        charts.band_vs_accuracy,
    ],
    ids=["projection", "projection-two-models", "models", "bands"],
)
def test_chart_renders_to_png(make):
    png = png_bytes(make(spectra_frame()), scale=1.0)
    assert png.startswith(PNG_SIGNATURE) and len(png) > 5_000


def test_projection_has_one_line_per_axis_value():
    chart = charts.spectra_by_projection(spectra_frame().filter(pl.col("model") == "model-a"), "terms")
    lines = pl.DataFrame(chart.data).group_by("terms").len()
    assert sorted(lines["terms"]) == [4, 8, 16]


def test_charts_refuse_frames_they_cannot_draw():
    df = spectra_frame()
    with pytest.raises(ValueError, match="no parameter 'width'"):
        charts.spectra_by_projection(df, "width")
    with pytest.raises(ValueError, match="one task"):
        charts.model_comparison(pl.concat([df, df.with_columns(task=pl.lit("boolean"))]))
    with pytest.raises(ValueError, match=r"lacks columns \['accuracy'\]"):
        charts.band_vs_accuracy(df.drop("accuracy"))


def test_spectra_use_log_magnitude_and_comparison_has_one_line_per_model():
    df = spectra_frame()
    for chart in (charts.spectra_by_projection(df, "terms"), charts.model_comparison(df)):
        band, line = chart.to_dict()["layer"]
        assert line["encoding"]["y"]["scale"]["type"] == band["encoding"]["y"]["scale"]["type"] == "log"
    lines = pl.DataFrame(charts.model_comparison(df).data)
    assert lines.group_by("model").agg(pl.len(), pl.col("points").max()).sort("model").rows() == [
        ("model-a", 129, 3),
        ("model-b", 129, 3),
    ]


def points_frame(df: pl.DataFrame) -> pl.DataFrame:
    """`points` rows for the frame's points, with an extra point that has no spectrum."""
    rows = df.select("model", "task", "point_id", "params_json", "accuracy").with_columns(
        n=pl.lit(16), ci_low=pl.col("accuracy") - 0.1, ci_high=pl.col("accuracy") + 0.05,
        excess_accuracy=pl.col("accuracy"), truncation_rate=pl.lit(0.25), guess_chance=pl.lit(0.25),
    )
    extra = rows.head(1).with_columns(point_id=pl.lit("p-without-spectrum"))
    return pl.concat([rows, extra])


def test_with_points_is_an_inner_join_on_model_task_point():
    df = spectra_frame()
    points = points_frame(df).filter(pl.col("point_id") != "p16")
    joined = charts.with_points(spectra_only(), points)
    assert joined.select("model", "point_id").rows() == [("model-a", "p4"), ("model-a", "p8"), ("model-b", "p4"), ("model-b", "p8")]
    assert joined["accuracy"].to_list() == [0.8, 0.6, 0.8, 0.6] and (joined["truncation_rate"] == 0.25).all()
    with pytest.raises(ValueError, match=r"points frame lacks columns \['truncation_rate'\]"):
        charts.with_points(df, points.drop("truncation_rate"))


def test_task_figures_draw_what_the_data_allows_and_name_what_is_missing():
    df = spectra_only()
    both = charts.task_figures(df, points_frame(spectra_frame()))[0]
    assert both.comparison is not None and both.bands is not None and both.missing == []
    assert both.joined.height == 6

    unevaluated = charts.task_figures(df, pl.DataFrame())[0]  # no points table rows at all
    assert unevaluated.comparison is not None and unevaluated.bands is None
    assert unevaluated.missing == [
        "No band energy vs accuracy: no grid point of arithmetic has both a spectrum and an accuracy in `points` "
        "for model-a, model-b; evaluate those models on the task first (`rs eval`)."
    ]

    one_evaluated = charts.task_figures(df, points_frame(spectra_frame()).filter(pl.col("model") == "model-b"))[0]
    assert set(pl.DataFrame(one_evaluated.bands.data)["model"]) == {"model-b"}
    assert one_evaluated.missing == [
        "The band energy vs accuracy chart leaves out model-a: no grid point of arithmetic evaluated with an accuracy in `points`."
    ]

    alone = charts.task_figures(df.filter(pl.col("model") == "model-a"), points_frame(spectra_frame()))[0]
    assert alone.comparison is None and alone.bands is not None
    assert alone.missing[0].startswith("No model comparison: only model-a has spectra of arithmetic")


def test_points_without_accuracy_are_not_plotted():
    points = points_frame(spectra_frame()).with_columns(
        accuracy=pl.when(pl.col("point_id") == "p16").then(None).otherwise(pl.col("accuracy"))
    )
    figure = charts.task_figures(spectra_only(), points)[0]
    assert sorted(set(pl.DataFrame(figure.bands.data)["point_id"])) == ["p4", "p8"]
    with pytest.raises(ValueError, match="no row has an accuracy"):
        charts.band_vs_accuracy(spectra_frame().with_columns(accuracy=pl.lit(None, pl.Float64)))


def test_projection_charts_chart_each_projection_by_its_own_axis():
    df = spectra_frame().filter(pl.col("model") == "model-a")
    sweep = df.with_columns(projections=pl.lit(["terms"]))
    extra = sweep.head(1).with_columns(  # a point of another projection that varies depth at terms 4
        point_id=pl.lit("p4d2"), params_json=pl.lit(json.dumps({"terms": 4, "depth": 2})), projections=pl.lit(["depth"])
    )
    both = pl.concat([sweep, extra, sweep.head(1).with_columns(projections=pl.lit(["depth"]), point_id=pl.lit("p4d1"))])
    assert [(name, axis) for name, axis, _ in charts.projection_charts(both)] == [("depth", "depth"), ("terms", "terms")]
    lines = pl.DataFrame(charts.projection_charts(both)[0][2].data)
    assert sorted(lines["depth"].unique()) == [1, 2]
    unprojected = df.with_columns(projections=pl.lit([], dtype=pl.List(pl.String)))
    assert [(name, axis) for name, axis, _ in charts.projection_charts(unprojected)] == [("", "terms")]
