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


DENSE_TERMS = ["1", "2", "3", "4", "5", "6", "7", "8", "10", "12", "16", "20", "24", "32", "40", "48", "64", "80", "96", "128", "256", "384", "512",
               "768", "1000"]
"""A long numeric projection, log-spaced: on a log axis the values crowd at the top of each decade (40, 48; 768, 1000)."""


def projections_frame(categorical: bool, values: list[str] | None = None) -> pl.DataFrame:
    """`projections` rows of one projection: terms (numeric, log-spaced; `values` if given) or notation (categorical)."""
    rows = []
    values = values or (["infix", "python", "lisp"] if categorical else ["3", "6", "12", "24", "48"])
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


def projections_with_truth() -> pl.DataFrame:
    """The numeric projection with a calibration model's known truth (charts.TRUTH) for the first model: one
    point's interval misses it."""
    truth = pl.when(pl.col("model") == MODELS[0]).then(pl.when(pl.col("axis_rank") == 4).then(0.9).otherwise(pl.col("accuracy") + 0.03))
    return projections_frame(False).with_columns(truth.alias(charts.TRUTH))


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


def survival_tables(samples: pl.DataFrame | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    hazard, survival = survival_frames(trace_samples() if samples is None else samples)
    return hazard.filter(pl.col("tier") == ALL_TIERS), survival.filter(pl.col("tier") == ALL_TIERS)


def short_samples() -> pl.DataFrame:
    """The demo's case: max_tokens 160, answers after 30-150 tokens, a quarter truncated at 160."""
    return pl.DataFrame({
        "model": MODELS[0], "task": "arithmetic", "outcome": ["correct", "incorrect", "unparsed", "truncated"] * 16,
        "completion_tokens": [160 if i % 4 == 3 else 30 + (i * 23) % 121 for i in range(64)],
    })


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
    "difficulty_curve_dense_log": lambda: charts.difficulty_curve(projections_frame(False, DENSE_TERMS), "terms", "arithmetic / terms, 1 to 1000"),
    "difficulty_curve_categorical": lambda: charts.difficulty_curve(projections_frame(True), "notation", "arithmetic / notation (2 models)"),
    "difficulty_curve_truth": lambda: charts.difficulty_curve(projections_with_truth(), "terms", "arithmetic / terms, with a known truth"),
    "spectra_by_projection": lambda: fft_charts.spectra_by_projection(spectra_frame().filter(pl.col("model") == MODELS[0]), "terms"),
    "spectra_by_categorical_projection": lambda: fft_charts.projection_charts(spectra_frame())[0][2],
    "model_comparison": lambda: fft_charts.model_comparison(spectra_frame()),
    "band_vs_accuracy": lambda: fft_charts.band_vs_accuracy(joined_frame()),
    "compression_chart": lambda: traces.compression_chart(sample_compression(trace_samples()), "alpha-7b / arithmetic: reasoning trace compression"),
    "survival_chart": _survival,
    "hazard_chart": lambda: traces.hazard_chart(survival_tables()[0], "alpha-7b / arithmetic: hazard per bucket of tokens"),
    "hazard_chart_short": lambda: traces.hazard_chart(survival_tables(short_samples())[0], "alpha-7b / arithmetic: hazard, max_tokens 160"),
    "score_bars": lambda: reasonscore.score_bars(reasonscore_frames()[0]),
    "radar": _radar,
    "task_bars": _task_bars,
    "change_chart": lambda: comparisons.change_chart(comparisons_frame()),
    "nights_accuracy": lambda: nights.accuracy_chart(nights_frame(), "alpha-7b: canary accuracy per night"),
    "nights_usage": lambda: nights.usage_chart(nights_frame(), "alpha-7b: output tokens and latency per night"),
}
WITH_CHANCE = {"accuracy_by_point", "surface_heatmap", "leaderboard_bars", "difficulty_curve_numeric", "difficulty_curve_categorical",
               "difficulty_curve_truth", "band_vs_accuracy"}


EM_WIDTHS = {
    **dict.fromkeys("'ijlIJ", 0.30), **dict.fromkeys(" ,.·/:;\\|f-", 0.36), **dict.fromkeys("()[]t!r", 0.41),
    **dict.fromkeys('"*_`–szc?', 0.55), **dict.fromkeys("abdeghnopquvxykLFPTYESτμ$0123456789{}", 0.64),
    **dict.fromkeys("AVXZBRCK", 0.70), **dict.fromkeys("UNHDGOQ&w", 0.79), **dict.fromkeys("#+<=>^~−±×≤≥M", 0.87),
    **dict.fromkeys("%mW@—…", 1.0),
}
"""Advance widths in em of DejaVu Sans (rounded up), the widest common sans-serif a browser or SVG viewer may
draw a label in; vl-convert places labels measuring a narrower one. Other characters: 0.7 em."""
OVERLAP_SLACK = 0.5  # px: boxes that share less than this along some axis do not overlap


