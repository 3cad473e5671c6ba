"""The warehouse reads that join or filter tables for the domain code: each a named function returning a
frame, so no caller outside rs_dagster.storage writes SQL (a second backend reimplements these)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from rs_dagster.scoring import outcomes
from rs_dagster.stats.paired import SCORED_COLUMNS
from rs_dagster.storage.fingerprints import existing_tables
from rs_dagster.storage.warehouse import Warehouse, sql_text
from rs_dagster.tasks.manifold import TaskSpec


def _marks(values: Iterable[object]) -> str:
    return ", ".join("?" for _ in values)


def current_scoring_sql(has_column: bool, alias: str = "") -> str:
    """SQL condition: the scored_results row (of `alias`, if given) was scored by the current SCORING_VERSION.
    A row stored before the table had the column is version "1" (FIRST_SCORING_VERSION): NULL there reads
    so, and without the column (`has_column` false: the table was last written by earlier code) every row is."""
    first = sql_text(outcomes.FIRST_SCORING_VERSION)
    version = f'coalesce({alias + "." if alias else ""}"scoring_version", {first})' if has_column else first
    return f"{version} = {sql_text(outcomes.SCORING_VERSION)}"


def current_scores(warehouse: Warehouse, alias: str = "") -> str:
    """current_scoring_sql for scored_results as the warehouse holds it (which exists)."""
    return current_scoring_sql(any(column == "scoring_version" for column, _ in warehouse.columns("scored_results")), alias)


def completions_to_score(warehouse: Warehouse, model: str, task: str, model_version: str, spec_version: str) -> pl.DataFrame:
    """Every stored completion of the model × task that answers a prompt of the given model and task
    versions, with its prompt's messages and its item (point, expected answer, guess chance, metadata)."""
    return warehouse.query(
        """
        SELECT c.*, p.messages_json, t.point_id, t.answer, t.guess_chance, t.metadata_json, t.generator_version, t.spec_version
        FROM completions c
        JOIN prompts p ON p.model = c.model AND p.task = c.task AND p.test_case_id = c.test_case_id AND p.prompt_hash = c.prompt_hash
        JOIN test_cases t ON t.task = c.task AND t.test_case_id = c.test_case_id AND t.spec_version = p.spec_version
        WHERE c.model = ? AND c.task = ? AND p.model_version = ? AND p.spec_version = ?
        """,
        [model, task, model_version, spec_version],
    )


def trace_samples(warehouse: Warehouse, model: str, task: str, model_version: str, spec_version: str) -> pl.DataFrame:
    """Every scored sample of the model × task at the given versions, as the current scoring version scored
    it, with its completion's texts and finish reason, and the tiers of its grid point, in point, item and
    sample order; empty before any scoring."""
    if not warehouse.has_table("scored_results"):
        return pl.DataFrame()
    return warehouse.query(
        f"""
        SELECT s.model, s.task, s.point_id, s.test_case_id, s.sample_index, s.request_hash, s.outcome,
               s.completion_tokens, s.reasoning_tokens, c.finish_reason, c.reasoning_text, c.answer_text, t.tiers
        FROM scored_results s
        JOIN completions c ON c.model = s.model AND c.task = s.task AND c.test_case_id = s.test_case_id AND c.request_hash = s.request_hash
        LEFT JOIN (SELECT point_id, any_value(tiers) AS tiers FROM test_cases WHERE task = ? AND spec_version = ? GROUP BY point_id) t
          ON t.point_id = s.point_id
        WHERE s.model = ? AND s.task = ? AND s.model_version = ? AND s.spec_version = ? AND {current_scores(warehouse, "s")}
        ORDER BY s.point_id, s.test_case_id, s.sample_index
        """,
        [task, spec_version, model, task, model_version, spec_version],
    )


