"""Each explorer view as JSON: a title, breadcrumbs and a list of blocks (tables, fields, texts, Vega-Lite
specs from the report's Altair charts, choices between them; rs_dagster.explore.blocks) that static/app.js
renders. The server sends these from /api/...; the export writes the same objects into the report folder,
so both show one thing.

A view with nothing to show says in one sentence why, and what to run."""

from __future__ import annotations

import json
import math
from typing import Any, cast

import polars as pl

from rs_dagster.explore.blocks import (
    Block,
    NotFound,
    View,
    chart,
    choice,
    fields,
    fmt,
    heading,
    href,
    interval,
    link,
    note,
    params_label,
    route,
    table,
    text,
    view,
)
from rs_dagster.explore.nights import watched_sections
from rs_dagster.explore.queries import LabData, Tables
from rs_dagster.explore.truth import TRUTH, KnownTruth, known_truth
from rs_dagster.fft.charts import model_comparison, projection_charts, task_figures
from rs_dagster.report.charts import accuracy_by_point, difficulty_curve, leaderboard_bars, sort_points, surface_heatmap
from rs_dagster.report.comparisons import change_chart
from rs_dagster.report.reasonscore import radar, score_bars, task_bars
from rs_dagster.report.reasonscore_table import ranked_rows, tiers_of
from rs_dagster.report.traces import bucket_tokens, compression_chart, compression_summary, hazard_chart, survival_chart
from rs_dagster.stats.compression import LOOP_FACTOR, LOOP_FLOOR, LOOP_MIN_BYTES
from rs_dagster.stats.reasonscore import FLOOR, RESAMPLES

PAGE_SIZE = 200
"""Samples per page of a point's sample table: a point of 10,000 samples opens as fast as one of 200."""


def _tier_order(tiers: list[str]) -> list[str]:
    frame = pl.DataFrame({"tier": tiers})
    return tiers_of(frame) if tiers else []


NO_DATA = "No results yet: {db} has no {table} table; run `rs eval` (or `bash scripts/demo.sh`) to evaluate a model."


REASONSCORE = (
    "ReasonScore after ReasonScape, per tier (10 to 1000, higher is better). Per task t the tier's points are pooled: strict accuracy "
    "a_t, its Wilson 95% interval, guess chance g_t and truncation ratio τ_t = truncated / (answered + truncated). v2 (the ranking) = "
    f"1000 · geometric mean over tasks of p_t = clamp((1 − τ_t) · max(0, (a_t − g_t) / (1 − g_t)), {FLOOR}, 1); its interval is the "
    f"2.5 and 97.5 percentiles of {RESAMPLES} bootstrap replicates that redraw each point's samples. v1 = 1000 · geometric mean of "
    f"clamp(excess over chance of the Wilson upper bound − τ_t, {FLOOR}, 1). Tokens: the mean over tasks of mean completion tokens "
    "per sample. A task cell reads `.58 - .62 [-.05]`: the Wilson 95% interval of accuracy and, when anything was truncated, the "
    "truncation ratio; * marks a model scored on fewer of the tier's tasks than another."
)


def _reasonscore(lab: Tables) -> list[Block]:
    """Per tier: the ranked table (v2 with its bootstrap interval, v1, tokens, each task's cell) and p_t per
    task as a radar (three tasks or more) or bars; the v2 bars of every tier above them."""
    blocks = [heading("ReasonScore")]
    scores = lab.reasonscore()
    if scores.is_empty():
        return [*blocks, note("No ReasonScore: the reasonscore table is missing or empty (run `rs eval`; it needs a tier with an answered sample).")]
    tasks = lab.reasonscore_tasks()
    blocks += [text(REASONSCORE), chart(score_bars(scores), "reasonscore")]
    for tier in tiers_of(scores):
        header, rows = ranked_rows(scores, tasks, tier)
        blocks += [heading(f"ReasonScore: {tier}"), table(header, [list(r) for r in rows], f"reasonscore-{tier}")]
        tier_tasks = tasks.filter((pl.col("tier") == tier) & pl.col("v2_task").is_not_null()) if not tasks.is_empty() else tasks
        count = tier_tasks["task"].n_unique() if not tier_tasks.is_empty() else 0
        if count >= 3:
            blocks.append(chart(radar(tier_tasks, f"{tier}: p_t per task"), f"reasonscore-radar-{tier}"))
        elif count:
            blocks += [note(f"No radar for {tier}: it has {count} scored task{'' if count == 1 else 's'} and a radar needs three, so p_t is drawn as bars."),
                       chart(task_bars(tier_tasks, f"{tier}: p_t per task"), f"reasonscore-bars-{tier}")]
        else:
            blocks.append(note(f"No per-task scores for {tier}: reasonscore_tasks has no scored task of it (materialize `reasonscore`)."))
    return blocks


