"""The task registry. Every module in this package that defines a `Task` subclass registers it by
`name`; adding a task means adding one generator file and one manifold YAML in `assets/tasks/`."""

from __future__ import annotations

import importlib
import pkgutil

from rs_dagster.errors import UnknownNameError
from rs_dagster.tasks.base import Task

_SUPPORT_MODULES = {"base", "cases", "manifold", "expressions", "generation", "selection"}


def _discover() -> dict[str, Task]:
    for module in pkgutil.iter_modules(__path__):
        if module.name not in _SUPPORT_MODULES and not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")
    found: dict[str, Task] = {}
    pending = list(Task.__subclasses__())
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        if getattr(cls, "name", None) and not getattr(cls, "__abstractmethods__", None):
            found[cls.name] = cls()
    return dict(sorted(found.items()))


TASKS: dict[str, Task] = _discover()


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise UnknownNameError("task generator", name, list(TASKS))
    return TASKS[name]
