"""Dagster resources, configured from the environment (see rs_dagster.settings)."""

from pathlib import Path
from typing import Literal, cast

import dagster as dg
from pydantic import ValidationError

from rs_dagster.errors import InputError
from rs_dagster.execution.cache import ResponseCache
from rs_dagster.execution.shares import EndpointShares
from rs_dagster.models.registry import Model, Suite, load_models
from rs_dagster.settings import Settings
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.tasks.manifold import TaskSpec, load_manifolds
from rs_dagster.tasks.selection import ALL_POINTS


class LabResource(dg.ConfigurableResource):
    """Paths of the lab: user inputs, DuckDB file, response cache, report folder."""

    home: str
    inputs: str
    db_path: str
    dagster_home: str

    @classmethod
    def from_settings(cls, settings: Settings) -> "LabResource":
        return cls(home=str(settings.home), inputs=str(settings.inputs), db_path=str(settings.db_path), dagster_home=str(settings.dagster_home))

    @property
    def settings(self) -> Settings:
        return Settings(home=Path(self.home), inputs=Path(self.inputs), db_path=Path(self.db_path), dagster_home=Path(self.dagster_home))

    @property
    def warehouse(self) -> Warehouse:
        return Warehouse(self.settings.db_path)

    @property
    def cache(self) -> ResponseCache:
        return ResponseCache(self.settings.cache_dir)

    @property
    def endpoint_shares(self) -> EndpointShares:
        return EndpointShares(self.settings.home / "endpoints.sqlite3")

    def task_specs(self) -> dict[str, TaskSpec]:
        return load_manifolds(self.settings.tasks_dir)

    def models(self) -> dict[str, Model]:
        return load_models(self.settings)


class EvalScope(dg.ConfigurableResource):
    """Which items of a partition are evaluated: the points of the named tiers, surfaces and
    projections (or `points: all`), at a precision level, with `repeats` samples per item. Setting
    any of tiers/surfaces/projections/points replaces the model's `suite` selection; unset fields fall
    back to the suite. In the Dagster UI this is the `scope` resource of the run config."""

    tiers: list[str] | None = None
    surfaces: list[str] | None = None
    projections: list[str] | None = None
    points: str | None = None  # "all": every point of the full grid
    precision: str | None = None  # a level of the manifold's `precision`, or an integer as text
    repeats: int | None = None  # samples per item
    use_suite: bool = False  # the model's suite even where the partition has stored scopes (rs eval, nightly)

    def run_config(self) -> dict:
        """This scope as run config (`resources: {scope: {config: ...}}`): a run carries the scope it was
        given, so re-executing it from the Dagster UI evaluates the same items. Nothing set: no config."""
        given = self.model_dump(exclude_defaults=True)
        return {"resources": {"scope": {"config": given}}} if given else {}

    @property
    def replays(self) -> bool:
        """A run given no scope of its own (an automation re-run after an edit, a re-materialization
        in the UI) replays every scope its partition was evaluated at; see EvaluatedScopes."""
        given = (self.tiers, self.surfaces, self.projections, self.points, self.precision, self.repeats)
        return not self.use_suite and all(value is None for value in given)

    def resolve(self, suite: Suite) -> Suite:
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
            return Suite(
                tasks=suite.tasks,
                tiers=(self.tiers or []) if chosen else suite.tiers,
                surfaces=(self.surfaces or []) if chosen else suite.surfaces,
                projections=(self.projections or []) if chosen else suite.projections,
                points=cast(Literal["all"] | None, self.points) if chosen else suite.points,  # checked above
                precision=precision,
                repeats=self.repeats or suite.repeats,
            )
        except ValidationError as exc:
            raise InputError(f"scope: {exc.errors()[0]['msg']}") from None
