"""Dagster resources, configured from the environment (see rs_dagster.settings)."""

from pathlib import Path

import dagster as dg

from rs_dagster.execution.cache import ResponseCache
from rs_dagster.execution.shares import EndpointShares
from rs_dagster.models.registry import Model, Suite, load_models
from rs_dagster.settings import Settings
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.tasks.manifold import TaskSpec, load_manifolds


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
    """Which items of a partition are evaluated. Unset fields fall back to the model's `suite`."""

    tiers: list[str] | None = None
    precision: str | None = None  # a level of the manifold's `precision`, or an integer as text
    repeats: int | None = None  # samples per item

    def resolve(self, suite: Suite) -> Suite:
        precision = self.precision if self.precision is not None else suite.precision
        if isinstance(precision, str) and precision.isdigit():
            precision = int(precision)
        return Suite(
            tasks=suite.tasks,
            tiers=self.tiers or suite.tiers,
            precision=precision,
            repeats=self.repeats or suite.repeats,
        )