def label_corners(item: dict) -> list[tuple[float, float]]:
    """The corners of an axis label's box (scenegraph item: x, y, align, baseline, angle, font size)."""
    lines = [str(line) for line in (item["text"] if isinstance(item["text"], list) else [item["text"]])]
    size = item.get("fontSize") or 10
    width = max(sum(EM_WIDTHS.get(c, 0.7) for c in line) * size for line in lines)
    width = min(width, item["limit"]) if item.get("limit") else width
    height = size * len(lines)
    left = {"left": 0.0, "center": -width / 2, "right": -width}[item.get("align") or "left"]
    top = {"top": 0.0, "middle": -height / 2, "bottom": -height, "line-top": 0.0, "line-bottom": -height}.get(
        item.get("baseline") or "alphabetic", -0.8 * size)
    angle = np.radians(item.get("angle") or 0)
    x, y = (item.get("x") or 0) + (item.get("dx") or 0), (item.get("y") or 0) + (item.get("dy") or 0)
    box = [(left, top), (left + width, top), (left + width, top + height), (left, top + height)]
    return [(x + px * np.cos(angle) - py * np.sin(angle), y + px * np.sin(angle) + py * np.cos(angle)) for px, py in box]


def boxes_overlap(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> bool:
    """Whether two (rotated) rectangles overlap: no edge normal of either separates them (separating axes)."""
    for polygon in (a, b):
        for (x1, y1), (x2, y2) in zip(polygon, polygon[1:] + polygon[:1]):
            normal = np.array([y2 - y1, x1 - x2]) / np.hypot(y2 - y1, x1 - x2)
            on_a, on_b = np.array(a) @ normal, np.array(b) @ normal
            if min(on_a.max(), on_b.max()) - max(on_a.min(), on_b.min()) <= OVERLAP_SLACK:
                return False
    return True


def axis_label_groups(node) -> list[list[dict]]:
    """The shown labels of each axis in a vl-convert scenegraph (labels hidden by labelOverlap have opacity 0)."""
    if isinstance(node, list):
        return [group for child in node for group in axis_label_groups(child)]
    if not isinstance(node, dict):
        return []
    if node.get("role") == "axis-label":
        return [[i for i in node.get("items", []) if i.get("opacity", 1) != 0 and i.get("text") not in (None, "", [])]]
    return [group for value in node.values() if isinstance(value, dict | list) for group in axis_label_groups(value)]


def overlapping_labels(groups: list[list[dict]]) -> list[tuple[str, str]]:
    """Pairs of labels of one axis whose boxes overlap."""
    found = []
    for items in groups:
        corners = [(str(i["text"]), label_corners(i)) for i in items]
        found += [(a, b) for k, (a, box_a) in enumerate(corners) for b, box_b in corners[k + 1:] if boxes_overlap(box_a, box_b)]
    return found


class Rendered:
    """A chart as the explorer, the report and asset metadata draw it (charts.vega_lite), rendered by vl-convert:
    its size, the text of each role (axis titles, labels, legends, titles) and each axis's shown labels."""

    def __init__(self, chart: alt.TopLevelMixin):
        self.spec = chart.to_dict()  # validated against the Vega-Lite schema
        drawn = charts.vega_lite(chart)
        svg = vl_convert.vegalite_to_svg(drawn)
        self.axis_labels = axis_label_groups(vl_convert.vegalite_to_scenegraph(drawn))
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


def test_axis_labels_never_overlap(drawn):
    """No two labels an axis shows overlap, measured in a font wider than the one Vega placed them with (log axes
    crowd their labels at the top of each decade; a flush last label leans into its neighbour)."""
    name, chart = drawn
    assert chart.axis_labels or name == "radar", f"{name}: no axis labels found"
    collisions = overlapping_labels(chart.axis_labels)
    assert not collisions, f"{name}: axis labels overlap: {collisions[:5]}"


def test_the_overlap_check_sees_labels_that_collide():
    """The check itself: every value of a dense log axis labelled with labelOverlap off collides; with the
    explorer's defaults (charts.vega_lite) the crowded labels are left out instead."""
    data = alt.Data(values=[{"v": float(v)} for v in DENSE_TERMS])
    crowded = alt.Chart(data).mark_point().encode(
        x=alt.X("v:Q", title="terms", scale=alt.Scale(type="log"), axis=alt.Axis(values=[float(v) for v in DENSE_TERMS], labelOverlap=False))
    ).properties(width=300)
    assert overlapping_labels(axis_label_groups(vl_convert.vegalite_to_scenegraph(charts.vega_lite(crowded))))
    thinned = crowded.encode(x=alt.X("v:Q", title="terms", scale=alt.Scale(type="log"), axis=alt.Axis(values=[float(v) for v in DENSE_TERMS])))
    shown = axis_label_groups(vl_convert.vegalite_to_scenegraph(charts.vega_lite(thinned)))
    assert not overlapping_labels(shown) and 3 <= len(shown[0]) < len(DENSE_TERMS)
    # A flush "1,000" beside "900" (Vega measured them apart, DejaVu Sans does not): the label gap keeps one out.
    flush = alt.Chart(alt.Data(values=[{"v": 0}, {"v": 1000}])).mark_point().encode(x=alt.X("v:Q", title="score")).properties(width=360)
    assert overlapping_labels(axis_label_groups(vl_convert.vegalite_to_scenegraph(flush.to_dict())))
    assert not overlapping_labels(axis_label_groups(vl_convert.vegalite_to_scenegraph(charts.vega_lite(flush))))


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
    for name in ("accuracy_by_point", "leaderboard_bars", "difficulty_curve_numeric", "difficulty_curve_truth", "surface_heatmap",
                 "band_vs_accuracy", "nights_accuracy"):
        tooltips = [enc for channel, enc in _encodings(CHARTS[name]().to_dict()) if channel == "tooltip"]
        fields = {t.get("field") for tooltip in tooltips for t in (tooltip if isinstance(tooltip, list) else [tooltip])}
        assert fields & {"n", "answered", "samples"} and ({"ci_low", "ci_high"} <= fields or "interval" in fields), f"{name}: tooltip fields {fields}"


def test_a_known_truth_is_a_dashed_line_in_its_models_colour_named_after_it():
    """A calibration model's truth: its own layer, long dashes (in the dash legend only where drawn), coloured by the
    model field (so by its measured curve's colour), each point named `<model> (truth)` and saying whether the interval
    covers it; a curve without truth has no such layer or legend entry."""
    spec = CHARTS["difficulty_curve_truth"]().to_dict()
    [truth] = [layer for layer in spec["layer"] if layer["encoding"]["y"]["field"] == charts.TRUTH]
    assert truth["mark"]["strokeDash"] == charts.TRUTH_DASH and truth["encoding"]["color"] == spec["layer"][1]["encoding"]["color"]
    assert charts.TRUTH_KIND in truth["encoding"]["strokeDash"]["scale"]["domain"]
    drawn = pl.DataFrame(truth["data"]["values"])
    assert set(drawn["series"]) == {f"{MODELS[0]} (truth)"} and drawn["covered"].to_list() == ["yes", "yes", "yes", "no", "yes"]
    assert "known truth (calibration)" in Rendered(CHARTS["difficulty_curve_truth"]()).all_text()
    plain = CHARTS["difficulty_curve_numeric"]().to_dict()
    assert len(plain["layer"]) == 4 and charts.TRUTH_KIND not in json.dumps(plain)


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


def test_grid_values_sort_as_numbers_and_text_keeps_a_stable_order():
    texts = [json.dumps({"terms": t}) for t in (12, 24, 3, 48, 6)]
    assert [json.loads(t)["terms"] for t in charts.grid_order(texts)] == [3, 6, 12, 24, 48]
    mixed = [json.dumps({"size": v}) for v in ("all", 12, 2.5, "any", True, [1, 2], 3)]
    assert [json.loads(t)["size"] for t in charts.grid_order(mixed)] == [2.5, 3, 12, [1, 2], "all", "any", True]
    two = [json.dumps({"terms": t, "depth": d}) for t in (12, 3) for d in (10, 2)]
    assert [tuple(json.loads(t).values()) for t in charts.grid_order(two)] == [(3, 2), (3, 10), (12, 2), (12, 10)]
    assert [tuple(json.loads(t).values()) for t in charts.grid_order(two, ["depth"])] == [(3, 2), (12, 2), (3, 10), (12, 10)]
    frame = pl.DataFrame({"model": ["b", "a", "a", "a", "a"], "params_json": [texts[0], *texts[:3], None]})
    ordered = charts.sort_points(frame, "model")
    assert ordered["model"].to_list() == ["a"] * 4 + ["b"]
    assert ordered["params_json"].to_list()[:4] == [texts[2], texts[0], texts[1], None]
    assert charts.axis_order(["10", "9", "x", "1.5", "nan", "10"]) == ["1.5", "9", "10", "nan", "x"]


def test_charts_put_grid_values_in_numeric_order():
    """accuracy_by_point's rows and a surface's axes (also one stored without its rank columns) run 3, 6, 12, 24."""
    frame = points_frame().filter((pl.col("model") == MODELS[0]) & (pl.col("task") == "arithmetic"))
    y = charts.accuracy_by_point(frame.reverse(), "a").to_dict()["layer"][0]["encoding"]["y"]
    assert [label.split(" · ")[0] for label in y["sort"]][::2] == ["terms=3", "terms=6", "terms=12", "terms=24"]
    cells = pl.DataFrame([{**surfaces_frame().row(0, named=True), "x": str(x), "y": y_value, "x_rank": None, "y_rank": None}
                          for x in (12, 3, 24, 6) for y_value in ("plain", "nested")]).drop("x_rank", "y_rank")
    x = charts.surface_heatmap(cells, "terms", "style", "t").to_dict()["layer"][0]["encoding"]["x"]
    assert x["sort"] == ["3", "6", "12", "24"]
