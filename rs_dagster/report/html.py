"""The static HTML report: leaderboard, difficulty surfaces, difficulty curves, per-point accuracy and the
token-FFT of the prompts (by projection, model vs model, band energy vs accuracy), PNGs inlined so the single file
can be mailed or archived."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from rs_dagster.fft.charts import projection_charts, task_figures
from rs_dagster.report.charts import accuracy_by_point, difficulty_curve, leaderboard_bars, png_bytes, surface_heatmap
from rs_dagster.report.comparisons import comparisons_section
from rs_dagster.report.reasonscore import reasonscore_section
from rs_dagster.report.traces import TraceTables, traces_section

NO_SURFACES = (
    "No difficulty surfaces: the surfaces table has no rows, because no evaluated grid point lies on a 2-D surface "
    "of its task's manifold (or the surfaces model has not been materialized yet)."
)
NO_CURVES = (
    "No difficulty curves: the projections table has no rows, because no evaluated grid point lies on a projection "
    "(1-D sweep) of its task's manifold (or the projections model has not been materialized yet)."
)


@dataclass
class Report:
    """The written report and the token-FFT comparison PNGs it holds, keyed fft_models/TASK and
    fft_bands/TASK (rendered once, for the asset metadata too); `notes` are the report's words on views
    it could not draw."""

    path: Path
    charts: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    """key -> (title, PNG bytes)"""
    notes: list[str] = field(default_factory=list)

    def keep(self, key: str, title: str, chart) -> str:
        """Render the chart once, keep its PNG under `key` and return it as an <img>."""
        self.charts[key] = (title, png_bytes(chart))
        return _img_png(self.charts[key][1], title)


def _img(chart, alt: str = "chart") -> str:
    return _img_png(png_bytes(chart), alt)


def _img_png(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _table(frame: pl.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(f'{v:.3f}' if isinstance(v, float) else str(v))}</td>" for v in row) + "</tr>"
        for row in frame.iter_rows()
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fft_section(spectra: pl.DataFrame, points: pl.DataFrame, report: Report) -> list[str]:
    """Per task: the spectrum by projection of each model, the model comparison and band energy vs
    accuracy; every view that cannot be drawn is named with the data it lacks."""
    sections = [
        "<h2>Token-FFT of the prompts</h2><p>Mean |rfft(token ids)|/n per grid point, on 0..0.5 cycles/token "
        "(log scale). Band energies are the mean squared magnitude over DC, low (0, 0.1], mid (0.1, 0.3] and "
        "high (0.3, 0.5] cycles/token.</p>"
    ]
    if spectra.is_empty():
        note = (
            "No token-FFT spectra: no model has fft_spectra materialized (a model needs a `tokenizer:` entry in "
            "models.yaml; run `rs fft --model M --task T` or `rs eval`)."
        )
        report.notes.append(note)
        return [*sections, f"<p>{html.escape(note)}</p>"]
    for figure in task_figures(spectra, points):
        task = figure.task
        sections.append(f"<h3>{html.escape(task)}</h3>")
        for model in figure.models:
            frame = spectra.filter((pl.col("model") == model) & (pl.col("task") == task))
            sections.append(f"<h4>{html.escape(model)} ({html.escape(frame['tokenizer'][0])})</h4>")
            for projection, axis, chart in projection_charts(frame):
                label = f"projection {projection} ({axis})" if projection else f"by {axis}"
                sections.append(_img(chart, f"{model} / {task}: {label}"))
        if figure.comparison is not None:
            sections.append(
                f"<h4>Models compared</h4><p>{html.escape(', '.join(figure.models))}: each line averages the model's "
                "mean spectra over all grid points of the task with equal weight.</p>"
                + report.keep(f"fft_models/{task}", f"{task}: token spectrum by model", figure.comparison)
            )
        if figure.bands is not None:
            sections.append(
                f"<h4>Band energy vs accuracy</h4><p>{figure.joined.height} grid points (model × point) of {html.escape(task)} "
                "with both a spectrum and an accuracy in <code>points</code>, joined on (model, task, point_id).</p>"
                + report.keep(f"fft_bands/{task}", f"{task}: band energy vs accuracy", figure.bands)
            )
        report.notes.extend(figure.missing)
        sections.extend(f'<p class="missing">{html.escape(note)}</p>' for note in figure.missing)
    return sections


def _missing(note: str) -> str:
    return f'<p class="missing">{html.escape(note)}</p>'


def _surfaces_section(surfaces: pl.DataFrame) -> list[str]:
    """One heatmap per model, task and surface; one sentence on why there is none."""
    sections = ["<h2>Difficulty surfaces</h2>"]
    if surfaces.is_empty():
        return [*sections, _missing(NO_SURFACES)]
    for (model, task, surface, x_axis, y_axis), cells in surfaces.group_by(
        "model", "task", "surface", "x_axis", "y_axis", maintain_order=True
    ):
        sections.append(_img(surface_heatmap(cells, x_axis, y_axis, f"{model} / {task} / {surface}"), f"surface: {model} / {task} / {surface}"))
    return sections


def _curves_section(projections: pl.DataFrame) -> list[str]:
    """Per task and projection: strict accuracy vs the axis value, one line per model, with the Wilson 95%
    interval; a curve or the whole section that cannot be drawn says why."""
    sections = [
        "<h2>Difficulty curves</h2><p>Strict accuracy along each projection of a task (one grid axis swept, the "
        "others fixed), one line per model, with the Wilson 95% interval as a band (numeric axis) or a bar "
        "(categorical axis, in the manifold's order).</p>"
    ]
    if projections.is_empty():
        return [*sections, _missing(NO_CURVES)]
    ordered = projections.sort("task", "projection", "model", "axis_rank")
    for (task, projection, axis), curve in ordered.group_by("task", "projection", "axis", maintain_order=True):
        if curve["accuracy"].is_null().all():
            sections.append(_missing(
                f"No curve for {task} / {projection}: none of its {curve['point_id'].n_unique()} evaluated points has an "
                "answered sample (every sample was truncated or an error)."
            ))
            continue
        models = curve["model"].n_unique()
        title = f"{task} / {projection} ({models} model{'s' if models != 1 else ''})"
        sections.append(_img(difficulty_curve(curve, axis, title), f"difficulty curve: {task} / {projection} ({axis})"))
    return sections


def write_report(
    path: Path,
    leaderboard: pl.DataFrame,
    surfaces: pl.DataFrame,
    points: pl.DataFrame,
    spectra: pl.DataFrame,
    projections: pl.DataFrame | None = None,
    comparisons: pl.DataFrame | None = None,
    reasonscore: pl.DataFrame | None = None,
    reasonscore_tasks: pl.DataFrame | None = None,
    traces: TraceTables | None = None,
) -> Report:
    """The report from the tables' frames; an empty frame (or no `projections`) makes its section say why."""
    projections = pl.DataFrame() if projections is None else projections
    sections = [
        "<h2>Leaderboard</h2>",
        "<p>Accuracy over answered samples with Wilson 95% intervals; excess accuracy rescales chance to 0. "
        "Truncated and error samples are excluded from accuracy and reported on their own. <code>accuracy</code> "
        "(the headline) counts only answers given in the requested form (an <code>ANSWER:</code> line or "
        "<code>\\boxed{}</code>); <code>flexible_accuracy</code> counts any answer the parser finds, and "
        "<code>format_compliance</code> is the share of complete answers in the requested form.</p>",
        _table(leaderboard),
    ]
    if not leaderboard.is_empty():
        sections.append(_img(leaderboard_bars(leaderboard)))
    sections.extend(reasonscore_section(
        pl.DataFrame() if reasonscore is None else reasonscore, pl.DataFrame() if reasonscore_tasks is None else reasonscore_tasks
    ))
    sections.extend(_surfaces_section(surfaces))
    sections.extend(_curves_section(projections))
    sections.append("<h2>Accuracy per grid point</h2>")
    for (model, task), frame in points.group_by("model", "task", maintain_order=True):
        if frame["accuracy"].is_not_null().any():
            sections.append(_img(accuracy_by_point(frame, f"{model} / {task}")))
    evaluated = sorted(set(points["model"].to_list())) if "model" in points.columns else []
    sections.extend(comparisons_section(pl.DataFrame() if comparisons is None else comparisons, evaluated, _img))
    report = Report(path)
    sections.extend(_fft_section(spectra, points, report))
    sections.extend(traces_section(traces or TraceTables(), _img, _table))  # compression and tokens to answer
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>rs-dagster report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px}}img{{display:block;margin:1em 0}}</style></head>
<body><h1>rs-dagster report</h1><p>Generated {stamp}.</p>{''.join(sections)}</body></html>"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return report