def leaderboard_view(lab: Tables) -> View:
    """Models ranked per tier: ReasonScore when it exists, then every task's strict accuracy with its
    Wilson 95% interval, flexible accuracy, format compliance, the share of hedged (ambiguous) answers and truncation."""
    board = lab.leaderboard()
    if board.is_empty():
        return view("Leaderboard", [], [note(NO_DATA.format(db=lab.location, table="leaderboard")), *watched_sections(lab)])
    blocks: list[Block] = []
    blocks.extend(_reasonscore(lab))
    blocks.append(heading("Accuracy per task and tier"))
    blocks.append(text("Strict accuracy counts answers in the requested form only (an ANSWER: line or \\boxed{}); flexible accuracy counts "
                       "any answer the parser finds. Intervals are Wilson 95%. Ambiguous: the share of answers that hedge between two or "
                       "more candidates (\"5 or 7\"), never credited. Ranked within each tier and task."))
    rows = []
    for tier in _tier_order(board["tier"].unique().to_list()):
        for (task,), group in board.filter(pl.col("tier") == tier).sort("task").group_by("task", maintain_order=True):
            ordered = group.sort(pl.col("accuracy").fill_null(-1.0), "model", descending=[True, False])
            for rank, row in enumerate(ordered.iter_rows(named=True), start=1):
                tier_points = f" of {row['tier_points']}" if row["tier_points"] else ""
                rows.append([
                    tier, rank, row["model"], link(task, href("task", task)), interval(row["accuracy"], row["ci_low"], row["ci_high"]),
                    interval(row["flexible_accuracy"], row["flexible_ci_low"], row["flexible_ci_high"]), fmt(row["format_compliance"]),
                    fmt(row.get("ambiguous_share")), fmt(row["truncation_rate"]), row["samples"], f"{row['points']}{tier_points}",
                ])
    blocks.append(table(["Tier", "Rank", "Model", "Task", "Accuracy (strict) [95% CI]", "Flexible accuracy [95% CI]", "Format compliance",
                         "Ambiguous", "Truncation rate", "Samples", "Grid points"], rows, "leaderboard"))
    blocks.append(chart(leaderboard_bars(board), "leaderboard"))
    blocks.extend(watched_sections(lab))
    models = sorted(board["model"].unique().to_list())
    blocks.append(heading("Two models side by side"))
    if len(models) < 2:
        blocks.append(note(f"Nothing to compare: only one model ({models[0]}) has results; evaluate a second one with `rs eval --model M`."))
    else:
        pairs = [[link(f"{a} vs {b}", href("compare", a, b))] for i, a in enumerate(models) for b in models[i + 1:]]
        blocks.append(table(["Comparison"], pairs, "comparisons"))
    return view("Leaderboard", [], blocks)


TRUTH_TEXT = (
    "{lines}: long dashes in the model's colour, the known true accuracy of a calibration model (models.yaml `calibration: true`, "
    "the endpoint of `rs serve-calibration`) at each evaluated point, from the manifold task_specs stores; its Wilson 95% band "
    "should cover the line at about 95% of the points. Hover a diamond for the truth beside the measured accuracy."
)