def scored_for_comparison(warehouse: Warehouse, specs: Mapping[str, TaskSpec], models: Iterable[str]) -> pl.DataFrame:
    """Scored samples (SCORED_COLUMNS) of the given models, every model version, under each task's current
    version, as the current scoring version scored them (so a comparison of model versions compares answers
    read one way); typed and empty when there is nothing to read."""
    spec_versions = {name: spec.version for name, spec in specs.items()}
    models = sorted(models)
    if not warehouse.has_table("scored_results") or not spec_versions or not models:
        return pl.DataFrame(schema={c: pl.Int64 if c == "sample_index" else pl.String for c in SCORED_COLUMNS})
    frame = warehouse.query(
        f"SELECT {', '.join(SCORED_COLUMNS)} FROM scored_results WHERE spec_version IN ({_marks(spec_versions)}) AND model IN ({_marks(models)}) "
        f"AND {current_scores(warehouse)}",
        [*spec_versions.values(), *models],
    )
    return frame.filter(pl.col("spec_version") == pl.col("task").replace_strict(spec_versions, default=None, return_dtype=pl.String))


def point_params(warehouse: Warehouse, specs: Mapping[str, TaskSpec]) -> dict[str, str]:
    """point_id -> params_json of the current task versions."""
    versions = [spec.version for spec in specs.values()]
    if not warehouse.has_table("test_cases") or not versions:
        return {}
    frame = warehouse.query(f"SELECT DISTINCT point_id, params_json FROM test_cases WHERE spec_version IN ({_marks(versions)})", versions)
    return dict(frame.iter_rows())


def request_hashes(warehouse: Warehouse) -> set[str]:
    """Request hashes of every stored completion: the response-cache entries a re-run would read."""
    if not warehouse.has_table("completions"):
        return set()
    return set(warehouse.query("SELECT request_hash FROM completions")["request_hash"].to_list())


@dataclass(frozen=True)
class Wanted:
    """A model × task's selection, as stored_answers counts it: the first `items[point_id]` items of each
    point, samples below `repeats`, answered at the given model and task versions."""

    model: str
    task: str
    model_version: str
    spec_version: str
    items: Mapping[str, int]
    repeats: int


def stored_answers(warehouse: Warehouse, wanted: Sequence[Wanted]) -> dict[tuple[str, str], int]:
    """Per (model, task) of `wanted`, its stored answers (not errors) within its selection: what an
    evaluation of it would not ask again. One query for every pair."""
    rows = [(w.model, w.task, w.model_version, w.spec_version, pid, n, w.repeats) for w in wanted for pid, n in w.items.items()]
    if not rows or not {"completions", "prompts", "test_cases"} <= existing_tables(warehouse):
        return {}
    values = ", ".join(f"({', '.join(map(sql_text, row[:5]))}, {int(row[5])}, {int(row[6])})" for row in rows)
    counted = warehouse.query(
        f"""
        SELECT w.model, w.task, count(*) AS n
        FROM (VALUES {values}) w(model, task, model_version, spec_version, point_id, items, repeats)
        JOIN prompts p ON p.model = w.model AND p.task = w.task AND p.model_version = w.model_version AND p.spec_version = w.spec_version
        JOIN test_cases t ON t.task = w.task AND t.test_case_id = p.test_case_id AND t.spec_version = w.spec_version
          AND t.point_id = w.point_id AND t.item_index < w.items
        JOIN completions c ON c.model = w.model AND c.task = w.task AND c.test_case_id = p.test_case_id AND c.prompt_hash = p.prompt_hash
          AND c.error IS NULL AND c.sample_index < w.repeats
        GROUP BY w.model, w.task
        """
    )
    return {(r["model"], r["task"]): r["n"] for r in counted.iter_rows(named=True)}


def stored_definition_versions(warehouse: Warehouse) -> dict[str, str]:
    """The version of every definition the warehouse holds: `task:NAME` → task_specs.spec_version and
    `model:NAME` → model_specs.model_version (none before their first refresh)."""
    versions: dict[str, str] = {}
    for table, kind, key, version in (("task_specs", "task", "task", "spec_version"), ("model_specs", "model", "model", "model_version")):
        frame = warehouse.table(table)
        if not frame.is_empty():
            versions |= {f"{kind}:{name}": value for name, value in frame.select(key, version).iter_rows()}
    return versions
