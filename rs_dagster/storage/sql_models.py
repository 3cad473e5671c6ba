"""The dbt-like SQL models (dbt_like_sql/*.sql) run against the warehouse: `{{ ref('t') }}` compiled to a
quoted table name, the model's table replaced in one transaction and validated against its schema, with
the Python rules the SQL shares registered on the connection first (one implementation of each)."""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import duckdb
import pandera.polars as pa
import polars as pl
import yaml

from rs_dagster.scoring.outcomes import ANSWERED, Outcome
from rs_dagster.stats.intervals import Z95, excess_over_chance, truncation_ratio, wilson_interval
from rs_dagster.storage import schemas
from rs_dagster.storage.warehouse import Warehouse, add_schema_columns, arrow_frame, rollback, scalar, validate

_REF = re.compile(r"\{\{\s*ref\(\s*['\"](\w+)['\"]\s*\)\s*\}\}")

SQL_SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "surfaces": schemas.Surfaces,
    "projections": schemas.Projections,
    "leaderboard": schemas.Leaderboard,
}
"""Schema of each SQL model's table; a model not named here is written unvalidated."""

READ_SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "task_specs": schemas.TaskSpecs,
    "points": schemas.Points,
}
"""Schema of each table the models read (`ref`): its rows written by an earlier version may lack a column
that a newer schema added (task_specs' tiers_json, points' ambiguous), which the models read as NULL (or as
schemas.ADDED_COLUMN_DEFAULTS says: points.ambiguous 0) instead of failing."""

_ANSWERED = ", ".join(f"'{o.value}'" for o in ANSWERED)
SQL_MACROS = (
    f"CREATE OR REPLACE TEMP MACRO is_answered(outcome) AS outcome IN ({_ANSWERED})",
    f"CREATE OR REPLACE TEMP MACRO is_correct(outcome) AS outcome = '{Outcome.CORRECT.value}'",
    "CREATE OR REPLACE TEMP MACRO accuracy(correct, answered) AS correct / nullif(answered, 0)",
)
"""rs_dagster.scoring.outcomes' accuracy rule for SQL: is_answered(outcome), is_correct(outcome),
accuracy(correct, answered); temporary, so never stored in the file."""


def refs(sql: str) -> list[str]:
    """The tables a model reads (its `{{ ref('name') }}`s), sorted, each once: the asset's deps."""
    return sorted(set(_REF.findall(sql)))


def compile_sql(sql: str) -> str:
    """The model as DuckDB runs it: each `{{ ref('name') }}` becomes the quoted table name."""
    return _REF.sub(lambda m: f'"{m.group(1)}"', sql)


@lru_cache(maxsize=64)
def _manifold(manifold_yaml: str) -> dict:
    return yaml.safe_load(manifold_yaml) or {}


def manifold_position(manifold_yaml: str, section: str, name: str, axis: str, value_json: str) -> int | None:
    """Where `value_json` (a JSON value) stands in the order the manifold lists `axis`'s values for the
    surface or projection `name` of `section` (its `values` / `x_values` / `y_values`, else `grid[axis]`);
    None when the manifold does not list it. The SQL models' sort key for categorical axes."""
    doc = _manifold(manifold_yaml)
    listed = None
    for entry in doc.get(section) or []:
        if entry.get("name") != name:
            continue
        if section == "projections":
            listed = entry.get("values")
        elif entry.get("x") == axis:
            listed = entry.get("x_values")
        elif entry.get("y") == axis:
            listed = entry.get("y_values")
        else:
            listed = None
    if listed is None:
        listed = (doc.get("grid") or {}).get(axis) or []
    value = json.loads(value_json)
    for position, candidate in enumerate(listed):
        if candidate == value and isinstance(candidate, bool) == isinstance(value, bool):
            return position
    return None


def _define(con, name: str, function, parameters: list[str], returns: str, null_handling: str = "default") -> None:
    """`null_handling="special"` for a function that may return NULL itself (DuckDB refuses it otherwise)."""
    with contextlib.suppress(Exception):  # not defined on this connection yet
        con.remove_function(name)
    con.create_function(name, function, parameters, returns, null_handling=null_handling)


def register_functions(con: duckdb.DuckDBPyConnection) -> None:
    """The statistics and the accuracy rule SQL models share with Python: one implementation of each."""
    register_udfs(con)
    create_macros(con)


def register_udfs(con: duckdb.DuckDBPyConnection) -> None:
    """The Python functions; registered once on a connection, its cursors see them."""
    _define(con, "wilson_low", lambda k, n: wilson_interval(int(k), int(n), Z95)[0] if n else None, ["DOUBLE", "DOUBLE"], "DOUBLE")
    _define(con, "excess_over_chance", lambda a, g: excess_over_chance(a, g) if a is not None else None, ["DOUBLE", "DOUBLE"], "DOUBLE")
    _define(con, "wilson_high", lambda k, n: wilson_interval(int(k), int(n), Z95)[1] if n else None, ["DOUBLE", "DOUBLE"], "DOUBLE")
    _define(con, "truncation_ratio", lambda t, a: truncation_ratio(int(t), int(a)) if t is not None and a is not None else None,
            ["DOUBLE", "DOUBLE"], "DOUBLE", null_handling="special")  # NULL when a pool has neither
    _define(con, "manifold_position", manifold_position, ["VARCHAR"] * 5, "INTEGER")


def create_macros(con: duckdb.DuckDBPyConnection) -> None:
    """The SQL macros; temporary, so each cursor of a connection needs its own."""
    for statement in SQL_MACROS:
        con.execute(statement)


def run_sql_model(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Replace table NAME (path's stem) by the model's result in one transaction, validated against its
    schema in SQL_SCHEMAS when it has one; returns the row count. On a schema failure the old table stays
    and rs_dagster.errors.SchemaError names each failed `NAME.column: rule`."""
    register_functions(con)
    return _replace_by_model(con, path)


def _replace_by_model(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """run_sql_model on a connection whose functions are registered."""
    name = path.stem
    sql = path.read_text()
    con.execute("BEGIN TRANSACTION")
    try:
        for table in refs(sql):
            add_schema_columns(con, table, READ_SCHEMAS[table])
        con.execute(f'CREATE OR REPLACE TABLE "{name}" AS {compile_sql(sql)}')
        if name in SQL_SCHEMAS:
            validate(name, SQL_SCHEMAS[name], arrow_frame(con.sql(f'SELECT * FROM "{name}"')))
        rows = scalar(con.execute(f'SELECT count(*) FROM "{name}"'))
        con.execute("COMMIT")
    except Exception:
        rollback(con)
        raise
    return rows


@dataclass(frozen=True)
class ModelRun:
    """What one run of a SQL model left: its row count, its columns (name, DuckDB type) and its first rows."""

    rows: int
    columns: list[tuple[str, str]]
    head: pl.DataFrame


def run_model(warehouse: Warehouse, path: Path, head: int = 20) -> ModelRun:
    """run_sql_model on the warehouse, with what the asset shows of the new table."""
    def replace() -> int:
        with warehouse.connect(prepare=register_udfs) as con:
            create_macros(con)
            rows = _replace_by_model(con, path)
            warehouse.reclaim(con)  # the table it replaced
            return rows

    rows = warehouse.retry_conflicts(replace)  # a shared warehouse: another host may replace it at the same moment
    name = path.stem
    return ModelRun(rows, warehouse.columns(name), warehouse.query(f'SELECT * FROM "{name}" LIMIT {int(head)}'))