def _curves(task: str, projections: pl.DataFrame) -> list[Block]:
    """One difficulty curve per projection; a calibration model's known truth drawn beside its measured
    curve where `projections` carries it (the TRUTH column, KnownTruth.on_projections)."""
    blocks = [heading("Difficulty curves")]
    if projections.is_empty():
        return [*blocks, note(f"No difficulty curves for {task}: no evaluated grid point lies on a projection of its manifold "
                              "(evaluate one with `rs eval --projection all`).")]
    options = []
    for (projection, axis), curve in projections.group_by("projection", "axis", maintain_order=True):
        label = f"{projection} ({axis})"
        if curve["accuracy"].is_null().all():
            options.append((label, [note(f"No curve for {task} / {projection}: none of its evaluated points has an answered sample "
                                         "(every sample was truncated or an error).")]))
            continue
        models = sorted(curve["model"].unique().to_list())
        options.append((label, [chart(difficulty_curve(curve, axis, f"{task} / {projection}"), f"curve-{projection}", models)]))
    blocks.append(text("Pick a projection (one axis swept, the others fixed) and the models to overlay; hover a point for its "
                       "accuracy, Wilson 95% interval and sample count."))
    if TRUTH in projections.columns and projections[TRUTH].is_not_null().any():
        known = sorted(projections.filter(pl.col(TRUTH).is_not_null())["model"].unique().to_list())
        blocks.append(text(TRUTH_TEXT.format(lines=", ".join(f"{model} (truth)" for model in known))))
    return [*blocks, choice("Projection", options)]


def _truth_section(task: str, points: pl.DataFrame, truth: KnownTruth) -> list[Block]:
    """Per calibration model of the task: at how many of its points the Wilson 95% interval covers the known truth."""
    if not truth.models:
        return []
    blocks = [heading("Known truth (calibration models)")]
    if truth.spec is None:
        return [*blocks, note(truth.problem or f"No known truth for {task}.")]
    rows, missing = [], []
    for (model,), mine in truth.of(points.filter(pl.col("model").is_in(list(truth.models)))).group_by("model", maintain_order=True):
        judged = mine.filter(pl.col(TRUTH).is_not_null() & pl.col("accuracy").is_not_null())
        covered = judged.filter((pl.col("ci_low") <= pl.col(TRUTH)) & (pl.col(TRUTH) <= pl.col("ci_high"))).height
        error = cast(float | None, (judged["accuracy"] - judged[TRUTH]).abs().mean()) if judged.height else None
        rows.append([model, judged.height, f"{covered} ({covered / judged.height:.0%})" if judged.height else "—", fmt(error)])
        if off_grid := mine.filter(pl.col(TRUTH).is_null()).height:
            missing.append(note(f"No known truth at {off_grid} of the {mine.height} points of {model}: their parameters are not on the grid "
                                f"of the manifold task_specs stores for {task}."))
    return [*blocks, text("The calibration endpoint answers each item right with a known probability (rs_dagster.calibration): "
                          "the Wilson 95% interval of a point should cover its true accuracy at about 95% of the points."),
            table(["Model", "Points with an accuracy", "Interval covers the truth at", "Mean |measured − truth|"], rows, "truth"), *missing]


def _surfaces(task: str, surfaces: pl.DataFrame) -> list[Block]:
    blocks = [heading("Difficulty surfaces")]
    if surfaces.is_empty():
        return [*blocks, note(f"No difficulty surfaces for {task}: no evaluated grid point lies on a 2-D surface of its manifold "
                              "(evaluate one with `rs eval --surface all`).")]
    options = []
    for (surface, x_axis, y_axis), cells in surfaces.group_by("surface", "x_axis", "y_axis", maintain_order=True):
        charts = [chart(surface_heatmap(group, x_axis, y_axis, f"{model} / {task} / {surface}"), f"surface-{surface}-{model}")
                  for (model,), group in cells.group_by("model", maintain_order=True)]
        options.append((f"{x_axis} × {y_axis} ({surface})", charts))
    return [*blocks, text("Pick the pair of axes (a surface of the manifold); hover a cell for its accuracy and interval."), choice("Axes", options)]


