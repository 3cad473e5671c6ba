"""What the explorer's views read: the lab's tables queried per view (LabData, the server) or read once
and grouped (Snapshot, the export); the queries themselves are rs_dagster.storage.explore's."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import polars as pl

from rs_dagster.storage.explore import ExplorerReads


class Tables(Protocol):
    """What the views read: LabData answers each call with a query (the server, one view at a time), a
    Snapshot from tables read once (the export, every view)."""

    @property
    def location(self) -> str: ...  # where the tables are, as shown to the user

    def leaderboard(self, models: list[str] | None = None) -> pl.DataFrame: ...
    def reasonscore(self) -> pl.DataFrame: ...
    def reasonscore_tasks(self) -> pl.DataFrame: ...
    def tasks(self) -> list[str]: ...
    def models(self) -> list[str]: ...
    def points(self, task: str) -> pl.DataFrame: ...
    def projections(self, task: str) -> pl.DataFrame: ...
    def surfaces(self, task: str) -> pl.DataFrame: ...
    def task_spectra(self, task: str) -> pl.DataFrame: ...
    def compression(self, task: str) -> pl.DataFrame: ...
    def hazard(self, task: str) -> pl.DataFrame: ...
    def survival(self, task: str) -> pl.DataFrame: ...
    def point(self, model: str, task: str, point_id: str) -> pl.DataFrame: ...
    def point_spectra(self, task: str, point_id: str) -> pl.DataFrame: ...
    def samples(self, model: str, task: str, point_id: str, offset: int, limit: int) -> pl.DataFrame: ...
    def comparisons(self, model_a: str, model_b: str) -> pl.DataFrame: ...
    def nights(self, model: str | None = None) -> pl.DataFrame: ...
    def latest_drift(self, model: str) -> pl.DataFrame: ...
    def memorisation(self) -> pl.DataFrame: ...
    def calibration_models(self) -> list[str]: ...
    def manifold(self, task: str) -> str | None: ...


class LabData(ExplorerReads):
    """The lab's tables queried as each view needs them (see ExplorerReads)."""

    def snapshot(self, samples_per_point: int) -> Snapshot:
        """Every table the views read, one query each, through one connection held for the reads only."""
        with self.session() as data:
            return Snapshot(data, samples_per_point)


def _groups(frame: pl.DataFrame, *keys: str) -> dict[tuple[Any, ...], pl.DataFrame]:
    """The frame's rows by `keys`, each group in the frame's order; an empty frame (a missing table) has none."""
    return {} if frame.is_empty() else frame.partition_by(*keys, as_dict=True, maintain_order=True)


class _WithinTask:
    """A frame's rows by task (grouped already) and, within a task, by `keys`: each task's grouped on its first
    use, so an export that rebuilds one task's views does not group every task's rows by point."""

    def __init__(self, by_task: dict[tuple[Any, ...], pl.DataFrame], *keys: str):
        self._by_task, self._keys, self._grouped = by_task, keys, dict[str, dict[tuple[Any, ...], pl.DataFrame]]()

    def get(self, task: str, *key: Any) -> pl.DataFrame:
        if task not in self._grouped:
            self._grouped[task] = _groups(self._by_task[(task,)], *self._keys) if (task,) in self._by_task else {}
        return self._grouped[task].get(key, pl.DataFrame())


Read = tuple[str, ...]
"""An input a view read from a Snapshot: a table's name and, for a grouped one, the group's key
(("points", task), ("nights", model), ("leaderboard",)...); Snapshot.digest hashes what it names."""


def _digest(value: Any) -> str:
    """A hash of a frame (its schema and its rows, in order: polars' row hashes, stable within one polars
    version), of a list of frames, or of a JSON value."""
    h = hashlib.blake2b(digest_size=16)
    for item in value if isinstance(value, list) and value and isinstance(value[0], pl.DataFrame) else [value]:
        if isinstance(item, pl.DataFrame):
            h.update(repr(item.schema).encode())
            h.update(item.height.to_bytes(8, "little"))
            if item.width and item.height:
                h.update(item.hash_rows().to_numpy().tobytes())
        else:
            h.update(json.dumps(item, default=str).encode())
    return h.hexdigest()


