"""`rs`: the command line of the lab. Every evaluation runs through Dagster on the persistent instance
in DAGSTER_HOME (default .rs/dagster), so the UI shows what the CLI did."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterator

import polars as pl
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from rs_dagster import progress as progress_hooks
from rs_dagster.dead_runs import claim_runs, dead_claims, fail_dead_runs, forget_claims
from rs_dagster.errors import InputError, RsError
from rs_dagster.interrupts import Interrupted, run_stoppably, stop_requested
from rs_dagster.settings import Settings

app = typer.Typer(help="rs-dagster: procedurally generated reasoning evaluations as Dagster assets in DuckDB.", no_args_is_help=True)
tasks_app = typer.Typer(help="Inspect task manifolds and generate items.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")
cache_app = typer.Typer(help="Inspect and trim the response cache (.rs/cache).", no_args_is_help=True)
app.add_typer(cache_app, name="cache")
console = Console(stderr=True)
CHECKS_FAILED = 3
"""`rs eval`'s exit code when an evaluated partition failed an ERROR-severity asset check (error_share above 25%)."""
out = Console(width=None if sys.stdout.isatty() else 160)


class RateColumn(ProgressColumn):
    def render(self, task) -> Text:
        return Text(f"{task.speed or 0:.1f}/s")


class RichSink:
    """Terminal progress bars with rate and ETA for progress reported by asset code: one bar per thread,
    so runs side by side (orchestrate.evaluate) each advance their own."""

    def __init__(self, bar: Progress):
        self.bar = bar
        self._mine = threading.local()

    def start(self, label: str, total: int) -> None:
        self._mine.task_id = self.bar.add_task(label, total=total)

    def _task(self) -> TaskID:
        task_id: TaskID | None = getattr(self._mine, "task_id", None)
        assert task_id is not None, "RichSink.start() comes first"
        return task_id

    def advance(self, n: int = 1) -> None:
        self.bar.advance(self._task(), n)

    def resize(self, total: int) -> None:
        self.bar.update(self._task(), total=total)

    def stop(self) -> None:
        pass


def _settings() -> Settings:
    settings = Settings.from_env()
    settings.ensure_dirs()
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    if dead_claims(settings.dagster_home):  # an `rs` that ran runs died: its runs are failed now (rs_dagster.dead_runs)
        _instance(settings)
    return settings


_instances: dict = {}  # by DAGSTER_HOME: one instance per process


def _instance(settings: Settings):
    """The lab's Dagster instance, its SQLite storages created under an exclusive file lock: two `rs`
    processes starting at once on a new state directory would otherwise both create the same tables
    (`table secondary_indexes already exists`) and one would crash. Under the same lock, the runs a dead
    `rs` process left running are marked failed (one line each), so they hold no endpoint's slot, and this
    process leaves its marker: it may execute runs (rs_dagster.dead_runs)."""
    import fcntl

    import dagster as dg

    if settings.dagster_home in _instances:  # opened already by _settings (a dead process's runs were failed)
        return _instances[settings.dagster_home]
    with open(settings.dagster_home / ".init.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        instance = dg.DagsterInstance.get()
        for storage in ("run_storage", "event_log_storage", "schedule_storage"):
            getattr(instance, storage)  # built (and its tables migrated) on first access
        atexit.register(instance.dispose)  # its SQLite files closed, their write-ahead logs checkpointed
        dead = dead_claims(settings.dagster_home)  # before the query: their runs are all in it
        fail_dead_runs(instance, report=lambda line: console.log(line, style="yellow"))
        forget_claims(dead)
        claim_runs(settings.dagster_home)
        _instances[settings.dagster_home] = instance
        return instance


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _run_evaluation(settings: Settings, models: list[str], tasks: list[str] | None, scope, parallel: int | None = None, force: bool = True,
                    fresh_seeds: int | None = None, salt: str = "") -> list[str]:
    """Run the evaluation, unless (without `force`) the warehouse shows it would change nothing; the ERROR
    checks that failed, one line each."""
    if not force:
        from rs_dagster.freshness import lab_status
        from rs_dagster.models.registry import load_models
        from rs_dagster.prompting.scope import evaluation_pairs
        from rs_dagster.tasks.manifold import load_manifolds

        pairs = evaluation_pairs(load_manifolds(settings.tasks_dir), load_models(settings), models, tasks, scope)
        status = lab_status(settings, pairs, scope)
        if status.current:
            console.log(f"Nothing changed: the {len(pairs)} model × task pairs at this scope and the report are current in "
                        f"{settings.warehouse_location}; --force runs it again")
            return []
        for pair in status.pairs:
            if pair.stale:
                console.log(f"{pair.model} × {pair.task}: {'; '.join(pair.stale)}")
        if status.report:
            console.log(f"report: {'; '.join(status.report)}")
    from rs_dagster.defs.resources import EvalScope  # Dagster: imported only when something runs
    from rs_dagster.orchestrate import evaluate

    scope = EvalScope(**scope.model_dump())
    instance = _instance(settings)
    started = time.monotonic()
    with _progress_display():  # Ctrl-C stops it: rs_dagster.interrupts
        runs = run_stoppably(lambda: evaluate(settings, instance, models, tasks, scope, parallel=parallel, fresh_seeds=fresh_seeds, salt=salt,
                                              on_stage=lambda m: None if stop_requested() else console.log(m)),  # no stage starts after it
                             on_stop=lambda m: console.log(m, style="yellow"))
    console.log(f"{len(runs.run_ids)} Dagster runs in {time.monotonic() - started:.0f}s")
    return runs.failed_checks


@contextlib.contextmanager
def _progress_display() -> Iterator[None]:
    """Progress of long work: on a terminal a bar per run (what, how far, rate, ETA); otherwise (a log file, CI)
    plain lines, so output that goes to a file is never silent for minutes."""
    if not console.is_terminal:
        def line(text: str) -> None:  # one unwrapped line with its time, as a log file reads best
            console.print(f"{time.strftime('%H:%M:%S')} {text}", soft_wrap=True, highlight=False, markup=False)

        with progress_hooks.terminal_sink(progress_hooks.LineSink(line)):
            yield
        return
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                   TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console)
    with bar, progress_hooks.terminal_sink(RichSink(bar)):
        yield