def _fft(task: str, spectra: pl.DataFrame, points: pl.DataFrame) -> list[Block]:
    """The token-FFT of the task's prompts: each model's spectra by projection, the models compared, and
    band energy vs accuracy; each view that cannot be drawn says why."""
    blocks = [heading("Token-FFT of the prompts"),
              text("Mean |rfft(token ids)|/n per grid point on 0..0.5 cycles/token (log scale); band energies are the mean squared "
                   "magnitude over DC, low (0, 0.1], mid (0.1, 0.3] and high (0.3, 0.5] cycles/token.")]
    if spectra.is_empty():
        return [*blocks, note(f"No token-FFT spectra for {task}: fft_spectra has no row of it (a model needs a `tokenizer:` entry in "
                              "models.yaml; run `rs fft --model M --task T`).")]
    options = [
        (f"{model} ({frame['tokenizer'][0]}): {f'projection {projection} ({axis})' if projection else f'by {axis}'}",
         [chart(spectrum, f"fft-{model}-{projection or axis}")])
        for (model,), frame in spectra.group_by("model", maintain_order=True)
        for projection, axis, spectrum in projection_charts(frame)
    ]
    if options:
        blocks.append(choice("Spectrum", options))
    figure = task_figures(spectra, points)[0]
    if figure.comparison is not None:
        blocks += [text(f"{', '.join(figure.models)}: each line averages the model's mean spectra over all grid points of the task "
                        "with equal weight."), chart(figure.comparison, "fft-models", figure.models)]
    if figure.bands is not None:
        blocks += [text(f"{figure.joined.height} grid points (model × point) of {task} with both a spectrum and an accuracy in "
                        "`points`, joined on (model, task, point_id)."), chart(figure.bands, "fft-bands")]
    return [*blocks, *(note(missing) for missing in figure.missing)]


TRACES = (
    f"Compression: gzip bytes / raw bytes of each sample's reasoning trace, by strict outcome; a trace of at least {LOOP_MIN_BYTES} "
    f"bytes is a loop when its ratio is below {LOOP_FACTOR} × the median ratio of its grid point's finished traces, or below "
    f"{LOOP_FLOOR}. Tokens to answer: survival over completion tokens, an answer the event and truncation at max_tokens censoring; "
    "S(t) is the Kaplan-Meier share still without an answer after t tokens, the incidence curves (Aalen-Johansen) the probability "
    "of having answered correctly, incorrectly, outside the format or with a hedge (ambiguous) by t; the hazard of a bucket of tokens is the "
    "answers in it over the samples still running at its start, the buckets as wide as a round number of tokens that gives 10 to 30 of "
    "them up to the longest sample (more with more samples). Every sample of the current versions, all tiers pooled."
)


def _compression(samples: pl.DataFrame, label: str) -> list[Block]:
    traces = samples.filter(pl.col("reasoning_ratio").is_not_null())
    if traces.is_empty():
        return [note(f"No compression view for {label}: none of its {samples.height} samples has a reasoning trace (the model "
                     "returned no reasoning_content, reasoning or <think> text), so there is nothing to compress.")]
    summary = compression_summary(samples)
    truncated = samples.filter(pl.col("outcome") == "truncated")
    loops = f"{int(samples['loop'].sum())} of {traces.height} traces flagged as loops"
    blocks = [chart(compression_chart(samples, f"{label}: reasoning trace compression"), "compression"),
              table(["Outcome", "Samples", "Traces", "Ratio p10", "Ratio p50", "Ratio p90", "Loops"],
                    [[r[0], r[1], r[2], fmt(r[3]), fmt(r[4]), fmt(r[5]), r[6]] for r in summary.rows()], "compression"),
              text(f"{loops}; {int(truncated['loop'].sum())} of the {truncated.height} truncated samples loop." if truncated.height else f"{loops}.")]
    if truncated.is_empty():
        blocks.append(note(f"No truncated box for {label}: no sample ran into max_tokens, so every trace ended with an answer."))
    return blocks


def _tokens_to_answer(hazard: pl.DataFrame, survival: pl.DataFrame, label: str) -> list[Block]:
    first = hazard.row(0, named=True)
    truncated, median = int(hazard["truncated"].sum()), first["median_tokens"]
    width = bucket_tokens(hazard)
    blocks = [chart(survival_chart(survival, f"{label}: tokens to answer", median), "survival"),
              chart(hazard_chart(hazard, f"{label}: hazard per {f'{width}-token bucket' if width else 'bucket'}"), "hazard")]
    if median is None:
        blocks.append(note(f"Median tokens to answer for {label} not reached: {truncated} of {first['samples']} samples were truncated, "
                           "so S(t) never falls to 0.5."))
    else:
        blocks.append(fields([("median_tokens", "Median tokens to answer [95% CI]",
                               f"{median:.0f} [{fmt(first['median_ci_low'], 0)}, {fmt(first['median_ci_high'], 0)}]"),
                              ("survival_samples", "Samples (truncated: censored)", f"{first['samples']} ({truncated} truncated)")], "tokens"))
    if truncated == 0:
        blocks.append(note(f"Nothing censored for {label}: no sample was truncated, so S(t) is the plain share of samples still "
                           "without an answer after t tokens."))
    return blocks