class Snapshot:
    """The lab's tables read once (one query per table) and grouped in polars, so the export builds its
    hundreds of views without a query per view (about 17 ms each); each point keeps its first
    `samples_per_point` samples, with their details (`details`, the rows of the exported sample views).

    Inside `reading()` it records what the views built there read (a Read per table or group of one), and
    `digest` hashes a Read's rows: the export keeps a view whose reads hash as they did when it was built."""

    def __init__(self, lab: LabData, samples_per_point: int):
        self._location = lab.location
        self._reads: set[Read] | None = None
        self._digests: dict[Read, str] = {}
        self._leaderboard, self._reasonscore, self._reasonscore_tasks = lab.leaderboard(), lab.reasonscore(), lab.reasonscore_tasks()
        points = lab.points()
        self._models = sorted(points["model"].unique().to_list()) if not points.is_empty() else []
        self._points, self._no_points = _groups(points, "task"), points.clear()
        self._point = _WithinTask(self._points, "model", "point_id")
        self._projections, self._surfaces = _groups(lab.projections(), "task"), _groups(lab.surfaces(), "task")
        spectra = lab.task_spectra()
        self._tasks = sorted({*(points["task"] if not points.is_empty() else []), *(spectra["task"] if not spectra.is_empty() else [])})
        self._task_spectra = _groups(spectra, "task")
        self._point_spectra = _WithinTask(self._task_spectra, "point_id")  # a point's in model order
        self._compression, self._hazard, self._survival = (_groups(frame, "task") for frame in (lab.compression(), lab.hazard(), lab.survival()))
        self._comparisons = _groups(lab.model_comparisons(), "model_a", "model_b")
        self.details = lab.first_samples(samples_per_point)
        totals = lab.sample_totals()
        pages = self.details.join(totals, on=["model", "task", "point_id"], maintain_order="left") if not self.details.is_empty() else self.details
        self._task_samples = _groups(pages, "task")
        self._samples = _WithinTask(self._task_samples, "model", "point_id")
        self._details_of = _groups(self.details, "task")
        self._nights, self._memorisation = lab.nights(), lab.memorisation()
        self._nights_of, self._latest_drift = _groups(self._nights, "model"), _groups(lab.latest_drift(), "model")
        self._calibration_models = lab.calibration_models()
        manifolds, self._manifolds = lab.manifolds(), dict[str, str]()
        for task, text in manifolds.select("task", "manifold_yaml").rows() if not manifolds.is_empty() else []:
            self._manifolds.setdefault(task, text)  # the first, as LabData.manifold reads it

    @contextmanager
    def reading(self) -> Iterator[set[Read]]:
        """The Reads of the calls made inside the block (the set fills as they are made)."""
        self._reads = reads = set[Read]()
        try:
            yield reads
        finally:
            self._reads = None

    def _read(self, *key: str) -> None:
        if self._reads is not None:
            self._reads.add(key)

    def digest(self, read: Read) -> str:
        """A hash of what `read` names, now: equal to an earlier export's when the rows it read are unchanged."""
        if read not in self._digests:
            self._digests[read] = _digest(self._value(read))
        return self._digests[read]

    def _value(self, read: Read) -> Any:
        name, *key = read
        match name, key:
            case ("location" | "tasks" | "models" | "calibration_models" | "leaderboard" | "reasonscore" | "reasonscore_tasks"
                  | "memorisation" | "nights"), []:
                return getattr(self, f"_{name}")
            case "leaderboard", [model]:
                return self._leaderboard.filter(pl.col("model") == model) if not self._leaderboard.is_empty() else self._leaderboard
            case "nights", [model]:
                return self._nights_of.get((model,), self._nights.clear())
            case "comparisons", [model_a, model_b]:
                return [self._comparisons.get(pair, pl.DataFrame()) for pair in ((model_a, model_b), (model_b, model_a))]
            case "manifold", [task]:
                return self._manifolds.get(task)
            case "points", [task]:
                return self._points.get((task,), self._no_points)
            case "samples", [task]:
                return self._task_samples.get((task,), pl.DataFrame())
            case "latest_drift", [model]:
                return self._latest_drift.get((model,), pl.DataFrame())
            case ("projections" | "surfaces" | "task_spectra" | "compression" | "hazard" | "survival"), [task]:
                return getattr(self, f"_{name}").get((task,), pl.DataFrame())
        raise KeyError(f"no such read: {read}")

    @property
    def location(self) -> str:
        self._read("location")
        return self._location

    def leaderboard(self, models: list[str] | None = None) -> pl.DataFrame:
        if models is None:
            self._read("leaderboard")
            return self._leaderboard
        for model in models:
            self._read("leaderboard", model)
        return self._leaderboard.filter(pl.col("model").is_in(models)) if not self._leaderboard.is_empty() else self._leaderboard

    def reasonscore(self) -> pl.DataFrame:
        self._read("reasonscore")
        return self._reasonscore

    def reasonscore_tasks(self) -> pl.DataFrame:
        self._read("reasonscore_tasks")
        return self._reasonscore_tasks

    def tasks(self) -> list[str]:
        self._read("tasks")
        return self._tasks

    def models(self) -> list[str]:
        self._read("models")
        return self._models

    def points(self, task: str) -> pl.DataFrame:
        self._read("points", task)
        return self._points.get((task,), self._no_points)  # the table's columns, no rows: what the server's query returns

    def projections(self, task: str) -> pl.DataFrame:
        self._read("projections", task)
        return self._projections.get((task,), pl.DataFrame())

    def surfaces(self, task: str) -> pl.DataFrame:
        self._read("surfaces", task)
        return self._surfaces.get((task,), pl.DataFrame())

    def task_spectra(self, task: str) -> pl.DataFrame:
        self._read("task_spectra", task)
        return self._task_spectra.get((task,), pl.DataFrame())

    def compression(self, task: str) -> pl.DataFrame:
        self._read("compression", task)
        return self._compression.get((task,), pl.DataFrame())

    def hazard(self, task: str) -> pl.DataFrame:
        self._read("hazard", task)
        return self._hazard.get((task,), pl.DataFrame())

    def survival(self, task: str) -> pl.DataFrame:
        self._read("survival", task)
        return self._survival.get((task,), pl.DataFrame())

    def point(self, model: str, task: str, point_id: str) -> pl.DataFrame:
        self._read("points", task)  # a row of the task's points
        return self._point.get(task, model, point_id)

    def point_spectra(self, task: str, point_id: str) -> pl.DataFrame:
        self._read("task_spectra", task)
        return self._point_spectra.get(task, point_id)

    def samples(self, model: str, task: str, point_id: str, offset: int, limit: int) -> pl.DataFrame:
        self._read("samples", task)
        return self._samples.get(task, model, point_id).slice(offset, limit)

    def first_samples(self, task: str) -> pl.DataFrame:
        """The task's rows of `details`: those of its exported sample views."""
        self._read("samples", task)  # the same rows, with their point's total
        return self._details_of.get((task,), self.details.clear())

    def comparisons(self, model_a: str, model_b: str) -> pl.DataFrame:
        self._read("comparisons", model_a, model_b)
        pairs = [self._comparisons[key] for key in ((model_a, model_b), (model_b, model_a)) if key in self._comparisons]
        if not pairs:
            return pl.DataFrame()
        return pl.concat(pairs).sort("task", "level", "params_json", descending=[False, True, False], nulls_last=True, maintain_order=True)

    def nights(self, model: str | None = None) -> pl.DataFrame:
        self._read("nights", *([] if model is None else [model]))
        return self._nights if model is None else self._nights_of.get((model,), self._nights.clear())

    def latest_drift(self, model: str) -> pl.DataFrame:
        self._read("latest_drift", model)
        return self._latest_drift.get((model,), pl.DataFrame())

    def memorisation(self) -> pl.DataFrame:
        self._read("memorisation")
        return self._memorisation

    def calibration_models(self) -> list[str]:
        self._read("calibration_models")
        return self._calibration_models

    def manifold(self, task: str) -> str | None:
        self._read("manifold", task)
        return self._manifolds.get(task)
