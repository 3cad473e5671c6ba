"""Every chart of the report, built from small frames shaped like its table and rendered by vl-convert
(no browser): it fits the report's 1,100 px column, its axes have human titles and readable labels (no
JSON, no comma-joined field lists), categorical fields get a categorical palette, chance is labelled
where a chart has it, and computed intervals are drawn."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable

import altair as alt
import numpy as np
import polars as pl
import pytest
import vl_convert
from watched_tables import NIGHTS, TASKS, night_row

from rs_dagster.fft import charts as fft_charts
from rs_dagster.fft.spectrum import summarize_point
from rs_dagster.report import charts, comparisons, nights, reasonscore, traces
from rs_dagster.stats.compression import sample_compression
from rs_dagster.stats.hazard import ALL_TIERS, survival_frames
from rs_dagster.stats.intervals import wilson_interval
from rs_dagster.stats.paired import compare_runs
from rs_dagster.stats.reasonscore import reasonscores

MAX_WIDTH = 1_000
MODELS = ["alpha-7b", "beta-14b"]
CATEGORICAL_SCHEMES = {"category10", "tableau10", "tableau20", "set1", "set2", "dark2", "paired", "accent"}
FIELD_LIST = re.compile(r"^[A-Za-z_][\w]*(, [A-Za-z_][\w]*)+$")


def _point(model: str, task: str, params: dict, tiers: list[str], correct: int, n: int = 16, truncated: int = 0) -> dict:
    answered = n - truncated
    low, high = wilson_interval(correct, answered)
    chance = 0.5 if task == "boolean" else 0.0
    return {
        "model": model, "task": task, "point_id": f"{task}-{'-'.join(f'{k}{v}' for k, v in params.items())}",
        "params_json": json.dumps(params, separators=(",", ":")), "tiers": tiers, "surfaces": [], "projections": ["terms"],
        "n": n, "answered": answered, "correct": correct, "incorrect": answered - correct, "unparsed": 0, "truncated": truncated,
        "errors": 0, "accuracy": correct / answered, "ci_low": low, "ci_high": high, "guess_chance": chance,
        "excess_accuracy": (correct / answered - chance) / (1 - chance), "truncation_rate": truncated / n,
        "mean_completion_tokens": 300.0 + 40 * len(params),
    }


def points_frame() -> pl.DataFrame:
    """`points` rows: two models, arithmetic over terms × depth and boolean over length × notation."""
    rows = []
    for m, model in enumerate(MODELS):
        for i, terms in enumerate((3, 6, 12, 24)):
            for depth in (1, 2):
                tier = ["easy"] if terms <= 6 else ["medium"]
                rows.append(_point(model, "arithmetic", {"terms": terms, "depth": depth, "max_operand": 9}, tier, 15 - 3 * i - depth + 2 * m, truncated=i))
        for j, length in enumerate((4, 8)):
            for notation in ("infix", "python", "lisp"):
                rows.append(_point(model, "boolean", {"length": length, "notation": notation}, ["easy"], 14 - 3 * j - m))
        rows.append(_point(model, "dates", {"span": 30}, ["easy"], 9 + 4 * m))
    return pl.DataFrame(rows)


def leaderboard_frame() -> pl.DataFrame:
    pooled = points_frame().explode("tiers").group_by("model", "task", pl.col("tiers").alias("tier"), maintain_order=True).agg(
        pl.col("correct").sum(), pl.col("answered").sum(), pl.col("n").sum().alias("samples"), pl.col("guess_chance").mean()
    )
    intervals = [wilson_interval(c, a) for c, a in pooled.select("correct", "answered").rows()]
    return pooled.with_columns(
        (pl.col("correct") / pl.col("answered")).alias("accuracy"),
        pl.Series("ci_low", [low for low, _ in intervals]), pl.Series("ci_high", [high for _, high in intervals]),
    )


def projections_frame(categorical: bool) -> pl.DataFrame:
    """`projections` rows of one projection: terms (numeric, log-spaced) or notation (categorical)."""
    rows = []
    values = ["infix", "python", "lisp"] if categorical else ["3", "6", "12", "24", "48"]
    for m, model in enumerate(MODELS):
        for rank, value in enumerate(values, start=1):
            correct, n = max(0, 15 - 3 * rank + 2 * m), 16
            low, high = wilson_interval(correct, n)
            rows.append({
                "model": model, "task": "arithmetic", "projection": "notation" if categorical else "terms",
                "axis": "notation" if categorical else "terms", "axis_value": value,
                "axis_numeric": None if categorical else float(value), "axis_rank": rank, "point_id": f"p{rank}",
                "n": n, "answered": n, "correct": correct, "accuracy": correct / n, "ci_low": low, "ci_high": high,
                "flexible_accuracy": min(1.0, (correct + 1) / n), "guess_chance": 0.25, "truncation_rate": 0.0, "errors": 0,
            })
    return pl.DataFrame(rows, schema_overrides={"axis_numeric": pl.Float64})


def surfaces_frame() -> pl.DataFrame:
    rows = []
    for i, depth in enumerate((1, 2, 3)):
        for j, style in enumerate(("plain", "nested", "obfuscated")):
            correct = max(0, 15 - 4 * i - 3 * j)
            low, high = wilson_interval(correct, 16)
            rows.append({
                "model": MODELS[0], "task": "arithmetic", "surface": "depth_by_style", "x_axis": "depth", "y_axis": "style",
                "x": str(depth), "y": style, "x_rank": i + 1, "y_rank": j + 1, "n": 16, "answered": 16, "accuracy": correct / 16,
                "ci_low": low, "ci_high": high, "truncation_rate": 0.1 if (i, j) == (2, 2) else 0.0, "errors": 0, "guess_chance": 0.0,
            })
    return pl.DataFrame(rows)


def spectra_frame() -> pl.DataFrame:
    """`fft_spectra` rows: two models × a numeric projection (terms) and a categorical one (notation)."""
    rng = np.random.default_rng(0)
    rows = []
    grid = [({"terms": t, "notation": "infix"}, ["terms"]) for t in (4, 8, 16)] + [
        ({"terms": 4, "notation": n}, ["notation"]) for n in ("python", "lisp")
    ]
    for model, offset in (("alpha-7b", 1000), ("beta-14b", 30000)):
        for k, (params, projections) in enumerate(grid):
            period = params["terms"] // 2 + k
            sequences = [(offset + 50 * (np.arange(60 + i) % period) + rng.integers(0, 200, 60 + i)).tolist() for i in range(8)]
            spectrum = summarize_point(sequences)
            rows.append({
                "model": model, "task": "arithmetic", "point_id": f"p{k}", "params_json": json.dumps(params),
                "projections": projections, "mean_magnitude": spectrum.mean_magnitude, "std_magnitude": spectrum.std_magnitude,
                "dc": spectrum.dc, "low": spectrum.low, "mid": spectrum.mid, "high": spectrum.high,
            })
    return pl.DataFrame(rows)


def joined_frame() -> pl.DataFrame:
    spectra = spectra_frame()
    accuracy = [0.9, 0.7, 0.4, 0.8, 0.6] * 2
    intervals = [wilson_interval(round(a * 16), 16) for a in accuracy]
    points = spectra.select("model", "task", "point_id").with_columns(
        pl.Series("accuracy", accuracy), pl.Series("ci_low", [lo for lo, _ in intervals]), pl.Series("ci_high", [hi for _, hi in intervals]),
        n=pl.lit(16), excess_accuracy=pl.Series(accuracy), truncation_rate=pl.lit(0.0), guess_chance=pl.lit(0.0),
    )
    return fft_charts.with_points(spectra, points)


def trace_samples() -> pl.DataFrame:
    """Scored samples of one model × task with reasoning text (a few looping) and token counts."""
    rng = np.random.default_rng(1)
    rows = []
    for i in range(48):
        outcome = ["correct", "incorrect", "unparsed", "truncated"][i % 4 if i % 5 else 0]
        loop = outcome == "truncated" and i % 3 == 0
        words = " ".join(f"w{int(x)}" for x in rng.integers(0, 500, 400))
        reasoning = ("again I add the terms. " * 120) if loop else words
        rows.append({
            "model": MODELS[0], "task": "arithmetic", "point_id": f"p{i % 3}", "test_case_id": f"c{i}", "sample_index": 0,
            "request_hash": f"h{i}", "outcome": outcome, "finish_reason": "length" if outcome == "truncated" else "stop",
            "completion_tokens": 4096 if outcome == "truncated" else int(200 + 60 * i + rng.integers(0, 300)),
            "reasoning_tokens": None, "reasoning_text": reasoning, "answer_text": "ANSWER: 4",
        })
    return pl.DataFrame(rows, schema_overrides={"reasoning_tokens": pl.Int64})


def survival_tables() -> tuple[pl.DataFrame, pl.DataFrame]:
    hazard, survival = survival_frames(trace_samples())
    return hazard.filter(pl.col("tier") == ALL_TIERS), survival.filter(pl.col("tier") == ALL_TIERS)


def reasonscore_frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    return reasonscores(points_frame(), resamples=100)


def comparisons_frame() -> pl.DataFrame:
    rows = []
    for model, bonus in (("alpha-7b", 0), ("beta-14b", 1)):
        for p, params in enumerate(({"terms": 3, "depth": 1}, {"terms": 12, "depth": 2})):
            for i in range(20):
                correct = (i + p * 3 + bonus * (i % 2)) % 4 != 0 if p == 0 or bonus == 0 else i % 5 == 0
                rows.append({"model": model, "model_version": f"{model}-v1-abcdef12", "task": "arithmetic", "point_id": f"p{p}",
                             "test_case_id": f"c{p}-{i}", "sample_index": 0, "outcome": "correct" if correct else "incorrect",
                             "params_json": json.dumps(params)})
    scored = pl.DataFrame(rows)
    identity = {"kind": "models", "model_a": MODELS[0], "version_a": "alpha-7b-v1", "model_b": MODELS[1], "version_b": "beta-14b-v1"}
    params = dict(scored.select("point_id", "params_json").unique().rows())
    return compare_runs(scored.filter(pl.col("model") == MODELS[0]), scored.filter(pl.col("model") == MODELS[1]), identity, params)


def nights_frame() -> pl.DataFrame:
    """`nights` rows of one watched model: two tasks × five nights, a drift alarm and a server change among them."""
    return pl.DataFrame([night_row(task, night) for task in TASKS for night in NIGHTS])


def _accuracy_points() -> alt.TopLevelMixin:
    frame = points_frame().filter((pl.col("model") == MODELS[0]) & (pl.col("task") == "arithmetic"))
    return charts.accuracy_by_point(frame, f"{MODELS[0]} / arithmetic")


def _survival() -> alt.TopLevelMixin:
    hazard, survival = survival_tables()
    return traces.survival_chart(survival, "alpha-7b / arithmetic: tokens to answer", hazard["median_tokens"][0])


def _radar() -> alt.TopLevelMixin:
    _, tasks = reasonscore_frames()
    return reasonscore.radar(tasks.filter(pl.col("tier") == "easy"), "easy: p_t per task")


def _task_bars() -> alt.TopLevelMixin:
    _, tasks = reasonscore_frames()
    return reasonscore.task_bars(tasks.filter(pl.col("tier") == "medium"), "medium: p_t per task")


CHARTS: dict[str, Callable[[], alt.TopLevelMixin]] = {
    "accuracy_by_point": _accuracy_points,
    "surface_heatmap": lambda: charts.surface_heatmap(surfaces_frame(), "depth", "style", "alpha-7b / arithmetic / depth_by_style"),
    "leaderboard_bars": lambda: charts.leaderboard_bars(leaderboard_frame()),
    "difficulty_curve_numeric": lambda: charts.difficulty_curve(projections_frame(False), "terms", "arithmetic / terms (2 models)"),
    "difficulty_curve_categorical": lambda: charts.difficulty_curve(projections_frame(True), "notation", "arithmetic / notation (2 models)"),
    "spectra_by_projection": lambda: fft_charts.spectra_by_projection(spectra_frame().filter(pl.col("model") == MODELS[0]), "terms"),
    "spectra_by_categorical_projection": lambda: fft_charts.projection_charts(spectra_frame())[0][2],
    "model_comparison": lambda: fft_charts.model_comparison(spectra_frame()),
    "band_vs_accuracy": lambda: fft_charts.band_vs_accuracy(joined_frame()),
    "compression_chart": lambda: traces.compression_chart(sample_compression(trace_samples()), "alpha-7b / arithmetic: reasoning trace compression"),
    "survival_chart": _survival,
    "hazard_chart": lambda: traces.hazard_chart(survival_tables()[0], "alpha-7b / arithmetic: hazard per 256-token bucket"),
    "score_bars": lambda: reasonscore.score_bars(reasonscore_frames()[0]),
    "radar": _radar,
    "task_bars": _task_bars,
    "change_chart": lambda: comparisons.change_chart(comparisons_frame()),
    "nights_accuracy": lambda: nights.accuracy_chart(nights_frame(), "alpha-7b: canary accuracy per night"),
    "nights_usage": lambda: nights.usage_chart(nights_frame(), "alpha-7b: output tokens and latency per night"),
}
WITH_CHANCE = {"accuracy_by_point", "surface_heatmap", "leaderboard_bars", "difficulty_curve_numeric", "difficulty_curve_categorical", "band_vs_accuracy"}


class Rendered:
    """A chart's vl-convert SVG: its size and the text of each role (axis titles, labels, legends, titles)."""

    def __init__(self, chart: alt.TopLevelMixin):
        self.spec = chart.to_dict()
        svg = vl_convert.vegalite_to_svg(chart.to_json())
        root = ET.fromstring(svg)
        self.width = float(root.get("width", "0"))
        self.texts: dict[str, list[str]] = {}
        for group in root.iter("{http://www.w3.org/2000/svg}g"):
            role = next((c for c in (group.get("class") or "").split() if c.startswith("role-")), None)
            if role and (group.get("class") or "").startswith("mark-text"):
                self.texts.setdefault(role, []).extend("".join(t.itertext()) for t in group.iter("{http://www.w3.org/2000/svg}text"))

    def all_text(self) -> list[str]:
        return [text for texts in self.texts.values() for text in texts]