def traces_section(task: str, compression: pl.DataFrame, hazard: pl.DataFrame, survival: pl.DataFrame) -> list[Block]:
    """Per model: the compression of its reasoning traces by outcome and its tokens to answer."""
    blocks = [heading("Inside the reasoning traces"), text(TRACES)]
    models = sorted({*(compression["model"] if not compression.is_empty() else []), *(hazard["model"] if not hazard.is_empty() else [])})
    if not models:
        return [*blocks, note(f"No trace analyses for {task}: the compression and hazard tables have no rows of it (`rs eval` computes "
                              "them, or materialize the `compression` and `hazard` assets).")]
    options = []
    for model in models:
        label = f"{model} / {task}"
        mine = compression.filter(pl.col("model") == model) if not compression.is_empty() else compression
        pooled = hazard.filter(pl.col("model") == model) if not hazard.is_empty() else hazard
        parts = _compression(mine, label) if not mine.is_empty() else [
            note(f"No compression view for {label}: the compression table has no rows of it (materialize `compression`).")]
        if not pooled.is_empty():
            parts += _tokens_to_answer(pooled, survival.filter(pl.col("model") == model), label)
        elif not mine.is_empty() and mine["completion_tokens"].is_null().all():
            parts.append(note(f"No survival view for {label}: the endpoint reported no completion_tokens for any of its {mine.height} "
                              "samples, so there is no time to answer."))
        else:
            parts.append(note(f"No survival view for {label}: the hazard table has no rows of it (materialize `hazard`)."))
        options.append((model, parts))
    return [*blocks, choice("Model", options)]


def task_view(lab: Tables, task: str) -> View:
    points, spectra = sort_points(lab.points(task), "model"), lab.task_spectra(task)  # terms=3, 6, 12: grid values as numbers
    if points.is_empty() and spectra.is_empty():
        raise NotFound(f"no evaluated grid point and no token-FFT spectrum of task {task!r}; tasks with results: {', '.join(lab.tasks()) or 'none'}")
    truth = known_truth(lab, task, points["model"].unique().to_list() if not points.is_empty() else [])
    blocks = [*_curves(task, truth.on_projections(lab.projections(task), points)), *_surfaces(task, lab.surfaces(task)), heading("Grid points")]
    if points.is_empty():
        blocks.append(note(f"No evaluated grid point of {task}: only its prompts' token-FFT spectra are stored (`rs fft`); "
                           f"`rs eval --tasks {task}` measures accuracy."))
    rows = [
        [row["model"], link(params_label(row["params_json"]), href("point", row["model"], task, row["point_id"])), row["n"],
         interval(row["accuracy"], row["ci_low"], row["ci_high"]), fmt(row["flexible_accuracy"]), fmt(row["format_compliance"]),
         fmt(row["truncation_rate"]), fmt(row["mean_completion_tokens"], 0)]
        for row in points.iter_rows(named=True)
    ]
    if rows:
        blocks.append(table(["Model", "Grid point", "Samples", "Accuracy (strict) [95% CI]", "Flexible accuracy", "Format compliance",
                             "Truncation rate", "Mean tokens"], rows, "points"))
    blocks += [chart(accuracy_by_point(frame, f"{model} / {task}"), f"points-{model}")
               for (model,), frame in (points.group_by("model", maintain_order=True) if rows else []) if frame["accuracy"].is_not_null().any()]
    blocks += _truth_section(task, points, truth)
    blocks += _fft(task, spectra, points)
    blocks += traces_section(task, lab.compression(task), lab.hazard(task), lab.survival(task))
    return view(f"Task {task}", [link(task, href("task", task))], blocks)


