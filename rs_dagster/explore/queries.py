"""Every read of the explorer, through the Warehouse's short read-only connections: a read waits for an
evaluation's write to finish (DuckDB admits readers between writes) and never holds the file across
requests, so the explorer is safe to leave open while `rs eval` runs. Nothing here writes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import duckdb
import polars as pl

from rs_dagster.stats.hazard import ALL_TIERS
from rs_dagster.storage.warehouse import Warehouse, arrow_frame

CURRENT_VERSIONS = """
    JOIN task_specs ts ON ts.task = s.task AND ts.spec_version = s.spec_version
    JOIN model_specs ms ON ms.model = s.model AND ms.model_version = s.model_version
"""
"""Joins that keep the scored rows of the current task and model versions, the rows `points` counts."""

SAMPLE_JOINS = """
    LEFT JOIN completions c ON c.model = s.model AND c.task = s.task AND c.test_case_id = s.test_case_id AND c.request_hash = s.request_hash
    LEFT JOIN test_cases t ON t.test_case_id = s.test_case_id AND t.spec_version = s.spec_version
"""

DETAILS = f"""
    SELECT s.*, s.answer AS expected, c.answer_text, c.reasoning_text, c.finish_reason, c.prompt_tokens, c.answer_tokens, c.latency_s,
           c.attempts, c.error, c.from_cache, c.served_model, c.sampler_json, c.dagster_run_id AS completion_run_id,
           p.messages_json, p.template_version, t.question, t.params_json, t.item_index, t.seed
    FROM scored_results s {CURRENT_VERSIONS} {SAMPLE_JOINS}
    LEFT JOIN prompts p ON p.model = s.model AND p.test_case_id = s.test_case_id AND p.prompt_hash = s.prompt_hash
"""
"""Samples with their completion, the prompt as sent and the item, for the current versions."""
DETAILS_NEEDS = ("scored_results", "task_specs", "model_specs", "completions", "test_cases", "prompts")
TRACE_COLUMNS = "model, task, point_id, outcome, completion_tokens, reasoning_bytes, reasoning_ratio, loop"
"""The compression columns that compression_chart and the task view's summary read."""


class Tables(Protocol):
    """What the views read: LabData answers each call with a query (the server, one view at a time), a
    Snapshot from tables read once (the export, every view)."""

    db_path: Path

    def leaderboard(self) -> pl.DataFrame: ...
    def reasonscore(self) -> pl.DataFrame: ...
    def reasonscore_tasks(self) -> pl.DataFrame: ...
    def tasks(self) -> list[str]: ...
    def models(self) -> list[str]: ...
    def points(self, task: str) -> pl.DataFrame: ...
    def projections(self, task: str) -> pl.DataFrame: ...
    def surfaces(self, task: str) -> pl.DataFrame: ...
    def task_spectra(self, task: str) -> pl.DataFrame: ...
    def compression(self, task: str) -> pl.DataFrame: ...
    def hazard(self, task: str) -> pl.DataFrame: ...
    def survival(self, task: str) -> pl.DataFrame: ...
    def point(self, model: str, task: str, point_id: str) -> pl.DataFrame: ...
    def point_spectra(self, task: str, point_id: str) -> pl.DataFrame: ...
    def samples(self, model: str, task: str, point_id: str, offset: int, limit: int) -> pl.DataFrame: ...
    def comparisons(self, model_a: str, model_b: str) -> pl.DataFrame: ...


