"""Every read of the explorer, through the Warehouse's short read-only connections: a read waits for an
evaluation's write to finish (DuckDB admits readers between writes) and never holds the file across
requests, so the explorer is safe to leave open while `rs eval` runs. Nothing here writes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import duckdb
import polars as pl

from rs_dagster.stats.hazard import ALL_TIERS
from rs_dagster.storage.reads import current_scoring_sql
from rs_dagster.storage.warehouse import Warehouse, arrow_frame


def current_versions(has_scoring_version: bool = True) -> str:
    """Joins that keep the scored rows (`s`) of the current task and model versions scored by the current
    scoring version, the rows `points` counts. `has_scoring_version`: whether scored_results has the column
    (a table last written before it existed holds version "1" only)."""
    return f"""
    JOIN task_specs ts ON ts.task = s.task AND ts.spec_version = s.spec_version
    JOIN model_specs ms ON ms.model = s.model AND ms.model_version = s.model_version AND {current_scoring_sql(has_scoring_version, "s")}
"""


SAMPLE_JOINS = """
    LEFT JOIN completions c ON c.model = s.model AND c.task = s.task AND c.test_case_id = s.test_case_id AND c.request_hash = s.request_hash
    LEFT JOIN test_cases t ON t.test_case_id = s.test_case_id AND t.spec_version = s.spec_version
"""


def details(has_scoring_version: bool = True) -> str:
    """Samples with their completion, the prompt as sent and the item, for the current versions."""
    return f"""
    SELECT s.*, s.answer AS expected, c.answer_text, c.reasoning_text, c.finish_reason, c.prompt_tokens, c.answer_tokens, c.latency_s,
           c.attempts, c.error, c.from_cache, c.served_model, c.sampler_json, c.dagster_run_id AS completion_run_id,
           p.messages_json, p.template_version, t.question, t.params_json, t.item_index, t.seed
    FROM scored_results s {current_versions(has_scoring_version)} {SAMPLE_JOINS}
    LEFT JOIN prompts p ON p.model = s.model AND p.test_case_id = s.test_case_id AND p.prompt_hash = s.prompt_hash
"""


DETAILS_NEEDS = ("scored_results", "task_specs", "model_specs", "completions", "test_cases", "prompts")
TRACE_COLUMNS = "model, task, point_id, outcome, completion_tokens, reasoning_bytes, reasoning_ratio, loop"
"""The compression columns that compression_chart and the task view's summary read."""