def _spectrum(lab: Tables, task: str, point_id: str) -> list[Block]:
    blocks = [heading("Token-FFT spectrum of the prompts")]
    spectra = lab.point_spectra(task, point_id)
    if spectra.is_empty():
        return [*blocks, note("No token-FFT spectrum for this point: fft_spectra has no row for it (a model needs a `tokenizer:` entry "
                              "in models.yaml; run `rs fft --model M --task T`).")]
    models = sorted(spectra["model"].to_list())
    return [*blocks, text(f"Mean |rfft(token ids)|/n of the point's prompts, one line per model ({', '.join(models)})."),
            chart(model_comparison(spectra), "spectrum", models)]


def _point_truth(lab: Tables, task: str, point: pl.DataFrame) -> tuple[list[tuple[str, str, Any]], list[Block]]:
    """For a calibration model's point: the fields that set its known true accuracy beside the measured one
    and say whether the Wilson 95% interval covers it, or the note that says why there is no truth; nothing
    for another model's point."""
    truth = known_truth(lab, task, point["model"].to_list())
    if not truth.models:
        return [], []
    if truth.spec is None:
        return [], [note(truth.problem or f"No known truth for {task}.")]
    p = truth.of(point).row(0, named=True)
    true = p[TRUTH]
    if true is None:
        return [], [note(f"No known truth for this point: its parameters ({params_label(p['params_json'])}) are not on the grid of "
                         f"the manifold task_specs stores for {task}.")]
    if p["accuracy"] is None:
        covers = "— (no answered sample)"
    else:
        covers = "yes" if p["ci_low"] <= true <= p["ci_high"] else f"no (the truth lies {'above' if true > p['ci_high'] else 'below'} it)"
    return [
        ("true_accuracy", "True accuracy (calibration endpoint)", fmt(true)),
        ("truth_covered", "Wilson 95% CI covers the truth", covers),
    ], [text("A calibration model (models.yaml `calibration: true`) answers each item right with its point's true accuracy "
             "(rs_dagster.calibration); a point's Wilson 95% interval should cover it at about 95% of the points.")]


def point_view(lab: Tables, model: str, task: str, point_id: str, page: int = 0, page_size: int = PAGE_SIZE) -> View:
    found = lab.point(model, task, point_id)
    if found.is_empty():
        raise NotFound(f"no grid point {point_id!r} of model {model!r} on task {task!r}")
    p = found.row(0, named=True)
    truth_fields, truth_blocks = _point_truth(lab, task, found)
    stats = fields([
        ("params", "Parameters", params_label(p["params_json"])), ("point_id", "Point id", p["point_id"]),
        ("tiers", "Tiers", ", ".join(p["tiers"]) or "—"), ("n", "Samples", p["n"]), ("answered", "Answered", p["answered"]),
        ("correct", "Correct (strict)", p["correct"]), ("incorrect", "Incorrect", p["incorrect"]), ("unparsed", "Unparsed", p["unparsed"]),
        # a points table written before the column existed: no sample was ambiguous then
        ("ambiguous", "Ambiguous (hedged)", p.get("ambiguous") or 0), ("truncated", "Truncated", p["truncated"]), ("errors", "Errors", p["errors"]),
        ("accuracy", "Accuracy (strict) [95% CI]", interval(p["accuracy"], p["ci_low"], p["ci_high"])), *truth_fields,
        ("flexible_accuracy", "Flexible accuracy [95% CI]", interval(p["flexible_accuracy"], p["flexible_ci_low"], p["flexible_ci_high"])),
        ("format_compliance", "Format compliance", fmt(p["format_compliance"])), ("guess_chance", "Chance", fmt(p["guess_chance"])),
        ("excess_accuracy", "Excess accuracy [95% CI]", interval(p["excess_accuracy"], p["excess_ci_low"], p["excess_ci_high"])),
        ("truncation_rate", "Truncation rate", fmt(p["truncation_rate"])),
        ("mean_completion_tokens", "Mean completion tokens", fmt(p["mean_completion_tokens"], 1)),
    ], "point")
    samples = lab.samples(model, task, point_id, page * page_size, page_size)
    total = int(samples["total"][0]) if not samples.is_empty() else 0
    blocks = [stats, *truth_blocks, *_spectrum(lab, task, point_id), heading("Samples")]
    if samples.is_empty():
        blocks.append(note(f"No samples on page {page + 1}: the point has {p['n']} samples of the current task and model versions."))
    else:
        rows = [
            [link(f"{r['item_index']}.{r['sample_index']}", href("sample", model, task, r["test_case_id"], r["sample_index"])), r["outcome"],
             r["flexible_outcome"], r["expected"], r["parsed_answer"] if r["parsed_answer"] is not None else "—", r["parse_rule"] or "—",
             r["completion_tokens"] if r["completion_tokens"] is not None else "—", fmt(r["latency_s"], 2), r["finish_reason"] or "—"]
            for r in samples.iter_rows(named=True)
        ]
        blocks.append({"type": "pager", "page": page, "pages": math.ceil(total / page_size), "total": total, "route": route("point", model, task, point_id)})
        blocks.append(table(["Item.sample", "Outcome (strict)", "Flexible outcome", "Expected", "Parsed answer", "Parse rule", "Tokens",
                             "Latency (s)", "Finish reason"], rows, "samples", outcome_columns=(1, 2)))
    crumbs = [link(task, href("task", task)), link(f"{model} · {params_label(p['params_json'])}", href("point", model, task, point_id))]
    return view(f"{model} on {task}: {params_label(p['params_json'])}", crumbs, blocks)


