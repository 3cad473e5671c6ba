"""The test_cases rows of a task: the generated items of its grid points, and the current version's first
items of a selection of points, generated and stored first where fewer are stored (a task version's items
never change, its seeds, generator version and memberships being in the version, so stored items are read
back, never regenerated: regenerating them cost more than any other step of a cached evaluation)."""

from __future__ import annotations

import json
from collections.abc import Mapping

import polars as pl

from rs_dagster.storage import schemas
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.tasks.base import canonical_json
from rs_dagster.tasks.generation import generate_point
from rs_dagster.tasks.manifold import Point, TaskSpec

TEST_CASE_IDENTITY = ("test_case_id", "spec_version")


def test_case_frame(spec: TaskSpec, points: list[Point] | None = None, count: int | None = None, global_seed: int | None = None) -> pl.DataFrame:
    """Items of `points` (default: every named point), `count` per point (default: the largest level), drawn
    from the task's published seed (or `global_seed`: the memorisation canary's fresh items, rs_dagster.watch)."""
    rows = []
    seed = spec.doc.global_seed if global_seed is None else global_seed
    for point in spec.points() if points is None else points:
        params_json = canonical_json(point.params)
        for generated in generate_point(spec.task, spec.name, point.params, seed, count or spec.max_items_per_point):
            rows.append(
                {
                    "task": spec.name,
                    "test_case_id": generated.test_case_id,
                    "point_id": point.point_id,
                    "params_json": params_json,
                    "tiers": list(point.tiers),
                    "surfaces": list(point.surfaces),
                    "projections": list(point.projections),
                    "item_index": generated.index,
                    "seed": generated.seed,
                    "question": generated.item.question,
                    "answer": generated.item.answer,
                    "guess_chance": float(generated.item.guess_chance),
                    "metadata_json": json.dumps(generated.item.metadata, sort_keys=True, default=str),
                    "generator_version": spec.task.version,
                    "spec_version": spec.version,
                }
            )
    return pl.DataFrame(rows, schema_overrides={"tiers": pl.List(pl.String), "surfaces": pl.List(pl.String), "projections": pl.List(pl.String)})


def current_cases(warehouse: Warehouse, spec: TaskSpec, points: list[Point], counts: int | Mapping[str, int]) -> pl.DataFrame:
    """The current version's first `counts` items of each of `points` (one count, or one per point_id),
    sorted by point and index. Points with fewer stored items (outside every named part, or
    test_cases not yet materialized) have their items generated and stored first."""
    wanted = {p.point_id: counts if isinstance(counts, int) else counts[p.point_id] for p in points}
    stored = warehouse.table("test_cases", {"task": spec.name, "spec_version": spec.version})
    held = dict(stored.group_by("point_id").len().iter_rows()) if not stored.is_empty() else {}
    missing = [p for p in points if held.get(p.point_id, 0) < wanted[p.point_id]]
    if missing:
        frame = pl.concat([test_case_frame(spec, [p], wanted[p.point_id]) for p in missing])
        warehouse.upsert_rows("test_cases", schemas.TestCases, frame, {"task": spec.name}, TEST_CASE_IDENTITY)
        stored = warehouse.table("test_cases", {"task": spec.name, "spec_version": spec.version})
    limits = pl.DataFrame({"point_id": list(wanted), "count": list(wanted.values())}, schema={"point_id": pl.String, "count": pl.Int64})
    return stored.join(limits, on="point_id").filter(pl.col("item_index") < pl.col("count")).drop("count").sort("point_id", "item_index")