class ExplorerReads:
    """The lab's tables as the explorer reads them; a table that does not exist yet reads as empty. A
    per-task read given no task reads every task, ordered by task first (what the export groups).

    Each read opens its own read-only connection, unless the reads run inside `session()`, which holds one
    for a single view (opening a connection costs more than most of the explorer's queries)."""

    def __init__(self, source: Path | Warehouse, connection: duckdb.DuckDBPyConnection | None = None):
        """`source`: the warehouse (Warehouse.from_settings), or the path of a DuckDB file."""
        self.warehouse = source if isinstance(source, Warehouse) else Warehouse(Path(source))
        self.location = self.warehouse.location
        self.connection = connection
        self._tables: set[str] | None = None
        self._scoring_version_column: bool | None = None

    @contextmanager
    def session(self) -> Iterator[Self]:
        """The same data read through one connection, held until the block ends: use it for one view, never
        across requests, so an evaluation's writes wait for one view at most."""
        if not self.warehouse.exists():  # nothing to read; a read-only connect would create the file
            yield self
            return
        with self.warehouse.connect(read_only=True) as connection:
            yield type(self)(self.warehouse, connection)

    def tables(self) -> set[str]:
        """Names of the tables present; none when the DuckDB file does not exist (it is never created here)."""
        if self._tables is not None:
            return self._tables
        if not self.warehouse.exists():
            return set()
        names = set(self._read("SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database()")["table_name"].to_list())
        if self.connection is not None:
            self._tables = names
        return names

    def _has_scoring_version(self) -> bool:
        """Whether scored_results has its scoring_version column (a table last written by code from before it
        holds version "1" only); asked once per session."""
        if self._scoring_version_column is not None:
            return self._scoring_version_column
        found = self._read(
            "SELECT count(*) AS n FROM information_schema.columns WHERE table_catalog = current_database() "
            "AND table_name = 'scored_results' AND column_name = 'scoring_version'",
            needs=("scored_results",),
        )
        has = not found.is_empty() and bool(found["n"][0])
        if self.connection is not None:
            self._scoring_version_column = has
        return has

    def _current(self) -> str:
        return current_versions(self._has_scoring_version())

    def _read(self, sql: str, params: list[Any] | None = None, needs: tuple[str, ...] = ()) -> pl.DataFrame:
        """`sql`'s rows, or an empty frame when one of the tables it `needs` is missing."""
        if needs and not set(needs) <= self.tables():
            return pl.DataFrame()
        if self.connection is None:
            return self.warehouse.query(sql, params)
        return arrow_frame(self.connection.sql(sql, params=params) if params else self.connection.sql(sql))

    def _by_task(self, table: str, task: str | None, order: str, columns: str = "*", tier: str | None = None) -> pl.DataFrame:
        """`table`'s rows of `task` (every task, ordered by task first, when None), of `tier` if given, in `order`."""
        conditions, params = [], []
        for column, value in (("task", task), ("tier", tier)):
            if value is not None:
                conditions.append(f"{column} = ?")
                params.append(value)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        order = order if task is not None else f"task, {order}"
        return self._read(f"SELECT {columns} FROM {table}{where} ORDER BY {order}", params, needs=(table,))

    def leaderboard(self, models: list[str] | None = None) -> pl.DataFrame:
        """The leaderboard's rows (of `models` only, when given)."""
        if models is None:
            return self._read("SELECT * FROM leaderboard ORDER BY model, task, tier", needs=("leaderboard",))
        return self._read("SELECT * FROM leaderboard WHERE list_contains(?, model) ORDER BY model, task, tier", [models], needs=("leaderboard",))

    def reasonscore(self) -> pl.DataFrame:
        return self._read("SELECT * FROM reasonscore ORDER BY tier, v2 DESC, model", needs=("reasonscore",))

    def reasonscore_tasks(self) -> pl.DataFrame:
        return self._read("SELECT * FROM reasonscore_tasks ORDER BY tier, task, model", needs=("reasonscore_tasks",))

    def tasks(self) -> list[str]:
        """Tasks with evaluated points or with token-FFT spectra only (`rs fft` needs no completions)."""
        found = [self._read(f"SELECT DISTINCT task FROM {table}", needs=(table,)) for table in ("points", "fft_spectra")]
        return sorted({task for frame in found if not frame.is_empty() for task in frame["task"]})

    def models(self) -> list[str]:
        frame = self._read("SELECT DISTINCT model FROM points ORDER BY model", needs=("points",))
        return frame["model"].to_list() if not frame.is_empty() else []

    def calibration_models(self) -> list[str]:
        """The models whose model_specs row declares them the known-truth calibration endpoint (models.yaml
        `calibration: true`), sorted; none when model_specs is missing or was last written before its
        calibration column existed (no model was one then)."""
        specs = self._read("SELECT * FROM model_specs ORDER BY model", needs=("model_specs",))
        return specs.filter(pl.col("calibration"))["model"].to_list() if "calibration" in specs.columns else []

    def manifolds(self, task: str | None = None) -> pl.DataFrame:
        """Each task's manifold as task_specs holds it (its current spec_version: one row per task), the grid
        that was measured: task, spec_version, manifold_yaml."""
        return self._by_task("task_specs", task, "spec_version", columns="task, spec_version, manifold_yaml")

    def manifold(self, task: str) -> str | None:
        """The task's stored manifold text (manifolds), None when task_specs has no row of it."""
        found = self.manifolds(task)
        return found["manifold_yaml"][0] if not found.is_empty() else None

    def points(self, task: str | None = None) -> pl.DataFrame:
        """The points by model and params_json as text (SQL sorts the JSON's numbers as text: terms 12 before 3);
        the task view lists them in grid order, numbers as numbers (rs_dagster.report.charts.sort_points)."""
        return self._by_task("points", task, "model, params_json")

    def projections(self, task: str | None = None) -> pl.DataFrame:
        return self._by_task("projections", task, "projection, model, axis_rank")

    def surfaces(self, task: str | None = None) -> pl.DataFrame:
        return self._by_task("surfaces", task, "surface, model, y_rank, x_rank")

    def task_spectra(self, task: str | None = None) -> pl.DataFrame:
        return self._by_task("fft_spectra", task, "model, point_id")

    def compression(self, task: str | None = None) -> pl.DataFrame:
        return self._by_task("compression", task, "model, point_id, test_case_id, sample_index", columns=TRACE_COLUMNS)

    def hazard(self, task: str | None = None) -> pl.DataFrame:
        """The task's hazard buckets pooled over its tiers (tier `all`), the ones the task view draws."""
        return self._by_task("hazard", task, "model, bucket_start", tier=ALL_TIERS)

    def survival(self, task: str | None = None) -> pl.DataFrame:
        return self._by_task("survival", task, "model, curve, tokens", tier=ALL_TIERS)

    def point(self, model: str, task: str, point_id: str) -> pl.DataFrame:
        return self._read("SELECT * FROM points WHERE model = ? AND task = ? AND point_id = ?", [model, task, point_id], needs=("points",))

    def point_spectra(self, task: str, point_id: str) -> pl.DataFrame:
        """The token-FFT rows of the point, one per model that has one."""
        return self._read("SELECT * FROM fft_spectra WHERE task = ? AND point_id = ? ORDER BY model", [task, point_id], needs=("fft_spectra",))

    def samples(self, model: str, task: str, point_id: str, offset: int, limit: int) -> pl.DataFrame:
        """One page of the point's samples (current versions), in item order; `total` repeats the count."""
        return self._read(
            f"""
            SELECT s.test_case_id, s.sample_index, t.item_index, s.outcome, s.flexible_outcome, s.answer AS expected,
                   s.parsed_answer, s.parse_rule, c.completion_tokens, c.reasoning_tokens, c.latency_s, c.finish_reason,
                   count(*) OVER () AS total
            FROM scored_results s {self._current()} {SAMPLE_JOINS}
            WHERE s.model = ? AND s.task = ? AND s.point_id = ?
            ORDER BY t.item_index, s.test_case_id, s.sample_index
            LIMIT ? OFFSET ?
            """,
            [model, task, point_id, limit, offset],
            needs=("scored_results", "task_specs", "model_specs", "completions", "test_cases"),
        )

    def sample(self, model: str, task: str, test_case_id: str, sample_index: int) -> pl.DataFrame:
        """The sample with its completion, the prompt as sent and the item, for the current versions."""
        return self._read(f"{details(self._has_scoring_version())} WHERE s.model = ? AND s.task = ? AND s.test_case_id = ? AND s.sample_index = ?",
                          [model, task, test_case_id, sample_index], needs=DETAILS_NEEDS)

    def comparisons(self, model_a: str, model_b: str) -> pl.DataFrame:
        """Paired comparisons of the two models (either order), task and point rows."""
        return self._read(
            """SELECT * FROM comparisons WHERE kind = 'models' AND ((model_a = ? AND model_b = ?) OR (model_a = ? AND model_b = ?))
               ORDER BY task, level DESC, params_json""",
            [model_a, model_b, model_b, model_a],
            needs=("comparisons",),
        )

    def model_comparisons(self) -> pl.DataFrame:
        """Every paired comparison of two models (not of two versions), in stored order."""
        return self._read("SELECT * FROM comparisons WHERE kind = 'models'", needs=("comparisons",))

    def nights(self, model: str | None = None) -> pl.DataFrame:
        """The canary's nights of `model` (every watched model's when None), by model, task and night."""
        where, params = ("WHERE model = ?", [model]) if model is not None else ("", [])
        return self._read(f"SELECT * FROM nights {where} ORDER BY model, task, night", params, needs=("nights",))

    def latest_drift(self, model: str | None = None) -> pl.DataFrame:
        """Every drift test of each model × task's latest tested night (alarms or not, so a quiet night reads as
        one), in the order the drift table's rows are made: the previous night before the baseline, the task's
        own tests before its points'."""
        where, params = ("WHERE model = ?", [model]) if model is not None else ("", [])
        return self._read(
            f"""SELECT * EXCLUDE (latest) FROM (SELECT *, max(night) OVER (PARTITION BY model, task) AS latest FROM drift {where})
                WHERE night = latest
                ORDER BY model, task, comparison <> 'previous', scope <> 'task', scope,
                         list_position(['accuracy', 'output_tokens', 'latency_s', 'server'], metric)""",
            params, needs=("drift",),
        )

    def memorisation(self) -> pl.DataFrame:
        """Each model × task × tier's latest memorisation gap: its latest night's row, else one of `rs eval
        --fresh-seeds` (night `eval:<salt>`, which carries no date: the last by salt)."""
        return self._read(
            """SELECT * FROM memorisation
               QUALIFY row_number() OVER (PARTITION BY model, task, tier ORDER BY starts_with(night, 'eval:'), night DESC) = 1
               ORDER BY model, task, tier""",
            needs=("memorisation",),
        )

    def first_samples(self, samples_per_point: int) -> pl.DataFrame:
        """The first `samples_per_point` samples of every point in item order, with their details (as `sample`)."""
        return self._read(
            f"""{details(self._has_scoring_version())}
                QUALIFY row_number() OVER (PARTITION BY s.model, s.task, s.point_id ORDER BY t.item_index, s.test_case_id, s.sample_index) <= ?
                ORDER BY s.model, s.task, s.point_id, t.item_index, s.test_case_id, s.sample_index""",
            [samples_per_point], needs=DETAILS_NEEDS,
        )

    def sample_totals(self) -> pl.DataFrame:
        """How many samples of the current versions each point (model, task, point_id) holds: `total`."""
        return self._read(f"SELECT s.model, s.task, s.point_id, count(*) AS total FROM scored_results s {self._current()} GROUP BY ALL",
                          needs=DETAILS_NEEDS)