def _prompt_text(messages_json: str | None) -> str:
    if not messages_json:
        return "(the prompt row is missing)"
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in json.loads(messages_json))


def _or_dash(value: Any) -> Any:
    return "—" if value is None else value


def sample_view(lab: LabData, model: str, task: str, test_case_id: str, sample_index: int, dagster_url: str) -> View:
    found = lab.sample(model, task, test_case_id, sample_index)
    if found.is_empty():
        raise NotFound(f"no sample {test_case_id!r} #{sample_index} of model {model!r} on task {task!r} (current versions)")
    return sample_view_of(found.row(0, named=True), dagster_url)


def sample_view_of(s: dict[str, Any], dagster_url: str) -> View:
    """The sample view of one row of LabData.sample (or point_sample_details)."""
    model, task, test_case_id, sample_index = s["model"], s["task"], s["test_case_id"], s["sample_index"]
    run = s["dagster_run_id"]
    outcome = fields([
        ("outcome", "Outcome (strict)", s["outcome"]), ("flexible_outcome", "Flexible outcome", s["flexible_outcome"]),
        ("expected", "Expected answer", s["answer"]), ("parsed_answer", "Parsed answer", _or_dash(s["parsed_answer"])),
        ("parse_rule", "Parse rule", _or_dash(s["parse_rule"])), ("finish_reason", "Finish reason", _or_dash(s["finish_reason"])),
        ("prompt_tokens", "Prompt tokens", _or_dash(s["prompt_tokens"])), ("completion_tokens", "Completion tokens", _or_dash(s["completion_tokens"])),
        ("reasoning_tokens", "Reasoning tokens", _or_dash(s["reasoning_tokens"])), ("answer_tokens", "Answer tokens", _or_dash(s["answer_tokens"])),
        ("answer_phase", "Answer phase", _or_dash(s["answer_phase"])), ("latency_s", "Latency (s)", fmt(s["latency_s"], 3)),
        ("attempts", "Attempts", _or_dash(s["attempts"])), ("error", "Error", _or_dash(s["error"])), ("from_cache", "From cache", _or_dash(s["from_cache"])),
    ], "outcome")
    lineage = fields([
        ("test_case_id", "Test case id", s["test_case_id"]), ("item_index", "Item index", _or_dash(s["item_index"])),
        ("seed", "Seed", "—" if s["seed"] is None else str(s["seed"])),  # a string: 64-bit, beyond a JavaScript number
        ("params", "Parameters", params_label(s["params_json"]) if s["params_json"] else "—"), ("request_hash", "Request hash", s["request_hash"]),
        ("prompt_hash", "Prompt hash", s["prompt_hash"]), ("spec_version", "Task spec version", s["spec_version"]),
        ("generator_version", "Generator version", s["generator_version"]), ("model_version", "Model version", s["model_version"]),
        ("scoring_version", "Scoring version", s.get("scoring_version") or "1"),
        ("served_model", "Served model", _or_dash(s["served_model"])), ("template", "Template", f"{s['template']} ({_or_dash(s['template_version'])})"),
        ("sampler", "Sampler", s["sampler"]), ("dagster_run_id", "Dagster run (scoring)", link(run, f"{dagster_url.rstrip('/')}/runs/{run}")),
        ("completion_run_id", "Dagster run (completion)", link(s["completion_run_id"], f"{dagster_url.rstrip('/')}/runs/{s['completion_run_id']}")
         if s["completion_run_id"] else "—"),
    ], "lineage")
    blocks = [
        outcome,
        {"type": "pre", "name": "prompt", "label": "Prompt as sent", "text": _prompt_text(s["messages_json"])},
        {"type": "pre", "name": "reasoning", "label": "Reasoning", "text": s["reasoning_text"] or "(no separate reasoning trace)"},
        {"type": "pre", "name": "answer", "label": "Answer", "text": s["answer_text"] if s["answer_text"] is not None else "(no answer text)"},
        heading("Lineage"), lineage,
    ]
    crumbs = [link(task, href("task", task)), link(f"{model} · {params_label(s['params_json'])}" if s["params_json"] else model,
                                                  href("point", model, task, s["point_id"])),
              link(f"sample {_or_dash(s['item_index'])}.{sample_index}", href("sample", model, task, test_case_id, sample_index))]
    return view(f"{model} on {task}: item {_or_dash(s['item_index'])}, sample {sample_index}", crumbs, blocks)


