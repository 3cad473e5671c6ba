"""SQL models (dbt-like): every dbt_like_sql/NAME.sql becomes an asset NAME that replaces the DuckDB
table NAME with the query's result. `{{ ref('other') }}` refers to another asset's table and becomes a
dependency edge, so the asset graph is read from the SQL itself."""

import re
from pathlib import Path

import dagster as dg

from rs_dagster.defs.resources import LabResource
from rs_dagster.report.markdown import markdown_table
from rs_dagster.stats.intervals import Z95, excess_over_chance, wilson_interval
from rs_dagster.tasks.base import sha256_hex

_REF = re.compile(r"\{\{\s*ref\(\s*['\"](\w+)['\"]\s*\)\s*\}\}")


def refs(sql: str) -> list[str]:
    return sorted(set(_REF.findall(sql)))


def compile_sql(sql: str) -> str:
    return _REF.sub(lambda m: f'"{m.group(1)}"', sql)


def register_functions(con) -> None:
    """The statistics SQL models share with Python: one implementation of each formula."""
    con.create_function("wilson_low", lambda k, n: wilson_interval(int(k), int(n), Z95)[0] if n else None, ["DOUBLE", "DOUBLE"], "DOUBLE")
    con.create_function("excess_over_chance", lambda a, g: excess_over_chance(a, g) if a is not None else None, ["DOUBLE", "DOUBLE"], "DOUBLE")
    con.create_function("wilson_high", lambda k, n: wilson_interval(int(k), int(n), Z95)[1] if n else None, ["DOUBLE", "DOUBLE"], "DOUBLE")


def _sql_asset(path: Path) -> dg.AssetsDefinition:
    sql = path.read_text()
    name = path.stem
    description = next((line[2:].strip() for line in sql.splitlines() if line.startswith("--")), f"SQL model {name}")

    @dg.asset(
        name=name,
        deps=refs(sql),
        group_name="analysis",
        kinds={"sql", "duckdb"},
        description=description,
        automation_condition=dg.AutomationCondition.eager(),
        code_version=sha256_hex(sql)[:12],
        metadata={"sql": dg.MetadataValue.md(f"```sql\n{sql}\n```"), "source": dg.MetadataValue.path(str(path))},
    )
    def sql_model(context: dg.AssetExecutionContext, lab: LabResource) -> dg.MaterializeResult:
        with lab.warehouse.connect() as con:
            register_functions(con)
            con.execute(f'CREATE OR REPLACE TABLE "{name}" AS {compile_sql(sql)}')
            rows = con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
        head = lab.warehouse.query(f'SELECT * FROM "{name}" LIMIT 20')
        return dg.MaterializeResult(metadata={"rows": rows, "preview": dg.MetadataValue.md(markdown_table(head))})

    return sql_model


def build_sql_assets(sql_dir: Path) -> list[dg.AssetsDefinition]:
    return [_sql_asset(path) for path in sorted(sql_dir.glob("*.sql"))]
