"""Asset checks, evaluated inside the materialization that wrote the table so each result belongs to
the partition that run wrote (the UI lists them per partition):

- `stored_rows_match_schema` on every table asset: what DuckDB now holds for the partition (rows of the
  current task and model versions where the table keeps versions) re-validated against its pandera
  schema; ERROR and blocking, so nothing downstream runs on rows that no longer fit their schema.
- on `scored_results`, the data-quality shares of rs_dagster.scoring.quality (lenient parsing, hedged
  answers, endpoint errors, truncation) judged against its LIMITS: WARN, or ERROR where a limit has an error level.
"""

from collections.abc import Mapping

import dagster as dg
import pandera.polars as pa
import polars as pl

from rs_dagster.errors import SchemaError
from rs_dagster.scoring.quality import LIMITS, quality_shares
from rs_dagster.storage.warehouse import Warehouse, validate

SCHEMA_CHECK = "stored_rows_match_schema"

_QUALITY_DESCRIPTIONS = {
    "lenient_parse_share": "Share of answered samples whose answer only a lenient parse rule read (answer_phrase, last_line, "
    "last_value: not the requested `ANSWER:` line or \\boxed{}); strict accuracy counts them as unparsed.",
    "ambiguous_share": "Share of answered samples whose final answer hedges between two or more different candidates "
    "(\"5 or 7\", \"(A) or (B)\", \"True/False\"): outcome `ambiguous`, strict or flexible; answered, never correct.",
    "error_share": "Share of samples the endpoint failed (stored as errors, retried by the next run, never counted as wrong).",
    "truncation_share": "Share of samples with an outcome that hit the token limit (finish_reason = length); errors left out.",
}


def _limit_text(name: str) -> str:
    limit = LIMITS[name]
    text = f" Warns above {limit.warn:.0%}"
    return text + (f", an error above {limit.error:.0%}." if limit.error is not None else ".")


def schema_check_spec(asset: str, tables: Mapping[str, type[pa.DataFrameModel]], partitions_def: dg.PartitionsDefinition | None = None) -> dg.AssetCheckSpec:
    names = ", ".join(f"`{table}` ({schema.__name__})" for table, schema in tables.items())
    return dg.AssetCheckSpec(
        SCHEMA_CHECK,
        asset=asset,
        blocking=True,
        partitions_def=partitions_def,
        description=f"Re-reads what DuckDB holds for the partition in {names} (rows of the current task and model versions "
        "where the table keeps versions) and validates it against its pandera schema in rs_dagster.storage.schemas. "
        "Fails with ERROR, naming each column and rule, and blocks the downstream assets of the run.",
    )


def schema_check_result(warehouse: Warehouse, tables: Mapping[str, type[pa.DataFrameModel]], keys: Mapping[str, str]) -> dg.AssetCheckResult:
    """Validate the stored rows of each table matching `keys` (keys a table lacks, such as a version
    column, are ignored for it)."""
    rows, failures = {}, []
    for table, schema in tables.items():
        columns = schema.to_schema().columns
        stored = warehouse.table(table, {c: v for c, v in keys.items() if c in columns})
        rows[table] = stored.height
        if stored.width == 0:  # nothing written yet
            continue
        try:
            validate(table, schema, stored)
        except SchemaError as exc:
            failures.append(str(exc))
    return dg.AssetCheckResult(
        check_name=SCHEMA_CHECK,
        passed=not failures,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={f"rows/{table}": count for table, count in rows.items()},
        description="\n".join(failures) or f"{sum(rows.values())} stored rows match their schema.",
    )


def quality_check_specs(asset: str, partitions_def: dg.PartitionsDefinition) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(name, asset=asset, partitions_def=partitions_def, description=_QUALITY_DESCRIPTIONS[name] + _limit_text(name))
        for name in LIMITS
    ]


def quality_check_results(scored: pl.DataFrame) -> list[dg.AssetCheckResult]:
    """One result per rule of LIMITS over the partition's scored samples, with the counts behind the share."""
    results = []
    for share in quality_shares(scored):
        severity = share.severity
        metadata = {"share": round(share.share, 4), "count": share.count, "of": share.total,
                    **{f"{share.detail_kind}/{k}": v for k, v in share.detail.items()}}
        results.append(
            dg.AssetCheckResult(
                check_name=share.name,
                passed=severity is None,
                severity=dg.AssetCheckSeverity.ERROR if severity == "ERROR" else dg.AssetCheckSeverity.WARN,
                metadata=metadata,
                description=f"{share.count} of {share.total} ({share.share:.0%}).{_limit_text(share.name)}",
            )
        )
    return results
