"""What the Dagster UI shows about each table asset: its pandera schema as a column schema (names,
types, nullability, uniqueness, checks, descriptions), its row counts, owners and tags. Everything is
derived from rs_dagster.storage.schemas, so the UI and the validation of every write cannot disagree."""

from collections.abc import Mapping
from typing import Any

import dagster as dg
import pandera.polars as pa

from rs_dagster.storage.warehouse import Warehouse

OWNERS = ["team:evaluation"]
"""Who answers for every asset of the lab (shown and filterable in the UI)."""


def asset_tags(stage: str, grain: str) -> dict[str, str]:
    """Tags to filter the asset graph by: the pipeline stage and what one partition holds
    (`task`, `model`, `model_task` or `all` for the unpartitioned tables)."""
    return {"stage": stage, "grain": grain}


def table_column(name: str, column_type: str, spec: Any) -> dg.TableColumn:
    """A Dagster column; description, nullability, uniqueness and checks from the pandera column if any."""
    if spec is None:
        return dg.TableColumn(name=name, type=column_type)
    constraints = dg.TableColumnConstraints(
        nullable=bool(spec.nullable), unique=bool(spec.unique), other=[check.error or check.name for check in spec.checks]
    )
    return dg.TableColumn(name=name, type=column_type, description=spec.description, constraints=constraints)


def table_constraints(schema: pa.DataFrameSchema) -> dg.TableConstraints | None:
    """Row-level rules: the unique key and the dataframe checks of the pandera schema."""
    unique = [schema.unique] if isinstance(schema.unique, str) else list(schema.unique or [])
    other = ([f"unique ({', '.join(unique)})"] if unique else []) + [check.name for check in schema.checks]
    return dg.TableConstraints(other=other) if other else None


def column_schema(model: type[pa.DataFrameModel]) -> dg.TableSchema:
    """The column schema a pandera model declares, with pandera's polars types."""
    schema = model.to_schema()
    columns = [table_column(name, str(spec.dtype), spec) for name, spec in schema.columns.items()]
    return dg.TableSchema(columns=columns, constraints=table_constraints(schema))


def definition_metadata(model: type[pa.DataFrameModel], **extra: type[pa.DataFrameModel]) -> dict[str, Any]:
    """Definition metadata of an asset writing the table `model` describes; `extra` names the further
    tables it writes (e.g. compression_points), each shown as `table/NAME`."""
    metadata: dict[str, Any] = {"dagster/column_schema": dg.MetadataValue.table_schema(column_schema(model))}
    for table, schema in extra.items():
        metadata[f"table/{table}"] = dg.MetadataValue.table_schema(column_schema(schema))
    return metadata


def table_metadata(warehouse: Warehouse, table: str, model: type[pa.DataFrameModel], keys: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Materialization metadata of a table: its column schema, `dagster/row_count` (rows the whole table
    holds) and, for a partitioned asset, `dagster/partition_row_count` (rows this partition holds)."""
    metadata: dict[str, Any] = {
        "dagster/column_schema": dg.MetadataValue.table_schema(column_schema(model)),
        "dagster/row_count": warehouse.count_rows(table),
    }
    if keys:
        metadata["dagster/partition_row_count"] = warehouse.count_rows(table, keys)
    return metadata