def compare_view(lab: Tables, model_a: str, model_b: str) -> View:
    board = lab.leaderboard([model_a, model_b])  # the two models' rows: the view of two others does not depend on them
    present = set(board["model"].to_list()) if not board.is_empty() else set()
    for model in (model_a, model_b):
        if model not in present:
            every = lab.leaderboard()
            known = set(every["model"].to_list()) if not every.is_empty() else set()
            raise NotFound(f"unknown model {model!r}; models with results: {', '.join(sorted(known)) or 'none'}")
    a = board.filter(pl.col("model") == model_a).select("task", "tier", "accuracy", "ci_low", "ci_high", "samples")
    b = board.filter(pl.col("model") == model_b).select("task", "tier", "accuracy", "ci_low", "ci_high", "samples")
    both = a.join(b, on=["task", "tier"], how="full", coalesce=True, suffix="_b")
    rows = []
    for tier in _tier_order(both["tier"].unique().to_list()):
        for r in both.filter(pl.col("tier") == tier).sort("task").iter_rows(named=True):
            change = r["accuracy_b"] - r["accuracy"] if r["accuracy"] is not None and r["accuracy_b"] is not None else None
            rows.append([link(r["task"], href("task", r["task"])), tier, interval(r["accuracy"], r["ci_low"], r["ci_high"]),
                         interval(r["accuracy_b"], r["ci_low_b"], r["ci_high_b"]), "—" if change is None else f"{change:+.3f}"])
    blocks = [
        text(f"Strict accuracy with Wilson 95% intervals, {model_a} (A) beside {model_b} (B), per task and tier; unpaired (each model's own samples)."),
        table(["Task", "Tier", f"A: {model_a}", f"B: {model_b}", "B − A"], rows, "side-by-side"),
        heading("Paired comparison on shared items"),
    ]
    paired = lab.comparisons(model_a, model_b)
    if paired.is_empty():
        blocks.append(note(f"No paired comparison of {model_a} and {model_b}: the comparisons table has no rows for them "
                           "(they share no answered item, or the comparisons asset has not run)."))
    else:
        tasks = paired.filter(pl.col("level") == "task")
        blocks.append(table(
            ["A", "B", "Task", "Pairs", "Accuracy A", "Accuracy B", "b (A only)", "c (B only)", "p (McNemar)", "q (BH)"],
            [[r["model_a"], r["model_b"], r["task"], r["pairs"], fmt(r["accuracy_a"]), fmt(r["accuracy_b"]), r["b"], r["c"],
              f"{r['p_value']:.2g}", f"{r['q_value']:.2g}"] for r in tasks.iter_rows(named=True)],
            "paired",
        ))
        blocks.append(chart(change_chart(paired), "paired"))
    return view(f"{model_a} vs {model_b}", [link(f"{model_a} vs {model_b}", href("compare", model_a, model_b))], blocks)