def shown(value: float | None, spec: str) -> str:
    """A number as a table cell: `spec`-formatted, or — when there is none."""
    return "—" if value is None else format(value, spec)


def _print_memorisation(settings: Settings, models: list[str]) -> None:
    """Per model, task, tier and night: published minus fresh accuracy with its interval, and whether it is flagged."""
    from rs_dagster.storage.warehouse import Warehouse

    warehouse = Warehouse.from_settings(settings)
    with warehouse.reading():
        if not warehouse.has_table("memorisation"):
            out.print("No memorisation gap: no fresh item set was answered.")
            return
        rows = warehouse.table("memorisation", order_by="model, task, night, tier")
    table = Table("model", "task", "night", "tier", "published", "fresh", "gap (95% CI)", "", title="Memorisation gap: published − fresh accuracy")
    for r in rows.filter(pl.col("model").is_in(models)).iter_rows(named=True):
        table.add_row(r["model"], r["task"], r["night"], r["tier"], f"{r['accuracy_published']:.3f} (n={r['n_published']})",
                      f"{r['accuracy_fresh']:.3f} (n={r['n_fresh']})", f"{r['gap']:+.3f} ({r['gap_low']:+.3f} to {r['gap_high']:+.3f})",
                      "FLAGGED" if r["flagged"] else "")
    out.print(table)


def _exit_on_failed_checks(failed: list[str]) -> None:
    """Exit with CHECKS_FAILED when an evaluated partition failed an ERROR check (its results are stored and
    shown, but a script must not read them as a clean measurement)."""
    if failed:
        console.print(f"error: {len(failed)} ERROR check(s) failed (exit code {CHECKS_FAILED}):\n  " + "\n  ".join(failed), style="red", highlight=False)
        raise typer.Exit(CHECKS_FAILED)


def _print_reasonscore(warehouse) -> None:
    """Per tier, the models ranked by ReasonScore (v2, with its bootstrap 95% interval), v1, tokens, score
    per token, and each task's cell `.58 - .62 [-.05]` (accuracy's Wilson 95% interval, truncation ratio)."""
    from rs_dagster.report.reasonscore_table import ranked_rows, tiers_of

    if not (warehouse.has_table("reasonscore") and warehouse.has_table("reasonscore_tasks")):
        out.print("No ReasonScore yet: the reasonscore asset has not been materialized (run `rs eval`).")
        return
    scores, tasks = warehouse.table("reasonscore"), warehouse.table("reasonscore_tasks")
    if scores.is_empty():
        out.print("No ReasonScore: no evaluated grid point belongs to a tier with an answered or truncated sample.")
        return
    for tier in tiers_of(scores):
        header, rows = ranked_rows(scores, tasks, tier)
        table = Table(title=f"ReasonScore — {tier}")
        for column in header:
            table.add_column(column, justify="left" if column == "model" or column not in header[:9] else "right")
        for row in rows:
            table.add_row(*row)
        out.print(table)
    out.print("ReasonScore = v2, 1000 · geometric mean over tasks of clamp((1 − truncation ratio) · excess accuracy, 0.01, 1), "
              "bootstrap 95% CI; v1 uses the Wilson upper bound minus the truncation ratio; tokens = mean completion tokens "
              "per sample (mean over tasks); score/token = v2 / tokens. A cell: accuracy's Wilson 95% CI [−truncation ratio]; "
              "* = fewer tasks than the tier's best-covered model.")


def _print_leaderboard(settings: Settings) -> None:
    from rs_dagster.storage.warehouse import Warehouse

    warehouse = Warehouse.from_settings(settings)
    with warehouse.reading():
        if not warehouse.has_table("leaderboard"):
            raise RsError(f"no leaderboard in {warehouse.location} yet: run `rs demo` or `rs eval` first")
        _print_reasonscore(warehouse)
        board = warehouse.table("leaderboard")
    table = Table(title=f"Leaderboard ({warehouse.location})")
    columns = ("model", "task", "tier", "points", "samples", "accuracy", "95% CI", "excess", "flexible", "95% CI ", "in form",
               "ambiguous", "truncated", "errors", "tokens")
    for column in columns:
        table.add_column(column, justify="left" if column in ("model", "task", "tier") else "right")
    for row in board.iter_rows(named=True):
        table.add_row(
            row["model"], row["task"], row["tier"], f"{row['points']}/{row.get('tier_points') or '?'}", str(row["samples"]),
            shown(row["accuracy"], ".3f"), _interval(row["ci_low"], row["ci_high"]), shown(row["excess_accuracy"], "+.3f"),
            shown(row["flexible_accuracy"], ".3f"), _interval(row["flexible_ci_low"], row["flexible_ci_high"]),
            shown(row["format_compliance"], ".0%"), shown(row.get("ambiguous_share"), ".0%"), f"{row['truncation_rate']:.1%}", str(row["errors"]),
            shown(row["mean_completion_tokens"], ".0f"),
        )
    out.print(table)
    out.print("accuracy counts only answers in the requested form (an ANSWER: line or \\boxed{}); flexible counts any "
              "answer the parser finds; in form = share of complete answers in the requested form; ambiguous = share of complete "
              "answers that hedge between two or more candidates (\"5 or 7\"), never correct.")