class LabData:
    """The lab's tables as the explorer reads them; a table that does not exist yet reads as empty.

    Each read opens its own read-only connection, unless the reads run inside `session()`, which holds one
    for a single view (opening a connection costs more than most of the explorer's queries)."""

    def __init__(self, db_path: Path, connection: duckdb.DuckDBPyConnection | None = None):
        self.db_path = Path(db_path)
        self.warehouse = Warehouse(self.db_path)
        self.connection = connection
        self._tables: set[str] | None = None

    @contextmanager
    def session(self) -> Iterator[LabData]:
        """The same data read through one connection, held until the block ends: use it for one view, never
        across requests, so an evaluation's writes wait for one view at most."""
        if not self.db_path.exists():  # nothing to read; a read-only connect would create the file
            yield self
            return
        with self.warehouse.connect(read_only=True) as connection:
            yield LabData(self.db_path, connection)

    def tables(self) -> set[str]:
        """Names of the tables present; none when the DuckDB file does not exist (it is never created here)."""
        if self._tables is not None:
            return self._tables
        if not self.db_path.exists():
            return set()
        names = set(self.read("SELECT table_name FROM information_schema.tables")["table_name"].to_list())
        if self.connection is not None:
            self._tables = names
        return names

    def read(self, sql: str, params: list[Any] | None = None, needs: tuple[str, ...] = ()) -> pl.DataFrame:
        """`sql`'s rows, or an empty frame when one of the tables it `needs` is missing."""
        if needs and not set(needs) <= self.tables():
            return pl.DataFrame()
        if self.connection is None:
            return self.warehouse.query(sql, params)
        return arrow_frame(self.connection.sql(sql, params=params) if params else self.connection.sql(sql))

    def leaderboard(self) -> pl.DataFrame:
        return self.read("SELECT * FROM leaderboard ORDER BY model, task, tier", needs=("leaderboard",))

    def reasonscore(self) -> pl.DataFrame:
        return self.read("SELECT * FROM reasonscore ORDER BY tier, v2 DESC, model", needs=("reasonscore",))

    def reasonscore_tasks(self) -> pl.DataFrame:
        return self.read("SELECT * FROM reasonscore_tasks ORDER BY tier, task, model", needs=("reasonscore_tasks",))

    def tasks(self) -> list[str]:
        frame = self.read("SELECT DISTINCT task FROM points ORDER BY task", needs=("points",))
        return frame["task"].to_list() if not frame.is_empty() else []

    def models(self) -> list[str]:
        frame = self.read("SELECT DISTINCT model FROM points ORDER BY model", needs=("points",))
        return frame["model"].to_list() if not frame.is_empty() else []

    def points(self, task: str) -> pl.DataFrame:
        return self.read("SELECT * FROM points WHERE task = ? ORDER BY model, params_json", [task], needs=("points",))

    def projections(self, task: str) -> pl.DataFrame:
        return self.read("SELECT * FROM projections WHERE task = ? ORDER BY projection, model, axis_rank", [task], needs=("projections",))

    def surfaces(self, task: str) -> pl.DataFrame:
        return self.read("SELECT * FROM surfaces WHERE task = ? ORDER BY surface, model, y_rank, x_rank", [task], needs=("surfaces",))

    def task_spectra(self, task: str) -> pl.DataFrame:
        return self.read("SELECT * FROM fft_spectra WHERE task = ? ORDER BY model, point_id", [task], needs=("fft_spectra",))

    def compression(self, task: str) -> pl.DataFrame:
        return self.read(f"SELECT {TRACE_COLUMNS} FROM compression WHERE task = ? ORDER BY model, point_id, test_case_id, sample_index",
                         [task], needs=("compression",))

    def hazard(self, task: str) -> pl.DataFrame:
        """The task's hazard buckets pooled over its tiers (tier `all`), the ones the task view draws."""
        return self.read("SELECT * FROM hazard WHERE task = ? AND tier = ? ORDER BY model, bucket_start", [task, ALL_TIERS], needs=("hazard",))

    def survival(self, task: str) -> pl.DataFrame:
        return self.read("SELECT * FROM survival WHERE task = ? AND tier = ? ORDER BY model, curve, tokens", [task, ALL_TIERS], needs=("survival",))

    def point(self, model: str, task: str, point_id: str) -> pl.DataFrame:
        return self.read("SELECT * FROM points WHERE model = ? AND task = ? AND point_id = ?", [model, task, point_id], needs=("points",))

    def point_spectra(self, task: str, point_id: str) -> pl.DataFrame:
        """The token-FFT rows of the point, one per model that has one."""
        return self.read("SELECT * FROM fft_spectra WHERE task = ? AND point_id = ? ORDER BY model", [task, point_id], needs=("fft_spectra",))

    def samples(self, model: str, task: str, point_id: str, offset: int, limit: int) -> pl.DataFrame:
        """One page of the point's samples (current versions), in item order; `total` repeats the count."""
        return self.read(
            f"""
            SELECT s.test_case_id, s.sample_index, t.item_index, s.outcome, s.flexible_outcome, s.answer AS expected,
                   s.parsed_answer, s.parse_rule, c.completion_tokens, c.reasoning_tokens, c.latency_s, c.finish_reason,
                   count(*) OVER () AS total
            FROM scored_results s {CURRENT_VERSIONS} {SAMPLE_JOINS}
            WHERE s.model = ? AND s.task = ? AND s.point_id = ?
            ORDER BY t.item_index, s.test_case_id, s.sample_index
            LIMIT ? OFFSET ?
            """,
            [model, task, point_id, limit, offset],
            needs=("scored_results", "task_specs", "model_specs", "completions", "test_cases"),
        )

    def sample(self, model: str, task: str, test_case_id: str, sample_index: int) -> pl.DataFrame:
        """The sample with its completion, the prompt as sent and the item, for the current versions."""
        return self.read(f"{DETAILS} WHERE s.model = ? AND s.task = ? AND s.test_case_id = ? AND s.sample_index = ?",
                         [model, task, test_case_id, sample_index], needs=DETAILS_NEEDS)

    def comparisons(self, model_a: str, model_b: str) -> pl.DataFrame:
        """Paired comparisons of the two models (either order), task and point rows."""
        return self.read(
            """SELECT * FROM comparisons WHERE kind = 'models' AND ((model_a = ? AND model_b = ?) OR (model_a = ? AND model_b = ?))
               ORDER BY task, level DESC, params_json""",
            [model_a, model_b, model_b, model_a],
            needs=("comparisons",),
        )

    def snapshot(self, samples_per_point: int) -> Snapshot:
        """Every table the views read, one query each, through one connection held for the reads only."""
        with self.session() as data:
            return Snapshot(data, samples_per_point)


