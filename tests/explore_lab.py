"""A lab for the explorer's tests: two scripted models (alpha answers like the oracle; beta also fumbles
every third item, so their paired comparison differs) evaluated for real through Dagster on arithmetic and
boolean: the easy tier, every projection and surface, 4 items per point."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
from helpers import Oracle, make_lab, scripted_model

from rs_dagster.defs.resources import EvalScope
from rs_dagster.orchestrate import evaluate
from rs_dagster.settings import Settings
from rs_dagster.testing.scripted_server import Reply, ScriptedServer

MODELS = ("alpha", "beta")
TASKS = ("arithmetic", "boolean")


class TwoModels:
    def __init__(self, oracle: Oracle):
        self.oracle = oracle

    def __call__(self, body: dict[str, Any]) -> Reply:
        if body["model"] == "beta" and self.oracle.lookup(body).index % 3 == 0:
            return Reply(content="I am not sure.\n\nANSWER: 1000003")
        return self.oracle(body)


@contextmanager
def explored_lab(root: Path) -> Iterator[Settings]:
    oracle = Oracle(make_lab(root / "probe", {}), items_per_point=4)
    with ScriptedServer(TwoModels(oracle), model_ids=MODELS) as server, dg.instance_for_test() as instance:
        settings = make_lab(root / "lab", {m: scripted_model(server.base_url, served_model=m) for m in MODELS})
        scope = EvalScope(tiers=["easy"], projections=["all"], surfaces=["all"], precision="4")
        evaluate(settings, instance, list(MODELS), list(TASKS), scope)
        yield settings