def _cli_scope(tier: str | None, surface: str | None, projection: str | None, points: str | None, precision: str | None,
               samples: int | None, repeats: int | None):
    """The scope `rs eval` and `rs status` are given (the model's suite fills what it leaves unset)."""
    from rs_dagster.prompting.bounds import check_repeats
    from rs_dagster.prompting.scope import Scope

    check_repeats(repeats)
    if samples is not None and precision is not None:
        raise InputError("give either --samples (items per point) or --precision (a level), not both")
    return Scope(tiers=_split(tier), surfaces=_split(surface), projections=_split(projection), points=points,
                 precision=str(samples) if samples is not None else precision, repeats=repeats, use_suite=True)


def _interval(low: float | None, high: float | None) -> str:
    return "—" if low is None or high is None else f"[{low:.3f}, {high:.3f}]"


CALIBRATION_SAMPLES = 32
"""Items per point the demo asks the calibration endpoint (at least): it answers at once."""


@app.command()
def demo(samples: int = typer.Option(8, help="items per grid point")) -> None:
    """Evaluate the bundled SmolLM2-135M model and the known-truth calibration endpoint on their suites in
    models.yaml (the easy tier of arithmetic and boolean and one difficulty curve of each), then say in words
    what the run found and where to look next."""
    from rs_dagster.bundled import bundled_server
    from rs_dagster.calibration import calibration_server
    from rs_dagster.defs.resources import EvalScope
    from rs_dagster.models.registry import get_model, load_models

    settings = _settings()
    models = load_models(settings)
    model = get_model(models, "smollm2-135m")
    calibration = [m for m in models.values() if m.entry.calibration]
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        started_here = stack.enter_context(bundled_server(model.entry.base_url, settings.home / "logs" / "model-server.log"))
        console.log(f"model server {'started' if started_here else 'already running'} at {model.entry.base_url}")
        for known in calibration:
            stack.enter_context(calibration_server(known.entry.base_url, settings.tasks_dir, max(samples, 64)))
            console.log(f"calibration endpoint (known truth) at {known.entry.base_url}")
        failed = _run_evaluation(settings, [model.name], None, EvalScope(precision=str(samples), use_suite=True))
        if calibration:  # answered at once: enough items per point for its curve to show the truth it follows
            failed += _run_evaluation(settings, [m.name for m in calibration], None,
                                      EvalScope(precision=str(max(samples, CALIBRATION_SAMPLES)), use_suite=True))
    _print_leaderboard(settings)
    _print_finding(settings, [model.name, *(m.name for m in calibration)], {m.name for m in calibration})
    out.print(f"\nDemo finished in {time.monotonic() - started:.0f}s. Where to look next:")
    out.print("  rs explore   # the results explorer: difficulty curves, points, samples, lineage")
    out.print(f"  {settings.report_dir / 'index.html'}   # the same views, offline")
    out.print(f"  DAGSTER_HOME={settings.dagster_home} dagster dev -w workspace.yaml   # the Dagster UI: the runs, assets and checks behind every number")
    out.print(f"Data: {settings.warehouse_location}")
    _exit_on_failed_checks(failed)


def _print_finding(settings: Settings, models: list[str], calibration: set[str]) -> None:
    """What the run found, in words from its points (rs_dagster.report.finding)."""
    from rs_dagster.calibration import point_truth
    from rs_dagster.report.finding import run_finding
    from rs_dagster.storage.warehouse import Warehouse
    from rs_dagster.tasks.manifold import load_manifolds

    specs = load_manifolds(settings.tasks_dir)
    warehouse = Warehouse.from_settings(settings)
    with warehouse.reading():
        points = warehouse.table("points").filter(pl.col("model").is_in(models))
    if points.is_empty():
        return
    out.print("\nWhat this run found:")
    for sentence in run_finding(points, calibration, lambda task, params, chance: point_truth(specs[task], params, chance)):
        out.print(f"  {sentence}")