def _groups(frame: pl.DataFrame, *keys: str) -> dict[tuple[Any, ...], pl.DataFrame]:
    """The frame's rows by `keys`, each group in the frame's order; an empty frame (a missing table) has none."""
    return {} if frame.is_empty() else frame.partition_by(*keys, as_dict=True, maintain_order=True)


class Snapshot:
    """The lab's tables read once (one query per table) and grouped in polars, so the export builds its
    hundreds of views without a query per view (about 17 ms each); each point keeps its first
    `samples_per_point` samples, with their details (`details`, the rows of the exported sample views)."""

    def __init__(self, lab: LabData, samples_per_point: int):
        self.db_path = lab.db_path
        self._leaderboard, self._reasonscore, self._reasonscore_tasks = lab.leaderboard(), lab.reasonscore(), lab.reasonscore_tasks()
        points = lab.read("SELECT * FROM points ORDER BY task, model, params_json", needs=("points",))
        self._tasks = sorted(points["task"].unique().to_list()) if not points.is_empty() else []
        self._models = sorted(points["model"].unique().to_list()) if not points.is_empty() else []
        self._points, self._point = _groups(points, "task"), _groups(points, "model", "task", "point_id")
        self._projections = _groups(lab.read("SELECT * FROM projections ORDER BY task, projection, model, axis_rank", needs=("projections",)), "task")
        self._surfaces = _groups(lab.read("SELECT * FROM surfaces ORDER BY task, surface, model, y_rank, x_rank", needs=("surfaces",)), "task")
        spectra = lab.read("SELECT * FROM fft_spectra ORDER BY task, model, point_id", needs=("fft_spectra",))
        self._task_spectra, self._point_spectra = _groups(spectra, "task"), _groups(spectra, "task", "point_id")  # a point's in model order
        self._compression = _groups(lab.read(f"SELECT {TRACE_COLUMNS} FROM compression ORDER BY task, model, point_id, test_case_id, sample_index",
                                             needs=("compression",)), "task")
        self._hazard = _groups(lab.read("SELECT * FROM hazard WHERE tier = ? ORDER BY task, model, bucket_start", [ALL_TIERS], needs=("hazard",)), "task")
        self._survival = _groups(lab.read("SELECT * FROM survival WHERE tier = ? ORDER BY task, model, curve, tokens", [ALL_TIERS],
                                          needs=("survival",)), "task")
        self._comparisons = _groups(lab.read("SELECT * FROM comparisons WHERE kind = 'models'", needs=("comparisons",)), "model_a", "model_b")
        self.details = lab.read(
            f"""{DETAILS}
                QUALIFY row_number() OVER (PARTITION BY s.model, s.task, s.point_id ORDER BY t.item_index, s.test_case_id, s.sample_index) <= ?
                ORDER BY s.model, s.task, s.point_id, t.item_index, s.test_case_id, s.sample_index""",
            [samples_per_point], needs=DETAILS_NEEDS,
        )
        totals = lab.read(f"SELECT s.model, s.task, s.point_id, count(*) AS total FROM scored_results s {CURRENT_VERSIONS} GROUP BY ALL",
                          needs=DETAILS_NEEDS)
        pages = self.details.join(totals, on=["model", "task", "point_id"], maintain_order="left") if not self.details.is_empty() else self.details
        self._samples = _groups(pages, "model", "task", "point_id")

    def leaderboard(self) -> pl.DataFrame:
        return self._leaderboard

    def reasonscore(self) -> pl.DataFrame:
        return self._reasonscore

    def reasonscore_tasks(self) -> pl.DataFrame:
        return self._reasonscore_tasks

    def tasks(self) -> list[str]:
        return self._tasks

    def models(self) -> list[str]:
        return self._models

    def points(self, task: str) -> pl.DataFrame:
        return self._points.get((task,), pl.DataFrame())

    def projections(self, task: str) -> pl.DataFrame:
        return self._projections.get((task,), pl.DataFrame())

    def surfaces(self, task: str) -> pl.DataFrame:
        return self._surfaces.get((task,), pl.DataFrame())

    def task_spectra(self, task: str) -> pl.DataFrame:
        return self._task_spectra.get((task,), pl.DataFrame())

    def compression(self, task: str) -> pl.DataFrame:
        return self._compression.get((task,), pl.DataFrame())

    def hazard(self, task: str) -> pl.DataFrame:
        return self._hazard.get((task,), pl.DataFrame())

    def survival(self, task: str) -> pl.DataFrame:
        return self._survival.get((task,), pl.DataFrame())

    def point(self, model: str, task: str, point_id: str) -> pl.DataFrame:
        return self._point.get((model, task, point_id), pl.DataFrame())

    def point_spectra(self, task: str, point_id: str) -> pl.DataFrame:
        return self._point_spectra.get((task, point_id), pl.DataFrame())

    def samples(self, model: str, task: str, point_id: str, offset: int, limit: int) -> pl.DataFrame:
        return self._samples.get((model, task, point_id), pl.DataFrame()).slice(offset, limit)

    def comparisons(self, model_a: str, model_b: str) -> pl.DataFrame:
        pairs = [self._comparisons[key] for key in ((model_a, model_b), (model_b, model_a)) if key in self._comparisons]
        if not pairs:
            return pl.DataFrame()
        return pl.concat(pairs).sort("task", "level", "params_json", descending=[False, True, False], nulls_last=True, maintain_order=True)
