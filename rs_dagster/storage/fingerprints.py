"""What the warehouse holds, summed up so that a change shows: table fingerprints (row count and a sum of
row hashes, per model × task or whole), the requests each completed scope needed (`scope_coverage`) and
what each derived stage was built from (`lab_state`). `rs eval` and `rs status` judge freshness from
these, never from the Dagster run history: the stored content is the truth.

A fingerprint sums DuckDB's hash of every whole row, so any edit, deletion or insertion changes it (two
identical rows do not cancel, as they would under an xor); completions are summed over their identity and
whether they are an error only (answers are never rewritten, and their texts are most of the bytes)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import polars as pl

from rs_dagster.storage.warehouse import Warehouse, key_filter, sql_text

ABSENT = "absent"
"""The fingerprint of a table (or partition) the warehouse does not hold."""

_ROW_HASH = {"completions": 'hash(t.test_case_id, t.request_hash, t.error IS NULL)'}
"""Tables summed over some columns only (default: the whole row)."""


def _row_hash(table: str) -> str:
    """The SQL hash of one row `t` of `table` that its fingerprint sums."""
    return _ROW_HASH.get(table, "hash(t)")


def existing_tables(warehouse: Warehouse) -> set[str]:
    if not warehouse.exists():
        return set()
    return set(warehouse.query(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database() AND table_schema = current_schema()"
    )["table_name"])


def partition_fingerprints(warehouse: Warehouse, table: str, present: set[str]) -> dict[tuple[str, str], str]:
    """Per (model, task) of `table`, its fingerprint (partitions without rows are left out)."""
    if table not in present:
        return {}
    frame = warehouse.query(f'SELECT model, task, count(*) AS n, sum({_row_hash(table)}) AS h FROM "{table}" t GROUP BY model, task')
    return {(r["model"], r["task"]): f"{r['n']}:{r['h']}" for r in frame.iter_rows(named=True)}


def one_partition_fingerprints(warehouse: Warehouse, tables: Sequence[str], present: set[str], model: str, task: str) -> dict[str, str]:
    """Per table of `tables`, the fingerprint of the one model × task partition, as partition_fingerprints gives
    it (ABSENT without rows), in one query that reads that partition only: what a run just wrote is recorded
    without summing every other partition of every table."""
    held = [table for table in tables if table in present]
    found: dict[str, str] = {}
    if held:
        where = key_filter({"model": model, "task": task}, "t")
        frame = warehouse.query(" UNION ALL ".join(
            f"SELECT {sql_text(table)} AS name, count(*) AS n, sum({_row_hash(table)}) AS h FROM \"{table}\" t WHERE {where}"
            for table in held))
        found = {r["name"]: f"{r['n']}:{r['h']}" for r in frame.iter_rows(named=True) if r["n"]}
    return {table: found.get(table, ABSENT) for table in tables}


def table_fingerprint(warehouse: Warehouse, table: str, present: set[str], keys: Mapping[str, str] | None = None) -> str:
    """The fingerprint of `table` (of its rows matching `keys`), ABSENT when it does not exist."""
    if table not in present:
        return ABSENT
    frame = warehouse.query(f'SELECT count(*) AS n, sum({_row_hash(table)}) AS h FROM "{table}" t WHERE {key_filter(keys or {}, "t")}')
    return f"{frame['n'][0]}:{frame['h'][0]}"


def error_counts(warehouse: Warehouse, present: set[str]) -> dict[tuple[str, str], int]:
    """Per (model, task), its stored error completions (retried by the next evaluation)."""
    if "completions" not in present:
        return {}
    frame = warehouse.query("SELECT model, task, count(*) AS n FROM completions WHERE error IS NOT NULL GROUP BY model, task")
    return {(r["model"], r["task"]): r["n"] for r in frame.iter_rows(named=True)}


def stage_records(warehouse: Warehouse, present: set[str]) -> dict[tuple[str, str], dict]:
    """The lab_state rows by (stage, partition)."""
    if "lab_state" not in present:
        return {}
    return {(r["stage"], r["partition"]): r for r in warehouse.table("lab_state").iter_rows(named=True)}


def record_stage(warehouse: Warehouse, stage: str, partition: str, inputs: str, outputs: str, code: str, run_id: str) -> None:
    """What stage `stage` of `partition` (a model|task key, or "" for the tables over every partition) was
    just built from (`inputs`) and left (`outputs`), by code `code` in run `run_id`."""
    from rs_dagster.storage import schemas  # pandera: imported when writing, not by a freshness check

    frame = pl.DataFrame([{"stage": stage, "partition": partition, "inputs": inputs, "outputs": outputs, "code": code, "dagster_run_id": run_id}])
    warehouse.upsert_rows("lab_state", schemas.LabState, frame, {"stage": stage, "partition": partition}, ("stage", "partition"))


def record_coverage(warehouse: Warehouse, keys: Mapping[str, str], selection_id: str, requests: Iterable[tuple[str, str]]) -> None:
    """The (test_case_id, request_hash) of every request the completed selection `selection_id` needed."""
    from rs_dagster.storage import schemas

    rows = sorted(set(requests))
    frame = pl.DataFrame(
        {"model": keys["model"], "task": keys["task"], "selection_id": selection_id,
         "test_case_id": [r[0] for r in rows], "request_hash": [r[1] for r in rows]},
        schema={c: pl.String for c in ("model", "task", "selection_id", "test_case_id", "request_hash")},
    )
    if not frame.is_empty():
        warehouse.replace_partition("scope_coverage", schemas.ScopeCoverage, frame, {**keys, "selection_id": selection_id})


def coverage(warehouse: Warehouse, present: set[str], wanted: Sequence[tuple[str, str, str]]) -> dict[tuple[str, str, str], tuple[int, int]]:
    """For each (model, task, selection_id) of `wanted` that was ever completed: (requests it needs, how
    many of them are not stored as an answer now). A selection never completed is left out."""
    if "scope_coverage" not in present or not wanted:
        return {}
    chosen = ", ".join(f"({sql_text(m)}, {sql_text(t)}, {sql_text(s)})" for m, t, s in wanted)
    answers = ("SELECT model, task, test_case_id, request_hash, true AS answered FROM completions WHERE error IS NULL"
               if "completions" in present else "SELECT NULL AS model, NULL AS task, NULL AS test_case_id, NULL AS request_hash, true AS answered")
    frame = warehouse.query(
        f"""
        SELECT s.model, s.task, s.selection_id, count(*) AS needed, count(*) FILTER (WHERE c.answered IS NULL) AS missing
        FROM scope_coverage s JOIN (VALUES {chosen}) w(model, task, selection_id) USING (model, task, selection_id)
        LEFT JOIN ({answers}) c USING (model, task, test_case_id, request_hash)
        GROUP BY ALL
        """
    )
    return {(r["model"], r["task"], r["selection_id"]): (r["needed"], r["missing"]) for r in frame.iter_rows(named=True)}