@app.command("eval")
def eval_(
    model: str = typer.Option(..., help="registered model name(s), comma-separated (or one new name with --base-url)"),
    base_url: str | None = typer.Option(None, help="register/update an ad-hoc OpenAI-compatible endpoint"),
    served_model: str | None = typer.Option(None, help="model id at the endpoint (default: --model)"),
    api_key_env: str | None = typer.Option(None, help="environment variable holding the API key"),
    tasks: str | None = typer.Option(None, help="comma-separated tasks (default: the model's suite)"),
    tier: str | None = typer.Option(None, help="comma-separated tiers: easy,medium,hard"),
    surface: str | None = typer.Option(None, help="comma-separated surfaces of the tasks (`rs tasks show TASK` lists them)"),
    projection: str | None = typer.Option(None, help="comma-separated projections of the tasks"),
    points: str | None = typer.Option(None, help="'all': every point of each task's full grid"),
    precision: str | None = typer.Option(None, help="precision level of the manifolds (low, medium, high)"),
    samples: int | None = typer.Option(None, help="items per grid point, fixed (instead of a precision level)"),
    repeats: int | None = typer.Option(None, help="samples per item (1 to 1,000)"),
    sampler: str | None = typer.Option(None, help="sampler name for an ad-hoc model"),
    template: str | None = typer.Option(None, help="template name for an ad-hoc model"),
    concurrency: int | None = typer.Option(None, help="concurrent requests to the endpoint (saved in .rs/models.local.yaml)"),
    timeout: float | None = typer.Option(None, help="seconds before a request is abandoned and retried (saved likewise)"),
    parallel: int | None = typer.Option(None, min=1, help="Dagster runs side by side (default: one per core, at most an endpoint's concurrency per endpoint; 1: one at a time)"),
    force: bool = typer.Option(False, "--force", help="run even when the last evaluation at this scope is current"),
    max_requests: int | None = typer.Option(None, help="most requests the scope may send (default 100,000, or RS_MAX_REQUESTS)"),
    fresh_seeds: int | None = typer.Option(None, min=0, max=16, help="K extra item sets drawn at the same points from fresh seeds: "
                                           "the memorisation gap, published minus fresh accuracy (default: the suite's fresh_seeds)"),
    salt: str = typer.Option("", help="what the fresh seeds derive from (default: today's date, UTC)"),
) -> None:
    """Evaluate registered models, or an ad-hoc one given by URL (registered on the fly). Several models
    are evaluated in one command: their runs share the definitions' refreshes, the report and --parallel."""
    from rs_dagster.models.registry import load_models, prepare_local_model
    from rs_dagster.prompting.bounds import check_evaluation_size

    settings = _settings()
    models = _split(model)
    if not models:
        raise InputError("--model: give a model name (the models of models.yaml, or a new one with --base-url)")
    scope = _cli_scope(tier, surface, projection, points, precision, samples, repeats)
    known = model in load_models(settings)
    changes = {"base_url": base_url, "served_model": served_model or (model if base_url and not known else None),
               "api_key_env": api_key_env, "sampler": sampler, "template": template, "concurrency": concurrency, "timeout_s": timeout}
    changes = {k: v for k, v in changes.items() if v is not None}
    pending = None  # checked now, saved once the whole command is
    if changes:
        if len(models) > 1:
            raise InputError(f"--model {model!r}: options that register or change a model ({', '.join(changes)}) take one model, not {len(models)}")
        if not base_url and not known:
            raise InputError(f"--model {model!r} is not registered; give --base-url (and --served-model) to register it")
        pending = prepare_local_model(settings, model, changes, {
            "name": "--model", "base_url": "--base-url", "served_model": "--served-model", "api_key_env": "--api-key-env",
            "sampler": "--sampler", "template": "--template", "concurrency": "--concurrency", "timeout_s": "--timeout"})
    check_evaluation_size(settings, models, _split(tasks), scope, max_requests, pending.model if pending else None)
    if pending:
        pending.save()
        console.log(f"{model}: {', '.join(f'{k}={v}' for k, v in changes.items())} saved in {settings.local_models_file}")
    failed = _run_evaluation(settings, models, _split(tasks), scope, parallel, force=force or bool(fresh_seeds), fresh_seeds=fresh_seeds, salt=salt)
    _print_leaderboard(settings)
    if fresh_seeds:
        _print_memorisation(settings, models)
    out.print(f"Report: {settings.report_dir / 'index.html'}")
    _exit_on_failed_checks(failed)


@app.command()
def watch(
    model: str = typer.Option(..., help="a registered model with a `watch:` entry"),
    night: str | None = typer.Option(None, help="the night to ask, YYYY-MM-DD (default: today, UTC); a night already asked is not asked again"),
) -> None:
    """Ask a watched model's canary for one night now, as the `watched_nights` schedule does, then print its
    nights: accuracy with its interval, tokens, latency, the server's fingerprints and what moved."""
    import datetime as dt

    from rs_dagster.bundled import bundled_server
    from rs_dagster.models.registry import get_model, load_models
    from rs_dagster.orchestrate import watch_night
    from rs_dagster.storage.warehouse import Warehouse
    from rs_dagster.watch import night_of

    settings = _settings()
    if night is not None:
        try:
            dt.date.fromisoformat(night)
        except ValueError:
            raise InputError(f"--night {night!r}: expected a date YYYY-MM-DD") from None
    chosen = night or night_of(dt.datetime.now(dt.UTC))
    entry = get_model(load_models(settings), model).entry
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        if entry.bundled:  # the bundled model is served for the night, as `rs demo` does
            stack.enter_context(bundled_server(entry.base_url, settings.home / "logs" / "model-server.log"))
        stack.enter_context(_progress_display())
        runs = run_stoppably(lambda: watch_night(settings, _instance(settings), model, chosen, quiet=True),
                             on_stop=lambda m: console.log(m, style="yellow"))
    console.log(f"{len(runs.run_ids)} Dagster runs in {time.monotonic() - started:.0f}s")
    warehouse = Warehouse.from_settings(settings)
    with warehouse.reading():
        nights = warehouse.table("nights", {"model": model}, order_by="task, night")
    table = Table("task", "night", "n", "accuracy (95% CI)", "tokens", "latency", "fingerprints", "moved", title=f"Nights of {model}")
    for r in nights.iter_rows(named=True):
        accuracy = "—" if r["accuracy"] is None else f"{r['accuracy']:.3f} ({r['ci_low']:.3f}–{r['ci_high']:.3f})"
        table.add_row(r["task"], r["night"], str(r["n"]), accuracy, shown(r["mean_output_tokens"], ".0f"), shown(r["median_latency_s"], ".2f"),
                      r["fingerprints"] or "—", r["drift_summary"] or "")
    out.print(table)


