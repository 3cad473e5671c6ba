"""The known truth of the calibration models (models.yaml `calibration: true`, rs_dagster.calibration) where
the explorer shows measured accuracy: the true accuracy at each evaluated point, computed from the task's
manifold as the warehouse stored it (task_specs.manifold_yaml: the grid that was measured, whatever the
lab's file says now) and the point's mean guess chance, as `point_truth` defines it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from rs_dagster.calibration import stored_point_truth
from rs_dagster.errors import RsError
from rs_dagster.explore.queries import Tables
from rs_dagster.report.charts import TRUTH  # the column holding the truth: null for a non-calibration model, or a point off the stored grid
from rs_dagster.tasks.manifold import TaskSpec, stored_manifold


@dataclass(frozen=True)
class KnownTruth:
    """The calibration models among some of a task's models, with the task's stored manifold."""

    models: frozenset[str]
    spec: TaskSpec | None = None
    problem: str | None = None  # why there is a calibration model but no truth to draw, in one sentence

    def of(self, points: pl.DataFrame) -> pl.DataFrame:
        """`points` (rows with model, params_json and guess_chance) with the TRUTH column."""
        spec, models = self.spec, self.models
        values = [
            stored_point_truth(spec, params, chance) if spec is not None and model in models else None
            for model, params, chance in (points.select("model", "params_json", "guess_chance").rows() if not points.is_empty() else [])
        ]
        return points.with_columns(pl.Series(TRUTH, values, dtype=pl.Float64))

    def on_projections(self, projections: pl.DataFrame, points: pl.DataFrame) -> pl.DataFrame:
        """`projections` with the TRUTH of each row's point (joined on model and point_id), when a calibration
        model has points; unchanged otherwise (a curve without truth is drawn as before)."""
        if self.spec is None or projections.is_empty() or points.is_empty():
            return projections
        truths = self.of(points.filter(pl.col("model").is_in(list(self.models)))).select("model", "point_id", TRUTH)
        return projections.join(truths, on=["model", "point_id"], how="left", maintain_order="left")


def known_truth(lab: Tables, task: str, models: Iterable[str]) -> KnownTruth:
    """The calibration models among `models` (those with results of `task`) and the task's stored manifold;
    the manifold is read only when there is one."""
    calibration = frozenset(models) & frozenset(lab.calibration_models())
    if not calibration:
        return KnownTruth(calibration)
    names = ", ".join(sorted(calibration))
    text = lab.manifold(task)
    if text is None:
        return KnownTruth(calibration, problem=f"No known truth for {names} on {task}: task_specs holds no manifold of {task} "
                                               "(run `rs eval`, which refreshes it).")
    try:
        return KnownTruth(calibration, stored_manifold(task, text))
    except RsError as exc:
        return KnownTruth(calibration, problem=f"No known truth for {names} on {task}: the manifold task_specs stores does not read "
                                               f"with this version of the lab ({exc}).")
