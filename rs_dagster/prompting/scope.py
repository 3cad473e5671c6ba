"""What one evaluation of a model × task covers: the scope it is asked for (tiers, surfaces, projections or
the whole grid, a precision level, samples per item) resolved against the model's suite, and, for a run
given no scope of its own, every scope the partition was evaluated at before."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast

import polars as pl
from pydantic import BaseModel, ValidationError

from rs_dagster.errors import InputError, UnknownNameError
from rs_dagster.models.registry import Model, Suite, get_model
from rs_dagster.scoring.outcomes import SCORING_VERSION
from rs_dagster.stats.adaptive import PrecisionLevel
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.tasks.base import canonical_json, sha256_hex
from rs_dagster.tasks.manifold import Point, TaskSpec
from rs_dagster.tasks.selection import ALL_POINTS, select_points


class Scope(BaseModel):
    """The items asked for: the points of the named tiers, surfaces and projections (or `points: all`), at
    a precision level, with `repeats` samples per item. Setting any of tiers/surfaces/projections/points
    replaces the model's `suite` selection; unset fields fall back to the suite."""

    tiers: list[str] | None = None
    surfaces: list[str] | None = None
    projections: list[str] | None = None
    points: str | None = None  # "all": every point of the full grid
    precision: str | None = None  # a level of the manifold's `precision`, or an integer as text
    repeats: int | None = None  # samples per item
    use_suite: bool = False  # the model's suite even where the partition has stored scopes (rs eval, nightly)

    @property
    def replays(self) -> bool:
        """A run given no scope of its own (an automation re-run after an edit, a re-materialization
        in the UI) replays every scope its partition was evaluated at; see EvaluatedScopes."""
        given = (self.tiers, self.surfaces, self.projections, self.points, self.precision, self.repeats)
        return not self.use_suite and all(value is None for value in given)

    def resolve(self, suite: Suite) -> Suite:
        """The suite this scope asks for, `suite` (the model's) filling what it leaves unset."""
        precision: str | int = self.precision if self.precision is not None else suite.precision
        if isinstance(precision, str) and precision.lstrip("-").isdigit():
            precision = int(precision)
        if self.points not in (None, ALL_POINTS):
            raise InputError(f"scope.points: expected {ALL_POINTS!r} (every grid point) or nothing, got {self.points!r}")
        if isinstance(precision, int) and precision < 1:
            raise InputError(f"precision: expected a level name or a positive number of items per point (--samples), got {precision}")
        if self.repeats is not None and self.repeats < 1:
            raise InputError(f"scope.repeats: expected a positive number of samples per item, got {self.repeats}")
        chosen = any(v is not None for v in (self.tiers, self.surfaces, self.projections, self.points))
        try:
            return Suite(  # names sorted and deduplicated: `--tier medium,easy,easy` is `easy,medium`
                tasks=suite.tasks,
                tiers=sorted(set((self.tiers or []) if chosen else suite.tiers)),
                surfaces=sorted(set((self.surfaces or []) if chosen else suite.surfaces)),
                projections=sorted(set((self.projections or []) if chosen else suite.projections)),
                points=cast(Literal["all"] | None, self.points) if chosen else suite.points,  # checked above
                precision=precision,
                repeats=self.repeats or suite.repeats,
            )
        except ValidationError as exc:
            raise InputError(f"scope: {exc.errors()[0]['msg']}") from None


@dataclass(frozen=True)
class Selected:
    """What one evaluation of a model × task covers: its points, the precision level of each (the
    stricter one where two scopes share a point) and samples per item."""

    scopes: list[Suite]
    points: list[Point]
    levels: dict[str, PrecisionLevel]  # by point_id
    repeats: int

    @property
    def max_items(self) -> dict[str, int]:
        return {pid: level.max_n for pid, level in self.levels.items()}

    def describe(self) -> str:
        return " + ".join(map(describe_suite, self.scopes))


def describe_suite(suite: Suite) -> str:
    """`tiers easy, medium at 8` (× the samples per item when more than one)."""
    return f"{suite.selection.describe()} at {suite.precision}" + (f" ×{suite.repeats}" if suite.repeats > 1 else "")


