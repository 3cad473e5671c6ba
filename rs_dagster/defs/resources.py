"""Dagster resources, configured from the environment (see rs_dagster.settings)."""

import os
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TypeVar

import dagster as dg

from rs_dagster.errors import InputError, UnknownNameError
from rs_dagster.execution.cache import ResponseCache
from rs_dagster.execution.shares import EndpointShares
from rs_dagster.models.registry import Model, load_each_model
from rs_dagster.prompting.scope import Scope
from rs_dagster.settings import Settings
from rs_dagster.storage.shared import WAREHOUSE_ENV, dsn_secrets, parse_warehouse
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.tasks.manifold import TaskSpec, load_each_manifold

_Named = TypeVar("_Named")


class LabResource(dg.ConfigurableResource):
    """Paths of the lab: user inputs, DuckDB file, response cache, report folder."""

    home: str
    inputs: str
    db_path: str
    dagster_home: str
    warehouse_spec: str = ""  # RS_WAREHOUSE, as dg.EnvVar: the UI shows the variable's name, never a password
    warehouse_data: str = ""  # RS_WAREHOUSE_DATA

    @classmethod
    def from_settings(cls, settings: Settings) -> "LabResource":
        return cls(home=str(settings.home), inputs=str(settings.inputs), db_path=str(settings.db_path), dagster_home=str(settings.dagster_home),
                   warehouse_spec=_warehouse_spec(settings), warehouse_data=(settings.warehouse.data_path or "") if settings.warehouse else "")

    @property
    def settings(self) -> Settings:
        spec = (self.warehouse_spec.get_value() or "") if isinstance(self.warehouse_spec, dg.EnvVar) else self.warehouse_spec
        return Settings(home=Path(self.home), inputs=Path(self.inputs), db_path=Path(self.db_path), dagster_home=Path(self.dagster_home),
                        warehouse=parse_warehouse(spec, self.warehouse_data))

    @property
    def warehouse(self) -> Warehouse:
        return Warehouse.from_settings(self.settings)

    @property
    def cache(self) -> ResponseCache:
        return ResponseCache(self.settings.cache_dir)

    @property
    def endpoint_shares(self) -> EndpointShares:
        return EndpointShares(self.settings.home / "endpoints.sqlite3")

    @cached_property
    def loaded_tasks(self) -> tuple[dict[str, TaskSpec], dict[str, InputError]]:
        """Every task manifold, read once per run (Dagster gives each run its own resource instance)."""
        return load_each_manifold(self.settings.tasks_dir)

    @cached_property
    def loaded_models(self) -> tuple[dict[str, Model], dict[str, InputError]]:
        """Every registered model with its sampler and template, read once per run."""
        return load_each_model(self.settings)

    @property
    def task_specs(self) -> dict[str, TaskSpec]:
        """The tasks whose files read (a bad file fails only the partitions of its own task)."""
        return self.loaded_tasks[0]

    @property
    def models(self) -> dict[str, Model]:
        """The models whose entries read (a bad entry fails only the partitions of its own model)."""
        return self.loaded_models[0]

    def task(self, name: str) -> TaskSpec:
        return _named(self.loaded_tasks, "task", name)

    def model(self, name: str) -> Model:
        return _named(self.loaded_models, "model", name)

    def model_and_spec(self, keys: Mapping[str, str]) -> tuple[Model, TaskSpec]:
        """The model and the task of a model × task partition (its `keys_of`)."""
        return self.model(keys["model"]), self.task(keys["task"])


def _named(loaded: tuple[dict[str, _Named], dict[str, InputError]], kind: str, name: str) -> _Named:
    """The definition called `name`, or the error of its file, or that no file defines it."""
    found, errors = loaded
    if name in errors:
        raise errors[name]
    if name not in found:
        raise UnknownNameError(kind, name, list(found))
    return found[name]


def _warehouse_spec(settings: Settings) -> str:
    """The resource's warehouse_spec: a reference to RS_WAREHOUSE when that is where the shared warehouse came
    from (so the DSN stays out of the Dagster UI and its run records), else the DSN itself, if it holds no password."""
    shared = settings.warehouse
    if shared is None:
        return ""
    try:
        from_env = parse_warehouse(os.environ.get(WAREHOUSE_ENV), None)
    except InputError:
        from_env = None
    if from_env is not None and from_env.catalog == shared.catalog:
        return dg.EnvVar(WAREHOUSE_ENV)
    if dsn_secrets(shared.catalog):
        raise InputError(f"a shared warehouse whose DSN holds a password is read from {WAREHOUSE_ENV} only (or leave the password "
                         "to libpq: PGPASSWORD, ~/.pgpass)")
    return shared.spec


class EvalScope(dg.ConfigurableResource, Scope):
    """Which items of a partition are evaluated (rs_dagster.prompting.scope.Scope) as the `scope` resource
    of a run, set in the Dagster UI's run config."""

    def run_config(self) -> dict:
        """This scope as run config (`resources: {scope: {config: ...}}`): a run carries the scope it was
        given, so re-executing it from the Dagster UI evaluates the same items. Nothing set: no config."""
        given = self.model_dump(exclude_defaults=True)
        return {"resources": {"scope": {"config": given}}} if given else {}