@app.command()
def fft(
    model: str = typer.Option(..., help="registered model with a `tokenizer` entry"),
    task: str = typer.Option(..., help="task name"),
    projection: str | None = typer.Option(None, help="a projection of the task: chart one line per value of its axis"),
    samples: int | None = typer.Option(None, help="items per grid point (default: the model's suite precision)"),
) -> None:
    """Token-FFT of the prompts a model receives for a task: summary table and one chart per projection
    (no completions needed)."""
    from rs_dagster.defs.resources import EvalScope
    from rs_dagster.errors import UnknownNameError
    from rs_dagster.fft.charts import projection_charts
    from rs_dagster.orchestrate import spectra
    from rs_dagster.report.charts import png_bytes
    from rs_dagster.storage.warehouse import Warehouse
    from rs_dagster.tasks.manifold import load_manifolds

    settings = _settings()
    specs = load_manifolds(settings.tasks_dir)
    if projection:
        known = [p.name for p in specs[task].doc.projections] if task in specs else []
        if projection not in known:
            raise UnknownNameError(f"projection of {task}", projection, known)
    spectra(settings, _instance(settings), model, task, EvalScope(precision=str(samples) if samples else None))
    frame = Warehouse.from_settings(settings).table("fft_spectra", {"model": model, "task": task}, order_by="point_id")
    if projection:
        frame = frame.filter(pl.col("projections").list.contains(projection))
    table = Table(title=f"Token-FFT: {model} / {task} ({frame['tokenizer'][0]})")
    for column in ("params", "items", "tokens", "DC", "low", "mid", "high"):
        table.add_column(column, justify="left" if column == "params" else "right")
    for row in frame.iter_rows(named=True):
        table.add_row(row["params_json"], str(row["n_items"]), f"{row['mean_tokens']:.1f}", f"{row['dc']:.3g}", f"{row['low']:.3g}", f"{row['mid']:.3g}", f"{row['high']:.3g}")
    out.print(table)
    for name, axis, chart in projection_charts(frame):
        if projection and name != projection:
            continue  # a point of the asked projection may belong to others too
        path = settings.report_dir / f"fft-{model}-{task}-{name or axis}.png"
        path.write_bytes(png_bytes(chart))
        out.print(f"Chart ({axis}): {path}")


@app.command()
def status(
    model: str | None = typer.Option(None, help="model name(s), comma-separated (default: every registered model)"),
    tasks: str | None = typer.Option(None, help="comma-separated tasks (default: each model's suite)"),
    tier: str | None = typer.Option(None, help="comma-separated tiers, as `rs eval --tier`"),
    precision: str | None = typer.Option(None, help="precision level, as `rs eval --precision`"),
    samples: int | None = typer.Option(None, help="items per grid point, as `rs eval --samples`"),
    repeats: int | None = typer.Option(None, help="samples per item, as `rs eval --repeats`"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object (pairs and report) instead of the table"),
) -> None:
    """What the lab holds, per model × task: completions stored, the scopes evaluated, whether the scope
    `rs eval` would evaluate (with the same options) is current, and if not why and how many requests it
    would send at most. Read from the warehouse alone; nothing runs, nothing is written."""
    from rs_dagster.freshness import lab_status
    from rs_dagster.models.registry import load_models
    from rs_dagster.prompting.scope import evaluation_pairs
    from rs_dagster.tasks.manifold import load_manifolds

    settings = _settings()
    scope = _cli_scope(tier, None, None, None, precision, samples, repeats)
    models = load_models(settings)
    pairs = evaluation_pairs(load_manifolds(settings.tasks_dir), models, _split(model) or list(models), _split(tasks), scope)
    lab = lab_status(settings, pairs, scope)
    if as_json:
        out.print_json(json.dumps({"warehouse": settings.warehouse_location, "current": lab.current, "report": lab.report,
                                   "pairs": [{**vars(pair), "current": pair.current} for pair in lab.pairs]}))
        return
    table = Table(title=f"Lab status ({settings.warehouse_location})")
    for column in ("model", "task", "stored", "evaluated at", "`rs eval` scope", "state", "requests", "why"):
        table.add_column(column, justify="right" if column in ("stored", "requests") else "left", overflow="fold")
    for pair in lab.pairs:
        table.add_row(pair.model, pair.task, str(pair.stored), "\n".join(pair.scopes) or "—", pair.scope,
                      "current" if pair.current else "stale", str(pair.requests), "\n".join(pair.stale) or "—")
    out.print(table)
    out.print(f"report: {'current' if not lab.report else 'stale: ' + '; '.join(lab.report)}")
    total = sum(pair.requests for pair in lab.pairs)
    out.print("`rs eval` with these options would change nothing." if lab.current else
              f"`rs eval` with these options would run the stale steps and send at most {total} requests "
              "(adaptive precision may stop a point earlier).")


@app.command()
def leaderboard() -> None:
    """Print the leaderboard from the DuckDB file."""
    _print_leaderboard(_settings())


@app.command()
def explore(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8050, help="port (0: a free one); not 8000, where vLLM serves by default"),
    dagster_url: str = typer.Option("http://127.0.0.1:3000", help="the Dagster UI that lineage links to (its /runs/ID pages)"),
) -> None:
    """Browse the lab's results in a local web app (read-only; safe while an evaluation runs) until Ctrl-C."""
    from rs_dagster.explore.app import serve
    from rs_dagster.storage.warehouse import Warehouse

    settings = _settings()

    def ready(url: str) -> None:
        out.print(f"Explorer: {url}  (reading {settings.warehouse_location}; Ctrl-C to stop)")

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it stops
        serve(Warehouse.from_settings(settings), host, port, dagster_url, on_ready=ready)


