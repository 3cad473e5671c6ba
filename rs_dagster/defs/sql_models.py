"""SQL models (dbt-like): every dbt_like_sql/NAME.sql becomes an asset NAME that replaces the DuckDB
table NAME with the query's result. `{{ ref('other') }}` refers to another asset's table and becomes a
dependency edge, so the asset graph is read from the SQL itself. A model with a pandera schema in
rs_dagster.storage.schemas (SQL_SCHEMAS) is validated before its new table is committed: a result that
fails leaves the old table in place and fails the materialization, naming each column and rule."""

from pathlib import Path

import dagster as dg

from rs_dagster.defs.checks import schema_check_result, schema_check_spec
from rs_dagster.defs.metadata import OWNERS, asset_tags, definition_metadata, table_column, table_constraints
from rs_dagster.defs.partitions import AFTER_ANY_PARTITION_UPDATES
from rs_dagster.defs.resources import LabResource
from rs_dagster.report.markdown import markdown_table
from rs_dagster.storage.sql_models import SQL_SCHEMAS, refs, run_model
from rs_dagster.tasks.base import sha256_hex


def column_schema(name: str, described: list[tuple[str, str]]) -> dg.TableSchema:
    """The table's columns with their DuckDB types, described and constrained by its pandera schema if any."""
    schema = SQL_SCHEMAS[name].to_schema() if name in SQL_SCHEMAS else None
    specs = schema.columns if schema is not None else {}
    columns = [table_column(column, column_type, specs.get(column)) for column, column_type in described]
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
        run = run_model(lab.warehouse, path)
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": dg.MetadataValue.int(run.rows),
                "dagster/column_schema": dg.MetadataValue.table_schema(column_schema(name, run.columns)),
                "preview": dg.MetadataValue.md(markdown_table(run.head)),
            },
            check_results=[schema_check_result(lab.warehouse, tables, {})] if tables else None,
        )

    return sql_model


def build_sql_assets(sql_dir: Path) -> list[dg.AssetsDefinition]:
    return [_sql_asset(path) for path in sorted(sql_dir.glob("*.sql"))]