def scope_record(suite: Suite) -> str:
    """The suite as stored in evaluated_scopes.scope_json (tasks left out: the partition names its task;
    fresh_seeds too: the memorisation canary asks more items, it does not change what this scope evaluates)."""
    return canonical_json(suite.model_dump(mode="json", exclude={"tasks", "fresh_seeds"}))


def selection_id(selected: Selected, model: Model, spec: TaskSpec) -> str:
    """What a completed evaluation of `selected` is recorded under in scope_coverage: its scopes and repeats,
    and the versions of the model, the task and the scoring that decided its adaptive rounds."""
    return sha256_hex(canonical_json({
        "scopes": sorted(scope_record(s) for s in selected.scopes), "repeats": selected.repeats,
        "model_version": model.version, "spec_version": spec.version, "scoring_version": SCORING_VERSION,
    }))[:16]


def selected_scope(spec: TaskSpec, model: Model, scope: Scope, stored: Sequence[str] = ()) -> Selected:
    """The scope a run evaluates: the one it was given (or the model's suite), or, for a run given no
    scope of its own (automation, a re-materialization in the UI), every scope in `stored`."""
    return union_of_scopes(spec, recorded_scopes(stored) if scope.replays and stored else [scope.resolve(model.entry.suite)])


def recorded_scopes(records: Sequence[str], where: str = "evaluated_scopes.scope_json") -> list[Suite]:
    """Suites from their scope_record texts; a text that is not one is an InputError naming `where`."""
    try:
        return [Suite(**json.loads(record)) for record in records]
    except (ValueError, TypeError) as exc:  # json.JSONDecodeError and pydantic's ValidationError are ValueErrors
        raise InputError(f"{where}: expected scope records such as {scope_record(Suite())!r}: {exc}") from None


def union_of_scopes(spec: TaskSpec, scopes: list[Suite]) -> Selected:
    """The points of every scope of `spec`'s task, each at the strictest precision level a scope gives it."""
    levels: dict[str, PrecisionLevel] = {}
    points: dict[str, Point] = {}
    for suite in scopes:
        level = spec.precision_level(suite.precision)
        for point in select_points(spec, suite.selection):
            points[point.point_id] = point
            levels[point.point_id] = max(levels.get(point.point_id, level), level, key=lambda lv: (lv.max_n, lv.min_n, -(lv.half_width or 0)))
    return Selected(scopes, list(points.values()), levels, max(s.repeats for s in scopes))


def partition_scope(warehouse: Warehouse, keys: dict[str, str], spec: TaskSpec, model: Model, scope: Scope) -> tuple[Selected, pl.DataFrame]:
    """selected_scope for the model × task partition `keys`, replaying its stored evaluated_scopes rows,
    which come back with it."""
    stored = warehouse.table("evaluated_scopes", keys)
    return selected_scope(spec, model, scope, [] if stored.is_empty() else stored["scope_json"].to_list()), stored


def new_scope_records(keys: dict[str, str], selected: Selected, stored: pl.DataFrame, run_id: str) -> pl.DataFrame:
    """The evaluated_scopes rows of the partition `keys` for the scopes of `selected` not yet `stored`."""
    records = pl.DataFrame(
        [{**keys, "scope_id": sha256_hex(scope_record(s))[:16], "scope_json": scope_record(s), "dagster_run_id": run_id} for s in selected.scopes]
    )
    known = set() if stored.is_empty() else set(stored["scope_id"])
    return records.filter(~pl.col("scope_id").is_in(known))


def evaluation_pairs(
    specs: dict[str, TaskSpec], models: dict[str, Model], model_names: Sequence[str], task_names: Sequence[str] | None, scope: Scope
) -> list[tuple[Model, TaskSpec]]:
    """Each model × task an evaluation covers (default tasks: each model's suite, else every task), in
    order; unknown names and scopes a task cannot satisfy fail here, before anything runs."""
    chosen = [get_model(models, name) for name in dict.fromkeys(model_names)]  # a name given twice is one
    for task in task_names or []:
        if task not in specs:
            raise UnknownNameError("task", task, list(specs))
    pairs = []
    for model in chosen:
        for task in dict.fromkeys(task_names or model.entry.suite.tasks or list(specs)):
            if task not in specs:
                raise UnknownNameError("task", task, list(specs))
            selected_scope(specs[task], model, scope)
            pairs.append((model, specs[task]))
    return pairs