@app.command("serve-model")
def serve_model(port: int = typer.Option(8765, help="port on 127.0.0.1")) -> None:
    """Serve the bundled SmolLM2-135M model on 127.0.0.1 until interrupted (Ctrl-C or SIGTERM); the model
    server, a child process, ends with this command however it ends."""
    from rs_dagster.bundled import interrupted_by_sigterm, start_server, stop_server

    settings = _settings()
    base_url = f"http://127.0.0.1:{port}/v1"
    log = settings.home / "logs" / "model-server.log"
    with interrupted_by_sigterm(), contextlib.suppress(KeyboardInterrupt):
        process = start_server(base_url, log)
        try:
            out.print(f"Serving smollm2-135m at {base_url} (OpenAI-compatible). Ctrl-C to stop.")
            # Polled, not process.wait(): a signal that lands on another of the process's threads (polars
            # starts some) does not interrupt a blocking wait, so the interrupt would never be raised.
            while process.poll() is None:
                time.sleep(0.2)
            raise RsError(f"the model server exited with code {process.returncode}; see {log}")
        finally:
            stop_server(process)


@app.command("serve-calibration")
def serve_calibration(
    port: int = typer.Option(8766, help="port on 127.0.0.1"),
    items: int = typer.Option(64, min=1, help="items per grid point it knows (the first ITEMS of each named point)"),
) -> None:
    """Serve the known-truth calibration endpoint on 127.0.0.1 until interrupted: it answers the lab's own
    prompts right with a documented probability per grid point (rs_dagster.calibration), so an evaluation of
    it shows whether the lab measures what is true. Register it with `calibration: true` to see the truth in the explorer."""
    from rs_dagster.bundled import interrupted_by_sigterm
    from rs_dagster.calibration import CalibrationResponder
    from rs_dagster.testing.scripted_server import ScriptedServer

    settings = _settings()
    responder = CalibrationResponder(settings.tasks_dir, items)
    try:
        server = ScriptedServer(responder, model_ids=("calibration",), port=port)
    except OSError as exc:
        raise InputError(f"--port {port}: cannot listen on 127.0.0.1:{port} ({exc.strerror or exc})") from None
    with interrupted_by_sigterm(), contextlib.suppress(KeyboardInterrupt), server:
        out.print(f"Serving the calibration endpoint at {server.base_url} (OpenAI-compatible, model `calibration`, "
                  f"{len(responder.known):,} items). Ctrl-C to stop.")
        while True:
            time.sleep(0.2)


@tasks_app.command("list")
def tasks_list() -> None:
    """Every task manifold with its generator, points and version."""
    from rs_dagster.tasks.manifold import load_manifolds

    table = Table()
    for column in ("task", "generator", "points", "axes", "version", "description"):
        table.add_column(column)
    for name, spec in load_manifolds(_settings().tasks_dir).items():
        table.add_row(name, f"{spec.task.name} v{spec.task.version}", str(len(spec.points())), ", ".join(spec.doc.grid), spec.version, spec.doc.description)
    out.print(table)


@tasks_app.command("show")
def tasks_show(task: str) -> None:
    """A task's manifold: grid, tiers, surfaces, projections, precision, and its parameter model."""
    from rs_dagster.errors import UnknownNameError
    from rs_dagster.tasks.manifold import load_manifolds

    specs = load_manifolds(_settings().tasks_dir)
    if task not in specs:
        raise UnknownNameError("task", task, list(specs))
    spec = specs[task]
    out.print_json(json.dumps({
        "task": spec.name, "version": spec.version, "generator": spec.task.name, "generator_version": spec.task.version,
        "file": str(spec.path), **spec.doc.model_dump(mode="json"),
        "points": len(spec.points()), "params_schema": spec.task.Params.model_json_schema(),
        "answer_instruction": spec.task.answer_instruction,
    }))


@tasks_app.command("generate")
def tasks_generate(
    task: str,
    params: str | None = typer.Option(None, help='JSON object of generator parameters, e.g. \'{"terms": 6, "depth": 2}\' (default: a point of --tier)'),
    tier: str = typer.Option("easy", help="without --params: take the point of this tier given by --point"),
    point: int = typer.Option(0, min=0, help="without --params: the index of the point in the tier (0 = its first)"),
    count: int = typer.Option(4, min=1),
    seed: int | None = typer.Option(None, help="global seed (default: the manifold's)"),
    template: str = typer.Option("zero_shot", help="template that renders `messages`"),
) -> None:
    """Print generated items as JSON Lines: id, task, params, messages, answer, guess_chance, ..."""
    from rs_dagster.errors import InputError, UnknownNameError
    from rs_dagster.inputs import load_named
    from rs_dagster.prompting.templates import Template
    from rs_dagster.tasks.generation import generate_point
    from rs_dagster.tasks.manifold import load_manifolds
    from rs_dagster.tasks.selection import PointSelection, select_points

    settings = _settings()
    specs = load_manifolds(settings.tasks_dir)
    if task not in specs:
        raise UnknownNameError("task", task, list(specs))
    spec = specs[task]
    axes = ", ".join(f"{axis} {values}" for axis, values in spec.doc.grid.items())
    if params is None:
        tier_points = select_points(spec, PointSelection(tiers=(tier,)))
        if point >= len(tier_points):
            raise InputError(f"--point {point}: tier {tier!r} of task {task!r} has {len(tier_points)} points (0 to {len(tier_points) - 1})")
        point_params = tier_points[point].params
    else:
        try:
            given = json.loads(params)
        except json.JSONDecodeError as exc:
            raise InputError(f"--params: not valid JSON ({exc.msg} at column {exc.colno}); expected an object such as '{{\"terms\": 6}}'") from None
        if not isinstance(given, dict):
            raise InputError(f"--params: expected a JSON object, got {type(given).__name__}; the axes of {task!r}: {axes}")
        point_params = {**spec.doc.fixed, **given}
        try:
            spec.task.validate_params(point_params, where="--params")
        except InputError as exc:
            raise InputError(f"{exc}; the axes of {task!r}: {axes}") from None
    global_seed = spec.doc.global_seed if seed is None else seed
    chosen, _ = load_named(settings.templates_dir, template, Template, "template")
    for generated in generate_point(spec.task, spec.name, point_params, global_seed, count):
        messages = chosen.render(spec.task, generated.item, spec.name, point_params, global_seed)
        sys.stdout.write(json.dumps({
            "id": generated.test_case_id, "task": spec.name, "params": point_params, "index": generated.index,
            "seed": generated.seed, "messages": messages, "answer": generated.item.answer,
            "guess_chance": generated.item.guess_chance, "metadata": generated.item.metadata,
        }, ensure_ascii=False) + "\n")


