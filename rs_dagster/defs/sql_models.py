"""SQL models (dbt-like): every dbt_like_sql/NAME.sql becomes an asset NAME that replaces the DuckDB
table NAME with the query's result. `{{ ref('other') }}` refers to another asset's table and becomes a
dependency edge, so the asset graph is read from the SQL itself. A model with a pandera schema in
rs_dagster.storage.schemas (SQL_SCHEMAS) is validated before its new table is committed: a result that
fails leaves the old table in place and fails the materialization, naming each column and rule."""

import contextlib
import json
import re
from functools import lru_cache
from pathlib import Path

import dagster as dg
import pandera.polars as pa
import yaml

from rs_dagster.defs.checks import schema_check_result, schema_check_spec
from rs_dagster.defs.metadata import OWNERS, asset_tags, definition_metadata, table_column, table_constraints
from rs_dagster.defs.partitions import AFTER_ANY_PARTITION_UPDATES
from rs_dagster.defs.resources import LabResource
from rs_dagster.report.markdown import markdown_table
from rs_dagster.scoring.outcomes import register_sql_macros
from rs_dagster.stats.intervals import Z95, excess_over_chance, truncation_ratio, wilson_interval
from rs_dagster.storage import schemas
from rs_dagster.storage.warehouse import arrow_frame, scalar, validate
from rs_dagster.tasks.base import sha256_hex

_REF = re.compile(r"\{\{\s*ref\(\s*['\"](\w+)['\"]\s*\)\s*\}\}")

SQL_SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "surfaces": schemas.Surfaces,
    "projections": schemas.Projections,
    "leaderboard": schemas.Leaderboard,
}
"""Schema of each SQL model's table; a model not named here is written unvalidated."""


def refs(sql: str) -> list[str]:
    return sorted(set(_REF.findall(sql)))


def compile_sql(sql: str) -> str:
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


def register_functions(con) -> None:
    """The statistics SQL models share with Python: one implementation of each formula."""
    _define(con, "wilson_low", lambda k, n: wilson_interval(int(k), int(n), Z95)[0] if n else None, ["DOUBLE", "DOUBLE"], "DOUBLE")
    _define(con, "excess_over_chance", lambda a, g: excess_over_chance(a, g) if a is not None else None, ["DOUBLE", "DOUBLE"], "DOUBLE")
    _define(con, "wilson_high", lambda k, n: wilson_interval(int(k), int(n), Z95)[1] if n else None, ["DOUBLE", "DOUBLE"], "DOUBLE")
    _define(con, "truncation_ratio", lambda t, a: truncation_ratio(int(t), int(a)) if t is not None and a is not None else None,
            ["DOUBLE", "DOUBLE"], "DOUBLE", null_handling="special")  # NULL when a pool has neither
    _define(con, "manifold_position", manifold_position, ["VARCHAR"] * 5, "INTEGER")
    register_sql_macros(con)


def run_sql_model(con, path: Path) -> int:
    """Replace table NAME (path's stem) by the model's result in one transaction, validated against its
    schema in SQL_SCHEMAS when it has one; returns the row count. On a schema failure the old table stays
    and rs_dagster.errors.SchemaError names each failed `NAME.column: rule`."""
    name = path.stem
    register_functions(con)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f'CREATE OR REPLACE TABLE "{name}" AS {compile_sql(path.read_text())}')
        if name in SQL_SCHEMAS:
            validate(name, SQL_SCHEMAS[name], arrow_frame(con.sql(f'SELECT * FROM "{name}"')))
        rows = scalar(con.execute(f'SELECT count(*) FROM "{name}"'))
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return rows


def column_schema(con, name: str) -> dg.TableSchema:
    """The table's columns with their DuckDB types, described and constrained by its pandera schema if any."""
    schema = SQL_SCHEMAS[name].to_schema() if name in SQL_SCHEMAS else None
    specs = schema.columns if schema is not None else {}
    columns = [table_column(column, column_type, specs.get(column)) for column, column_type, *_ in con.execute(f'DESCRIBE "{name}"').fetchall()]
    return dg.TableSchema(columns=columns, constraints=table_constraints(schema) if schema is not None else None)


def _sql_asset(path: Path) -> dg.AssetsDefinition:
    sql = path.read_text()
    name = path.stem
    description = next((line[2:].strip() for line in sql.splitlines() if line.startswith("--")), f"SQL model {name}")
    tables = {name: SQL_SCHEMAS[name]} if name in SQL_SCHEMAS else {}

    @dg.asset(
        name=name,
        deps=refs(sql),
        group_name="analysis",
        kinds={"sql", "duckdb"},
        description=f"{description} Unpartitioned: the SQL model dbt_like_sql/{name}.sql over every model × task, "
        f"replacing table `{name}` whole; re-run by the `refresh_report` job (last step of every `rs eval`) and by "
        "automation after any upstream partition updates.",
        automation_condition=AFTER_ANY_PARTITION_UPDATES,
        code_version=sha256_hex(sql)[:12],
        owners=OWNERS,
        tags=asset_tags("analysis", "all"),
        metadata={
            "sql": dg.MetadataValue.md(f"```sql\n{sql}\n```"),
            "source": dg.MetadataValue.path(str(path)),
            **(definition_metadata(tables[name]) if tables else {}),
        },
        check_specs=[schema_check_spec(name, tables)] if tables else None,
    )
    def sql_model(context: dg.AssetExecutionContext, lab: LabResource) -> dg.MaterializeResult:
        with lab.warehouse.connect() as con:
            rows = run_sql_model(con, path)
            columns = column_schema(con, name)
        head = lab.warehouse.query(f'SELECT * FROM "{name}" LIMIT 20')
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": dg.MetadataValue.int(rows),
                "dagster/column_schema": dg.MetadataValue.table_schema(columns),
                "preview": dg.MetadataValue.md(markdown_table(head)),
            },
            check_results=[schema_check_result(lab.warehouse, tables, {})] if tables else None,
        )

    return sql_model


def build_sql_assets(sql_dir: Path) -> list[dg.AssetsDefinition]:
    return [_sql_asset(path) for path in sorted(sql_dir.glob("*.sql"))]