@pytest.fixture(scope="module", params=sorted(CHARTS))
def drawn(request) -> tuple[str, Rendered]:
    return request.param, Rendered(CHARTS[request.param]())


def _encodings(spec: dict):
    """Every encoding channel of the spec, through layers, facets and concatenations."""
    for key, value in spec.items():
        if key == "encoding" and isinstance(value, dict):
            yield from value.items()
        elif isinstance(value, dict):
            yield from _encodings(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    yield from _encodings(item)


def test_the_chart_fits_the_report_column(drawn):
    name, chart = drawn
    assert 0 < chart.width <= MAX_WIDTH, f"{name} renders {chart.width:.0f} px wide"


def test_axes_have_human_titles_and_a_chart_title(drawn):
    name, chart = drawn
    titles = chart.texts.get("role-axis-title", [])
    assert not [t for t in titles if FIELD_LIST.match(t)], f"{name}: axis titled with a field list: {titles}"
    assert chart.spec.get("title"), f"{name} has no title"


def test_no_label_is_json(drawn):
    name, chart = drawn
    json_like = [t for t in chart.all_text() if "{" in t or '"' in t]
    assert not json_like, f"{name} shows JSON text: {json_like[:3]}"


def test_categorical_fields_get_categorical_palettes(drawn):
    name, chart = drawn
    for channel, encoding in _encodings(chart.spec):
        if channel != "color" or not isinstance(encoding, dict) or "field" not in encoding:
            continue
        scale = encoding.get("scale", {})
        if encoding.get("type") == "quantitative":
            continue
        if encoding.get("type") == "ordinal":
            assert "scheme" in scale, f"{name}: ordinal colour {encoding['field']} without a sequential scheme"
            continue
        assert encoding.get("type") == "nominal", f"{name}: colour {encoding['field']} is {encoding.get('type')}"
        scheme = scale.get("scheme")
        scheme = scheme.get("name") if isinstance(scheme, dict) else scheme
        assert scheme in CATEGORICAL_SCHEMES or "range" in scale, f"{name}: nominal colour {encoding['field']} uses {scheme}"


def test_chance_is_labelled(drawn):
    name, chart = drawn
    if name in WITH_CHANCE:
        assert any("chance" in t for t in chart.all_text()), f"{name}: chance not labelled"


def test_marks_have_tooltips_with_interval_and_n():
    for name in ("accuracy_by_point", "leaderboard_bars", "difficulty_curve_numeric", "surface_heatmap", "band_vs_accuracy", "nights_accuracy"):
        tooltips = [enc for channel, enc in _encodings(CHARTS[name]().to_dict()) if channel == "tooltip"]
        fields = {t.get("field") for tooltip in tooltips for t in (tooltip if isinstance(tooltip, list) else [tooltip])}
        assert fields & {"n", "answered", "samples"} and ({"ci_low", "ci_high"} <= fields or "interval" in fields), f"{name}: tooltip fields {fields}"


def test_a_categorical_projection_axis_is_nominal():
    name, axis, chart = fft_charts.projection_charts(spectra_frame().filter(pl.col("model") == MODELS[0]))[0]
    assert (name, axis) == ("notation", "notation")
    colors = [enc for channel, enc in _encodings(chart.to_dict()) if channel == "color" and isinstance(enc, dict) and enc.get("field") == "notation"]
    assert colors and all(c["type"] == "nominal" and c["scale"]["scheme"] in CATEGORICAL_SCHEMES for c in colors)
    numeric = fft_charts.spectra_by_projection(spectra_frame().filter(pl.col("model") == MODELS[0]), "terms").to_dict()
    assert {enc["type"] for channel, enc in _encodings(numeric) if channel == "color" and isinstance(enc, dict) and enc.get("field") == "terms"} == {"ordinal"}


def test_fft_spectra_draw_the_std_as_a_band():
    for chart in (fft_charts.spectra_by_projection(spectra_frame(), "terms"), fft_charts.model_comparison(spectra_frame())):
        spec = chart.to_dict()
        areas = [layer for layer in spec.get("layer", []) if (layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"]) == "area"]
        assert areas, "no std band"
        assert {areas[0]["encoding"]["y"]["field"], areas[0]["encoding"]["y2"]["field"]} == {"std_low", "std_high"}
        data = pl.DataFrame(chart.data)
        assert (data["std_low"] <= data["magnitude"]).all() and (data["magnitude"] <= data["std_high"]).all()
        assert (data["std_low"] > 0).all()  # a log scale cannot draw 0
        assert data["std_high"].to_list() == pytest.approx((data["magnitude"] + data["std"]).to_list())


def test_grid_points_are_labelled_by_their_axis_values():
    assert charts.point_label('{"terms":4,"depth":2}') == "terms=4 · depth=2"
    assert charts.point_label('{"notation":"lisp","ops":["+","*"]}') == "notation=lisp · ops=[+, *]"
    labels = Rendered(_accuracy_points()).texts["role-axis-label"]
    assert "terms=3 · depth=1" in labels or "terms=3 · depth=1 · max_operand=9" in labels


def test_intervals_are_drawn_where_computed():
    """Wilson intervals on accuracy (per point, task and night), the bootstrap interval on ReasonScore, the band on S(t)."""
    def has_interval(chart: alt.TopLevelMixin, low: str, high: str) -> bool:
        return any(
            channel in ("x2", "y2") and enc.get("field") == high
            for channel, enc in _encodings(chart.to_dict()) if isinstance(enc, dict)
        ) and any(enc.get("field") == low for _, enc in _encodings(chart.to_dict()) if isinstance(enc, dict))

    for name in ("accuracy_by_point", "leaderboard_bars", "difficulty_curve_numeric", "band_vs_accuracy", "nights_accuracy"):
        assert has_interval(CHARTS[name](), "ci_low", "ci_high"), name
    assert has_interval(CHARTS["score_bars"](), "v2_low", "v2_high")
    assert has_interval(CHARTS["survival_chart"](), "ci_low", "ci_high")


def test_every_chart_renders_to_png():
    for name, make in CHARTS.items():
        png = charts.png_bytes(make(), scale=1.0)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000, name