def _referenced_requests(settings: Settings) -> set[str]:
    """Request hashes of the stored completions: the cache entries a re-run would read."""
    from rs_dagster.storage.reads import request_hashes
    from rs_dagster.storage.warehouse import Warehouse

    return request_hashes(Warehouse.from_settings(settings))


def _size(n_bytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n_bytes < 1024 or unit == "GiB":
            return f"{n_bytes:.1f} {unit}" if unit != "B" else f"{int(n_bytes)} B"
        n_bytes /= 1024
    raise AssertionError("unreachable")


@cache_app.command("stats")
def cache_stats() -> None:
    """Entries, size, age, and how many entries stored completions still refer to."""
    from rs_dagster.execution.cache import ResponseCache

    settings = _settings()
    stats = ResponseCache(settings.cache_dir).stats(_referenced_requests(settings))
    when = lambda t: time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "-"  # noqa: E731
    table = Table(title=f"response cache {ResponseCache(settings.cache_dir).path}")
    for column in ("entries", "size", "referenced by completions", "unreferenced", "oldest", "newest"):
        table.add_column(column)
    table.add_row(
        str(stats.entries), _size(stats.bytes), str(stats.referenced), str(stats.entries - stats.referenced),
        when(stats.oldest), when(stats.newest),
    )
    out.print(table)


@cache_app.command("prune")
def cache_prune(
    unreferenced: bool = typer.Option(False, "--unreferenced", help="remove entries no stored completion refers to"),
    older_than_days: float | None = typer.Option(None, min=0, help="remove entries older than this many days"),
    dry_run: bool = typer.Option(False, "--dry-run", help="only say what would be removed"),
) -> None:
    """Remove cache entries; both conditions must hold when both are given. Removed entries are
    requested again by the next run that needs them."""
    from rs_dagster.errors import InputError
    from rs_dagster.execution.cache import ResponseCache

    if not unreferenced and older_than_days is None:
        raise InputError("rs cache prune: give --unreferenced and/or --older-than-days N; nothing was removed")
    settings = _settings()
    keep = _referenced_requests(settings) if unreferenced else None
    older_than_s = older_than_days * 86400 if older_than_days is not None else None
    removed, freed = ResponseCache(settings.cache_dir).prune(keep, older_than_s, dry_run)
    out.print(f"{'would remove' if dry_run else 'removed'} {removed} entries ({_size(freed)})")


@app.command()
def compare(
    model_a: str = typer.Argument(..., help="a registered model (run A)"),
    model_b: str | None = typer.Argument(None, help="another registered model (run B); without it: MODEL_A's previous version (A) vs its current one (B)"),
    tasks: str | None = typer.Option(None, help="comma-separated tasks (default: every task both answered)"),
) -> None:
    """Paired comparison on the items both runs answered: per task the shared samples, both accuracies, the
    discordant pairs b and c and the exact McNemar p; then the grid points that differ after
    Benjamini–Hochberg (q <= 0.05)."""
    from rs_dagster.defs.comparisons import run_times
    from rs_dagster.errors import UnknownNameError
    from rs_dagster.models.registry import get_model, load_models
    from rs_dagster.stats.paired import ALPHA, compare_models, compare_versions
    from rs_dagster.storage.reads import point_params, scored_for_comparison
    from rs_dagster.storage.warehouse import Warehouse
    from rs_dagster.tasks.manifold import load_manifolds

    settings = _settings()
    models = load_models(settings)
    first = get_model(models, model_a)
    second = get_model(models, model_b) if model_b is not None else None
    if second is not None and second.name == first.name:
        raise InputError(f"rs compare: give two different models (or one, to compare its previous version with its current one), got {model_a!r} twice")
    specs = load_manifolds(settings.tasks_dir)
    for task in _split(tasks) or []:
        if task not in specs:
            raise UnknownNameError("task", task, list(specs))
    if tasks:
        named = _split(tasks) or []
        specs = {name: spec for name, spec in specs.items() if name in named}
    warehouse = Warehouse.from_settings(settings)
    scored = scored_for_comparison(warehouse, specs, [first.name] + ([second.name] if second else []))
    params = point_params(warehouse, specs)
    if second is not None:
        frame = compare_models(scored, first.name, first.version, second.name, second.version, params)
        title = f"{first.name} ({first.version}) vs {second.name} ({second.version})"
        if frame.is_empty():
            raise RsError(
                f"{first.name} (version {first.version}) and {second.name} (version {second.version}) share no answered item of the "
                f"current version of {', '.join(sorted(specs)) or 'any task'}; evaluate both on the same scope first"
            )
    else:
        times = run_times(_instance(settings), scored["dagster_run_id"].unique().to_list()) if not scored.is_empty() else {}
        frame = compare_versions(scored, first.name, first.version, times, params)
        if frame.is_empty():
            raise RsError(
                f"{first.name} has no results of an earlier model version on the items its current version ({first.version}) answered "
                f"(current task versions of {', '.join(sorted(specs)) or 'any task'}); give a second model to compare with"
            )
        title = f"{first.name}: previous version {frame['version_a'][0]} (A) vs current {first.version} (B)"

    def number(value: float) -> str:
        return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"

    def verdict(row: dict) -> str:
        return "B worse" if row["worse"] else "B better" if row["differs"] else "—"

    columns = ("pairs", "excluded", "accuracy A", "accuracy B", "b", "c", "p (McNemar)", "q (BH)", f"q <= {ALPHA}")
    table = Table(title=f"Paired comparison: {title}")
    for column in ("task", *columns):
        table.add_column(column, justify="left" if column == "task" else "right")
    task_rows = frame.filter(pl.col("level") == "task")
    for row in task_rows.iter_rows(named=True):
        table.add_row(
            row["task"], str(row["pairs"]), str(row["excluded"]), f"{row['accuracy_a']:.3f}", f"{row['accuracy_b']:.3f}",
            str(row["b"]), str(row["c"]), number(row["p_value"]), number(row["q_value"]), verdict(row),
        )
    out.print(table)
    points = frame.filter(pl.col("level") == "point")
    differing = points.filter(pl.col("differs"))
    if differing.is_empty():
        out.print(f"No grid point differs after Benjamini–Hochberg at q <= {ALPHA} ({points.height} points compared).")
    else:
        table = Table(title=f"Grid points that differ (q <= {ALPHA}; {differing.height} of {points.height})")
        for column in ("task", "params", *columns):
            table.add_column(column, justify="left" if column in ("task", "params") else "right")
        for row in differing.iter_rows(named=True):
            table.add_row(
                row["task"], row["params_json"] or row["point_id"], str(row["pairs"]), str(row["excluded"]), f"{row['accuracy_a']:.3f}",
                f"{row['accuracy_b']:.3f}", str(row["b"]), str(row["c"]), number(row["p_value"]), number(row["q_value"]), verdict(row),
            )
        out.print(table)
    out.print(
        "Strict outcomes (unparsed and ambiguous count as not correct); pairs = samples both runs answered (correct, incorrect, "
        "unparsed or ambiguous), same item and sample index under the current task version and scoring version; excluded = "
        "truncated or error on either side. b = A right and B wrong, c = A wrong and B right; "
        "p = exact McNemar; q = Benjamini–Hochberg over the task and point tests of this comparison."
    )


def _fail(message: str) -> None:
    console.print("[bold red]error:[/]", Text(message), soft_wrap=True)
    sys.exit(2)


def main() -> None:
    """The `rs` command. Once a command has finished, the process ends without tearing the interpreter down:
    freeing Dagster's, polars' and altair's modules object by object took about 0.8 s after every command.
    What the teardown would have done that matters still happens first: threads still working are joined,
    exit handlers run (DuckDB files are closed and checkpointed, logs flushed), output is flushed. An
    exception that escapes (`--debug`) ends the process the ordinary way, with its traceback."""
    try:
        _run_command()
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
    if not isinstance(code, int | None):
        print(code, file=sys.stderr)
        code = 1
    _exit_now(code or 0)


def _exit_now(code: int) -> None:
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _run_command() -> None:
    """Every user error is one message and exit code 2; `--debug` (or RS_DEBUG=1) shows the traceback."""
    debug = "--debug" in sys.argv[1:] or os.environ.get("RS_DEBUG", "") not in ("", "0")
    args = [a for a in sys.argv[1:] if a != "--debug"]
    try:
        code = app(args=args, standalone_mode=False)  # a typer.Exit raised by a command comes back as its code
        if isinstance(code, int) and code:
            sys.exit(code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        _fail("aborted")
    except typer.TyperException as exc:  # a usage error: unknown option, missing argument, bad value
        if debug:
            raise
        ctx = getattr(exc, "ctx", None)
        if ctx is not None and type(exc).__name__ == "NoArgsIsHelpError":
            out.print(ctx.get_help())  # `rs` or `rs tasks` alone: what can follow
            sys.exit(2)
        command = " ".join(["rs", *ctx.command_path.split()[1:]]) if ctx is not None else "rs"
        _fail(f"{exc.format_message()} (see `{command} --help`)")
    except RsError as exc:
        if debug:
            raise
        _fail(str(exc))
    except Interrupted as exc:  # what was kept and how to resume; 130 after Ctrl-C
        console.print(Text(str(exc)), style="yellow", soft_wrap=True)
        sys.exit(exc.code)
    except OSError as exc:
        if debug:
            raise
        where = exc.filename or "a file"
        _fail(f"cannot use {where}: {exc.strerror or exc}; the state directory (RS_HOME, default .rs) must be writable")
